#include "gripd/loop/inbox.hpp"

namespace gripd::loop {

Inbox::Inbox(int producers) {
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

bool Inbox::push(int producer, InboxMessage&& msg) {
    if (!open_.load(std::memory_order_acquire)) return false;
    auto& pr = *rings_[static_cast<size_t>(producer)];
    msg.from = producer;
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
