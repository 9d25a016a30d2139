#include "gripd/control/publish_gate.hpp"

#include <algorithm>

namespace gripd::control {

namespace {
constexpr uint64_t kSecondNs = 1000000000ull;
constexpr uint64_t kBurstMs = 25; // Pushpin's MIN_BATCH_INTERVAL: its limiter sends a batch per 25 ms
} // namespace

PublishGate& PublishGate::instance() {
    static PublishGate gate;
    return gate;
}

void PublishGate::configure(int rate, int hwm) {
    hwm_ = hwm > 0 ? hwm : -1;
    if (rate <= 0) {
        interval_ns_ = 0;
        tolerance_ns_ = 0;
        return;
    }
    interval_ns_ = std::max<uint64_t>(1, kSecondNs / static_cast<uint64_t>(rate));
    // Burst: what the rate allows in 25 ms, at least one item (Pushpin's batch size).
    uint64_t burst = std::max<uint64_t>(1, (static_cast<uint64_t>(rate) * kBurstMs + 999) / 1000);
    tolerance_ns_ = (burst - 1) * interval_ns_;
    tat_.store(0, std::memory_order_relaxed);
}

size_t PublishGate::admit(size_t n) {
    if (hwm_ <= 0 || n == 0) {
        waiting_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
        return n;
    }
    int64_t cur = waiting_.load(std::memory_order_relaxed);
    for (;;) {
        int64_t room = std::max<int64_t>(0, hwm_ - cur);
        int64_t fit = std::min<int64_t>(room, static_cast<int64_t>(n));
        if (fit == 0) return 0;
        if (waiting_.compare_exchange_weak(cur, cur + fit, std::memory_order_relaxed))
            return static_cast<size_t>(fit);
    }
}

void PublishGate::release(size_t n) {
    waiting_.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
}

size_t PublishGate::take(size_t n, uint64_t now_ns, uint64_t* wait_ns) {
    if (interval_ns_ == 0 || n == 0) return n;
    uint64_t tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
        uint64_t base = std::max(tat, now_ns); // an idle bucket starts from now: no credit saved up
        uint64_t limit = now_ns + tolerance_ns_;
        if (base > limit) {
            *wait_ns = base - limit;
            return 0;
        }
        uint64_t k = std::min<uint64_t>(n, (limit - base) / interval_ns_ + 1);
        if (tat_.compare_exchange_weak(tat, base + k * interval_ns_, std::memory_order_relaxed))
            return static_cast<size_t>(k);
    }
}

} // namespace gripd::control
