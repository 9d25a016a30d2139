#include "gripd/loop/timer_wheel.hpp"

namespace gripd::loop {

TimerEntry::~TimerEntry() {
    disarm();
}

void TimerEntry::arm(uint64_t ms) {
    disarm();
    deadline_ = wheel_->now() + ms;
    wheel_->insert(*this);
}

void TimerEntry::disarm() {
    if (prev_) wheel_->unlink(*this);
}

TimerWheel::TimerWheel(uv_loop_t* loop) : loop_(loop), heads_(kSlots) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    for (auto& h : heads_)
        h.prev_ = h.next_ = &h;
    cursor_ms_ = uv_now(loop_) / kTickMs * kTickMs;
}

TimerWheel::~TimerWheel() {
    for (auto& head : heads_) {
        while (head.next_ != &head)
            unlink(*head.next_);
        head.prev_ = head.next_ = nullptr; // sentinels are not armed entries
    }
}

void TimerWheel::close() {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void TimerWheel::insert(TimerEntry& e) {
    // An entry due before the cursor goes into the next slot to be processed.
    uint64_t at = e.deadline_ < cursor_ms_ + kTickMs ? cursor_ms_ + kTickMs : e.deadline_;
    TimerEntry& head = heads_[(at / kTickMs) % kSlots];
    e.next_ = &head;
    e.prev_ = head.prev_;
    head.prev_->next_ = &e;
    head.prev_ = &e;
    if (++armed_ == 1 && !running_) {
        cursor_ms_ = uv_now(loop_) / kTickMs * kTickMs;
        running_ = true;
        wake_at(std::max(at, cursor_ms_ + kTickMs));
        return;
    }
    // Sleeping past this entry's slot (only far entries were armed): wake for it instead.
    if (running_ && at < uv_now(loop_) + uv_timer_get_due_in(&timer_)) wake_at(at);
}

// The uv timer fires at `at_ms` (loop time), then every kTickMs until advance() sees empty slots.
void TimerWheel::wake_at(uint64_t at_ms) {
    uint64_t now = uv_now(loop_);
    uv_timer_start(&timer_, on_tick, at_ms > now ? at_ms - now : 0, kTickMs);
}

void TimerWheel::unlink(TimerEntry& e) {
    e.prev_->next_ = e.next_;
    e.next_->prev_ = e.prev_;
    e.prev_ = e.next_ = nullptr;
    --armed_;
}

void TimerWheel::advance(uint64_t now_ms) {
    if (now_ms > advanced_ms_) advanced_ms_ = now_ms;
    while (cursor_ms_ + kTickMs <= now_ms) {
        cursor_ms_ += kTickMs;
        TimerEntry& head = heads_[(cursor_ms_ / kTickMs) % kSlots];
        // Detach the slot first: callbacks may arm entries into this same slot.
        if (head.next_ == &head) continue;
        TimerEntry pending;
        pending.prev_ = head.prev_;
        pending.next_ = head.next_;
        head.next_->prev_ = &pending;
        head.prev_->next_ = &pending;
        head.prev_ = head.next_ = &head;
        while (pending.next_ != &pending) {
            TimerEntry* e = pending.next_;
            unlink(*e);
            if (e->deadline_ > now_ms) {
                insert(*e); // a later round of the wheel
                continue;
            }
            e->cb_(e->owner_);
        }
        pending.prev_ = pending.next_ = nullptr;
    }
    if (armed_ == 0 && running_) {
        uv_timer_stop(&timer_);
        running_ = false;
        return;
    }
    if (!running_) return;
    // Only later slots hold entries (an idle connection's timeout, a minute's sample): the loop
    // sleeps until the first of them instead of ticking through empty slots. One scan of at most
    // kSlots heads, and only when the next slot is empty.
    uint64_t next = cursor_ms_ + kTickMs;
    for (size_t n = 0; n < kSlots; ++n, next += kTickMs) {
        const TimerEntry& head = heads_[(next / kTickMs) % kSlots];
        if (head.next_ != &head) break;
    }
    if (next > cursor_ms_ + kTickMs) wake_at(next);
}

void TimerWheel::on_tick(uv_timer_t* t) {
    auto* self = static_cast<TimerWheel*>(t->data);
    uv_update_time(self->loop_);
    self->advance(uv_now(self->loop_));
}

} // namespace gripd::loop
