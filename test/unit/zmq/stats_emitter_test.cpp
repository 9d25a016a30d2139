// The per-worker stats emitter (include/gripd/stats/events.hpp) driven past its bound
// (test/LIMITS.md "Stats events per worker"): a push that fills a batch hands it over at once, so a
// worker never holds more than kBatch events whatever the flush timer does, and what worker 0's
// inbox refuses is dropped and counted, not kept.
#include "gripd/stats/events.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

using gripd::stats::Emitter;
using gripd::stats::Event;
using gripd::stats::EventBatch;

namespace {
Event conn_event(size_t i) {
    Event e;
    e.kind = Event::Kind::ConnOpen;
    e.key = "0-" + std::to_string(i);
    return e;
}
} // namespace

TEST_CASE("stats emitter: a flood without a flush timer is handed over in batches of kBatch",
          "[zmq][stats][limits]") {
    std::vector<size_t> sizes;
    Emitter em([&](std::shared_ptr<EventBatch> b) {
        sizes.push_back(b->events.size());
        return true;
    });
    constexpr size_t kEvents = 100'000; // past kMaxPending (8,192) many times over, no flush between
    for (size_t i = 0; i < kEvents; ++i)
        em.push(conn_event(i));
    em.flush(); // the timer's flush: the rest
    size_t total = 0;
    for (size_t n : sizes) {
        CHECK(n <= Emitter::kBatch);
        total += n;
    }
    CHECK(total == kEvents);
    CHECK(sizes.size() == (kEvents + Emitter::kBatch - 1) / Emitter::kBatch);
    CHECK(em.stats().queued.get() == static_cast<int64_t>(kEvents));
    CHECK(em.stats().dropped.get() == 0);
}

TEST_CASE("stats emitter: batches worker 0's inbox refuses are dropped and counted, nothing kept",
          "[zmq][stats][limits]") {
    size_t offered = 0, accepted_events = 0;
    std::weak_ptr<EventBatch> last_refused;
    bool refuse = true;
    Emitter em([&](std::shared_ptr<EventBatch> b) {
        ++offered;
        if (refuse) {
            last_refused = b;
            return false;
        }
        accepted_events += b->events.size();
        return true;
    });
    constexpr size_t kEvents = 50'000;
    for (size_t i = 0; i < kEvents; ++i)
        em.push(conn_event(i));
    em.flush();
    CHECK(offered == (kEvents + Emitter::kBatch - 1) / Emitter::kBatch);
    CHECK(em.stats().dropped.get() == static_cast<int64_t>(kEvents));
    CHECK(last_refused.expired()); // a refused batch is freed, not held for a retry
    // Once the inbox takes batches again, events flow again, counted from there.
    refuse = false;
    for (size_t i = 0; i < 10; ++i)
        em.push(conn_event(i));
    em.flush();
    CHECK(accepted_events == 10);
    CHECK(em.stats().dropped.get() == static_cast<int64_t>(kEvents));
    CHECK(em.stats().queued.get() == static_cast<int64_t>(kEvents + 10));
}
