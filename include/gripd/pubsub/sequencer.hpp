// Sequencer: per-channel ordering of published messages on a shard owner (prev-id waits, id dedupe).
// Pure logic; time is passed in (milliseconds).
#pragma once

#include "gripd/pubsub/message.hpp"

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace gripd::pubsub {

struct SequencerConfig {
    uint64_t message_wait_ms = 5000;
    uint64_t id_cache_ttl_ms = 0;
    size_t max_pending_per_channel = 100;
};

class Sequencer {
public:
    explicit Sequencer(SequencerConfig config) : config_(config) {}

    // Messages to deliver now, in order. `tracked`: the channel has subscribers somewhere.
    std::vector<MessageRef> accept(const MessageRef& msg, uint64_t now_ms, bool tracked = true);
    // Waiting messages whose deadline passed (and what follows them).
    std::vector<MessageRef> expire(uint64_t now_ms);
    // Drops a channel's state; returns its waiting messages.
    std::vector<MessageRef> forget(const std::string& channel);
    // Drops every channel's state; returns all waiting messages.
    std::vector<MessageRef> reset();
    // Earliest waiting deadline, 0 if nothing waits.
    uint64_t next_deadline() const;
    // How many messages wait, over all channels.
    size_t pending() const { return waiting_total_; }

private:
    struct Waiting {
        MessageRef msg;
        uint64_t deadline;
    };
    struct ChannelState {
        std::string last_id;
        bool has_last = false;
        std::deque<Waiting> waiting;
        std::unordered_map<std::string, uint64_t> seen; // id -> expiry
    };

    void take(ChannelState& st, const MessageRef& msg, std::vector<MessageRef>& out);
    void drain_followers(ChannelState& st, std::vector<MessageRef>& out);
    bool is_duplicate(ChannelState& st, const MessageRef& msg, uint64_t now_ms);

    SequencerConfig config_;
    std::unordered_map<std::string, ChannelState> channels_;
    size_t waiting_total_ = 0;
};

} // namespace gripd::pubsub
