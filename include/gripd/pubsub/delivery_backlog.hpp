// DeliveryBacklog: the messages one worker has yet to deliver to its local subscribers, one FIFO
// per channel, served round-robin, one message at a time. A channel's messages go out in the order
// they were queued (the order its shard owner gave them); a flood on one channel delays another
// channel's message by the walk of one message, not by the whole flood.
#pragma once

#include "gripd/pubsub/message.hpp"

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gripd::pubsub {

class DeliveryBacklog {
  public:
    void push_back(MessageRef msg);
    // The message to deliver now: the oldest of the channel whose turn it is.
    const MessageRef& front() const { return ring_.front()->second.front(); }
    // front() is delivered: its channel goes to the back of the ring if it has more.
    void pop_front();
    bool empty() const { return ring_.empty(); }
    // Whether a message of `channel` waits (or is being delivered: it stays front() until popped).
    bool has_channel(std::string_view channel) const {
        return by_channel_.find(channel) != by_channel_.end();
    }
    size_t size() const { return size_; }
    size_t channels() const { return ring_.size(); }

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using Queues = std::unordered_map<std::string, std::deque<MessageRef>, Hash, std::equal_to<>>;
    Queues by_channel_;                 // only channels with messages
    std::deque<Queues::iterator> ring_; // each of them once, the current one first
    size_t size_ = 0;
};

} // namespace gripd::pubsub
