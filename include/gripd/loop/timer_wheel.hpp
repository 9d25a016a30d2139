// A hashed timer wheel: one uv_timer per worker drives every connection timeout. Entries are
// intrusive (embedded in their owner), so arming and disarming never allocate and are O(1).
#pragma once

#include <algorithm>
#include <cstdint>
#include <uv.h>
#include <vector>

namespace gripd::loop {

class TimerWheel;

// Embed one of these per timeout in the owning object. The callback receives `owner`.
class TimerEntry {
  public:
    using Callback = void (*)(void* owner);
    TimerEntry() = default;
    TimerEntry(const TimerEntry&) = delete;
    TimerEntry& operator=(const TimerEntry&) = delete;
    ~TimerEntry();

    void init(TimerWheel* wheel, void* owner, Callback cb) {
        wheel_ = wheel;
        owner_ = owner;
        cb_ = cb;
    }
    // (Re)arms the entry to fire `ms` milliseconds from the wheel's current time.
    void arm(uint64_t ms);
    void disarm();
    bool is_armed() const { return prev_ != nullptr; }
    uint64_t deadline() const { return deadline_; }

  private:
    friend class TimerWheel;
    TimerWheel* wheel_ = nullptr;
    void* owner_ = nullptr;
    Callback cb_ = nullptr;
    TimerEntry* prev_ = nullptr;
    TimerEntry* next_ = nullptr;
    uint64_t deadline_ = 0;
};

class TimerWheel {
  public:
    static constexpr uint64_t kTickMs = 50;
    static constexpr size_t kSlots = 1024;

    explicit TimerWheel(uv_loop_t* loop);
    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;
    // Entries still armed are detached (their owners must not outlive the wheel while armed).
    ~TimerWheel();
    // The owner must call close() and let the loop run the close callback before destroying it.
    void close();

    // The loop's time, or the time given to advance() if that is later (tests inject time).
    uint64_t now() const { return uv_now(loop_) > advanced_ms_ ? uv_now(loop_) : advanced_ms_; }
    size_t armed_count() const { return armed_; }
    // Fires every entry whose deadline is <= now (exposed for tests with an injected clock).
    void advance(uint64_t now_ms);

  private:
    friend class TimerEntry;
    void insert(TimerEntry& e);
    void unlink(TimerEntry& e);
    static void on_tick(uv_timer_t* t);
    void wake_at(uint64_t at_ms);

    uv_loop_t* loop_;
    uv_timer_t timer_{};
    bool running_ = false;
    uint64_t cursor_ms_ = 0; // time up to which slots have been processed (multiple of kTickMs)
    size_t armed_ = 0;
    uint64_t advanced_ms_ = 0;
    std::vector<TimerEntry> heads_; // sentinel per slot
};

} // namespace gripd::loop
