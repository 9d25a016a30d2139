// MemoryGuard: the process-wide memory ceiling ([gripd] memory_limit). Near the ceiling gripd sheds
// load in a fixed order instead of being OOM-killed: first it refuses new client connections with
// 503, then it cuts the slowest consumers (largest queued output first).
//
// Nothing here sits on a request's path. Workers add their connections' queued output to their own
// slot (relaxed atomics, one cache line per slot); the resident set size is read from
// /proc/self/statm on a timer by whichever worker's tick comes first; the level is one atomic the
// listeners read at accept time.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gripd::net {

// The default ceiling for this machine: 80% of the cgroup's memory limit (cgroup v2 memory.max or
// v1 memory.limit_in_bytes, the smallest along the path) if one is set, else 50% of physical RAM.
// Returns 0 if neither can be read.
uint64_t default_memory_limit();

class MemoryGuard {
  public:
    enum class Level : int {
        Normal = 0, // below kRefuseAt, or back below kReleaseAt after pressure
        Refuse = 1, // >= kRefuseAt of the ceiling: new client connections get 503
        Shed = 2,   // >= kShedAt: also cut the consumers with the most queued output
    };
    // Thresholds in percent of the ceiling. Pressure ends below kReleaseAt (hysteresis, so a
    // process hovering at the threshold does not flap).
    static constexpr uint64_t kRefuseAt = 85;
    static constexpr uint64_t kShedAt = 95;
    static constexpr uint64_t kReleaseAt = 80;
    // Refusing alone does not free memory: if it has not brought the process back under kReleaseAt
    // after this long (memory held by consumers that stopped reading but no longer grow), shed too.
    static constexpr uint64_t kRefuseAloneMs = 3000;
    // How often RSS is read (the first worker whose tick finds the last sample this old reads it).
    static constexpr uint64_t kSampleMs = 100;

    static MemoryGuard& instance();

    // Sets the ceiling in bytes (0 = off). Call before the workers start.
    void configure(uint64_t limit_bytes);
    uint64_t limit() const { return limit_; }
    bool enabled() const { return limit_ > 0; }

    // Output queued in libuv by connections of worker `worker` changed by `delta` bytes (owner thread
    // only; one relaxed add on the worker's own cache line).
    void account_queued(int worker, int64_t delta) {
        slots_[static_cast<size_t>(worker) % kSlots].bytes.fetch_add(delta, std::memory_order_relaxed);
    }
    // Queued output summed over the workers (approximate while they run).
    int64_t queued_total() const;

    // Reads RSS if the last sample is at least kSampleMs old (one caller wins) and updates the level.
    // Any thread; `now_ms` is a monotonic clock.
    void sample(uint64_t now_ms);
    // Updates the level from an RSS figure taken at `now_ms` (used by sample(); public for tests).
    void update(uint64_t rss_bytes, uint64_t now_ms);

    Level level() const { return static_cast<Level>(level_.load(std::memory_order_relaxed)); }
    bool refusing() const { return level() != Level::Normal; }
    uint64_t rss() const { return rss_.load(std::memory_order_relaxed); }
    // How many bytes above the release threshold the process is (0 when not shedding).
    uint64_t excess() const;

    void count_refused() { refused_.fetch_add(1, std::memory_order_relaxed); }
    void count_shed(uint64_t n) { shed_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
    uint64_t shed() const { return shed_.load(std::memory_order_relaxed); }

  private:
    static constexpr size_t kSlots = 64;
    struct alignas(64) Slot {
        std::atomic<int64_t> bytes{0};
    };
    std::array<Slot, kSlots> slots_{};
    uint64_t limit_ = 0;
    std::atomic<uint64_t> last_sample_ms_{0};
    std::atomic<uint64_t> rss_{0};
    std::atomic<int> level_{0};
    std::atomic<uint64_t> refuse_since_ms_{0}; // samplers of successive intervals may be other threads
    std::atomic<uint64_t> refused_{0};
    std::atomic<uint64_t> shed_{0};
};

// Resident set size of this process in bytes (0 if /proc cannot be read).
uint64_t read_rss_bytes();

// Gives the heap's free pages back to the kernel (glibc malloc_trim). Freed memory otherwise stays
// in the process and in its RSS. Costs time in proportion to the heap: only after shedding.
void trim_heap();

} // namespace gripd::net
