// Broker: one per worker, the publish/subscribe engine across loops (DESIGN.md "The publish path").
//
//  - Channels are sharded (shard = hash(channel) % kShards); shard k is owned by worker k % W. The
//    owner knows which workers have subscribers on a channel and sequences its messages (prev-id,
//    id dedupe), so every subscriber on every worker sees one order.
//  - A publish goes to each channel's owner as one PublishBatch per owner; the owner forwards each
//    Message (immutable, rendered once) to the workers that have subscribers, through their
//    inboxes; each worker delivers to its local subscriptions. A worker with no subscriber on a
//    channel is never woken for it.
//  - Subscribing touches only the local index, except on a channel's first or last local
//    subscription, when the owner is told.
// All methods run on the broker's own worker thread.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/core/counter.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/loop/inbox.hpp"
#include "gripd/pubsub/channel_index.hpp"
#include "gripd/pubsub/delivery_backlog.hpp"
#include "gripd/pubsub/message.hpp"
#include "gripd/pubsub/publish.hpp"
#include "gripd/pubsub/redis_bus.hpp"
#include "gripd/pubsub/shard.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace gripd::loop {
class Worker;
}

namespace gripd::pubsub {

class Subscription;

// Something that holds subscriptions: a held HTTP request or a WebSocket session.
class Subscriber {
  public:
    virtual ~Subscriber() = default;
    // A message on `sub`'s channel, in the channel's order. The subscriber may unsubscribe or end
    // itself from here.
    virtual void on_message(Subscription& sub, const MessageRef& msg) = 0;
    // Whether it holds an active subscription to `channel` (full name; the require-sub filter).
    virtual bool has_subscription(std::string_view channel) const = 0;
    // A message whose `content-filters` differ from `sub`'s content filters. Default: skip it (as
    // Pushpin does for WebSockets); an HTTP hold ends instead.
    virtual void on_content_filter_mismatch(Subscription& /*sub*/, const MessageRef& /*msg*/) {}
};

// One channel subscription of a Subscriber, embedded in it (no allocation to subscribe).
class Subscription : public IndexHook {
  public:
    // The publish format this subscription delivers: its `content-filters` are the ones compared.
    enum class Format : uint8_t { HttpResponse, HttpStream, WsMessage };

    Subscriber* owner = nullptr;
    std::vector<std::string> filters; // as named on subscribing (see pubsub/filters.hpp)
    Format format = Format::HttpStream;
    bool is_active() const { return is_subscribed(); }
    // The full channel name (route prefix applied), kept once by the worker's channel index.
    // Only while is_active().
    const std::string& channel() const { return ChannelIndex<Subscription>::channel_of(*this); }
};

// The items of one publish request that belong to one shard owner.
struct PublishBatch {
    std::vector<MessageRef> messages;
    int origin = -1;    // worker that waits for the ack
    uint64_t token = 0; // 0: nobody waits
};

// Written by the broker's worker only; read by metrics scrapes from any thread.
struct BrokerStats {
    core::Counter messages_published; // items accepted by this worker's control API
    core::Counter messages_delivered; // messages handed to local subscriptions
    core::Counter deliveries_skipped; // content-filter mismatches
    core::Counter channels;           // gauge: channels with local subscribers
    core::Counter publishes_refused;  // publish requests answered 503: the inboxes were congested
    core::Counter deliveries_dropped; // deliveries to a worker whose inbox was at its bound
};

class Broker : private RedisBus::Handler {
  public:
    static constexpr uint32_t kShards = 256;

    Broker(loop::Worker& worker, std::vector<loop::Worker*> workers, const config::Settings& settings);
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;
    ~Broker() override;

    // No-op if `sub` is active already.
    void subscribe(Subscription& sub, std::string_view channel);
    void unsubscribe(Subscription& sub);

    // Renders and routes the items to their shard owners, or with a bus PUBLISHes them there (the
    // items need their JSON text then). `done(ok)` runs on this worker once every owner (or the
    // bus) has taken its part (possibly before this returns, then the token is 0); ok is false
    // when the bus is down. The returned token can cancel `done` (the requester went away).
    uint64_t publish(std::vector<PublishItem>&& items, std::function<void(bool)> done);
    void cancel_publish(uint64_t token);
    // Whether some worker's inbox is far behind (Inbox::is_congested): a new publish request should
    // be refused (503) and counted (note_refused) rather than queued. Any worker's view.
    bool is_congested() const;
    void note_refused() { stats_.publishes_refused.add(); }
    // Forgets every channel's last id (POST /recover) on every worker, and runs each worker's
    // recover hook there (its holds are asked again, as Pushpin updates every session).
    void recover();
    // What this worker does on a recover after its last ids are cleared (set once by the proxy).
    void set_recover_hook(std::function<void()> hook) { recover_hook_ = std::move(hook); }

    // Whether a subscriber that has seen up to `prev_id` on `channel` is behind: the channel's
    // shard owner knows a last id and it is another one. Answered at once (returned) when this
    // worker owns the channel; otherwise nullopt, and `done(behind)` runs on this worker later
    // unless cancel_behind_check(*token) came first. Ask after subscribing, so the owner knows
    // the channel.
    std::optional<bool> check_behind(const std::string& channel, const std::string& prev_id,
                                     std::function<void(bool)> done, uint64_t* token);
    void cancel_behind_check(uint64_t token) { checks_.erase(token); }

    // The bus between instances ([gripd] bus): connects this worker's links. stop_bus() closes
    // them (while the loop runs).
    void start_bus(const BusAddress& address);
    void stop_bus();
    bool has_bus() const { return bus_ != nullptr; }

