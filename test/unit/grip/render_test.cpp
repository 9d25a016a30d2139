#include "gripd/grip/render.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace gripd;
using namespace gripd::pubsub;
using gripd::grip::append_held_response;

// The http-response and http-stream renderers, as pubsub calls them (test/unit/main.cpp installs
// them as app::Server does), and the long-poll answer a hold completes from the rendered head.

namespace {

MessageRef from_json(const char* body) {
    auto r = parse_publish_body(body);
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 1);
    return Message::create(std::move(r.items[0]));
}

} // namespace

TEST_CASE("render: http-stream renders one chunk", "[grip][render]") {
    auto m = from_json(
        R"({"items":[{"channel":"c","id":"7","formats":{"http-stream":{"content":"hello world\n"}}}]})");
    CHECK(m->channel() == "c");
    CHECK(m->id() == "7");
    REQUIRE(m->http_stream());
    CHECK(m->http_stream()->chunk == "c\r\nhello world\n\r\n");
    CHECK(m->http_stream()->content() == "hello world\n");
    CHECK(m->http_response() == nullptr);
    CHECK(m->ws_message() == nullptr);

    std::string big(300, 'x');
    auto r = parse_publish_body(R"({"items":[{"channel":"c","formats":{"http-stream":{"content":")" + big +
                                R"("}}}]})");
    REQUIRE(r.ok);
    auto m2 = Message::create(std::move(r.items[0]));
    CHECK(m2->http_stream()->chunk == "12c\r\n" + big + "\r\n");
    CHECK(m2->http_stream()->content() == big);
}

TEST_CASE("render: empty stream content and non-send actions render nothing", "[grip][render]") {
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-stream":{"content":""}}}]})");
    CHECK(m->http_stream()->chunk.empty()); // an empty chunk would end the response
    CHECK(m->http_stream()->content().empty());
    auto c = from_json(R"({"items":[{"channel":"c","formats":{"http-stream":{"action":"close"}}}]})");
    CHECK(c->http_stream()->action == Action::Close);
    CHECK(c->http_stream()->chunk.empty());
}

TEST_CASE("render: long-poll response merges hold headers, publish wins", "[grip][render]") {
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{
        "code":201,"headers":[["X-B","1"],["x-b","2"],["Content-Length","99"],["Connection","close"],
                              ["Transfer-Encoding","chunked"],["Content-Type","application/json"]],
        "body":"{}\n"}}}]})");
    http::Headers hold;
    hold.add("Content-Type", "text/plain");
    hold.add("X-Hold", "h");
    hold.add("Content-Length", "12");
    std::string out;
    append_held_response(*m->http_response(), hold, {}, out);
    CHECK(out == "HTTP/1.1 201 Created\r\n"
                 "X-Hold: h\r\n"
                 "X-B: 1\r\n"
                 "x-b: 2\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: 3\r\n"
                 "\r\n"
                 "{}\n");

    out.clear();
    append_held_response(*m->http_response(), hold, {.keep_alive = false}, out);
    CHECK(out.find("Connection: close\r\nContent-Length: 3\r\n\r\n{}\n") != std::string::npos);
    out.clear();
    append_held_response(*m->http_response(), hold, {.keep_alive = true, .http10 = true, .head = true}, out);
    CHECK(out.find("Connection: keep-alive\r\nContent-Length: 3\r\n\r\n") != std::string::npos);
    CHECK(out.substr(out.size() - 4) == "\r\n\r\n"); // HEAD: no body

    out.clear();
    std::string_view patched = "{\"x\":1}";
    append_held_response(*m->http_response(), hold, {}, out, patched);
    CHECK(out.substr(out.size() - 7) == patched);
    CHECK(out.find("Content-Length: 7\r\n") != std::string::npos);
}

TEST_CASE("render: long-poll response defaults and bodyless codes", "[grip][render]") {
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{"body":"hi\n"}}}]})");
    std::string out;
    append_held_response(*m->http_response(), {}, {}, out);
    CHECK(out == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");

    auto n = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{"code":204,"body":"x"}}}]})");
    out.clear();
    append_held_response(*n->http_response(), {}, {}, out);
    CHECK(out == "HTTP/1.1 204 No Content\r\n\r\n");
}
