#include "gripd/pubsub/publish.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <rapidjson/document.h>

#include <algorithm>

namespace gripd::pubsub {

namespace {

namespace json = core::json;
using json::find_member;
using json::str;
using json::to_int_like;
using rapidjson::Value;

// Error text builders, shaped like Pushpin's VariantUtil messages.
std::string wrong_type(std::string_view parent, std::string_view key) {
    return std::string(parent) + " contains '" + std::string(key) + "' with wrong type";
}
std::string invalid_value(std::string_view parent, std::string_view key) {
    return std::string(parent) + " contains '" + std::string(key) + "' with invalid value";
}

// Optional string member: absent => true with `out` untouched; present but not a string => false.
bool get_opt_string(const Value& obj, std::string_view parent, std::string_view key,
                    std::optional<std::string>& out, std::string& err) {
    const Value* v = find_member(obj, key);
    if (!v) return true;
    if (!v->IsString()) {
        err = wrong_type(parent, key);
        return false;
    }
    out = std::string(str(*v));
    return true;
}

bool parse_action(const Value& in, std::string_view pn, Action& out, std::string& err) {
    std::optional<std::string> action;
    if (!get_opt_string(in, pn, "action", action, err)) return false;
    if (!action || *action == "send")
        out = Action::Send;
    else if (*action == "hint")
        out = Action::Hint;
    else if (*action == "close")
        out = Action::Close;
    else if (*action == "refresh")
        out = Action::Refresh;
    else {
        err.clear(); // Pushpin answers "Invalid format: " with an empty detail here
        return false;
    }
    return true;
}

bool parse_content_filters(const Value& in, std::string_view pn, std::optional<std::vector<std::string>>& out,
                           std::string& err) {
    const Value* v = find_member(in, "content-filters");
    if (!v) return true;
    if (!v->IsArray()) {
        err = wrong_type(pn, "content-filters");
        return false;
    }
    std::vector<std::string> filters;
    for (const auto& f : v->GetArray()) {
        if (!f.IsString()) {
            err = "content-filters contains element with wrong type";
            return false;
        }
        filters.emplace_back(str(f));
    }
    out = std::move(filters);
    return true;
}

// `code` member read the Qt way (numbers rounded, numeric strings parsed, other strings 0, bools 0/1).
// Returns false with err set on a wrong type or a value outside [lo, hi].
bool parse_code(const Value& in, std::string_view pn, int lo, int hi, int& out, std::string& err) {
    const Value* v = find_member(in, "code");
    if (!v) return true;
    std::optional<int64_t> n = to_int_like(*v);
    if (!n) {
        err = wrong_type(pn, "code");
        return false;
    }
    if (*n < lo || *n > hi) {
        err = invalid_value(pn, "code");
        return false;
    }
    out = static_cast<int>(*n);
    return true;
}

bool parse_headers(const Value& in, std::string_view pn, HeaderList& out, std::string& err) {
    const Value* v = find_member(in, "headers");
    if (!v) return true;
    return json::parse_headers(
        *v, pn,
        [&](std::string_view name, std::string_view value) {
            out.push_back({std::string(name), std::string(value)});
        },
        err);
}

// Which member get_content() found.
enum class Content { Absent, Bin, Text, Invalid };

// Reads the `bin_key` member (base64, preferred) or else the `key` member into `out`. Invalid (err
// set) if the member found is not a string; Absent (out untouched) if neither is there.
Content get_content(const Value& in, std::string_view pn, std::string_view bin_key, std::string_view key,
                    std::string& out, std::string& err) {
    if (const Value* v = find_member(in, bin_key)) {
        if (!v->IsString()) {
            err = wrong_type(pn, bin_key);
            return Content::Invalid;
        }
        out = core::base64_decode_lenient(str(*v));
        return Content::Bin;
    }
    if (const Value* v = find_member(in, key)) {
        if (!v->IsString()) {
            err = wrong_type(pn, key);
            return Content::Invalid;
        }
        out = std::string(str(*v));
        return Content::Text;
    }
    return Content::Absent;
}

bool parse_http_response(const Value& in, HttpResponseFormat& out, std::string& err) {
    constexpr std::string_view pn = "'http-response'";
    if (!in.IsObject()) {
        err = std::string(pn) + " is not an object";
        return false;
    }
    if (!parse_action(in, pn, out.action, err)) return false;
    if (out.action != Action::Send) return true;
    // 0..99 cannot be sent as a status line (pushpin 1.36 sends "HTTP/1.1 64 ..." anyway).
    if (!parse_code(in, pn, 100, 999, out.code, err)) return false;
    std::optional<std::string> reason;
    if (!get_opt_string(in, pn, "reason", reason, err)) return false;
    if (reason) out.reason = std::move(*reason);
    if (!parse_headers(in, pn, out.headers, err)) return false;
    if (!parse_content_filters(in, pn, out.content_filters, err)) return false;
    Content c = get_content(in, pn, "body-bin", "body", out.body, err);
    if (c == Content::Invalid) return false;
    if (c != Content::Absent) return true;
    const Value* p = find_member(in, "body-patch");
    if (!p) {
        err = std::string(pn) + " does not contain 'body', 'body-bin', or 'body-patch'";
        return false;
    }
    if (!p->IsArray()) {
        err = wrong_type(pn, "body-patch");
        return false;
    }
    out.body_patch = json::to_compact_json(*p);
    return true;
}

bool parse_http_stream(const Value& in, HttpStreamFormat& out, std::string& err) {
    constexpr std::string_view pn = "'http-stream'";
    if (!in.IsObject()) {
        err = std::string(pn) + " is not an object";
        return false;
    }
    if (!parse_action(in, pn, out.action, err)) return false;
    if (out.action == Action::Close) return get_opt_string(in, pn, "connection-id", out.connection_id, err);
    if (out.action != Action::Send) return true;
    if (!parse_content_filters(in, pn, out.content_filters, err)) return false;
    Content c = get_content(in, pn, "content-bin", "content", out.content, err);
    if (c == Content::Absent) {
        err = std::string(pn) + " does not contain 'content' or 'content-bin'";
        return false;
    }
    return c != Content::Invalid;
}

bool parse_ws_message(const Value& in, WsMessageFormat& out, std::string& err) {
    constexpr std::string_view pn = "'ws-message'";
    if (!in.IsObject()) {
        err = std::string(pn) + " is not an object";
        return false;
    }
    if (!parse_action(in, pn, out.action, err)) return false;
    if (out.action == Action::Send) {
        std::optional<std::string> type;
        if (!get_opt_string(in, pn, "type", type, err)) return false;
        std::optional<WsType> t;
        if (type) {
            if (*type == "text")
                t = WsType::Text;
            else if (*type == "binary")
                t = WsType::Binary;
            else if (*type == "ping")
                t = WsType::Ping;
            else if (*type == "pong")
                t = WsType::Pong;
            else {
                err = std::string(pn) + " contains 'type' with unknown value";
                return false;
            }
        }
        if (!parse_content_filters(in, pn, out.content_filters, err)) return false;
        Content c = get_content(in, pn, "content-bin", "content", out.content, err);
        if (c == Content::Invalid) return false;
        if (c == Content::Bin && !t) t = WsType::Binary;
        if (c == Content::Text && !t) t = WsType::Text;
        if (c == Content::Absent && (!t || *t == WsType::Text || *t == WsType::Binary)) {
            err = std::string(pn) + " does not contain 'content' or 'content-bin'";
            return false;
        }
        out.type = *t;
    } else if (out.action == Action::Close) {
        if (!parse_code(in, pn, 0, INT32_MAX, out.close_code, err)) return false;
        std::optional<std::string> reason;
        if (!get_opt_string(in, pn, "reason", reason, err)) return false;
        if (reason) out.close_reason = std::move(*reason);
        if (!get_opt_string(in, pn, "connection-id", out.connection_id, err)) return false;
    }
    return true;
}

constexpr std::string_view kItem = "publish item object";

// The item's channel: `channel_override` when given (publishing to /publish/<channel>/), else its
// required `channel` member.
bool parse_channel(const Value& v, std::string_view channel_override, PublishItem& item, std::string& err) {
    if (!channel_override.empty()) {
        item.channel = std::string(channel_override);
        return true;
    }
    const Value* c = find_member(v, "channel");
    if (!c) {
        err = std::string(kItem) + " does not contain 'channel'";
        return false;
    }
    if (!c->IsString()) {
        err = wrong_type(kItem, "channel");
        return false;
    }
    item.channel = std::string(str(*c));
    return true;
}

// Formats live under "formats", or directly on the item (legacy) when "formats" is absent.
bool parse_formats(const Value& v, PublishItem& item, std::string& err) {
    const Value* formats = find_member(v, "formats");
    const Value* holder = &v;
    if (formats) {
        if (!formats->IsObject()) {
            err = wrong_type(kItem, "formats");
            return false;
        }
        if (formats->MemberCount() == 0) {
            err = "no formats specified";
            return false;
        }
        holder = formats;
    }
    const Value* hr = find_member(*holder, "http-response");
    const Value* hs = find_member(*holder, "http-stream");
    const Value* ws = find_member(*holder, "ws-message");
    if (!formats && !hr && !hs && !ws) {
        err = "no formats specified";
        return false;
    }
    if (hr && !parse_http_response(*hr, item.http_response.emplace(), err)) return false;
    if (hs && !parse_http_stream(*hs, item.http_stream.emplace(), err)) return false;
    if (ws && !parse_ws_message(*ws, item.ws_message.emplace(), err)) return false;
    return true;
}

bool parse_meta(const Value& v, PublishItem& item, std::string& err) {
    const Value* m = find_member(v, "meta");
    if (!m) return true;
    if (!m->IsObject()) {
        err = wrong_type(kItem, "meta");
        return false;
    }
    for (const auto& member : m->GetObject()) { // one per name: json::parse keeps the last
        if (!member.value.IsString()) {
            err = "'meta' contains '" + std::string(str(member.name)) + "' with wrong type";
            return false;
        }
        item.meta.emplace_back(std::string(str(member.name)), std::string(str(member.value)));
    }
    return true;
}

// `size` (read the Qt way, as `code`) and `no-seq`.
bool parse_size_and_seq(const Value& v, PublishItem& item, std::string& err) {
    if (const Value* s = find_member(v, "size")) {
        std::optional<int64_t> n = to_int_like(*s);
        if (!n) {
            err = wrong_type(kItem, "size");
            return false;
        }
        if (*n < 0 || *n > INT32_MAX) {
            err = invalid_value(kItem, "size");
            return false;
        }
        item.size = static_cast<int>(*n);
    }
    if (const Value* ns = find_member(v, "no-seq")) {
        if (!ns->IsBool()) {
            err = wrong_type(kItem, "no-seq");
            return false;
        }
        item.no_seq = ns->GetBool();
    }
    return true;
}

// One item of a publish body; the first problem found sets `err`, in Pushpin's order.
bool parse_item(const Value& v, std::string_view channel_override, PublishItem& item, std::string& err) {
    if (!v.IsObject()) {
        err = std::string(kItem) + " is not an object";
        return false;
    }
    return parse_channel(v, channel_override, item, err) && get_opt_string(v, kItem, "id", item.id, err) &&
           get_opt_string(v, kItem, "prev-id", item.prev_id, err) && parse_formats(v, item, err) &&
           parse_meta(v, item, err) && parse_size_and_seq(v, item, err);
}

} // namespace

const std::string* find_header(const HeaderList& headers, std::string_view name) {
    for (const Header& h : headers)
        if (core::iequals(h.name, name)) return &h.value;
    return nullptr;
}

struct PublishBodyParser::Doc {
    rapidjson::Document doc;
    const Value* items = nullptr;
};

PublishBodyParser::PublishBodyParser() = default;
PublishBodyParser::~PublishBodyParser() = default;

bool PublishBodyParser::begin(std::string_view body, bool keep_json, std::string& error) {
    doc_ = std::make_unique<Doc>();
    keep_json_ = keep_json;
    next_ = 0;
    rapidjson::Document& doc = doc_->doc;
    if (!json::parse(body, doc)) { // too deep, bad UTF-8, trailing garbage included, as Qt
        error = "Body is not valid JSON.";
        return false;
    }
    if (!doc.IsObject()) {
        error = "Invalid format.";
        return false;
    }
    const Value* items = find_member(doc, "items");
    if (!items) {
        error = "Invalid format: object does not contain 'items'";
        return false;
    }
    if (!items->IsArray()) {
        error = "Invalid format: object contains 'items' with wrong type";
        return false;
    }
    doc_->items = items;
    return true;
}

std::vector<std::string> PublishBodyParser::channels() const {
    std::vector<std::string_view> names;
    if (doc_ && doc_->items) {
        for (const Value& v : doc_->items->GetArray()) {
            const Value* c = find_member(v, "channel");
            if (c == nullptr || !c->IsString()) continue;
            std::string_view name = str(*c);
            if (names.empty() || names.back() != name) names.push_back(name); // runs of one channel
        }
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return {names.begin(), names.end()};
}

size_t PublishBodyParser::size() const {
    return doc_ && doc_->items ? doc_->items->Size() : 0;
}

bool PublishBodyParser::next(size_t max, std::vector<PublishItem>& out, std::string& error, int& error_item) {
    size_t end = std::min(size(), next_ + max);
    for (; next_ < end; ++next_) {
        const Value& v = (*doc_->items)[static_cast<rapidjson::SizeType>(next_)];
        PublishItem item;
        std::string err;
        if (!parse_item(v, {}, item, err)) {
            error = "Invalid format: " + err;
            error_item = static_cast<int>(next_);
            return false;
        }
        if (keep_json_) item.json = json::to_compact_json(v);
        out.push_back(std::move(item));
    }
    if (done()) doc_.reset(); // the items own copies: the document is no longer needed
    return true;
}

PublishParseResult parse_publish_body(std::string_view body, bool keep_json) {
    PublishParseResult r;
    PublishBodyParser parser;
    if (!parser.begin(body, keep_json, r.error)) return r;
    r.items.reserve(parser.size());
    if (!parser.next(parser.size(), r.items, r.error, r.error_item)) {
        r.items.clear();
        return r;
    }
    r.ok = true;
    return r;
}

PublishItemResult parse_publish_item(std::string_view text, std::string_view channel) {
    PublishItemResult r;
    rapidjson::Document doc;
    if (json::ParseResult parsed = json::parse(text, doc); !parsed) {
        r.error = std::string("item is not valid JSON: ") + json::describe(parsed.error);
        return r;
    }
    r.ok = parse_item(doc, channel, r.item, r.error);
    if (!r.ok) r.item = PublishItem();
    return r;
}

} // namespace gripd::pubsub
