// Inbox: how other threads talk to a worker. One bounded single-producer single-consumer ring per
// producer thread, so no two threads ever write the same ring and no lock is taken. A producer that
// finds its ring full keeps the overflow in its own list (touched only by that producer) and retries
// on its next loop turn (flush); nothing blocks. The consumer is woken with uv_async_send, which
// coalesces, and drains every ring in batches.
//
// Bounds. Each producer -> consumer pair counts what it holds (ring and overflow together) in items
// and in bytes (InboxMessage::cost, an estimate the sender stamps: a publish batch's payload, a
// message's rendered bytes). Two kinds of push:
//  - push(): control messages (Stop, ReloadRoutes, acks, subscribe notices, queries) always go in.
//    They are small and few (bounded by what makes them: one ack per publish slice, one notice per
//    channel's first or last local subscriber), and losing one would break a publish or a stop, so
//    they have the room past the data bound to themselves.
//  - push_bounded(): data (deliveries) are refused once the pair holds Limits::items items or
//    Limits::bytes bytes; the sender decides what a refusal means (the broker counts a dropped
//    delivery and warns).
// Publishers look at is_congested() (any pair past a quarter of its bounds) before admitting a new
// publish, and refuse it (503) instead; that keeps deliveries away from their bound unless a worker
// stays stuck.
#pragma once

#include "gripd/loop/messages.hpp"
#include "gripd/loop/spsc_ring.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <uv.h>
#include <vector>

namespace gripd::loop {

// Per producer -> consumer pair, ring and overflow together.
struct InboxLimits {
    uint64_t items = 65536;
    uint64_t bytes = uint64_t{64} << 20;
};

class Inbox {
  public:
    static constexpr size_t kRingCapacity = 4096;

    using Limits = InboxLimits;
    // What a pair holds now (read from any thread: a snapshot, possibly a little stale).
    struct Level {
        uint64_t items = 0;
        uint64_t bytes = 0;
    };
    enum class Pushed : uint8_t { Queued, Full, Closed };

    explicit Inbox(int producers, Limits limits = {});
    Inbox(const Inbox&) = delete;
    Inbox& operator=(const Inbox&) = delete;

    // Consumer side (the owning worker): bind to the loop before any producer may push.
    void bind(uv_loop_t* loop, void* owner, uv_async_cb on_wake);
    void close();
    // Drains up to `max` messages from every ring (also empties overflow that producers flushed).
    template <class F> size_t drain(F&& f, size_t max = 1024) {
        size_t n = 0;
        for (auto& r : rings_) {
            uint64_t bytes = 0;
            size_t got = r->ring.drain(
                [&](InboxMessage&& m) {
                    bytes += m.cost;
                    f(std::move(m));
                },
                max);
            if (got == 0) continue;
            // Single writer (this consumer): plain load + store.
            r->drained_items.store(r->drained_items.load(std::memory_order_relaxed) + got,
                                   std::memory_order_release);
            r->drained_bytes.store(r->drained_bytes.load(std::memory_order_relaxed) + bytes,
                                   std::memory_order_release);
            n += got;
        }
        return n;
    }

    // Producer side. `producer` is the caller's fixed thread number.
    // Control messages: always queued; false only if the inbox is closed.
    bool push(int producer, InboxMessage&& msg);
    // Data messages: refused (Full, `msg` untouched) when the pair is at its bound.
    Pushed push_bounded(int producer, InboxMessage&& msg);
    // Moves the producer's overflow into its ring as space allows; returns true if all was moved.
    // Producers call this on every loop turn while they have overflow.
    bool flush(int producer);
    bool has_overflow(int producer) const { return !rings_[static_cast<size_t>(producer)]->overflow.empty(); }

    // Any thread.
    Level level(int producer) const;
    // True when some pair holds more than a quarter of its bounds: new publishes are refused.
    bool is_congested() const;
    const Limits& limits() const { return limits_; }

  private:
    struct ProducerRing {
        SpscRing<InboxMessage> ring{kRingCapacity};
        std::deque<InboxMessage> overflow; // producer-local
        // Monotonic counters, each written by one side only (level = pushed - drained).
        alignas(64) std::atomic<uint64_t> pushed_items{0};
        std::atomic<uint64_t> pushed_bytes{0};
        alignas(64) std::atomic<uint64_t> drained_items{0};
        std::atomic<uint64_t> drained_bytes{0};
    };
    bool enqueue(int producer, InboxMessage&& msg);

    std::vector<std::unique_ptr<ProducerRing>> rings_;
    Limits limits_;
    uv_async_t async_{};
    std::atomic<bool> open_{false};
};

} // namespace gripd::loop
