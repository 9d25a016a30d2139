#include "gripd/control/publish_gate.hpp"

#include <catch2/catch.hpp>

using gripd::control::PublishGate;

namespace {
constexpr uint64_t kMs = 1000000;
constexpr uint64_t kStart = 1000 * kMs; // any monotonic origin
} // namespace

TEST_CASE("publish gate: unpaced lets everything through", "[control][gate]") {
    PublishGate g(-1, -1);
    uint64_t wait = 0;
    CHECK_FALSE(g.paced());
    CHECK(g.take(100000, kStart, &wait) == 100000);
    CHECK(g.admit(100000) == 100000);
}

TEST_CASE("publish gate: an idle gate lets the first item through at once", "[control][gate]") {
    PublishGate g(1, -1);
    uint64_t wait = 0;
    CHECK(g.take(5, kStart, &wait) == 1); // rate 1: a burst of one
    CHECK(g.take(5, kStart, &wait) == 0);
    CHECK(wait == 1000 * kMs);
    CHECK(g.take(5, kStart + 999 * kMs, &wait) == 0);
    CHECK(wait == 1 * kMs);
    CHECK(g.take(5, kStart + 1000 * kMs, &wait) == 1);
    // Idle for a long time: no credit saved up beyond the burst.
    CHECK(g.take(5, kStart + 60000 * kMs, &wait) == 1);
    CHECK(g.take(5, kStart + 60000 * kMs, &wait) == 0);
}

TEST_CASE("publish gate: a flood flows at the rate, in 25 ms bursts", "[control][gate]") {
    PublishGate g(1000, -1); // burst: 25 items
    uint64_t wait = 0;
    size_t sent = 0;
    for (uint64_t t = 0; t < 1000; ++t) // one take per ms for a second, asking for much more
        sent += g.take(1000, kStart + t * kMs, &wait);
    // 25 at once, then one per ms.
    CHECK(sent >= 1000);
    CHECK(sent <= 1025);
    CHECK(g.take(1, kStart, &wait) == 0); // the bucket ran ahead of that old time
}

TEST_CASE("publish gate: the hwm bounds the waiting items", "[control][gate]") {
    PublishGate g(10, 5);
    CHECK(g.has_hwm());
    CHECK(g.admit(3) == 3);
    CHECK(g.admit(3) == 2);
    CHECK(g.admit(1) == 0);
    CHECK(g.waiting() == 5);
    g.release(4);
    CHECK(g.admit(10) == 4);
    g.count_dropped(6);
    CHECK(g.dropped() == 6);
}

TEST_CASE("publish gate: hwm -1 or 0 does not bound", "[control][gate]") {
    PublishGate g(10, 0);
    CHECK_FALSE(g.has_hwm());
    CHECK(g.admit(1000000) == 1000000);
}
