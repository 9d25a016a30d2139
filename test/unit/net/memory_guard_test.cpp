#include "gripd/net/memory_guard.hpp"

#include <catch2/catch.hpp>

using gripd::net::MemoryGuard;
using Level = MemoryGuard::Level;

namespace {
constexpr uint64_t kMiB = 1024 * 1024;
}

TEST_CASE("memory guard: refuse, shed, release with hysteresis", "[net][memory]") {
    MemoryGuard g;
    g.configure(100 * kMiB);
    g.update(50 * kMiB, 0);
    CHECK(g.level() == Level::Normal);
    CHECK_FALSE(g.refusing());
    g.update(86 * kMiB, 100);
    CHECK(g.level() == Level::Refuse);
    CHECK(g.refusing());
    CHECK(g.excess() == 0); // refusing alone cuts nobody
    g.update(96 * kMiB, 200);
    CHECK(g.level() == Level::Shed);
    CHECK(g.excess() == 16 * kMiB); // down to the 80% release mark
    g.update(84 * kMiB, 300);       // still shedding until under the release mark
    CHECK(g.level() == Level::Shed);
    g.update(82 * kMiB, 400);
    CHECK(g.level() == Level::Shed);
    g.update(79 * kMiB, 500);
    CHECK(g.level() == Level::Normal);
    g.update(82 * kMiB, 600); // between release and refuse marks: stays normal
    CHECK(g.level() == Level::Normal);
}

TEST_CASE("memory guard: refusing that frees nothing turns into shedding", "[net][memory]") {
    MemoryGuard g;
    g.configure(100 * kMiB);
    g.update(90 * kMiB, 1000);
    CHECK(g.level() == Level::Refuse);
    g.update(90 * kMiB, 1000 + MemoryGuard::kRefuseAloneMs - 1);
    CHECK(g.level() == Level::Refuse);
    g.update(90 * kMiB, 1000 + MemoryGuard::kRefuseAloneMs);
    CHECK(g.level() == Level::Shed);
}

TEST_CASE("memory guard: per-worker queued output sums", "[net][memory]") {
    MemoryGuard g;
    g.account_queued(0, 1000);
    g.account_queued(1, 500);
    g.account_queued(0, -400);
    CHECK(g.queued_total() == 1100);
}

TEST_CASE("memory guard: off, and the machine default", "[net][memory]") {
    MemoryGuard g;
    g.configure(0);
    CHECK_FALSE(g.enabled());
    g.sample(1000000); // no-op when off
    CHECK(g.level() == Level::Normal);
    CHECK(gripd::net::default_memory_limit() > 0);
    CHECK(gripd::net::read_rss_bytes() > 0);
}
