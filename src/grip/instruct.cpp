#include "gripd/grip/instruct.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <algorithm>
#include <climits>

namespace gripd::grip {

namespace {

using core::iequals;
using core::trim;
namespace json = core::json;
using json::find_member;
using json::str;
using json::to_int_like;
using rapidjson::Value;

// Qt's QByteArray::toInt: a whole base-10 int (surrounding whitespace allowed), else failure.
std::optional<int> to_int(std::string_view s) {
    auto v = core::parse_int(trim(s));
    if (!v || *v < INT_MIN || *v > INT_MAX) return std::nullopt;
    return static_cast<int>(*v);
}

// Grip-* headers and the framing ones never reach the client from an instruct response.
bool keep_response_header(const http::Header& h, const std::vector<std::string>& expose) {
    if (core::istarts_with(h.name, "Grip-")) return false;
    if (http::is_framing_header(h.name)) return false;
    if (expose.empty()) return true;
    return std::any_of(expose.begin(), expose.end(),
                       [&](const std::string& e) { return iequals(e, h.name); });
}

void set_meta(std::vector<std::pair<std::string, std::string>>& meta, std::string_view key,
              std::string_view val) {
    for (auto& [k, v] : meta)
        if (k == key) {
            v = std::string(val);
            return;
        }
    meta.emplace_back(std::string(key), std::string(val));
}

std::string too_many_filters(const std::string& channel) {
    return "too many filters for channel '" + channel + "'";
}

// ---- header form ------------------------------------------------------------------------------

bool parse_channels(const http::Headers& headers, Instruct& out, std::string& err) {
    for (auto value : headers.get_all("Grip-Channel")) {
        for (auto part : split_header_list(value)) {
            auto params = parse_header_params(part);
            if (!params) continue; // Pushpin skips unparsable entries
            Channel c;
            c.name = std::move((*params)[0].name);
            if (c.name.empty()) continue;
            if (const std::string* prev = find_param(*params, "prev-id")) c.prev_id = *prev;
            for (size_t i = 1; i < params->size(); ++i)
                if ((*params)[i].name == "filter") c.filters.push_back(std::move((*params)[i].value));
            if (c.filters.size() > kMaxFiltersPerChannel) {
                err = too_many_filters(c.name);
                return false;
            }
            out.channels.push_back(std::move(c));
        }
    }
    return true;
}

bool parse_keep_alive_header(const http::Headers& headers, Instruct& out, std::string& err) {
    const std::string* value = headers.get("Grip-Keep-Alive");
    if (!value || value->empty()) return true;
    auto params = parse_header_params(*value);
    if (!params) return true; // Pushpin: unparsable => no keep-alive
    const std::string& data = (*params)[0].name;
    if (data.empty()) {
        err = "Grip-Keep-Alive cannot be empty";
        return false;
    }
    KeepAlive ka;
    const std::string* mode = find_param(*params, "mode");
    if (!mode || mode->empty() || *mode == "idle")
        ka.mode = KeepAliveMode::Idle;
    else if (*mode == "interval")
        ka.mode = KeepAliveMode::Interval;
    else {
        err = "no such Grip-Keep-Alive mode '" + *mode + "'";
        return false;
    }
    if (const std::string* t = find_param(*params, "timeout")) {
        auto n = to_int(*t);
        if (!n) {
            err = "failed to parse Grip-Keep-Alive timeout value";
            return false;
        }
        if (*n < 0) {
            err = "Grip-Keep-Alive timeout has invalid value";
            return false;
        }
        ka.timeout = *n;
    }
    const std::string* format = find_param(*params, "format");
    if (!format || format->empty() || *format == "raw") {
        ka.data = data;
    } else if (*format == "cstring") {
        auto s = unescape_cstring(data);
        if (!s) {
            err = "failed to parse Grip-Keep-Alive cstring format";
            return false;
        }
        ka.data = std::move(*s);
    } else if (*format == "base64") {
        ka.data = core::base64_decode_lenient(data);
    } else {
        err = "no such Grip-Keep-Alive format '" + *format + "'";
        return false;
    }
    if (!ka.data.empty()) out.keep_alive = std::move(ka);
    return true;
}

bool parse_meta_header(const http::Headers& headers, Instruct& out, std::string& err) {
    for (auto value : headers.get_all("Grip-Set-Meta")) {
        for (auto part : split_header_list(value)) {
            auto params = parse_header_params(part, false);
            if (!params) continue;
            if (params->empty()) {
                err = "Grip-Set-Meta cannot be empty";
                return false;
            }
            set_meta(out.meta, (*params)[0].name, (*params)[0].value);
        }
    }
    return true;
}

bool parse_status_header(const http::Headers& headers, InstructResponse& resp, std::string& err) {
    const std::string* value = headers.get("Grip-Status");
    if (!value || value->empty()) return true;
    std::string_view s = *value;
    size_t sp = s.find(' ');
    std::string_view code = sp == std::string_view::npos ? s : s.substr(0, sp);
    auto n = to_int(code);
    // Below 100 is no status line (pushpin 1.36 sends "HTTP/1.1 64 ..." anyway).
    if (!n || *n < 100 || *n > 999) {
        err = "Grip-Status contains invalid status code";
        return false;
    }
    resp.code = *n;
    resp.reason = sp == std::string_view::npos ? std::string() : std::string(s.substr(sp + 1));
    return true;
}

bool parse_links(const http::Headers& headers, Instruct& out, std::string& err) {
    for (auto value : headers.get_all("Grip-Link")) {
        for (auto part : split_header_list(value)) {
            auto params = parse_header_params(part);
            if (!params || params->size() < 2) continue;
            const std::string& target = (*params)[0].name;
            if (target.size() <= 2 || target.front() != '<' || target.back() != '>') {
                err = "failed to parse Grip-Link value";
                return false;
            }
            Link link{target.substr(1, target.size() - 2), -1};
            const std::string* rel = find_param(*params, "rel");
            if (rel && *rel == "next") {
                link.timeout = kDefaultNextLinkTimeout;
                if (const std::string* t = find_param(*params, "timeout")) {
                    auto n = to_int(*t);
                    if (!n) {
                        err = "failed to parse Grip-Link timeout value";
                        return false;
                    }
                    if (*n < 0) {
                        err = "Grip-Link timeout has invalid value";
                        return false;
                    }
                    link.timeout = *n;
                }
                out.next_link = std::move(link);
            } else if (rel && *rel == "gone") {
                out.gone_link = std::move(link);
            }
        }
    }
    return true;
}

bool parse_header_form(int code, std::string_view reason, const http::Headers& headers, std::string_view body,
                       Instruct& out, std::string& err) {
    if (const std::string* hold = headers.get("Grip-Hold")) {
        if (*hold == "response")
            out.hold = HoldMode::Response;
        else if (*hold == "stream")
            out.hold = HoldMode::Stream;
        else {
            err = "Grip-Hold must be set to either 'response' or 'stream'";
            return false;
        }
    }
    if (!parse_channels(headers, out, err)) return false;
    if (const std::string* t = headers.get("Grip-Timeout")) {
        auto n = to_int(*t);
        if (!n) {
            err = "failed to parse Grip-Timeout";
            return false;
        }
        if (*n < 0) {
            err = "Grip-Timeout has invalid value";
            return false;
        }
        out.timeout = *n;
    }
    for (auto v : headers.get_all("Grip-Expose-Headers"))
        for (auto name : split_header_list(v))
            if (!name.empty()) out.expose_headers.emplace_back(name);
    if (!parse_keep_alive_header(headers, out, err)) return false;
    if (!parse_meta_header(headers, out, err)) return false;
    out.response.code = code;
    out.response.reason = std::string(reason);
    if (!parse_status_header(headers, out.response, err)) return false;
    if (!parse_links(headers, out, err)) return false;
    for (const auto& h : headers)
        if (keep_response_header(h, out.expose_headers)) out.response.headers.add(h.name, h.value);
    out.response.body = std::string(body);
    return true;
}

// ---- JSON form --------------------------------------------------------------------------------

std::string wrong_type(std::string_view parent, std::string_view key) {
    return std::string(parent) + " contains '" + std::string(key) + "' with wrong type";
}
std::string invalid_value(std::string_view parent, std::string_view key) {
    return std::string(parent) + " contains '" + std::string(key) + "' with invalid value";
}

bool get_string(const Value& obj, std::string_view pn, std::string_view key, bool required,
                std::optional<std::string>& out, std::string& err) {
    if (!obj.IsObject()) {
        err = std::string(pn) + " is not an object";
        return false;
    }
    const Value* v = find_member(obj, key);
    if (!v) {
        if (required) {
            err = std::string(pn) + " does not contain '" + std::string(key) + "'";
            return false;
        }
        return true;
    }
    if (!v->IsString()) {
        err = wrong_type(pn, key);
        return false;
    }
    out = std::string(str(*v));
    return true;
}

bool get_nonneg_int(const Value& obj, std::string_view pn, std::string_view key, int& out, std::string& err) {
    const Value* v = find_member(obj, key);
    if (!v) return true;
    auto n = to_int_like(*v);
    if (!n) {
        err = wrong_type(pn, key);
        return false;
    }
    if (*n < 0 || *n > INT_MAX) {
        err = invalid_value(pn, key);
        return false;
    }
    out = static_cast<int>(*n);
    return true;
}

bool parse_json_channels(const Value& hold, Instruct& out, std::string& err) {
    const Value* list = find_member(hold, "channels");
    if (!list) {
        err = "hold does not contain 'channels'";
        return false;
    }
    if (!list->IsArray()) {
        err = wrong_type("hold", "channels");
        return false;
    }
    for (const auto& vc : list->GetArray()) {
        Channel c;
        std::optional<std::string> name;
        if (!get_string(vc, "channel", "name", true, name, err)) return false;
        c.name = std::move(*name);
        if (!get_string(vc, "channel", "prev-id", false, c.prev_id, err)) return false;
        if (const Value* filters = find_member(vc, "filters")) {
            if (!filters->IsArray()) {
                err = wrong_type("channel", "filters");
                return false;
            }
            for (const auto& f : filters->GetArray()) {
                if (!f.IsString()) {
                    err = "filters contains value with wrong type";
                    return false;
                }
                c.filters.emplace_back(str(f));
            }
        }
        if (c.filters.size() > kMaxFiltersPerChannel) {
            err = too_many_filters(c.name);
            return false;
        }
        out.channels.push_back(std::move(c));
    }
    return true;
}

bool parse_json_keep_alive(const Value& hold, Instruct& out, std::string& err) {
    const Value* ka = find_member(hold, "keep-alive");
    if (!ka) return true;
    if (!ka->IsObject()) {
        err = wrong_type("hold", "keep-alive");
        return false;
    }
    KeepAlive k;
    // The JSON form has no mode: Pushpin never restarts the timer on activity, i.e. interval.
    k.mode = KeepAliveMode::Interval;
    if (const Value* bin = find_member(*ka, "content-bin")) {
        if (!bin->IsString()) {
            err = wrong_type("keep-alive", "content-bin");
            return false;
        }
        k.data = core::base64_decode_lenient(str(*bin));
    } else if (const Value* c = find_member(*ka, "content")) {
        if (!c->IsString()) {
            err = wrong_type("keep-alive", "content");
            return false;
        }
        k.data = std::string(str(*c));
    }
    if (!get_nonneg_int(*ka, "keep-alive", "timeout", k.timeout, err)) return false;
    if (!k.data.empty()) out.keep_alive = std::move(k);
    return true;
}

bool parse_json_hold(const Value& hold, Instruct& out, std::string& err) {
    if (!hold.IsObject()) {
        err = wrong_type("instruct", "hold");
        return false;
    }
    std::optional<std::string> mode;
    if (!get_string(hold, "hold", "mode", false, mode, err)) return false;
    if (!mode || *mode == "response")
        out.hold = HoldMode::Response;
    else if (*mode == "stream")
        out.hold = HoldMode::Stream;
    else {
        err = "hold 'mode' must be set to either 'response' or 'stream'";
        return false;
    }
    if (!parse_json_channels(hold, out, err)) return false;
    if (!get_nonneg_int(hold, "hold", "timeout", out.timeout, err)) return false;
    if (!parse_json_keep_alive(hold, out, err)) return false;
    if (const Value* meta = find_member(hold, "meta")) {
        if (!meta->IsObject()) {
            err = wrong_type("hold", "meta");
            return false;
        }
        for (const auto& m : meta->GetObject()) { // one per name: json::parse keeps the last
            if (!m.value.IsString()) {
                err = "'meta' contains '" + std::string(str(m.name)) + "' with wrong type";
                return false;
            }
            set_meta(out.meta, str(m.name), str(m.value));
        }
    }
    return true;
}

bool parse_json_headers(const Value& in, http::Headers& out, std::string& err) {
    const Value* v = find_member(in, "headers");
    if (!v) return true;
    auto add = [&](std::string_view name, std::string_view value) {
        if (!http::is_framing_header(name)) out.add(name, value);
    };
    return json::parse_headers(*v, "response", add, err);
}

bool parse_json_response(const Value& in, InstructResponse& resp, std::string& err) {
    if (!in.IsObject()) {
        err.clear(); // Pushpin reports this one with an empty message
        return false;
    }
    if (const Value* code = find_member(in, "code")) {
        auto n = to_int_like(*code);
        if (!n) {
            err = wrong_type("response", "code");
            return false;
        }
        if (*n < 100 || *n > 999) {
            err = invalid_value("response", "code");
            return false;
        }
        resp.code = static_cast<int>(*n);
        resp.reason.clear();
    }
    std::optional<std::string> reason;
    if (!get_string(in, "response", "reason", false, reason, err)) return false;
    if (reason && !reason->empty()) resp.reason = std::move(*reason);
    if (!parse_json_headers(in, resp.headers, err)) return false;
    if (const Value* bin = find_member(in, "body-bin")) {
        if (!bin->IsString()) {
            err = wrong_type("response", "body-bin");
            return false;
        }
        resp.body = core::base64_decode_lenient(str(*bin));
    } else if (const Value* b = find_member(in, "body")) {
        if (!b->IsString()) {
            err = wrong_type("response", "body");
            return false;
        }
        resp.body = std::string(str(*b));
    }
    return true;
}

bool parse_json_form(int code, std::string_view body, Instruct& out, std::string& err) {
    if (code != 200) {
        err = "response code for application/grip-instruct content must be 200";
        return false;
    }
    rapidjson::Document doc;
    if (!json::parse(body, doc)) { // too deep, bad UTF-8, trailing garbage included, as Qt
        err = "failed to parse application/grip-instruct content as JSON";
        return false;
    }
    if (!doc.IsObject()) {
        err = "instruct must be an object";
        return false;
    }
    if (const Value* hold = find_member(doc, "hold"))
        if (!parse_json_hold(*hold, out, err)) return false;
    out.response.headers.clear();
    out.response.body.clear();
    if (const Value* resp = find_member(doc, "response"))
        if (!parse_json_response(*resp, out.response, err)) return false;
    return true;
}

} // namespace

bool is_instruct_content_type(const http::Headers& headers) {
    const std::string* ct = headers.get("Content-Type");
    if (!ct) return false;
    std::string_view v = *ct;
    return iequals(trim(v.substr(0, v.find(';'))), "application/grip-instruct");
}

bool is_grip_response(const http::Headers& headers) {
    if (is_instruct_content_type(headers)) return true;
    for (const auto& h : headers)
        if (core::istarts_with(h.name, "Grip-")) return true;
    return false;
}

InstructResult parse_instruct(int code, std::string_view reason, const http::Headers& headers,
                              std::string_view body) {
    InstructResult r;
    Instruct& in = r.instruct;
    if (!parse_header_form(code, reason, headers, body, in, r.error) ||
        (is_instruct_content_type(headers) && !parse_json_form(code, body, in, r.error))) {
        r.instruct = Instruct();
        return r;
    }
    if (in.response.reason.empty()) in.response.reason = std::string(http::reason_phrase(in.response.code));
    in.timeout = std::max(in.timeout, kMinimumResponseTimeout);
    if (in.keep_alive) in.keep_alive->timeout = std::max(in.keep_alive->timeout, 1);
    r.ok = true;
    return r;
}

std::string grip_error_text(std::string_view error) {
    std::string s = "Failed to parse accept instructions: ";
    s += error;
    s += '\n';
    return s;
}

std::vector<std::string_view> split_header_list(std::string_view in) {
    std::vector<std::string_view> parts;
    size_t pos = 0;
    while (pos < in.size()) {
        bool quoted = false, bad = false;
        size_t end = pos;
        for (; end < in.size(); ++end) {
            char c = in[end];
            if (quoted) {
                if (c == '\\') {
                    if (++end >= in.size()) {
                        bad = true;
                        break;
                    }
                } else if (c == '"') {
                    quoted = false;
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                break;
            }
        }
        if (bad || quoted) {
            parts.push_back(trim(in.substr(pos)));
            break;
        }
        parts.push_back(trim(in.substr(pos, end - pos)));
        pos = end + 1;
    }
    return parts;
}

std::optional<std::vector<HeaderParam>> parse_header_params(std::string_view in, bool first_is_value) {
    std::vector<HeaderParam> out;
    size_t start = 0;
    if (first_is_value) {
        size_t at = in.find(';');
        out.push_back({std::string(trim(in.substr(0, at))), {}});
        start = at == std::string_view::npos ? in.size() : at + 1;
    }
    while (start < in.size()) {
        HeaderParam p;
        size_t at = in.find_first_of("=;", start);
        if (at == std::string_view::npos) {
            p.name = std::string(trim(in.substr(start)));
            start = in.size();
        } else {
            p.name = std::string(trim(in.substr(start, at - start)));
            if (in[at] == '=') {
                ++at;
                if (at < in.size() && in[at] == '"') {
                    bool complete = false;
                    for (++at; at < in.size(); ++at) {
                        if (in[at] == '\\') {
                            if (++at >= in.size()) return std::nullopt;
                            p.value += in[at];
                        } else if (in[at] == '"') {
                            complete = true;
                            ++at;
                            break;
                        } else {
                            p.value += in[at];
                        }
                    }
                    if (!complete) return std::nullopt;
                    size_t semi = in.find(';', at);
                    start = semi == std::string_view::npos ? in.size() : semi + 1;
                } else {
                    size_t semi = in.find(';', at);
                    p.value =
                        std::string(trim(in.substr(at, semi == std::string_view::npos ? semi : semi - at)));
                    start = semi == std::string_view::npos ? in.size() : semi + 1;
                }
            } else {
                start = at + 1;
            }
        }
        out.push_back(std::move(p));
    }
    return out;
}

const std::string* find_param(const std::vector<HeaderParam>& params, std::string_view name, size_t from) {
    for (size_t i = from; i < params.size(); ++i)
        if (iequals(params[i].name, name)) return &params[i].value;
    return nullptr;
}

std::optional<std::string> unescape_cstring(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (size_t n = 0; n < in.size(); ++n) {
        if (in[n] != '\\') {
            out += in[n];
            continue;
        }
        if (++n >= in.size()) return std::nullopt;
        switch (in[n]) {
        case '\\':
            out += '\\';
            break;
        case 'r':
            out += '\r';
            break;
        case 'n':
            out += '\n';
            break;
        case 't':
            out += '\t';
            break;
        case 'x': {
            if (n + 2 >= in.size()) return std::nullopt;
            int hi = core::hex_digit(in[n + 1]), lo = core::hex_digit(in[n + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>((hi << 4) | lo);
            n += 2;
            break;
        }
        default:
            break; // dropped, as Pushpin does
        }
    }
    return out;
}

} // namespace gripd::grip
