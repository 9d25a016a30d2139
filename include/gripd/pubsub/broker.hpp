// Broker: one per worker, the publish/subscribe engine across loops (DESIGN.md "The publish path").
//
//  - Channels are sharded (shard = hash(channel) % kShards); shard k is owned by worker k % W. The
//    owner knows which workers have subscribers on a channel and sequences its messages (prev-id,
//    id dedupe), so every subscriber on every worker sees one order.
//  - A publish goes to each channel's owner as one PublishBatch per owner; the owner makes each
//    item a Message (immutable, rendered once) and forwards it to the workers that have
//    subscribers, through their inboxes; each worker delivers to its local subscriptions. A worker
//    with no subscriber on a channel is never woken for it.
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
#include "gripd/pubsub/history.hpp"
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
    // A resume (Broker::resume) was answered: `status` says whether history covered it. The items
    // then come through on_message, before any live item. It may unsubscribe or end itself here.
    virtual void on_resume(Subscription& /*sub*/, ReplayStatus /*status*/) {}
};

// A resume in progress on one subscription (Broker::resume); only while one is.
struct ResumeState {
    uint64_t token = 0;            // the request out; 0 once answered
    std::vector<MessageRef> held;  // live items that came while it was out (at most kMaxHeld)
    bool overflowed = false;       // more came: the answer is reported as a gap
    std::vector<std::string> kept; // after the answer, while older live items may still come: the
                                   // ids of the history as it was, sorted (those are skipped)
    static constexpr size_t kMaxHeld = 4096;
};

// A history request (Broker::resume, Broker::fetch_history) on its way to the channel's owner.
struct ReplayAsk {
    uint64_t token = 0;
    std::string channel;
    std::string after_id;                // empty with `all`
    bool all = false;                    // every kept item (GET /history without `after`)
    bool for_subscriber = false;         // a resume: with the bus, read once the channel is subscribed
    size_t limit = 0;                    // 0 = no limit
    std::optional<HistoryBounds> bounds; // a route's override for the channel
};

// Its answer: the channel's kept items when it was asked, and where the replay starts in them.
struct ReplayAnswer {
    uint64_t token = 0;
    ReplayStatus status = ReplayStatus::Unknown;
    std::vector<MessageRef> kept;
    size_t start = 0; // kept[start..] are the items to replay
    size_t end = 0;   // ... up to here (a limit)
};

// What GET /history answers (control API).
using HistoryFn = std::function<void(ReplayStatus status, std::vector<MessageRef> items)>;

// One channel subscription of a Subscriber, embedded in it (no allocation to subscribe).
class Subscription : public IndexHook {
  public:
    // The publish format this subscription delivers: its `content-filters` are the ones compared.
    enum class Format : uint8_t { HttpResponse, HttpStream, WsMessage };

    Subscriber* owner = nullptr;
    std::vector<std::string> filters; // as named on subscribing (see pubsub/filters.hpp)
    Format format = Format::HttpStream;
    bool is_active() const { return is_subscribed(); }
    std::unique_ptr<ResumeState> resume; // only while a resume is in progress (Broker::resume)
    // The full channel name (route prefix applied), kept once by the worker's channel index.
    // Only while is_active().
    const std::string& channel() const { return ChannelIndex<Subscription>::channel_of(*this); }
};

// The items of one publish request that belong to one shard owner. Sent to another worker, it
// carries the items and the owner makes them messages: a message the owner keeps in history is
// then its own memory, freed by it later (a history_size of publishes later, cold: freeing another
// worker's memory then cost more, under that worker's malloc arena lock).
struct PublishBatch {
    std::vector<PublishItem> items; // made into messages by the owner
    int origin = -1;                // worker that waits for the ack
    uint64_t token = 0;             // 0: nobody waits
};

// Written by the broker's worker only; read by metrics scrapes from any thread.
struct BrokerStats {
    core::Counter messages_published; // items accepted by this worker's control API
    core::Counter messages_delivered; // messages handed to local subscriptions
    core::Counter response_delivered; // ... of them to long-polls (the stats `report`)
    core::Counter deliveries_skipped; // content-filter mismatches
    core::Counter channels;           // gauge: channels with local subscribers
    core::Counter publishes_refused;  // publish requests answered 503: the inboxes were congested
    core::Counter deliveries_dropped; // deliveries to a worker whose inbox was at its bound
    // History (history.hpp), as the shard owner keeps it: gauges, then counts.
    core::Counter history_channels;
    core::Counter history_items;
    core::Counter history_bytes;
    core::Counter history_replays; // resumes answered from history (covered)
    core::Counter history_misses;  // resumes history could not cover (gap or nothing kept)
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

