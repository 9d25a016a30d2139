// libFuzzer target: JSON-P (http/jsonp_request, http/jsonp_response) and CORS headers.
// Input: byte 0 picks the route's options (basic/extended, a jsonp_body parameter, a default
// callback), byte 1 where the rest splits into a query string and a backend body.
// Checks: a rewritten request is one a backend can be sent (a token method, header names tokens and
// values free of CR/LF/NUL, a target free of controls and spaces); an extended wrapper is valid
// UTF-8 JSON inside `/**/cb(...);\n` whose body is the backend's body (when that is UTF-8), however
// the body is split into pieces; a held wrapper parses too; CORS headers never carry CR/LF.
#include "gripd/config/routes.hpp"
#include "gripd/core/json.hpp"
#include "gripd/http/cors.hpp"
#include "gripd/http/jsonp_request.hpp"
#include "gripd/http/jsonp_response.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace gripd;

namespace {

bool is_utf8(std::string_view s) {
    rapidjson::Document d;
    // Reuse the parser's UTF-8 rule: a string of these bytes, JSON-escaped only for '"' and '\\'.
    std::string esc;
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') esc += '\\';
        if (u < 0x20) {
            esc += "\\u0020";
            continue;
        }
        esc += c;
    }
    return static_cast<bool>(core::json::parse("[\"" + esc + "\"]", d));
}

void check_clean(std::string_view s) {
    if (s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) abort();
}

// The JSON between `/**/cb(` and `);\n`.
void check_wrapper(const std::string& out, const std::string& callback, std::string_view want_body,
                   bool relayed) {
    std::string prefix = "/**/" + callback + "(";
    if (out.rfind(prefix, 0) != 0 || out.size() < prefix.size() + 3 || out.substr(out.size() - 3) != ");\n")
        abort();
    std::string_view json(out);
    json = json.substr(prefix.size(), json.size() - prefix.size() - 3);
    rapidjson::Document d;
    if (!core::json::parse(json, d) || !d.IsObject()) abort();
    const rapidjson::Value* body = core::json::find_member(d, "body");
    if (!body || !body->IsString()) abort();
    if (relayed && is_utf8(want_body) && core::json::str(*body) != want_body) abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    config::Route route;
    route.jsonp_mode = (data[0] & 1) ? config::JsonpMode::Basic : config::JsonpMode::Extended;
    if (data[0] & 2) route.jsonp_body_param = "b";
    if (data[0] & 4) route.jsonp_default_callback = "d";
    if (data[0] & 8) route.jsonp_callback_param = "cb";
    std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
    size_t split = rest.empty() ? 0 : data[1] % (rest.size() + 1);
    std::string_view query = rest.substr(0, split), body = rest.substr(split);

    http::RequestHead head;
    head.method = "GET";
    head.target = "/p?"; // what the request parser lets through: no controls or spaces
    for (char c : query)
        if (static_cast<unsigned char>(c) > ' ' && c != 0x7f) head.target += c;
    head.headers.add("Host", "example.com");
    std::string origin; // as the request parser would let it through: no controls
    for (char c : query.substr(0, 8))
        if (static_cast<unsigned char>(c) >= ' ') origin += c;
    head.headers.add("Origin", origin);
    http::JsonpCall call = http::rewrite_jsonp_request(head, route);
    if (call.kind == http::JsonpCall::Kind::Invalid && call.error.empty()) abort();
    http::CrossOrigin co = http::cross_origin_of(head.headers);
    if (call.kind == http::JsonpCall::Kind::Call) {
        if (call.callback.empty() || head.method.empty()) abort();
        for (char c : head.method)
            if (c <= ' ' || c >= 0x7f) abort();
        for (char c : head.target)
            if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) abort();
        for (const auto& h : head.headers) {
            if (h.name.empty()) abort();
            check_clean(h.value);
        }
        co.jsonp_callback = "cb"; // the fuzzed callback may be any text: check the JSON with a plain one
        co.jsonp_extended = call.extended;
    }
    http::Headers resp;
    resp.add("Content-Type", "text/plain");
    resp.add("X-A", "a");
    if (co.is_jsonp() && co.jsonp_extended) {
        // Relayed, streamed in pieces of every size from 1 to 7 bytes.
        http::JsonpStream s(co);
        std::string out = s.start(200, "OK", resp);
        size_t piece = 1 + (data[1] % 7);
        for (size_t i = 0; i < body.size(); i += piece)
            out += s.body(body.substr(i, piece));
        out += s.end();
        if (!is_utf8(out)) abort();
        check_wrapper(out, "cb", body, true);
        int code = 201;
        std::string reason, b(body);
        http::Headers h = resp;
        http::finish_cross_origin(&co, http::JsonpStyle::Held, code, reason, h, b);
        check_wrapper(b, "cb", body, false);
    } else if (!co.is_jsonp()) {
        http::apply_cors_headers(co, resp);
        for (const auto& h : resp)
            check_clean(h.value);
    }
    return 0;
}
