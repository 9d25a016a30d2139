#include "gripd/loop/flush_queue.hpp"

#include "gripd/core/assert.hpp"

namespace gripd::loop {

void FlushQueue::add(Flushable& f) {
    if (!bulk_mode_) {
        interactive_.push_back(&f);
        return;
    }
    GRIPD_ASSERT(f.bulk_slot_ == Flushable::kNotBulk);
    f.bulk_slot_ = bulk_.size();
    bulk_.push_back(&f);
    ++live_bulk_;
}

bool FlushQueue::run(uint64_t deadline_ns, uint64_t (*now)()) {
    size_t flushed = 0;
    bool spent = false;
    for (;;) {
        // Index loop: a flush may add entries (a failed write closes another connection).
        for (size_t i = 0; i < interactive_.size(); ++i)
            interactive_[i]->flush();
        interactive_.clear();
        while (!spent && head_ < bulk_.size()) {
            Flushable* f = bulk_[head_++];
            if (f == nullptr) continue; // forgotten
            f->bulk_slot_ = Flushable::kNotBulk;
            --live_bulk_;
            f->flush();
            spent = ++flushed % kClockEvery == 0 && now() >= deadline_ns;
        }
        if (interactive_.empty()) break;
    }
    compact();
    return !bulk_waiting();
}

void FlushQueue::forget(Flushable& f) {
    if (f.bulk_slot_ == Flushable::kNotBulk) return;
    GRIPD_ASSERT(f.bulk_slot_ < bulk_.size() && bulk_[f.bulk_slot_] == &f);
    bulk_[f.bulk_slot_] = nullptr;
    f.bulk_slot_ = Flushable::kNotBulk;
    --live_bulk_;
}

void FlushQueue::compact() {
    if (head_ == bulk_.size()) {
        bulk_.clear();
        head_ = 0;
        return;
    }
    // Drop the flushed prefix once it is most of the vector (amortized O(1) per entry).
    if (head_ < 1024 || head_ < bulk_.size() / 2) return;
    size_t out = 0;
    for (size_t i = head_; i < bulk_.size(); ++i) {
        Flushable* f = bulk_[i];
        if (f == nullptr) continue;
        f->bulk_slot_ = out;
        bulk_[out++] = f;
    }
    bulk_.resize(out);
    head_ = 0;
}

} // namespace gripd::loop
