#include "gripd/pubsub/message.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace gripd;
using namespace gripd::pubsub;

namespace {

MessageRef from_json(const char* body) {
    auto r = parse_publish_body(body);
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 1);
    return Message::create(std::move(r.items[0]));
}

} // namespace

TEST_CASE("message: http-stream renders one chunk", "[pubsub][message]") {
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

TEST_CASE("message: empty stream content and non-send actions render nothing", "[pubsub][message]") {
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-stream":{"content":""}}}]})");
    CHECK(m->http_stream()->chunk.empty()); // an empty chunk would end the response
    CHECK(m->http_stream()->content().empty());
    auto c = from_json(R"({"items":[{"channel":"c","formats":{"http-stream":{"action":"close"}}}]})");
    CHECK(c->http_stream()->action == Action::Close);
    CHECK(c->http_stream()->chunk.empty());
}

TEST_CASE("message: ws frames by type and length", "[pubsub][message]") {
    auto t = from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"content":"hi"}}}]})");
    CHECK(t->ws_message()->frame == std::string("\x81\x02hi", 4));
    CHECK(t->ws_message()->payload() == "hi");

    auto b = from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"content-bin":"AAEC"}}}]})");
    CHECK(b->ws_message()->frame == std::string("\x82\x03\x00\x01\x02", 5));

    auto p = from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"type":"ping"}}}]})");
    CHECK(p->ws_message()->frame == std::string("\x89\x00", 2));
    auto po =
        from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"type":"pong","content":"z"}}}]})");
    CHECK(po->ws_message()->frame == std::string("\x8a\x01z", 3));

    std::string s;
    append_ws_frame(s, WsOpcode::Text, std::string(126, 'a'));
    CHECK(s.size() == 4 + 126);
    CHECK(s.substr(0, 4) == std::string("\x81\x7e\x00\x7e", 4));
    s.clear();
    append_ws_frame(s, WsOpcode::Binary, std::string(70000, 'a'));
    CHECK(s.size() == 10 + 70000);
    CHECK(s.substr(0, 10) == std::string("\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10));
    s.clear();
    append_ws_frame(s, WsOpcode::Ping, std::string(200, 'a')); // control payloads are capped
    CHECK(s.size() == 2 + 125);
}

TEST_CASE("message: ws close frames", "[pubsub][message]") {
    auto c = from_json(
        R"({"items":[{"channel":"c","formats":{"ws-message":{"action":"close","code":4001,"reason":"bye"}}}]})");
    CHECK(c->ws_message()->action == Action::Close);
    CHECK(c->ws_message()->frame == std::string("\x88\x05\x0f\xa1"
                                                "bye",
                                                7));
    auto e = from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"action":"close"}}}]})");
    CHECK(e->ws_message()->frame == std::string("\x88\x00", 2));
    std::string s;
    append_ws_close_frame(s, -1, "why");
    CHECK(s == std::string("\x88\x05\x03\xe8why", 7));
    auto r = from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"action":"refresh"}}}]})");
    CHECK(r->ws_message()->frame.empty());
}

TEST_CASE("message: long-poll response merges hold headers, publish wins", "[pubsub][message]") {
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{
        "code":201,"headers":[["X-B","1"],["x-b","2"],["Content-Length","99"],["Connection","close"],
                              ["Transfer-Encoding","chunked"],["Content-Type","application/json"]],
        "body":"{}\n"}}}]})");
    http::Headers hold;
    hold.add("Content-Type", "text/plain");
    hold.add("X-Hold", "h");
    hold.add("Content-Length", "12");
    std::string out;
    m->render_http_response(hold, {}, out);
    CHECK(out == "HTTP/1.1 201 Created\r\n"
                 "X-Hold: h\r\n"
                 "X-B: 1\r\n"
                 "x-b: 2\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: 3\r\n"
                 "\r\n"
                 "{}\n");

    out.clear();
    m->render_http_response(hold, {.keep_alive = false}, out);
    CHECK(out.find("Connection: close\r\nContent-Length: 3\r\n\r\n{}\n") != std::string::npos);
    out.clear();
    m->render_http_response(hold, {.keep_alive = true, .http10 = true, .head = true}, out);
    CHECK(out.find("Connection: keep-alive\r\nContent-Length: 3\r\n\r\n") != std::string::npos);
    CHECK(out.substr(out.size() - 4) == "\r\n\r\n"); // HEAD: no body

    out.clear();
    std::string_view patched = "{\"x\":1}";
    m->render_http_response(hold, {}, out, patched);
    CHECK(out.substr(out.size() - 7) == patched);
    CHECK(out.find("Content-Length: 7\r\n") != std::string::npos);
}

TEST_CASE("message: long-poll response defaults and bodyless codes", "[pubsub][message]") {
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{"body":"hi\n"}}}]})");
    std::string out;
    m->render_http_response({}, {}, out);
    CHECK(out == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");

    auto n = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{"code":204,"body":"x"}}}]})");
    out.clear();
    n->render_http_response({}, {}, out);
    CHECK(out == "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_CASE("message: meta lookup and shared across threads read-only", "[pubsub][message]") {
    auto m = from_json(
        R"({"items":[{"channel":"c","meta":{"sender":"u1"},"formats":{"http-stream":{"content":"x"}}}]})");
    REQUIRE(m->meta_value("sender"));
    CHECK(*m->meta_value("sender") == "u1");
    CHECK(m->meta_value("nope") == nullptr);

    std::vector<std::thread> threads;
    std::vector<size_t> sizes(4);
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([m, &sizes, i] {
            size_t total = 0;
            for (int k = 0; k < 10000; ++k) {
                MessageRef copy = m;
                total += copy->http_stream()->chunk.size();
            }
            sizes[i] = total;
        });
    for (auto& t : threads)
        t.join();
    for (auto s : sizes)
        CHECK(s == 10000 * m->http_stream()->chunk.size());
}
