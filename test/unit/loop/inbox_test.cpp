// Inbox on a real uv loop, in the manner of libuv's tests: count the callbacks, run the loop until
// nothing is left, and check that the loop closes cleanly (uv_loop_close() == 0) and that every
// payload a message carried was released.
#include "gripd/loop/inbox.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

using gripd::loop::Inbox;
using gripd::loop::InboxMessage;
using gripd::loop::PublishAck;
using gripd::loop::SubscribeDelta;

namespace {

// The consumer: drains on every wake-up, as Worker::on_wake does, and closes the inbox once it has
// seen `expected` messages, which ends the loop.
struct Consumer {
    Inbox inbox;
    size_t expected = 0;
    int wakeups = 0;
    std::vector<uint64_t> tokens;   // PublishAck tokens, in arrival order
    std::vector<int32_t> producers; // `from` of each message
    bool closed = false;

    Consumer(int producers_count, size_t expect, gripd::loop::InboxLimits limits = {})
        : inbox(producers_count, limits), expected(expect) {}

    static void on_wake(uv_async_t* h) {
        auto* self = static_cast<Consumer*>(h->data);
        ++self->wakeups;
        while (self->inbox.drain([self](InboxMessage&& m) {
            self->producers.push_back(m.from);
            if (auto* ack = std::get_if<PublishAck>(&m.body)) self->tokens.push_back(ack->token);
        }) > 0) {
        }
        if (self->tokens.size() >= self->expected && !self->closed) {
            self->closed = true;
            self->inbox.close();
        }
    }
};

InboxMessage ack(uint64_t token) {
    return InboxMessage{PublishAck{token}};
}

} // namespace

