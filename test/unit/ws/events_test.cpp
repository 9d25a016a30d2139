#include "gripd/ws/events.hpp"

#include <catch2/catch.hpp>

using namespace gripd::ws;

TEST_CASE("events: render every type", "[ws][events]") {
    std::string out;
    append_event(out, EventType::Open);
    append_event(out, EventType::Text, "hello");
    append_event(out, EventType::Binary, std::string("\x00\x01\r\n", 4));
    append_event(out, EventType::Ping);
    append_event(out, EventType::Pong, "");
    append_event(out, EventType::Close,
                 "\x03\xe8"
                 "bye");
    append_event(out, EventType::Disconnect);
    static const char kWant[] =
        "OPEN\r\nTEXT 5\r\nhello\r\nBINARY 4\r\n\x00\x01\r\n\r\nPING\r\nPONG 0\r\n\r\n"
        "CLOSE 5\r\n\x03\xe8"
        "bye\r\nDISCONNECT\r\n";
    CHECK(out == std::string(kWant, sizeof(kWant) - 1));
}

TEST_CASE("events: hex lengths", "[ws][events]") {
    std::string out;
    append_event(out, EventType::Text, std::string(300, 'x'));
    CHECK(out.rfind("TEXT 12c\r\n", 0) == 0);
    CHECK(out.size() == event_size(EventType::Text, 300));
    std::vector<Event> ev;
    std::string err;
    REQUIRE(parse_events("TEXT 1C\r\n" + std::string(28, 'y') + "\r\n", &ev, &err));
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].content.size() == 28);
}

TEST_CASE("events: round trip", "[ws][events]") {
    std::string body;
    append_event(body, EventType::Open);
    append_event(body, EventType::Text, "a\r\nb");
    append_event(body, EventType::Close, "\x0f\xa1");
    append_event(body, EventType::Disconnect);
    std::vector<Event> ev;
    std::string err;
    REQUIRE(parse_events(body, &ev, &err));
    REQUIRE(ev.size() == 4);
    CHECK(ev[0].type == EventType::Open);
    CHECK_FALSE(ev[0].has_content);
    CHECK(ev[1].type == EventType::Text);
    CHECK(ev[1].content == "a\r\nb");
    CHECK(ev[2].type == EventType::Close);
    CHECK(ev[2].content == "\x0f\xa1");
    CHECK(ev[3].type == EventType::Disconnect);
}

TEST_CASE("events: empty body, unknown types kept", "[ws][events]") {
    std::vector<Event> ev;
    std::string err;
    REQUIRE(parse_events("", &ev, &err));
    CHECK(ev.empty());
    REQUIRE(parse_events("FOO 2\r\nxx\r\nTEXT\r\n", &ev, &err));
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].type == EventType::Unknown);
    CHECK(ev[0].name == "FOO");
    CHECK(ev[1].type == EventType::Text);
    CHECK_FALSE(ev[1].has_content);
}

TEST_CASE("events: malformed bodies", "[ws][events]") {
    std::string err;
    for (const char* bad : {"OPEN", "TEXT 5\r\nabc\r\n", "TEXT zz\r\nab\r\n", "TEXT 2\r\nabXY",
                            "TEXT \r\n\r\n", "TEXT 2\r\nab"}) {
        std::vector<Event> ev;
        CAPTURE(bad);
        CHECK_FALSE(parse_events(bad, &ev, &err));
    }
}

TEST_CASE("events: names", "[ws][events]") {
    CHECK(event_type("OPEN") == EventType::Open);
    CHECK(event_type("open") == EventType::Unknown);
    CHECK(event_name(EventType::Disconnect) == "DISCONNECT");
}

TEST_CASE("events: the reader gives views, one event at a time", "[ws][events]") {
    std::string body = "OPEN\r\nTEXT 3\r\nabc\r\nBINARY\r\n";
    EventReader r(body);
    EventView e;
    REQUIRE(r.next(&e));
    CHECK(e.type == EventType::Open);
    CHECK_FALSE(e.has_content);
    REQUIRE(r.next(&e));
    CHECK(e.type == EventType::Text);
    CHECK(e.content == "abc");
    CHECK(e.content.data() == body.data() + 14); // a view, not a copy
    REQUIRE(r.next(&e));
    CHECK(e.type == EventType::Binary);
    CHECK_FALSE(r.next(&e));
    CHECK(r.error() == nullptr);
    EventReader bad("TEXT 5\r\nab\r\n");
    CHECK_FALSE(bad.next(&e));
    CHECK(bad.error() != nullptr);
}
