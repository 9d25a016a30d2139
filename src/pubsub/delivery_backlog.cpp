#include "gripd/pubsub/delivery_backlog.hpp"

#include "gripd/core/assert.hpp"

#include <utility>

namespace gripd::pubsub {

void DeliveryBacklog::push_back(MessageRef msg) {
    auto it = by_channel_.find(std::string_view(msg->channel()));
    if (it == by_channel_.end()) {
        it = by_channel_.emplace(msg->channel(), std::deque<MessageRef>{}).first;
        ring_.push_back(it); // node-based map: the iterator stays valid until this entry is erased
    }
    it->second.push_back(std::move(msg));
    ++size_;
}

void DeliveryBacklog::pop_front() {
    GRIPD_ASSERT(!ring_.empty());
    auto it = ring_.front();
    ring_.pop_front();
    it->second.pop_front();
    --size_;
    if (it->second.empty())
        by_channel_.erase(it);
    else
        ring_.push_back(it);
}

} // namespace gripd::pubsub
