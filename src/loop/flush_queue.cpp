#include "gripd/loop/flush_queue.hpp"

#include "gripd/core/assert.hpp"

namespace gripd::loop {

void FlushQueue::add(Flushable& f) {
    GRIPD_ASSERT(f.slot_ == Flushable::kNotQueued);
    f.bulk_ = bulk_mode_;
    if (!bulk_mode_) {
        f.slot_ = interactive_.size();
        interactive_.push_back(&f);
        return;
    }
    f.slot_ = bulk_.size();
    bulk_.push_back(&f);
    ++live_bulk_;
}

bool FlushQueue::run(uint64_t deadline_ns, uint64_t (*now)()) {
    size_t flushed = 0;
    bool spent = false;
    for (;;) {
        // Index loop: a flush may add entries (a failed write closes another connection).
        for (size_t i = 0; i < interactive_.size(); ++i) {
            Flushable* f = interactive_[i];
            if (f == nullptr) continue; // forgotten (destroyed after it was added)
            f->slot_ = Flushable::kNotQueued;
            f->flush();
        }
        interactive_.clear();
        while (!spent && head_ < bulk_.size()) {
            Flushable* f = bulk_[head_++];
            if (f == nullptr) continue; // forgotten
            f->slot_ = Flushable::kNotQueued;
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
    if (f.slot_ == Flushable::kNotQueued) return;
    std::vector<Flushable*>& list = f.bulk_ ? bulk_ : interactive_;
    GRIPD_ASSERT(f.slot_ < list.size() && list[f.slot_] == &f);
    list[f.slot_] = nullptr;
    f.slot_ = Flushable::kNotQueued;
    if (f.bulk_) --live_bulk_;
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
        f->slot_ = out;
        bulk_[out++] = f;
    }
    bulk_.resize(out);
    head_ = 0;
}

} // namespace gripd::loop
