// TurnStats: how long a worker's loop turns take, the measure of "no input may block a loop". A
// turn's busy time is the wall time from one check phase to the next minus the time the loop spent
// waiting in poll (libuv's idle-time metric), so it counts every callback of the turn: timers, I/O,
// idle handles, the inbox drain and the bulk flush. Written by the worker only; read by scrapes.
#pragma once

#include "gripd/core/counter.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace gripd::loop {

class TurnStats {
  public:
    // Upper bounds of the histogram buckets, in microseconds (the last bucket is +Inf).
    static constexpr std::array<uint64_t, 11> kBoundsUs{100,   250,   500,   1000,   2000,   5000,
                                                        10000, 25000, 50000, 100000, 1000000};
    // The longest turn is kept per window so a scrape sees recent stalls, not one from startup.
    static constexpr uint64_t kMaxWindowNs = 10'000'000'000;

    void record(uint64_t busy_ns, uint64_t now_ns);

    // Readers (any thread).
    int64_t bucket(size_t i) const { return buckets_[i].get(); } // not cumulative; i <= kBoundsUs.size()
    int64_t count() const { return count_.get(); }
    int64_t sum_us() const { return sum_us_.get(); }
    // The longest turn in the current or the previous window (so it never reads as 0 just after a
    // window turns over).
    int64_t recent_max_us() const {
        return max_us_.get() > prev_max_us_.get() ? max_us_.get() : prev_max_us_.get();
    }

  private:
    std::array<core::Counter, kBoundsUs.size() + 1> buckets_{};
    core::Counter count_;
    core::Counter sum_us_;
    core::Counter max_us_;
    core::Counter prev_max_us_;
    uint64_t window_start_ns_ = 0;
};

} // namespace gripd::loop
