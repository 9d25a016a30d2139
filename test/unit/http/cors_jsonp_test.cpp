// CORS headers and JSON-P (PROTOCOL.md §6.4); the expected bytes are what Pushpin 1.36 wrote for the
// same input (observed, see test/integration/test_proxy_cors.py).
#include "gripd/config/routes.hpp"
#include "gripd/http/cors.hpp"
#include "gripd/http/jsonp_request.hpp"
#include "gripd/http/jsonp_response.hpp"

#include <catch2/catch.hpp>

using namespace gripd;
using http::JsonpCall;

namespace {

std::string dump(const http::Headers& h) {
    std::string out;
    for (const auto& x : h)
        out += x.name + ": " + x.value + "\n";
    return out;
}

http::RequestHead get(std::string target) {
    http::RequestHead h;
    h.method = "GET";
    h.target = std::move(target);
    h.headers.add("Host", "example.com");
    return h;
}

http::CrossOrigin jsonp(std::string cb, bool extended) {
    http::CrossOrigin co;
    co.jsonp_callback = std::move(cb);
    co.jsonp_extended = extended;
    return co;
}

} // namespace

TEST_CASE("cors: the headers a response lacks are added, in Pushpin's order", "[http]") {
    http::Headers req;
    req.add("Origin", "https://app.example");
    req.add("Access-Control-Request-Method", "PUT");
    req.add("Access-Control-Request-Headers", "x-a, X-B");
    req.add("Access-Control-Request-Headers", " ,x-c");
    http::Headers resp;
    resp.add("Content-Type", "text/plain");
    resp.add("X-Custom", "1");
    resp.add("Cache-Control", "no-cache");
    resp.add("x-custom", "2");
    resp.add("Grip-Foo", "g");
    resp.add("Transfer-Encoding", "chunked");
    resp.add("Access-Control-Foo", "f");
    http::apply_cors_headers(http::cross_origin_of(req), resp);
    CHECK(dump(resp) == "Content-Type: text/plain\nX-Custom: 1\nCache-Control: no-cache\nx-custom: 2\n"
                        "Grip-Foo: g\nTransfer-Encoding: chunked\nAccess-Control-Foo: f\n"
                        "Access-Control-Allow-Methods: PUT\n"
                        "Access-Control-Allow-Headers: x-a, X-B, x-c\n"
                        "Access-Control-Expose-Headers: X-Custom\n"
                        "Access-Control-Allow-Credentials: true\n"
                        "Access-Control-Allow-Origin: https://app.example\n"
                        "Access-Control-Max-Age: 3600\n");
}

TEST_CASE("cors: without Origin or a preflight's headers, and a backend's own values kept", "[http]") {
    http::Headers resp;
    resp.add("access-control-allow-origin", "https://fixed.example");
    resp.add("Content-Length", "2");
    http::apply_cors_headers(http::cross_origin_of(http::Headers{}), resp);
    CHECK(dump(resp) == "access-control-allow-origin: https://fixed.example\nContent-Length: 2\n"
                        "Access-Control-Allow-Methods: OPTIONS, HEAD, GET, POST, PUT, DELETE\n"
                        "Access-Control-Allow-Credentials: true\n"
                        "Access-Control-Max-Age: 3600\n");
}

TEST_CASE("jsonp request: only a GET with the callback (or default callback and body) parameter", "[http]") {
    config::Route r;
    auto h = get("/x?a=1");
    CHECK(http::rewrite_jsonp_request(h, r).kind == JsonpCall::Kind::None);
    h = get("/x?callback=f");
    h.method = "POST";
    CHECK(http::rewrite_jsonp_request(h, r).kind == JsonpCall::Kind::None);
    r.jsonp_body_param = "b";
    r.jsonp_default_callback = "def";
    h = get("/x?b=%7B%7D");
    JsonpCall c = http::rewrite_jsonp_request(h, r);
    REQUIRE(c.kind == JsonpCall::Kind::Call);
    CHECK(c.callback == "def");
    CHECK(c.body == "{}");
    CHECK(h.target == "/x");
    CHECK(h.headers.get("Content-Type") != nullptr);
    CHECK(h.content_length == 2);
}

TEST_CASE("jsonp request: rewritten from _method, _headers and _body", "[http]") {
    config::Route r;
    auto h =
        get("/json?x=1&callback=a%28b&_method=PUT&_headers=%7B%22X-H%22%3A%22v%22%2C%22Accept%22%3A%22x%22%2C"
            "%22A-First%22%3A%22z%22%7D&_body=abc%20d+e&y");
    h.headers.add("Accept", "text/html");
    h.headers.add("X-H", "orig");
    JsonpCall c = http::rewrite_jsonp_request(h, r);
    REQUIRE(c.kind == JsonpCall::Kind::Call);
    CHECK(c.callback == "a(b");
    CHECK(c.extended);
    CHECK(c.body == "abc d+e");
    CHECK(h.method == "PUT");
    CHECK(h.target == "/json?x=1&y");
    CHECK(dump(h.headers) == "Host: example.com\nA-First: z\nX-H: v\nAccept: */*\nX-H: orig\n");
    CHECK(h.content_length == 7);
}

