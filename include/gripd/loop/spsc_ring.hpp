// A bounded single-producer single-consumer ring, the building block of a worker's inbox (one ring
// per producer). Lock-free, never allocates after construction, never blocks.
//
// Threading contract: exactly one thread calls try_push(), exactly one (other) thread calls drain()
// and empty(). capacity() and the constructor/destructor are not concurrent with anything.
//
// Wake-up protocol (why try_push reports `was_empty`): the producer wakes the consumer
// (uv_async_send) only when try_push() says the ring was empty before the push, meaning the consumer
// may have seen it empty and gone idle. The consumer drains in batches; drain() keeps going until it
// either observes the ring empty (after a full fence) or reaches `max`. If drain() returns `max` the
// consumer must come back for more (re-arm itself) since no producer will wake it for those items.
// The producer's "store tail, load head" and the consumer's "store head, load tail" are seq_cst, so
// they pair like Dekker's algorithm: either the producer sees the consumer's final head (and reports
// was_empty), or the consumer's final check sees the producer's new tail. No item is ever stranded
// without a wake-up. (seq_cst operations rather than fences: same cost on x86, and TSan models them.)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace gripd::loop {

template <class T> class SpscRing {
  public:
    struct PushResult {
        bool pushed = false;    // false: the ring is full, the item was not moved from
        bool was_empty = false; // true: the consumer may be idle; the producer must wake it
        explicit operator bool() const { return pushed; }
    };

    // `capacity` is rounded up to a power of two (minimum 2).
    explicit SpscRing(size_t capacity) {
        size_t cap = 2;
        while (cap < capacity)
            cap <<= 1;
        mask_ = cap - 1;
        slots_ = static_cast<Slot*>(::operator new (sizeof(Slot) * cap, std::align_val_t{alignof(Slot)}));
    }
    SpscRing(const SpscRing&) = delete;
    SpscRing& operator=(const SpscRing&) = delete;
    ~SpscRing() {
        uint64_t head = head_.load(std::memory_order_relaxed);
        uint64_t tail = tail_.load(std::memory_order_relaxed);
        for (; head != tail; ++head)
            slot(head)->~T();
        ::operator delete (slots_, std::align_val_t{alignof(Slot)});
    }

    size_t capacity() const { return mask_ + 1; }

    // Producer only. Moves `value` into the ring unless it is full.
    PushResult try_push(T&& value) {
        uint64_t tail = tail_.load(std::memory_order_relaxed);
        if (tail - head_cache_ > mask_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (tail - head_cache_ > mask_) return {};
        }
        ::new (static_cast<void*>(slot(tail))) T(std::move(value));
        // Store tail, then load head, both seq_cst (pairs with the store/load in drain()).
        tail_.store(tail + 1, std::memory_order_seq_cst);
        head_cache_ = head_.load(std::memory_order_seq_cst);
        return {true, head_cache_ == tail};
    }

    // Consumer only. Pops up to `max` items in order, calling f(T&&) on each, and returns how many.
    // A return value below `max` means the ring was seen empty afterwards (safe to go idle).
    template <class F> size_t drain(F&& f, size_t max) {
        size_t n = 0;
        uint64_t head = head_.load(std::memory_order_relaxed);
        while (n < max) {
            if (head == tail_cache_) {
                tail_cache_ = tail_.load(std::memory_order_acquire);
                if (head == tail_cache_) {
                    // Publish progress, then look once more before declaring the ring empty.
                    head_.store(head, std::memory_order_seq_cst);
                    tail_cache_ = tail_.load(std::memory_order_seq_cst);
                    if (head == tail_cache_) return n;
                }
            }
            uint64_t end = tail_cache_;
            if (end - head > max - n) end = head + (max - n);
            for (; head != end; ++head, ++n) {
                T* p = slot(head);
                f(std::move(*p));
                p->~T();
            }
            head_.store(head, std::memory_order_release);
        }
        return n;
    }

    // Consumer only: true if nothing is waiting.
    bool empty() const {
        return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_acquire);
    }

  private:
    struct Slot {
        alignas(T) unsigned char bytes[sizeof(T)];
    };
    T* slot(uint64_t i) { return std::launder(reinterpret_cast<T*>(slots_[i & mask_].bytes)); }

    // Consumer-owned line: the read index and the consumer's cached copy of the write index.
    alignas(64) std::atomic<uint64_t> head_{0};
    uint64_t tail_cache_ = 0;
    // Producer-owned line.
    alignas(64) std::atomic<uint64_t> tail_{0};
    uint64_t head_cache_ = 0;
    // Read-only after construction.
    alignas(64) Slot* slots_ = nullptr;
    size_t mask_ = 0;
};

} // namespace gripd::loop
