#include "gripd/ws/event_queue.hpp"

#include <catch2/catch.hpp>

using namespace gripd::ws;

TEST_CASE("event queue: every byte of every event counts", "[ws][event_queue]") {
    EventQueue q;
    q.push(EventType::Text, "");
    q.push(EventType::Binary, "");
    q.push(EventType::Text, "hello");
    q.push(EventType::Ping, "");
    CHECK(q.events() == 4);
    CHECK(q.content_bytes() == 5);
    std::string want = "TEXT\r\nBINARY\r\nTEXT 5\r\nhello\r\nPING\r\n";
    CHECK(q.bytes() == want.size());
    auto b = q.front(1000, 100);
    CHECK(b.bytes == want);
    CHECK(b.events == 4);
    CHECK(b.content == 5);
}

TEST_CASE("event queue: a batch takes whole events within the cap", "[ws][event_queue]") {
    EventQueue q;
    for (int i = 0; i < 100; ++i)
        q.push(EventType::Text, "");
    auto b = q.front(20, SIZE_MAX);
    CHECK(b.events == 3); // 3 x 6 bytes
    CHECK(b.bytes.size() == 18);
    CHECK(q.front(1000, 2).events == 2);
    // the first event is taken whatever its size
    EventQueue big;
    big.push(EventType::Binary, std::string(300, 'x'));
    big.push(EventType::Text, "y");
    auto bb = big.front(100, SIZE_MAX);
    CHECK(bb.events == 1);
    CHECK(bb.bytes.size() == event_size(EventType::Binary, 300));
}

TEST_CASE("event queue: consuming by offset, partial content re-encoded", "[ws][event_queue]") {
    EventQueue q;
    q.push(EventType::Text, "");
    q.push(EventType::Text, "abcdefghijklmnopq"); // 0x11 bytes
    q.push(EventType::Binary, "zz");
    CHECK(q.consume(3, 5) == 1); // the empty one goes, 5 bytes of the second
    CHECK(q.events() == 2);
    CHECK(q.content_bytes() == 14);
    CHECK(q.front(1000, 10).bytes == "TEXT c\r\nfghijklmnopq\r\nBINARY 2\r\nzz\r\n");
    CHECK(q.bytes() == q.front(1000, 10).bytes.size());
    CHECK(q.consume(1, 12) == 1); // only the first event may go
    CHECK(q.front(1000, 10).bytes == "BINARY 2\r\nzz\r\n");
    CHECK(q.consume(1, 0) == 0);
    CHECK(q.consume(1, 2) == 1);
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
    CHECK(q.capacity() < 32); // storage freed once empty (what is left is the string's inline room)
}

TEST_CASE("event queue: a long run of consumption stays compact", "[ws][event_queue]") {
    EventQueue q;
    size_t max_cap = 0;
    for (int round = 0; round < 2000; ++round) {
        for (int i = 0; i < 100; ++i)
            q.push(EventType::Text, "");
        CHECK(q.consume(90, 0) == 90);
        max_cap = std::max(max_cap, q.capacity());
    }
    CHECK(q.events() == 2000 * 10);
    CHECK(q.content_bytes() == 0);
    // consumed bytes are dropped once they outweigh what remains
    CHECK(max_cap < 4 * (q.bytes() + 64 * 1024));
}
