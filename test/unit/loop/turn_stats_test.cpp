// TurnStats (how long loop turns take) and the worker's bounded inbox drain: a burst of messages
// from other threads is handled over several turns, in order, so the worker's own I/O gets a turn
// in between.
#include "gripd/loop/turn_stats.hpp"
#include "gripd/loop/worker.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <thread>
#include <uv.h>
#include <vector>

using gripd::loop::InboxMessage;
using gripd::loop::Recover;
using gripd::loop::TurnStats;
using gripd::loop::Worker;

TEST_CASE("turn stats: buckets, sum and the recent longest turn", "[loop][turns]") {
    TurnStats t;
    const uint64_t s = 1'000'000'000;
    t.record(50'000, 1 * s);        // 50 us: first bucket (<= 100 us)
    t.record(3'000'000, 2 * s);     // 3 ms: the <= 5 ms bucket
    t.record(2'000'000'000, 3 * s); // 2 s: past the last bound (+Inf)
    CHECK(t.count() == 3);
    CHECK(t.sum_us() == 50 + 3000 + 2'000'000);
    CHECK(t.bucket(0) == 1);
    CHECK(t.bucket(5) == 1); // bounds 100, 250, 500, 1000, 2000, 5000
    CHECK(t.bucket(TurnStats::kBoundsUs.size()) == 1);
    CHECK(t.recent_max_us() == 2'000'000);
    // A new window keeps the last one's longest turn visible...
    t.record(10'000, 3 * s + TurnStats::kMaxWindowNs);
    CHECK(t.recent_max_us() == 2'000'000);
    // ...and forgets it one window later.
    t.record(20'000, 3 * s + 2 * TurnStats::kMaxWindowNs);
    CHECK(t.recent_max_us() == 20);
}

TEST_CASE("worker: a burst in the inbox is drained over several turns, in order", "[loop][worker][turns]") {
    constexpr int kMessages = 2000;
    Worker worker(0, 2);          // producer 1: this thread
    std::vector<int64_t> turn_of; // the worker's turn count when each message was handled
    worker.set_message_handler([&](Worker& w, InboxMessage&) {
        turn_of.push_back(w.turn_stats().count());
        // 10 us of work each: one batch (Worker::kInboxDrainBatch) takes longer than the turn's
        // drain budget, so a drain that respects it stops after the first batch.
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(10);
        while (std::chrono::steady_clock::now() < until) {
        }
    });
    for (int i = 0; i < kMessages; ++i)
        REQUIRE(worker.post(1, InboxMessage{Recover{}}));
    worker.start();
    for (int i = 0; i < 500 && worker.turn_stats().count() < 50; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    worker.request_stop(0);
    worker.join();
    REQUIRE(turn_of.size() == static_cast<size_t>(kMessages));
    std::set<int64_t> turns(turn_of.begin(), turn_of.end());
    // 2000 messages of 10 us are 20 ms of work: with a 1 ms budget per turn, many turns.
    CHECK(turns.size() >= kMessages / static_cast<int>(Worker::kInboxDrainBatch));
    for (size_t i = 1; i < turn_of.size(); ++i)
        REQUIRE(turn_of[i] >= turn_of[i - 1]);
}
