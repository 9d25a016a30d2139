// Inbox: how other threads talk to a worker. One bounded single-producer single-consumer ring per
// producer thread, so no two threads ever write the same ring and no lock is taken. A producer that
// finds its ring full keeps the overflow in its own list (touched only by that producer) and retries
// on its next loop turn (flush); nothing blocks and nothing is dropped. The consumer is woken with
// uv_async_send, which coalesces, and drains every ring in batches.
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

class Inbox {
  public:
    static constexpr size_t kRingCapacity = 4096;

    explicit Inbox(int producers);
    Inbox(const Inbox&) = delete;
    Inbox& operator=(const Inbox&) = delete;

    // Consumer side (the owning worker): bind to the loop before any producer may push.
    void bind(uv_loop_t* loop, void* owner, uv_async_cb on_wake);
    void close();
    // Drains up to `max` messages from every ring (also empties overflow that producers flushed).
    template <class F> size_t drain(F&& f, size_t max = 1024) {
        size_t n = 0;
        for (auto& r : rings_)
            n += r->ring.drain(f, max);
        return n;
    }

    // Producer side. `producer` is the caller's fixed thread number. Returns false only if the inbox
    // is closed.
    bool push(int producer, InboxMessage&& msg);
    // Moves the producer's overflow into its ring as space allows; returns true if all was moved.
    // Producers call this on every loop turn while they have overflow.
    bool flush(int producer);
    bool has_overflow(int producer) const { return !rings_[static_cast<size_t>(producer)]->overflow.empty(); }

  private:
    struct ProducerRing {
        SpscRing<InboxMessage> ring{kRingCapacity};
        std::deque<InboxMessage> overflow; // producer-local
    };
    std::vector<std::unique_ptr<ProducerRing>> rings_;
    uv_async_t async_{};
    std::atomic<bool> open_{false};
};

} // namespace gripd::loop