TEST_CASE("inbox: a push from another thread wakes the loop; the loop ends once closed", "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    Consumer c(1, 3);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);

    std::atomic<int> refused{0}; // Catch2's assertions are not thread-safe: count, check later
    std::thread producer([&] {
        for (uint64_t t = 1; t <= 3; ++t)
            if (!c.inbox.push(0, ack(t))) ++refused;
    });
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    producer.join();

    CHECK(refused == 0);
    CHECK(c.tokens == std::vector<uint64_t>{1, 2, 3});
    CHECK(c.producers == std::vector<int32_t>{0, 0, 0}); // push stamps the producer number
    CHECK(c.wakeups >= 1);
    CHECK(c.wakeups <= 3);
    CHECK_FALSE(c.inbox.push(0, ack(4))); // closed: refused, nothing queued
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inbox: a full ring never blocks or drops: the overflow stays with the producer, in order",
          "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    const size_t total = Inbox::kRingCapacity + 100;
    Consumer c(2, total);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);

    // The loop is not running: the ring fills, the rest waits in producer 1's overflow.
    for (uint64_t t = 0; t < total; ++t)
        REQUIRE(c.inbox.push(1, ack(t)));
    CHECK(c.inbox.has_overflow(1));
    CHECK_FALSE(c.inbox.has_overflow(0));

    // One wake-up drains the ring; the overflow moves in only when the producer flushes.
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(c.wakeups == 1);
    CHECK(c.tokens.size() == Inbox::kRingCapacity);
    CHECK(c.inbox.has_overflow(1));
    CHECK(c.inbox.flush(1)); // all moved: the ring had room again
    CHECK_FALSE(c.inbox.has_overflow(1));
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);

    CHECK(c.wakeups == 2); // the flush found the ring empty, so it woke the consumer once
    REQUIRE(c.tokens.size() == total);
    for (uint64_t t = 0; t < total; ++t)
        REQUIRE(c.tokens[t] == t);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inbox: a push while the overflow is not empty queues behind it (no overtaking)", "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    const size_t total = Inbox::kRingCapacity + 2;
    Consumer c(1, total + 1);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);
    for (uint64_t t = 0; t < total; ++t)
        REQUIRE(c.inbox.push(0, ack(t)));
    uv_run(&loop, UV_RUN_NOWAIT); // drains the ring, overflow untouched
    // This push first moves the overflow in (there is room now), then goes behind it.
    REQUIRE(c.inbox.push(0, ack(total)));
    CHECK_FALSE(c.inbox.has_overflow(0));
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    REQUIRE(c.tokens.size() == total + 1);
    for (uint64_t t = 0; t <= total; ++t)
        REQUIRE(c.tokens[t] == t);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inbox: several producer threads, each in order, nothing lost", "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    constexpr int kProducers = 3;
    constexpr uint64_t kEach = 20000; // several times a ring: exercises overflow and flush
    Consumer c(kProducers, kProducers * kEach);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);

    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < kProducers; ++p)
        threads.emplace_back([&c, &refused, p] {
            for (uint64_t i = 0; i < kEach; ++i) {
                if (!c.inbox.push(p, ack(static_cast<uint64_t>(p) * kEach + i))) ++refused;
                if (c.inbox.has_overflow(p)) c.inbox.flush(p);
            }
            while (c.inbox.has_overflow(p)) {
                c.inbox.flush(p);
                std::this_thread::yield();
            }
        });
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    for (auto& t : threads)
        t.join();

    CHECK(refused == 0);
    REQUIRE(c.tokens.size() == kProducers * kEach);
    std::vector<uint64_t> next(kProducers, 0);
    for (size_t i = 0; i < c.tokens.size(); ++i) {
        int p = c.producers[i];
        REQUIRE(p >= 0);
        REQUIRE(p < kProducers);
        uint64_t want = static_cast<uint64_t>(p) * kEach + next[static_cast<size_t>(p)]++;
        REQUIRE(c.tokens[i] == want); // per-producer order kept
    }
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inbox: messages never drained are destroyed with the inbox, releasing their payloads",
          "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    auto routes_token = std::make_shared<int>(7); // stands for any refcounted payload
    {
        Consumer c(1, 1);
        c.inbox.bind(&loop, &c, &Consumer::on_wake);
        // A payload that lives in the ring, and one that lives in the overflow.
        for (size_t i = 0; i < Inbox::kRingCapacity + 1; ++i) {
            // Aliasing: shares routes_token's count, points at nothing (loop never looks inside).
            std::shared_ptr<const gripd::config::RouteTable> routes(routes_token, nullptr);
            REQUIRE(c.inbox.push(0, InboxMessage{gripd::loop::ReloadRoutes{std::move(routes)}}));
        }
        CHECK(c.inbox.has_overflow(0));
        CHECK(routes_token.use_count() == static_cast<long>(Inbox::kRingCapacity) + 2);
        c.inbox.push(0, InboxMessage{SubscribeDelta{std::string(100, 'c'), +1}});
        c.inbox.close();
        REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
        CHECK(c.wakeups == 0); // closed before the loop ran: the wake-up was never delivered
    }
    CHECK(routes_token.use_count() == 1);
    CHECK(uv_loop_close(&loop) == 0);
}

namespace {
InboxMessage costing(uint64_t token, uint32_t cost) {
    InboxMessage m{PublishAck{token}};
    m.cost = cost;
    return m;
}
} // namespace

