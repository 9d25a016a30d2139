#include "gripd/loop/inbox.hpp"

namespace gripd::loop {

Inbox::Inbox(int producers, Limits limits) : limits_(limits) {
    for (int i = 0; i < producers; ++i)
        rings_.push_back(std::make_unique<ProducerRing>());
}

void Inbox::bind(uv_loop_t* loop, void* owner, uv_async_cb on_wake) {
    uv_async_init(loop, &async_, on_wake);
    async_.data = owner;
    open_.store(true, std::memory_order_release);
}

void Inbox::close() {
    open_.store(false, std::memory_order_release);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

Inbox::Level Inbox::level(int producer) const {
    const auto& pr = *rings_[static_cast<size_t>(producer)];
    // Drained first: pushed only grows and drained never passes it, so the differences are >= 0
    // (clamped anyway: the two loads are not one snapshot).
    uint64_t di = pr.drained_items.load(std::memory_order_acquire);
    uint64_t db = pr.drained_bytes.load(std::memory_order_acquire);
    uint64_t pi = pr.pushed_items.load(std::memory_order_acquire);
    uint64_t pb = pr.pushed_bytes.load(std::memory_order_acquire);
    return Level{pi > di ? pi - di : 0, pb > db ? pb - db : 0};
}

bool Inbox::is_congested() const {
    for (size_t p = 0; p < rings_.size(); ++p) {
        Level l = level(static_cast<int>(p));
        if (l.items > limits_.items / 4 || l.bytes > limits_.bytes / 4) return true;
    }
    return false;
}

bool Inbox::push(int producer, InboxMessage&& msg) {
    if (!open_.load(std::memory_order_acquire)) return false;
    return enqueue(producer, std::move(msg));
}

Inbox::Pushed Inbox::push_bounded(int producer, InboxMessage&& msg) {
    if (!open_.load(std::memory_order_acquire)) return Pushed::Closed;
    Level l = level(producer); // exact or an over-estimate: only this thread adds to it
    if (l.items + 1 > limits_.items || l.bytes + msg.cost > limits_.bytes) return Pushed::Full;
    enqueue(producer, std::move(msg));
    return Pushed::Queued;
}

bool Inbox::enqueue(int producer, InboxMessage&& msg) {
    auto& pr = *rings_[static_cast<size_t>(producer)];
    msg.from = producer;
    // Counted before the consumer can see it, so drained never passes pushed.
    pr.pushed_items.store(pr.pushed_items.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    pr.pushed_bytes.store(pr.pushed_bytes.load(std::memory_order_relaxed) + msg.cost,
                          std::memory_order_release);
    if (!pr.overflow.empty() && !flush(producer)) {
        pr.overflow.push_back(std::move(msg));
        return true;
    }
    auto r = pr.ring.try_push(std::move(msg));
    if (!r) {
        // A full ring leaves `msg` untouched (SpscRing::try_push moves only when it pushes).
        pr.overflow.push_back(std::move(msg)); // NOLINT(bugprone-use-after-move)
        return true;
    }
    // Wake only on empty -> non-empty: a consumer that saw items keeps draining until it sees none.
    if (r.was_empty) uv_async_send(&async_);
    return true;
}

bool Inbox::flush(int producer) {
    auto& pr = *rings_[static_cast<size_t>(producer)];
    bool wake = false;
    while (!pr.overflow.empty()) {
        auto r = pr.ring.try_push(std::move(pr.overflow.front()));
        if (!r) break;
        wake |= r.was_empty;
        pr.overflow.pop_front();
    }
    if (wake && open_.load(std::memory_order_acquire)) uv_async_send(&async_);
    return pr.overflow.empty();
}

} // namespace gripd::loop