    // Has the active `sub` resume after `after_id`: the channel's owner sends the history items
    // after it; sub's owner gets on_resume, then those items (on_message), then live items, each
    // once and in the channel's order, even when items are published meanwhile. Live items that
    // come before the answer wait for it (ResumeState). `bounds`: the route's history override.
    void resume(Subscription& sub, std::string_view after_id, const std::optional<HistoryBounds>& bounds);
    // GET /history: the channel's kept items after `after_id` (all with `all`), at most `limit`.
    // `done` runs on this worker (maybe before this returns).
    void fetch_history(const std::string& channel, const std::string& after_id, bool all, size_t limit,
                       HistoryFn done);
    // Whether this instance keeps any history (config or a route asks for it).
    bool history_enabled() const { return history_enabled_; }

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
    void on_inbox(int from, loop::ChannelInterest& m);
    // Subscription forwarding (ZeroMQ SUB inputs): every broker tells worker `worker` when a channel
    // it owns gets its first subscriber in this instance or loses its last (after linger); that
    // worker's broker passes it to `handler` (set on that worker only). -1: nobody listens.
    void set_interest_worker(int worker) { interest_worker_ = worker; }
    void set_interest_handler(std::function<void(const std::string& channel, bool on)> handler) {
        interest_handler_ = std::move(handler);
    }
    void on_inbox(int from, loop::ReplayRequest& m);
    void on_inbox(int from, loop::ReplayReply& m);
    // Periodic work: release sequenced items whose wait expired.
    void tick(uint64_t now_ms);
    // In how many ms tick() has work (0: at the next tick); nullopt: none, so an idle worker does
    // not tick at all (a lingering channel or a waiting item is due at a known time).
    std::optional<uint64_t> tick_in(uint64_t now_ms) const;

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
    void on_bus_subscribed(std::string_view channel) override;
    void on_bus_unsubscribed(std::string_view channel) override;
    void on_bus_subscriptions_lost() override;
    // A history request on the owner: answered from this process, or with the bus from Redis.
    void owner_ask(int asker, std::shared_ptr<ReplayAsk> ask);
    void read_bus_history(int asker, const std::shared_ptr<ReplayAsk>& ask);
    void answer_to(int asker, ReplayAnswer&& answer);
    std::vector<std::string> bus_channels() const override;
    uint64_t publish_on_bus(std::vector<PublishItem>&& items, std::function<void(bool)> done);

    void send(int worker, loop::InboxBody&& body);
    void owner_accept(PublishBatch& batch);
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
    // History (owner side, then asker side).
    MessageRef create_owned(PublishItem&& item); // a message of a channel this worker owns
    void owner_keep(const MessageRef& msg, uint64_t now);
    ReplayAnswer owner_replay(const ReplayAsk& ask);
    void sync_history_stats();
    void on_answer(ReplayAnswer&& answer);
    void finish_resume(Subscription& sub, ReplayAnswer&& answer);
    // Whether a live item goes to `sub` now (a resume in progress may hold or skip it).
    bool pass_resume(Subscription& sub, const MessageRef& msg);

    loop::Worker& worker_;
    std::vector<loop::Worker*> workers_;
    const config::Settings& settings_;
    ChannelIndex<Subscription> local_; // this worker's subscriptions
    ShardDirectory directory_;         // the channels of the shards this worker owns
    std::unordered_map<uint64_t, PendingPublish> pending_;
    std::unordered_map<uint64_t, std::function<void(bool)>> checks_; // behind checks out
    HistoryStore history_; // the channels of the shards this worker owns (history.hpp)
    bool history_enabled_ = false;
    std::unordered_map<uint64_t, Subscription*> resumes_;  // resumes out (unsubscribe cancels)
    std::unordered_map<uint64_t, HistoryFn> history_asks_; // GET /history requests out
    Subscription* replaying_ = nullptr;                    // the subscription finish_resume is delivering to
    // With the bus: channels Redis confirmed this worker's SUBSCRIBE for, and the resumes waiting
    // for that (reading the stream before would miss what is published in between).
    std::unordered_map<std::string, std::vector<std::pair<int, std::shared_ptr<ReplayAsk>>>> parked_;
    // (give up at, channel): a resume Redis never lets through is answered "unknown" (the asker
    // signals a gap) after kParkedMaxMs rather than holding its live items forever.
    std::deque<std::pair<uint64_t, std::string>> parked_until_;
    static constexpr uint64_t kParkedMaxMs = 5000;
    void expire_parked(uint64_t now_ms);
    std::unordered_map<std::string, bool> bus_subscribed_;
    std::function<void()> recover_hook_;
    uint64_t next_token_ = 1;
    // [gripd] history_assign_ids, in-process: ids "<ms>-<n>" as Redis stream ids are made, from the
    // wall clock and a sequence, so they increase per owner (hence per channel) and across restarts.
    std::string next_assigned_id();
    uint64_t assign_ms_ = 0;
    uint64_t assign_seq_ = 0;
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
    static constexpr uint64_t kSliceBudgetNs = 500'000;
    static constexpr size_t kVisitChunk = 256;
    static constexpr size_t kThrottleVisits = 4 * kSliceVisits;
    static constexpr size_t kMaxBacklogVisits = 256 * kSliceVisits;
    // Publishes of at most kSmallPublishItems items are held only past this backlog (a flood of
    // small publishes is still held, well before kMaxBacklogVisits).
    static constexpr size_t kSmallPublishItems = 16;
    static constexpr size_t kSmallPublishThrottleVisits = kMaxBacklogVisits / 8;
    // A quiet channel (none of its messages queued here) with few local subscribers is not put
    // behind a flood: its message is delivered at once and written this turn as interactive output,
    // as fair queuing serves sparse flows first. Bounded per turn: past kSparseVisitsPerTurn visits,
    // quiet channels queue like the rest (so many quiet channels cannot make a flood of their own).
    static constexpr size_t kSparseSubscribers = 64;
    static constexpr size_t kSparseVisitsPerTurn = 512;
    size_t sparse_budget_ = kSparseVisitsPerTurn;
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
    // Tells the interest worker (see set_interest_worker) about `channel`.
    void tell_interest(const std::string& channel, bool on);
    int interest_worker_ = -1;
    std::function<void(const std::string&, bool)> interest_handler_;
};

} // namespace gripd::pubsub
