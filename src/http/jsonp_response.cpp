#include "gripd/http/jsonp_response.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <map>

namespace gripd::http {

namespace {

// The inside of a JSON string as Qt 5 writes one (core's escaper, Qt's style). Returns how many
// bytes at the end were left out because they begin a UTF-8 sequence that `s` cuts (only if `partial`).
size_t append_json_chars(std::string& out, std::string_view s, bool partial = false) {
    return core::json::append_string_chars(out, s, core::json::Qt5Style(), partial);
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    append_json_chars(out, s);
    out += '"';
}

// A JSON object of names to strings, in name order (Qt's QVariantMap).
void append_json_map(std::string& out, const std::map<std::string, std::string>& m) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : m) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        append_json_string(out, v);
    }
    out += '}';
}

// Basic mode: a body's one trailing newline is not part of the call.
std::string_view trim_newline(std::string_view body) {
    if (body.ends_with("\r\n")) return body.substr(0, body.size() - 2);
    if (body.ends_with("\n")) return body.substr(0, body.size() - 1);
    return body;
}

// The Held wrapper's header map: one entry per name (as first spelled), its values joined ", ".
std::map<std::string, std::string> merged_headers(const Headers& headers) {
    std::map<std::string, std::string> out;
    const auto& items = headers.items();
    for (size_t i = 0; i < items.size(); ++i) {
        if (!is_response_header(items[i].name) || core::iequals(items[i].name, "Content-Length")) continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; ++j)
            seen = core::iequals(items[j].name, items[i].name);
        if (seen) continue;
        std::string value;
        for (size_t j = i; j < items.size(); ++j) {
            if (!core::iequals(items[j].name, items[i].name)) continue;
            if (!value.empty() || j != i) value += ", ";
            value += items[j].value;
        }
        out.emplace(items[i].name, std::move(value));
    }
    return out;
}

void wrap_held(const CrossOrigin& co, int& code, std::string& reason, Headers& headers, std::string& body) {
    std::string out = "/**/" + co.jsonp_callback + "(";
    if (co.jsonp_extended) {
        out += "{\"body\":";
        append_json_string(out, body);
        out += ",\"code\":" + std::to_string(code) + ",\"headers\":";
        append_json_map(out, merged_headers(headers));
        out += ",\"reason\":";
        append_json_string(out, reason.empty() ? reason_phrase(code) : std::string_view(reason));
        out += '}';
    } else {
        out += trim_newline(body);
    }
    out += ");\n";
    Headers kept;
    for (const auto& h : headers)
        if (!is_framing_header(h.name) && !core::iequals(h.name, "Content-Type")) kept.add(h.name, h.value);
    kept.add("Content-Type", "application/javascript");
    headers = std::move(kept);
    body = std::move(out);
    code = 200;
    reason = "OK";
}

void wrap_relayed(const CrossOrigin& co, int& code, std::string& reason, Headers& headers,
                  std::string& body) {
    JsonpStream s(co);
    std::string out = s.start(code, reason.empty() ? reason_phrase(code) : std::string_view(reason), headers);
    out += s.body(body);
    out += s.end();
    headers = JsonpStream::wrapper_headers(headers);
    body = std::move(out);
    code = 200;
    reason = "OK";
}

} // namespace

Headers JsonpStream::wrapper_headers(const Headers& response) {
    Headers h;
    h.add("Content-Type", "application/javascript");
    for (const auto& x : response)
        if (core::iequals(x.name, "Cache-Control")) h.add(x.name, x.value);
    return h;
}

std::string JsonpStream::start(int code, std::string_view reason, const Headers& headers) const {
    std::string out = "/**/" + callback_ + "(";
    if (!extended_) return out;
    std::map<std::string, std::string> m; // the first value of each name (names compared exactly)
    for (const auto& h : headers)
        if (is_response_header(h.name)) m.emplace(h.name, h.value);
    out += "{\"code\": " + std::to_string(code) + ", \"reason\": ";
    append_json_string(out, reason);
    out += ", \"headers\": ";
    append_json_map(out, m);
    out += ", \"body\": \"";
    return out;
}

std::string JsonpStream::body(std::string_view data) {
    std::string in = std::move(held_);
    in.append(data);
    held_.clear();
    if (!extended_) {
        size_t keep = trim_newline(in).size();
        if (keep == in.size() && !in.empty() && in.back() == '\r') keep = in.size() - 1; // maybe "\r\n"
        held_ = in.substr(keep);
        in.resize(keep);
        return in;
    }
    std::string out;
    size_t cut = append_json_chars(out, in, true);
    held_ = in.substr(in.size() - cut);
    return out;
}

std::string JsonpStream::end() {
    std::string out;
    if (extended_) {
        append_json_chars(out, held_); // a cut sequence at the very end: U+FFFD
        out += "\"});\n";
    } else {
        if (held_ == "\r") out = held_; // a lone CR is not a newline: part of the body
        out += ");\n";                  // a held newline ended the body: dropped
    }
    held_.clear();
    return out;
}

void finish_cross_origin(const CrossOrigin* co, JsonpStyle style, int& code, std::string& reason,
                         Headers& headers, std::string& body) {
    if (!co) return;
    if (!co->is_jsonp()) {
        apply_cors_headers(*co, headers);
        return;
    }
    if (style == JsonpStyle::Held)
        wrap_held(*co, code, reason, headers, body);
    else
        wrap_relayed(*co, code, reason, headers, body);
}

} // namespace gripd::http
