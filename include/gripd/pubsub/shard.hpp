// ShardDirectory: the channel state a shard owner keeps (DESIGN.md "The publish path"), as pure
// logic with time passed in (milliseconds from a monotonic clock; a smaller `now` than before is
// treated as the previous one).
//
// Per channel it knows which workers have subscribers (counts of the workers' first/last
// subscription reports), the last message id and the messages waiting for a missing prev-id, and it
// decides the one order in which every worker delivers. It follows Pushpin's handler (PROTOCOL.md
// §3.6, pushpin's Sequencer):
//  - id dedupe (id_cache_ttl_ms > 0): a repeated (channel, id) inside the TTL is dropped, whether
//    or not anyone subscribes;
//  - a channel nobody subscribes to has no state: its messages go nowhere and teach nothing;
//  - no-seq messages go out at once and do not touch the last id;
//  - a message whose prev-id differs from the known last id waits (one per prev-id, at most
//    pending_max per channel, extra ones dropped) until its predecessor goes out, or until
//    message_wait_ms passed (expire()), then goes out anyway; each message sent sets the last id
//    (or clears it when it has no id);
//  - when a channel's last subscriber leaves, its last id and waiting messages are forgotten; if
//    that subscriber was a long-poll (response hold), only subscription_linger_ms later (Pushpin's
//    subscription_linger: a long-poller is usually back within it, and its prev-id must still be
//    checked against what was published meanwhile). A lingering channel keeps being sequenced,
//    delivers to nobody, and is revived by a new subscription.
#pragma once

#include "gripd/pubsub/message.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gripd::pubsub {

// Stable shard of a channel: FNV-1a (32-bit) of the name modulo `shard_count` (> 0). The same on
// every machine and run, so bus peers agree.
uint32_t shard_of(std::string_view channel, uint32_t shard_count);

struct ShardConfig {
    uint64_t message_wait_ms = 5000;     // [handler] message_wait
    uint64_t id_cache_ttl_ms = 0;        // [handler] id_cache_ttl (seconds) * 1000; 0 = off
    size_t pending_max = 100;            // waiting messages per channel
    uint64_t subscription_linger_ms = 0; // [handler] subscription_linger (seconds) * 1000
};

// A message to hand to these workers (each delivers to its local subscribers), in order.
struct Delivery {
    MessageRef message;
    std::vector<uint32_t> workers; // ascending
};

enum class SubscriberChange : uint8_t {
    None,
    First, // the channel now has subscribers on this instance (e.g. SUBSCRIBE on a bus)
    Last,  // it has none any more
};

class ShardDirectory {
  public:
    explicit ShardDirectory(const ShardConfig& config = {}) : config_(config) {}
    ShardDirectory(const ShardDirectory&) = delete;
    ShardDirectory& operator=(const ShardDirectory&) = delete;

    // A published message for a channel of this shard: what to deliver now, in order. `fresh`, if
    // given, is set to whether it was taken (false: a repeated id, dropped).
    std::vector<Delivery> on_publish(const MessageRef& msg, uint64_t now, bool* fresh = nullptr);
    // A worker's first (+1) or last (-1) local subscription on `channel`. Deltas below zero for a
    // worker are ignored. `linger`: the last local subscription to leave was a long-poll; if no
    // worker has subscribers left, the channel then lingers (Last is reported when it ends, from
    // end_lingering()).
    SubscriberChange on_subscribe_delta(std::string_view channel, uint32_t worker, int64_t delta,
                                        bool linger = false, uint64_t now = 0);
    // Forgets the lingering channels whose time is over; returns their names (now without
    // subscribers: e.g. UNSUBSCRIBE on a bus).
    std::vector<std::string> end_lingering(uint64_t now);
    bool is_lingering(std::string_view channel) const;
    // Releases messages whose wait is over (with the successors they unblock) and ages the id cache.
    std::vector<Delivery> expire(uint64_t now);
    // When expire() may next have work (a message waits), if ever.
    std::optional<uint64_t> next_expiry() const;
    // Forgets every channel's last id (POST /recover).
    void recover();

    bool has_subscribers(std::string_view channel) const { return find(channel) != nullptr; }
    std::vector<uint32_t> workers_of(std::string_view channel) const;
    const std::string* last_id(std::string_view channel) const;
    size_t pending_count(std::string_view channel) const;
    size_t channel_count() const { return channels_.size(); }
    std::vector<std::string> channel_names() const;
    size_t id_cache_size() const { return id_cache_.size(); }

  private:
    struct WorkerCount {
        uint32_t worker;
        uint32_t count;
    };
    // The workers with subscribers on a channel, ascending, counts > 0. Up to two live inline (most
    // channels are on one worker, or two), so a table of many small channels allocates nothing more.
    class WorkerCounts {
      public:
        const WorkerCount* begin() const { return data(); }
        const WorkerCount* end() const { return data() + size_; }
        size_t size() const { return size_; }
        bool empty() const { return size_ == 0; }
        void add(uint32_t worker, uint32_t n);
        // Takes up to n from worker's count, dropping it at zero. False if worker is not listed.
        bool take(uint32_t worker, uint64_t n);

      private:
        static constexpr uint32_t kInline = 2;
        WorkerCount* data() { return heap_ ? heap_.get() : inline_; }
        const WorkerCount* data() const { return heap_ ? heap_.get() : inline_; }
        WorkerCount inline_[kInline] = {};
        std::unique_ptr<WorkerCount[]> heap_; // when more than kInline
        uint32_t size_ = 0;
        uint32_t capacity_ = kInline;
    };
    struct Waiting {
        MessageRef msg;
        uint64_t serial;
    };
    // Only channels published to with ids need this: allocated on the first id, so a channel
    // table of many quiet channels (one per WebSocket, say) stays small.
    struct Sequence {
        std::optional<std::string> last_id;
        std::unordered_map<std::string, Waiting> waiting_by_prev_id;
    };
    struct Channel {
        WorkerCounts workers; // empty only while lingering
        std::unique_ptr<Sequence> seq;
        uint64_t linger_until = 0; // lingering (no subscribers) until then; 0 = not lingering
    };
    struct WaitRef {
        uint64_t time;
        uint64_t serial;
        std::string channel;
        std::string prev_id;
    };
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    template <class V> using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

    const Channel* find(std::string_view channel) const;
    void send(Channel& ch, const MessageRef& msg, std::vector<Delivery>& out);
    static void set_last_id(Channel& ch, const std::optional<std::string>& id);
    void deliver(const Channel& ch, const MessageRef& msg, std::vector<Delivery>& out);
    bool is_duplicate(const Message& msg, uint64_t now);
    void age_id_cache(uint64_t now);
    uint64_t clamp(uint64_t now);

    ShardConfig config_;
    Map<Channel> channels_;
    std::deque<WaitRef> waiting_by_time_; // oldest first; entries go stale when released early
    std::deque<std::pair<uint64_t, std::string>> lingering_; // (until, channel), oldest first; stale
                                                             // when the channel was revived
    uint64_t next_serial_ = 1;
    Map<uint64_t> id_cache_;                                 // "channel\0id" -> expiry
    std::deque<std::pair<uint64_t, std::string>> id_expiry_; // oldest first
    uint64_t last_now_ = 0;
};

} // namespace gripd::pubsub