TEST_CASE("jsonp request: bad parameters get Pushpin's 400 texts", "[http]") {
    config::Route r;
    auto error_of = [&](const char* target) {
        auto h = get(target);
        JsonpCall c = http::rewrite_jsonp_request(h, r);
        if (c.kind == JsonpCall::Kind::Invalid) CHECK(h.target == target); // nothing rewritten
        return c.kind == JsonpCall::Kind::Invalid ? c.error : std::string("(valid)");
    };
    CHECK(error_of("/x?callback=") == "Invalid callback parameter.");
    CHECK(error_of("/x?callback") == "Invalid callback parameter.");
    CHECK(error_of("/x?callback=f&_method=") == "Invalid _method parameter.");
    CHECK(error_of("/x?callback=f&_method=GE%20T") == "Invalid _method parameter."); // gripd: a token
    CHECK(error_of("/x?callback=f&_headers=%5B1%5D") == "Invalid _headers parameter.");
    CHECK(error_of("/x?callback=f&_headers=%7B%22a%22%3A1%7D") == "Invalid _headers parameter.");
    CHECK(error_of("/x?callback=f&_headers=%7B%22a%22%3A%22x%5Cr%5CnB%3A%20y%22%7D") ==
          "Invalid _headers parameter."); // gripd: no CR/LF smuggled into a header
    CHECK(error_of("/x?callback=f&_body=") == "Invalid _body parameter.");
    CHECK(error_of("/x?callback=%4") == "(valid)"); // a stray % is itself
    r.jsonp_body_param = "b";
    CHECK(error_of("/x?callback=f&b=") == "Invalid body parameter.");
}

TEST_CASE("jsonp response: relayed, extended, streamed in pieces", "[http]") {
    http::Headers h;
    h.add("Content-Type", "application/json");
    h.add("X-Z", "z");
    h.add("Cache-Control", "no-store");
    h.add("X-Z", "z2");
    h.add("x-z", "lower");
    h.add("Content-Length", "9");
    h.add("Transfer-Encoding", "chunked");
    http::JsonpStream s(jsonp("cb", true));
    std::string out = s.start(201, "Created", h);
    CHECK(out ==
          "/**/cb({\"code\": 201, \"reason\": \"Created\", \"headers\": {\"Cache-Control\":\"no-store\","
          "\"Content-Length\":\"9\",\"Content-Type\":\"application/json\",\"X-Z\":\"z\",\"x-z\":\"lower\"}, "
          "\"body\": \"");
    // A UTF-8 sequence cut between pieces is kept whole; bytes that are not UTF-8 become U+FFFD.
    out = s.body("\xC3");
    out += s.body("\xA9\x01\t\"\\/\x7F\xFF\n");
    out += s.end();
    CHECK(out == "\xC3\xA9\\u0001\\t\\\"\\\\/\x7F\xEF\xBF\xBD\\n\"});\n");
    CHECK(dump(http::JsonpStream::wrapper_headers(h)) ==
          "Content-Type: application/javascript\nCache-Control: no-store\n");
}

TEST_CASE("jsonp response: basic mode drops one trailing newline, even across pieces", "[http]") {
    http::JsonpStream s(jsonp("f", false));
    std::string out = s.start(200, "OK", {});
    out += s.body("[1]\r");
    out += s.body("\n");
    out += s.end();
    CHECK(out == "/**/f([1]);\n");
    http::JsonpStream t(jsonp("f", false));
    out = t.start(200, "OK", {});
    out += t.body("a\n");
    out += t.body("b\n\n");
    out += t.body("\r");
    out += t.end();
    CHECK(out == "/**/f(a\nb\n\n\r);\n"); // a lone CR is not a newline
}

TEST_CASE("jsonp response: a held answer, as Pushpin's handler writes it", "[http]") {
    auto co = jsonp("cb", true);
    int code = 203;
    std::string reason = "Pub", body = "pubbed\n";
    http::Headers h;
    h.add("Content-Type", "application/json");
    h.add("X-T", "t");
    h.add("Cache-Control", "max-age=5");
    h.add("x-t", "t2");
    h.add("Content-Length", "7");
    http::finish_cross_origin(&co, http::JsonpStyle::Held, code, reason, h, body);
    CHECK(code == 200);
    CHECK(reason == "OK");
    CHECK(body == "/**/cb({\"body\":\"pubbed\\n\",\"code\":203,\"headers\":{\"Cache-Control\":\"max-age=5\","
                  "\"Content-Type\":\"application/json\",\"X-T\":\"t, t2\"},\"reason\":\"Pub\"});\n");
    CHECK(dump(h) == "X-T: t\nCache-Control: max-age=5\nx-t: t2\nContent-Type: application/javascript\n");

    auto basic = jsonp("f", false);
    code = 200;
    reason = "";
    body = "{\"timeout\": true}\n";
    h = {};
    http::finish_cross_origin(&basic, http::JsonpStyle::Held, code, reason, h, body);
    CHECK(body == "/**/f({\"timeout\": true});\n");
}

TEST_CASE("jsonp response: a whole relayed answer (an error), and plain CORS", "[http]") {
    auto co = jsonp("cb", true);
    int code = 502;
    std::string reason, body = "Error while proxying to origin.\n";
    http::Headers h;
    h.add("Content-Type", "text/plain");
    http::finish_cross_origin(&co, http::JsonpStyle::Relayed, code, reason, h, body);
    CHECK(code == 200);
    CHECK(
        body ==
        "/**/cb({\"code\": 502, \"reason\": \"Bad Gateway\", \"headers\": {\"Content-Type\":\"text/plain\"}, "
        "\"body\": \"Error while proxying to origin.\\n\"});\n");
    http::CrossOrigin plain;
    code = 400;
    h = {};
    http::finish_cross_origin(&plain, http::JsonpStyle::Relayed, code, reason, h, body);
    CHECK(code == 400);
    CHECK(h.get("Access-Control-Allow-Origin") != nullptr);
    code = 404;
    h = {};
    http::finish_cross_origin(nullptr, http::JsonpStyle::Held, code, reason, h, body);
    CHECK(h.empty());
}
