#include "gripd/loop/turn_stats.hpp"

namespace gripd::loop {

void TurnStats::record(uint64_t busy_ns, uint64_t now_ns) {
    uint64_t us = busy_ns / 1000;
    size_t i = 0;
    while (i < kBoundsUs.size() && us > kBoundsUs[i])
        ++i;
    buckets_[i].add();
    count_.add();
    sum_us_.add(static_cast<int64_t>(us));
    if (now_ns - window_start_ns_ >= kMaxWindowNs) {
        window_start_ns_ = now_ns;
        prev_max_us_.add(max_us_.get() - prev_max_us_.get());
        max_us_.add(-max_us_.get());
    }
    if (static_cast<int64_t>(us) > max_us_.get()) max_us_.add(static_cast<int64_t>(us) - max_us_.get());
}

} // namespace gripd::loop
