#include "gripd/loop/spsc_ring.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using gripd::loop::SpscRing;

TEST_CASE("spsc ring: capacity rounds up to a power of two", "[loop][spsc]") {
    CHECK(SpscRing<int>(1).capacity() == 2);
    CHECK(SpscRing<int>(5).capacity() == 8);
    CHECK(SpscRing<int>(64).capacity() == 64);
}

TEST_CASE("spsc ring: push reports empty to non-empty, full, drain order", "[loop][spsc]") {
    SpscRing<int> ring(4);
    CHECK(ring.empty());
    auto r = ring.try_push(1);
    CHECK(r.pushed);
    CHECK(r.was_empty);
    r = ring.try_push(2);
    CHECK(r);
    CHECK_FALSE(r.was_empty);
    CHECK(ring.try_push(3));
    CHECK(ring.try_push(4));
    r = ring.try_push(5);
    CHECK_FALSE(r);
    CHECK_FALSE(r.was_empty);

    std::vector<int> got;
    CHECK(ring.drain([&](int&& v) { got.push_back(v); }, 3) == 3);
    CHECK(got == std::vector<int>{1, 2, 3});
    CHECK_FALSE(ring.empty());
    // Not empty before this push (4 is still there).
    r = ring.try_push(5);
    CHECK(r);
    CHECK_FALSE(r.was_empty);
    CHECK(ring.drain([&](int&& v) { got.push_back(v); }, 100) == 2);
    CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
    CHECK(ring.empty());
    CHECK(ring.drain([&](int&&) { FAIL("nothing to drain"); }, 100) == 0);
    // Drained to empty: the next push must wake the consumer again.
    CHECK(ring.try_push(6).was_empty);
}

TEST_CASE("spsc ring: move-only items and destruction of leftovers", "[loop][spsc]") {
    auto counter = std::make_shared<int>(0);
    {
        SpscRing<std::shared_ptr<int>> ring(8);
        for (int i = 0; i < 5; ++i) {
            auto p = counter;
            REQUIRE(ring.try_push(std::move(p)));
            CHECK(p == nullptr);
        }
        CHECK(counter.use_count() == 6);
        ring.drain([](std::shared_ptr<int>&&) {}, 2);
        CHECK(counter.use_count() == 4);
    }
    CHECK(counter.use_count() == 1);

    SpscRing<std::unique_ptr<std::string>> ring(2);
    REQUIRE(ring.try_push(std::make_unique<std::string>("a")));
    REQUIRE(ring.try_push(std::make_unique<std::string>("b")));
    auto extra = std::make_unique<std::string>("c");
    CHECK_FALSE(ring.try_push(std::move(extra)));
    REQUIRE(extra); // not moved from when full
    std::string s;
    ring.drain([&](std::unique_ptr<std::string>&& p) { s += *p; }, 10);
    CHECK(s == "ab");
}

TEST_CASE("spsc ring: wrap-around over many cycles", "[loop][spsc]") {
    SpscRing<uint64_t> ring(4);
    uint64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 10000; ++round) {
        int k = 1 + round % 4;
        for (int i = 0; i < k; ++i)
            REQUIRE(ring.try_push(uint64_t(next_in++)));
        ring.drain([&](uint64_t&& v) { REQUIRE(v == next_out++); }, 1 + round % 3);
        ring.drain([&](uint64_t&& v) { REQUIRE(v == next_out++); }, 100);
    }
    CHECK(next_in == next_out);
}

// Two threads; the consumer sleeps whenever drain() reports it saw the ring empty, and only the
// producer's was_empty wake-ups get it going again. A lost wake-up would hang, so the wait has a
// deadline and the test fails instead.
TEST_CASE("spsc ring: two-thread stress, order, count and no lost wake-ups", "[loop][spsc][stress]") {
    constexpr uint64_t kItems = 4'000'000;
    constexpr size_t kBatch = 256;
    SpscRing<uint64_t> ring(1024);
    std::atomic<uint64_t> wakes{0};
    std::atomic<bool> stuck{false};
    uint64_t wake_calls = 0;

    std::thread producer([&] {
        for (uint64_t i = 0; i < kItems;) {
            auto r = ring.try_push(uint64_t(i));
            if (!r) {
                std::this_thread::yield(); // overflow: retry on the next turn
                continue;
            }
            ++i;
            if (r.was_empty) {
                ++wake_calls;
                wakes.fetch_add(1, std::memory_order_release);
            }
        }
    });

    uint64_t expected = 0;
    bool in_order = true;
    uint64_t seen_wakes = 0;
    auto deadline_step = std::chrono::seconds(20);
    while (expected < kItems) {
        size_t n = ring.drain(
            [&](uint64_t&& v) {
                if (v != expected) in_order = false;
                ++expected;
            },
            kBatch);
        if (n == kBatch) continue; // more may be waiting: come back without a wake-up
        // Idle until woken (like a loop waiting on uv_async).
        auto start = std::chrono::steady_clock::now();
        while (wakes.load(std::memory_order_acquire) == seen_wakes && expected < kItems) {
            if (std::chrono::steady_clock::now() - start > deadline_step) {
                stuck = true;
                break;
            }
            std::this_thread::yield();
        }
        if (stuck) break;
        seen_wakes = wakes.load(std::memory_order_acquire);
    }
    producer.join();
    CHECK_FALSE(stuck);
    CHECK(in_order);
    CHECK(expected == kItems);
    CHECK(ring.empty());
    INFO("wake-ups " << wake_calls);
    CHECK(wake_calls >= 1);
    CHECK(wake_calls <= kItems);
}
