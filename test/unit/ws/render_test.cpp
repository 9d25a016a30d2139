#include "gripd/pubsub/message.hpp"
#include "gripd/ws/render.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace gripd;
using namespace gripd::pubsub;

// The ws-message renderer, as pubsub calls it (test/unit/main.cpp installs it as app::Server does).

namespace {

MessageRef from_json(const std::string& body) {
    auto r = parse_publish_body(body);
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 1);
    return Message::create(std::move(r.items[0]));
}

std::string ws_item(const std::string& format) {
    return R"({"items":[{"channel":"c","formats":{"ws-message":)" + format + "}}]}";
}

} // namespace

TEST_CASE("render: ws frames by type and length", "[ws][render]") {
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

    auto m = from_json(ws_item(R"({"content":")" + std::string(126, 'a') + "\"}"));
    const std::string& s = m->ws_message()->frame;
    CHECK(s.size() == 4 + 126);
    CHECK(s.substr(0, 4) == std::string("\x81\x7e\x00\x7e", 4));
    CHECK(m->ws_message()->payload() == std::string(126, 'a'));
    auto l = from_json(ws_item(R"({"content":")" + std::string(70000, 'a') + "\"}"));
    const std::string& big = l->ws_message()->frame;
    CHECK(big.size() == 10 + 70000);
    CHECK(big.substr(0, 10) == std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10));
    auto c = from_json(ws_item(R"({"type":"ping","content":")" + std::string(200, 'a') + "\"}"));
    CHECK(c->ws_message()->frame.size() == 2 + 125); // control payloads are capped
    CHECK(c->ws_message()->payload() == std::string(125, 'a'));
}

TEST_CASE("render: ws close frames", "[ws][render]") {
    auto c = from_json(
        R"({"items":[{"channel":"c","formats":{"ws-message":{"action":"close","code":4001,"reason":"bye"}}}]})");
    CHECK(c->ws_message()->action == Action::Close);
    CHECK(c->ws_message()->frame == std::string("\x88\x05\x0f\xa1"
                                                "bye",
                                                7));
    auto e = from_json(R"({"items":[{"channel":"c","formats":{"ws-message":{"action":"close"}}}]})");
    CHECK(e->ws_message()->frame == std::string("\x88\x00", 2));
    auto w = from_json(ws_item(R"({"action":"close","reason":"why"})")); // a reason alone gets 1000
    CHECK(w->ws_message()->frame == std::string("\x88\x05\x03\xe8why", 7));
    // The reason is cut to 123 bytes, so the payload stays within a control frame's 125.
    auto l =
        from_json(ws_item(R"({"action":"close","code":1001,"reason":")" + std::string(200, 'r') + "\"}"));
    CHECK(l->ws_message()->frame == std::string("\x88\x7d\x03\xe9", 4) + std::string(123, 'r'));
    // ... on a character boundary: 61 two-byte characters are 122 bytes, the 62nd would end at 124.
    std::string wide;
    for (int i = 0; i < 70; ++i)
        wide += "\xc3\xa9"; // U+00E9
    auto u = from_json(ws_item(R"({"action":"close","code":1001,"reason":")" + wide + "\"}"));
    CHECK(u->ws_message()->frame == std::string("\x88\x7c\x03\xe9", 4) + wide.substr(0, 122));
    auto r = from_json(ws_item(R"({"action":"refresh"})"));
    CHECK(r->ws_message()->frame.empty());
}
