// PublishGate: `[handler] message_rate` and `message_hwm`, shared by every worker's publish queue.
//
// Pushpin 1.36 queues each delivery in a rate limiter (per route) and drops what would take a
// route's queue past message_hwm ("exceeded publish hwm"). gripd paces at the publish intake
// instead: published items (not deliveries: one item costs gripd one render and one hand-over,
// whatever its subscriber count) leave the control API at message_rate items per second across the
// whole process, and an item that would take the items waiting past message_hwm is dropped and
// counted. Pushpin's limiter restarts its batch timer on every new action, so a steady flood
// starves it (no delivery for seconds); here the pace is a GCRA token bucket with a burst of 25 ms
// worth of items (Pushpin's batch), so an idle gate lets the first item through at once and a flood
// flows at the rate.
//
// Lock-free (atomics): workers take tokens and room from the same gate without a lock or an inbox
// round trip. Times are passed in, so the logic is testable without a clock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gripd::control {

class PublishGate {
  public:
    // The process's gate (configured once by the server before its workers start).
    static PublishGate& instance();

    PublishGate() = default;
    PublishGate(int rate, int hwm) { configure(rate, hwm); }
    PublishGate(const PublishGate&) = delete;
    PublishGate& operator=(const PublishGate&) = delete;

    // rate: items per second, <= 0 = not paced. hwm: items that may wait, <= 0 = no bound of its
    // own. Not thread-safe: call before any worker uses the gate.
    void configure(int rate, int hwm);
    bool paced() const { return interval_ns_ > 0; }
    // Whether waiting items are bounded by message_hwm.
    bool has_hwm() const { return hwm_ > 0; }
    int64_t hwm() const { return hwm_; }

    // Room for `n` more waiting items: returns how many fit under the hwm (all without one); the
    // caller drops the rest (count_dropped) and gives the room back with release() as items leave.
    size_t admit(size_t n);
    void release(size_t n);
    // Up to `n` items may leave now (`now_ns`: a monotonic clock). Returns how many; when 0,
    // `*wait_ns` is how long until the next one may. Unpaced: always n.
    size_t take(size_t n, uint64_t now_ns, uint64_t* wait_ns);

    // Turns keep paced publishes in one order across workers: a publish takes a ticket when it is
    // admitted and hands items over only on its turn, which ends once the broker took its last
    // item (so the channel owners see publishes in admission order, as unpaced ones are seen in
    // answer order).
    uint64_t ticket() { return next_ticket_.fetch_add(1, std::memory_order_relaxed); }
    bool is_turn(uint64_t ticket) const { return serving_.load(std::memory_order_acquire) == ticket; }
    void end_turn(uint64_t ticket) { serving_.store(ticket + 1, std::memory_order_release); }

    void count_dropped(size_t n) { dropped_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    int64_t waiting() const { return waiting_.load(std::memory_order_relaxed); }

  private:
    uint64_t interval_ns_ = 0;  // 1 s / rate
    uint64_t tolerance_ns_ = 0; // how far ahead of now the bucket may run: (burst - 1) intervals
    int64_t hwm_ = -1;
    std::atomic<uint64_t> tat_{0};    // GCRA "theoretical arrival time" of the next item
    std::atomic<int64_t> waiting_{0}; // admitted and not yet released
    std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> next_ticket_{0};
    std::atomic<uint64_t> serving_{0};
};

} // namespace gripd::control