TEST_CASE("inbox: data is refused at the item bound (ring and overflow together); control still goes in",
          "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    gripd::loop::InboxLimits limits;
    limits.items = Inbox::kRingCapacity + 100;
    limits.bytes = uint64_t{1} << 40;
    const uint64_t bound = limits.items;
    Consumer c(1, bound + 2, limits);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);

    // The loop is not running: a worker that is behind. Data fills the ring, then the overflow,
    // up to the bound and no further.
    CHECK_FALSE(c.inbox.is_congested());
    for (uint64_t t = 0; t < bound; ++t)
        REQUIRE(c.inbox.push_bounded(0, costing(t, 1)) == Inbox::Pushed::Queued);
    CHECK(c.inbox.has_overflow(0));
    CHECK(c.inbox.level(0).items == bound);
    CHECK(c.inbox.is_congested()); // past a quarter of the bound: publishers refuse
    CHECK(c.inbox.push_bounded(0, costing(999999, 1)) == Inbox::Pushed::Full);
    // Control messages (acks, stops) have the room past the data bound: never refused.
    REQUIRE(c.inbox.push(0, costing(bound, 1)));
    REQUIRE(c.inbox.push(0, costing(bound + 1, 1)));
    CHECK(c.inbox.level(0).items == bound + 2);

    // The consumer catches up: everything queued arrives once, in order; the refused one never.
    while (c.tokens.size() < bound + 2) {
        uv_run(&loop, UV_RUN_NOWAIT);
        c.inbox.flush(0);
    }
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    REQUIRE(c.tokens.size() == bound + 2);
    for (uint64_t t = 0; t < bound + 2; ++t)
        REQUIRE(c.tokens[t] == t);
    CHECK(c.inbox.level(0).items == 0);
    CHECK(c.inbox.level(0).bytes == 0);
    CHECK_FALSE(c.inbox.is_congested());
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inbox: data is refused at the byte bound; room comes back as the consumer drains",
          "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    gripd::loop::InboxLimits limits;
    limits.items = 1 << 20;
    limits.bytes = 10000;
    Consumer c(2, 6, limits);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);

    REQUIRE(c.inbox.push_bounded(0, costing(0, 4000)) == Inbox::Pushed::Queued);
    REQUIRE(c.inbox.push_bounded(0, costing(1, 4000)) == Inbox::Pushed::Queued);
    CHECK(c.inbox.level(0).bytes == 8000);
    CHECK(c.inbox.push_bounded(0, costing(2, 4000)) == Inbox::Pushed::Full); // 12000 > 10000
    // Bounds are per producer: another producer's queue is not full.
    REQUIRE(c.inbox.push_bounded(1, costing(100, 4000)) == Inbox::Pushed::Queued);
    CHECK(c.inbox.is_congested()); // 8000 > 10000 / 4

    uv_run(&loop, UV_RUN_NOWAIT); // drains: the bytes are given back
    CHECK(c.inbox.level(0).bytes == 0);
    CHECK(c.inbox.level(1).bytes == 0);
    CHECK_FALSE(c.inbox.is_congested());
    REQUIRE(c.inbox.push_bounded(0, costing(2, 4000)) == Inbox::Pushed::Queued);
    REQUIRE(c.inbox.push_bounded(0, costing(3, 4000)) == Inbox::Pushed::Queued);
    REQUIRE(c.inbox.push(0, costing(4, 1u << 30))); // control: past the byte bound too
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(c.tokens == std::vector<uint64_t>{0, 1, 100, 2, 3, 4});
    CHECK(c.inbox.push_bounded(0, costing(5, 1)) == Inbox::Pushed::Closed);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inbox: a producer thread at the bound is refused while the consumer loop runs behind it",
          "[loop][inbox]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    gripd::loop::InboxLimits limits;
    limits.items = 5000;
    constexpr uint64_t kTries = 200000;
    std::atomic<uint64_t> queued{0};
    std::atomic<uint64_t> full{0};
    std::atomic<bool> done{false};
    // Expects what was queued: known only once the producer is done; until then a large number.
    Consumer c(1, UINT64_MAX, limits);
    c.inbox.bind(&loop, &c, &Consumer::on_wake);
    uv_timer_t check;
    uv_timer_init(&loop, &check);
    struct Ctx {
        Consumer* c;
        std::atomic<uint64_t>* queued;
        std::atomic<bool>* done;
    } ctx{&c, &queued, &done};
    check.data = &ctx;
    uv_timer_start(
        &check,
        [](uv_timer_t* h) {
            auto* x = static_cast<Ctx*>(h->data);
            if (!x->done->load() || x->c->tokens.size() < x->queued->load()) return;
            x->c->closed = true;
            x->c->inbox.close();
            uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
        },
        1, 1);
    std::atomic<uint64_t> max_level{0};
    std::thread producer([&] {
        for (uint64_t t = 0; t < kTries; ++t) {
            c.inbox.flush(0);
            if (c.inbox.push_bounded(0, costing(t, 1)) == Inbox::Pushed::Queued)
                ++queued;
            else
                ++full;
            max_level = std::max<uint64_t>(max_level.load(), c.inbox.level(0).items);
        }
        while (c.inbox.has_overflow(0)) {
            c.inbox.flush(0);
            std::this_thread::yield();
        }
        done = true;
    });
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    producer.join();
    CHECK(queued + full == kTries);
    CHECK(max_level <= limits.items);
    REQUIRE(c.tokens.size() == queued);
    for (size_t i = 1; i < c.tokens.size(); ++i)
        REQUIRE(c.tokens[i] > c.tokens[i - 1]); // refusals leave gaps, never reorder
    CHECK(uv_loop_close(&loop) == 0);
}
