#include "gripd/http/jsonp_request.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/core/url_query.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace gripd::http {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Pushpin decodes these values fully (QUrl's encoded form, then every %XX); QUrl has already turned
// a stray '%' into "%25", so it comes out as itself.
std::string percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>((hi << 4) | lo);
                i += 2;
                continue;
            }
        }
        out += in[i];
    }
    return out;
}

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool is_field_value(std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// The query's items in order, each kept as sent so that what is not ours reaches the backend as is.
class Query {
  public:
    explicit Query(std::string_view query) {
        size_t start = 0;
        while (start <= query.size()) {
            size_t amp = query.find('&', start);
            if (amp == std::string_view::npos) amp = query.size();
            if (amp > start) items_.push_back(query.substr(start, amp - start));
            start = amp + 1;
        }
    }
    bool has(std::string_view name) const { return find(name) != nullptr; }
    // The first item's value, percent-decoded ("" for an item without '=').
    std::optional<std::string> value(std::string_view name) const {
        const std::string_view* item = find(name);
        if (!item) return std::nullopt;
        size_t eq = item->find('=');
        return eq == std::string_view::npos ? std::string() : percent_decode(item->substr(eq + 1));
    }
    void remove(std::string_view name) {
        items_.erase(std::remove_if(items_.begin(), items_.end(),
                                    [&](std::string_view item) { return key_is(item, name); }),
                     items_.end());
    }
    std::string to_string() const {
        std::string out;
        for (auto item : items_) {
            if (!out.empty()) out += '&';
            out += item;
        }
        return out;
    }

  private:
    static bool key_is(std::string_view item, std::string_view name) {
        return core::query_decode(item.substr(0, item.find('='))) == name;
    }
    const std::string_view* find(std::string_view name) const {
        for (const auto& item : items_)
            if (key_is(item, name)) return &item;
        return nullptr;
    }
    std::vector<std::string_view> items_;
};

JsonpCall invalid(const char* error) {
    JsonpCall c;
    c.kind = JsonpCall::Kind::Invalid;
    c.error = error;
    return c;
}

// The `_headers` object, sorted by name as Pushpin's map of it is; false if it is not an object of
// strings (or, in gripd, of valid header fields).
bool parse_headers_param(std::string_view text, std::vector<Header>& out) {
    rapidjson::Document doc;
    if (!core::json::parse(text, doc) || !doc.IsObject()) return false;
    for (const auto& m : doc.GetObject()) {
        if (!m.value.IsString()) return false;
        std::string_view name = core::json::str(m.name), value = core::json::str(m.value);
        if (core::iequals(name, "Host") || core::iequals(name, "Accept")) continue;
        if (!is_token(name) || !is_field_value(value)) return false;
        out.push_back({std::string(name), std::string(value)});
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Header& a, const Header& b) { return a.name < b.name; });
    return true;
}

} // namespace

namespace {

// What a JSON-P call's parameters ask for, taken out of its query.
struct Params {
    std::string method;
    std::vector<Header> headers; // from _headers (and the JSON body's Content-Type)
};

// Reads the callback, `_method`, `_headers` and the body parameter into `call` and `p`, removing
// them from `query`. Returns Pushpin's error text for a bad one, or nullptr.
const char* take_params(Query& query, const config::Route& route, std::string_view cb_param, JsonpCall& call,
                        Params& p) {
    if (auto cb = query.value(cb_param)) {
        if (cb->empty()) return "Invalid callback parameter.";
        call.callback = std::move(*cb);
        query.remove(cb_param);
    } else {
        call.callback = route.jsonp_default_callback;
    }
    p.method = route.jsonp_default_method;
    if (auto m = query.value("_method")) {
        if (!is_token(*m)) return "Invalid _method parameter.";
        p.method = std::move(*m);
        query.remove("_method");
    }
    if (auto h = query.value("_headers")) {
        if (!parse_headers_param(*h, p.headers)) return "Invalid _headers parameter.";
        query.remove("_headers");
    }
    const std::string& body_param = route.jsonp_body_param;
    if (!body_param.empty()) {
        if (auto b = query.value(body_param)) {
            if (b->empty()) return "Invalid body parameter.";
            call.body = std::move(*b);
            auto& hs = p.headers;
            hs.erase(std::remove_if(hs.begin(), hs.end(),
                                    [](const Header& x) { return core::iequals(x.name, "Content-Type"); }),
                     hs.end());
            hs.push_back({"Content-Type", "application/json"});
            query.remove(body_param);
        }
    } else if (auto b = query.value("_body")) {
        if (b->empty()) return "Invalid _body parameter.";
        call.body = std::move(*b);
        query.remove("_body");
    }
    return nullptr;
}

// Makes `head` the request the backend gets for the call.
void rewrite(RequestHead& head, std::string_view path, const Query& query, Params& p,
             const std::string& body) {
    std::string target(path);
    std::string rest = query.to_string();
    if (!rest.empty()) target += "?" + rest;
    Headers headers;
    if (const std::string* host = head.headers.get("Host")) headers.add("Host", *host);
    for (auto& h : p.headers)
        headers.add(h.name, h.value);
    headers.add("Accept", "*/*");
    for (const auto& h : head.headers)
        if (!core::iequals(h.name, "Host") && !core::iequals(h.name, "Accept") &&
            !core::iequals(h.name, "Content-Length") && !core::iequals(h.name, "Transfer-Encoding"))
            headers.add(h.name, h.value);
    bool bodyless_method = p.method == "GET" || p.method == "HEAD";
    head.content_length = body.empty() && bodyless_method ? -1 : static_cast<int64_t>(body.size());
    head.chunked = false;
    head.method = std::move(p.method);
    head.target = std::move(target);
    head.headers = std::move(headers);
}

} // namespace

JsonpCall rewrite_jsonp_request(RequestHead& head, const config::Route& route) {
    if (head.method != "GET") return {};
    std::string_view target = head.target;
    size_t qmark = target.find('?');
    if (qmark == std::string_view::npos) return {};
    Query query(target.substr(qmark + 1));
    std::string_view cb_param = route.jsonp_callback_param;
    if (cb_param.empty()) cb_param = "callback";
    const std::string& body_param = route.jsonp_body_param;
    if (!query.has(cb_param) &&
        (route.jsonp_default_callback.empty() || body_param.empty() || !query.has(body_param)))
        return {};

    JsonpCall call;
    call.kind = JsonpCall::Kind::Call;
    call.extended = route.jsonp_mode == config::JsonpMode::Extended;
    Params p;
    if (const char* error = take_params(query, route, cb_param, call, p)) return invalid(error);
    // A body of the client's own would have to be joined to this one; no browser sends one.
    if (head.chunked || head.content_length > 0) return invalid("Invalid _body parameter.");
    rewrite(head, target.substr(0, qmark), query, p, call.body);
    return call;
}

} // namespace gripd::http
