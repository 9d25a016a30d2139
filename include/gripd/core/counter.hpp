// Counter: a statistic written by exactly one thread (its worker) and read by any (a metrics scrape).
// Single writer, so add() needs no read-modify-write atomic; readers see a recent value.
#pragma once

#include <atomic>
#include <cstdint>

namespace gripd::core {

class Counter {
  public:
    void add(int64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void sub(int64_t n = 1) { add(-n); }
    int64_t get() const { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<int64_t> v_{0};
};

} // namespace gripd::core