    // The inbox messages for the broker (`from`: the sending worker), one overload each; the
    // worker's single std::visit (src/server.cpp) calls them.
    void on_inbox(int from, loop::PublishToOwner& m);
    void on_inbox(int from, loop::PublishAck& m);
    void on_inbox(int from, loop::Deliver& m);
    void on_inbox(int from, loop::SubscribeDelta& m);
    void on_inbox(int from, loop::Recover& m);
    void on_inbox(int from, loop::LastIdQuery& m);
    void on_inbox(int from, loop::LastIdReply& m);
    // Periodic work: release sequenced items whose wait expired.
    void tick(uint64_t now_ms);

    size_t local_channels() const { return local_.channel_count(); }
    size_t local_subscriptions() const { return local_.subscription_count(); }
    const BrokerStats& stats() const { return stats_; }

    static uint32_t shard_of_channel(std::string_view channel);
    int owner_of(std::string_view channel) const;

  private:
    struct PendingPublish {
        std::function<void(bool)> done;
        size_t acks_left = 0;
        bool failed = false;
    };

    // RedisBus::Handler: a message from the bus, on the channel's shard owner.
    void on_bus_message(std::string_view channel, std::string_view payload) override;
    std::vector<std::string> bus_channels() const override;
    uint64_t publish_on_bus(std::vector<PublishItem>&& items, std::function<void(bool)> done);

    void send(int worker, loop::InboxBody&& body);
    void owner_accept(const PublishBatch& batch);
    void owner_route(const std::vector<Delivery>& deliveries);
    void owner_subscribe_delta(const std::string& channel, int worker, int32_t delta, bool linger = false);
    void deliver_local(const MessageRef& msg);
    void deliver_to(Subscription& sub, const MessageRef& msg);
    // Delivers queued messages until `budget_` subscriptions were visited this turn; returns true
    // when the backlog is empty. Unless forced, it waits while the worker's bulk output does.
    bool drain_backlog(bool force = false);
    void release_held();
    void hold(uint64_t token);
    static void on_held_timer(uv_timer_t* h);
    void refill_budget(); // a new turn's slice: kSliceVisits visits within kSliceBudgetNs
    void share_backlog(); // tells publishers on other workers how far behind this one is
    static void on_idle(uv_idle_t* h);
    void tell_owner(const std::string& channel, int32_t delta, bool linger = false);
    void on_ack(uint64_t token, bool ok = true);

    loop::Worker& worker_;
    std::vector<loop::Worker*> workers_;
    const config::Settings& settings_;
    ChannelIndex<Subscription> local_; // this worker's subscriptions
    ShardDirectory directory_;         // the channels of the shards this worker owns
    std::unordered_map<uint64_t, PendingPublish> pending_;
    std::unordered_map<uint64_t, std::function<void(bool)>> checks_; // behind checks out
    std::function<void()> recover_hook_;
    uint64_t next_token_ = 1;
    BrokerStats stats_;
    // Bounded loop time: one loop turn visits at most kSliceVisits subscriptions, and visits none
    // while the output of earlier visits still waits in the worker (its writes are budgeted per
    // turn, Worker::kBulkFlushBudgetNs: they are most of a delivery's cost). Past that,
    // messages wait here in order per channel (the one being delivered first, via walk_) and an idle handle
    // goes on with them in the next turns, so a publish to many local subscribers, or of many
    // items, yields to the rest of the loop between slices. Publishers are held back instead of
    // running ahead: while more than kThrottleVisits visits wait on any worker, a publish is
    // answered only once they fell below it (checked on this worker's turns and every kHeldPollMs).
    // Deliveries from other workers cannot wait: past kMaxBacklogVisits the backlog is drained at
    // once (memory wins over loop time then).
    static constexpr size_t kSliceVisits = 2048;
    // ... and spends at most kSliceBudgetNs visiting (checked every kVisitChunk visits): a visit
    // costs from 0.3 us (one small chunk gathered) to several (a filter, a session's bookkeeping).
    static constexpr uint64_t kSliceBudgetNs = 1'000'000;
    static constexpr size_t kVisitChunk = 256;
    static constexpr size_t kThrottleVisits = 4 * kSliceVisits;
    static constexpr size_t kMaxBacklogVisits = 256 * kSliceVisits;
    DeliveryBacklog backlog_;    // round-robin over channels: a flood on one does not hold up another
    size_t backlog_visits_ = 0;  // subscriptions the backlog will visit (counted when queued)
    std::vector<uint64_t> held_; // publish tokens answered once the backlog is short again
    ChannelIndex<Subscription>::Walk walk_; // over backlog_.front()'s channel when active
    uv_idle_t idle_{};
    uv_timer_t held_timer_{}; // polls the other workers' backlogs while held_ is not empty
    static constexpr uint64_t kHeldPollMs = 1;
    size_t budget_ = kSliceVisits;
    uint64_t slice_deadline_ns_ = 0; // uv_hrtime() past which this turn visits no more
    uint64_t budget_turn_ = 0;       // uv_now() when budget_ was refilled
    bool draining_ = false;          // in drain_backlog (a delivery may publish again)
    uint64_t dropped_unwarned_ = 0;  // deliveries dropped since the last warning
    uint64_t dropped_warned_at_ = 0; // uv_now() of the last warning
    std::unique_ptr<RedisBus> bus_;  // last: its pending publishes are answered while it goes
};

} // namespace gripd::pubsub
