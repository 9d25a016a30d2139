#include "gripd/pubsub/broker.hpp"
#include "gripd/stats/events.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/page_arena.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/bus_stream.hpp"
#include "gripd/pubsub/filters.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <ctime>

namespace gripd::pubsub {

namespace {
// Each worker's delivery backlog in visits, so that a publisher on any worker holds back while any
// worker is behind (deliveries reach the others through their inboxes, which cannot wait). One
// cache line per worker, written only by its own broker; workers past kBacklogSlots do not count.
constexpr size_t kBacklogSlots = 64;
struct alignas(64) BacklogSlot {
    std::atomic<size_t> visits{0};
};
std::array<BacklogSlot, kBacklogSlots> g_backlogs;

bool any_backlogged(size_t workers, size_t threshold) {
    for (size_t i = 0; i < workers && i < kBacklogSlots; ++i)
        if (g_backlogs[i].visits.load(std::memory_order_relaxed) > threshold) return true;
    return false;
}

// Compares the content filters of the format `sub` delivers (an item without that format is not
// delivered to it anyway).
bool filters_match(const Subscription& sub, const Message& msg) {
    const std::optional<std::vector<std::string>>* wanted = nullptr;
    switch (sub.format) {
    case Subscription::Format::HttpResponse:
        if (auto* r = msg.http_response()) wanted = &r->content_filters;
        break;
    case Subscription::Format::HttpStream:
        if (auto* s = msg.http_stream()) wanted = &s->content_filters;
        break;
    case Subscription::Format::WsMessage:
        if (auto* w = msg.ws_message()) wanted = &w->content_filters;
        break;
    }
    if (!wanted || !*wanted) return true;
    return content_filters_match(sub.filters, **wanted);
}
} // namespace

Broker::Broker(loop::Worker& worker, std::vector<loop::Worker*> workers, const config::Settings& settings)
    : worker_(worker), workers_(std::move(workers)), settings_(settings),
      directory_(ShardConfig{static_cast<uint64_t>(settings.message_wait),
                             static_cast<uint64_t>(settings.id_cache_ttl) * 1000, 100,
                             static_cast<uint64_t>(settings.subscription_linger) * 1000}),
      history_(HistoryBounds{static_cast<uint32_t>(std::max(0, settings.history_size)),
                             static_cast<uint64_t>(std::max<int64_t>(0, settings.history_channel_bytes)),
                             static_cast<uint64_t>(std::max(0, settings.history_ttl)) * 1000},
               static_cast<uint64_t>(std::max<int64_t>(0, settings.history_max_bytes)) /
                   std::max<size_t>(1, workers_.size())),
      history_enabled_(settings.history_size > 0) {
    // Closed with the worker's other embedded handles when its loop ends (Worker::close_all).
    uv_idle_init(worker_.uv(), &idle_);
    idle_.data = this;
    uv_timer_init(worker_.uv(), &held_timer_);
    held_timer_.data = this;
}

Broker::~Broker() {
    local_.abandon(walk_);
}

uint32_t Broker::shard_of_channel(std::string_view channel) {
    return shard_of(channel, kShards);
}

int Broker::owner_of(std::string_view channel) const {
    return static_cast<int>(shard_of_channel(channel) % static_cast<uint32_t>(workers_.size()));
}

namespace {
// What a message keeps alive, for the inbox's byte bound: its rendered parts (shared by every
// worker it goes to, so counted once per queue it waits in: an over-estimate).
uint64_t message_cost(const Message& m) {
    uint64_t n = sizeof(Message) + m.channel().size();
    if (auto* r = m.http_response()) n += r->body.size() + r->head.size();
    if (auto* st = m.http_stream()) n += st->chunk.size();
    if (auto* w = m.ws_message()) n += w->frame.size();
    return n;
}

// The same for an item its owner is yet to render (about the message it becomes).
uint64_t item_cost(const PublishItem& it) {
    uint64_t n = sizeof(Message) + it.channel.size();
    if (it.http_response) n += it.http_response->body.size() * 2;
    if (it.http_stream) n += it.http_stream->content.size();
    if (it.ws_message) n += it.ws_message->content.size();
    return n;
}

uint32_t cost_of(const loop::InboxBody& body) {
    uint64_t n = sizeof(loop::InboxMessage);
    if (auto* d = std::get_if<loop::Deliver>(&body)) n += message_cost(*d->message);
    if (auto* p = std::get_if<loop::PublishToOwner>(&body)) {
        for (const PublishItem& it : p->batch->items)
            n += item_cost(it);
    }
    if (auto* sd = std::get_if<loop::SubscribeDelta>(&body)) n += sd->channel.size();
    return static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
}
} // namespace

void Broker::send(int worker, loop::InboxBody&& body) {
    loop::InboxMessage msg{std::move(body)};
    msg.cost = cost_of(msg.body);
    loop::Worker& to = *workers_[static_cast<size_t>(worker)];
    if (!std::holds_alternative<loop::Deliver>(msg.body)) {
        to.post(worker_.index(), std::move(msg)); // control and admitted publishes: never refused
        return;
    }
    // A delivery to a worker this far behind cannot wait anywhere bounded: it is dropped, counted,
    // and warned about once a second (publishers are refused long before, see is_congested()).
    if (to.post_bounded(worker_.index(), std::move(msg)) != loop::Inbox::Pushed::Full) return;
    stats_.deliveries_dropped.add();
    ++dropped_unwarned_;
    uint64_t now = uv_now(worker_.uv());
    if (dropped_warned_at_ == 0 || now - dropped_warned_at_ >= 1000) {
        dropped_warned_at_ = now;
        LOG_WARN("pubsub", "worker %d is too far behind: dropped %llu deliveries to it", worker,
                 static_cast<unsigned long long>(dropped_unwarned_));
        dropped_unwarned_ = 0;
    }
}

bool Broker::is_congested() const {
    for (const loop::Worker* w : workers_)
        if (w->is_congested()) return true;
    return false;
}

// ---- local subscriptions ----

namespace {
stats::SubMode stats_mode(Subscription::Format f) {
    switch (f) {
    case Subscription::Format::HttpResponse:
        return stats::SubMode::Response;
    case Subscription::Format::HttpStream:
        return stats::SubMode::Stream;
    default:
        return stats::SubMode::Ws;
    }
}

// The `message` stats events of one delivery: subscribers per transport (only while someone
// listens to the stats socket: this walks the channel's subscriptions once more).
template <class Index> void stats_message(Index& index, const Message& msg) {
    int counts[3] = {0, 0, 0};
    index.for_each(msg.channel(), [&](Subscription& sub) { ++counts[static_cast<int>(sub.format)]; });
    const std::string& id = msg.id() ? *msg.id() : std::string();
    for (int t = 0; t < 3; ++t)
        if (counts[t] > 0) stats::message(msg.channel(), id, static_cast<stats::Transport>(t), counts[t]);
}
} // namespace

void Broker::subscribe(Subscription& sub, std::string_view channel) {
    if (sub.is_active()) return;
    stats::subscription(stats_mode(sub.format), channel, true);
    bool first = local_.subscribe(sub, channel);
    if (first) {
        stats_.channels.add();
        tell_owner(sub.channel(), +1);
    }
}

void Broker::unsubscribe(Subscription& sub) {
    if (replaying_ == &sub) replaying_ = nullptr;
    if (sub.resume) {
        if (sub.resume->token) resumes_.erase(sub.resume->token);
        sub.resume.reset();
    }
    if (!sub.is_active()) return;
    // Pushpin lingers a channel's state only when a long-poll was the last to leave.
    bool linger = sub.format == Subscription::Format::HttpResponse;
    stats::subscription(stats_mode(sub.format), sub.channel(), false, linger);
    local_.unsubscribe(sub, [this, linger](const std::string& channel) {
        stats_.channels.sub();
        tell_owner(channel, -1, linger);
    });
}

void Broker::tell_owner(const std::string& channel, int32_t delta, bool linger) {
    int owner = owner_of(channel);
    if (owner == worker_.index()) {
        owner_subscribe_delta(channel, owner, delta, linger);
        return;
    }
    send(owner, loop::SubscribeDelta{channel, delta, linger});
}

void Broker::deliver_to(Subscription& sub, const MessageRef& msg) {
    if (sub.resume && !pass_resume(sub, msg)) return;
    if (!filters_match(sub, *msg)) {
        stats_.deliveries_skipped.add();
        sub.owner->on_content_filter_mismatch(sub, msg);
        return;
    }
    stats_.messages_delivered.add();
    if (sub.format == Subscription::Format::HttpResponse) stats_.response_delivered.add();
    sub.owner->on_message(sub, msg);
}

void Broker::deliver_local(const MessageRef& msg) {
    uint64_t turn = uv_now(worker_.uv());
    if (turn != budget_turn_) {
        budget_turn_ = turn;
        refill_budget();
        sparse_budget_ = kSparseVisitsPerTurn;
    }
    size_t n = local_.count(msg->channel());
    if (n == 0) return;
    if (stats::listening()) stats_message(local_, *msg);
    // The walks below tolerate subscribers unsubscribing (themselves or others) from their callback.
    if (backlog_.empty() && n <= std::min(budget_, kVisitChunk) && !worker_.output_backlogged()) {
        budget_ -= n;
        loop::Worker::BulkOutput bulk(worker_);
        local_.for_each(msg->channel(), [&](Subscription& sub) { deliver_to(sub, msg); });
        return;
    }
    if (n <= kSparseSubscribers && n <= sparse_budget_ && !backlog_.has_channel(msg->channel()) &&
        !draining_) {
        sparse_budget_ -= n; // a quiet channel: now, and written this turn (interactive output)
        local_.for_each(msg->channel(), [&](Subscription& sub) { deliver_to(sub, msg); });
        return;
    }
    // Behind what is queued already, or too many for this turn: in order, in slices.
    backlog_.push_back(msg);
    backlog_visits_ += n;
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) uv_idle_start(&idle_, &Broker::on_idle);
    drain_backlog();
    while (backlog_visits_ > kMaxBacklogVisits && !draining_) {
        refill_budget();
        drain_backlog(true);
    }
    share_backlog();
}

bool Broker::drain_backlog(bool force) {
    if (draining_) return false; // a delivery published again: it is queued, the outer drain goes on
    if (!force && worker_.output_backlogged()) return backlog_.empty(); // the idle handle comes back
    draining_ = true;
    loop::Worker::BulkOutput bulk(worker_);
    while (!backlog_.empty() && budget_ > 0) {
        const MessageRef msg = backlog_.front(); // a reference: keeps it alive while walking
        if (!walk_.is_active() && !local_.begin_walk(msg->channel(), walk_)) {
            backlog_.pop_front(); // nobody here any more
            continue;
        }
        size_t visited = local_.step(walk_, std::min(budget_, kVisitChunk),
                                     [&](Subscription& sub) { deliver_to(sub, msg); });
        budget_ -= visited;
        if (uv_hrtime() >= slice_deadline_ns_) budget_ = 0; // the slice's time is spent
        backlog_visits_ -= std::min(visited, backlog_visits_);
        if (walk_.is_active()) continue; // mid-channel: the next chunk, if the budget allows
        backlog_.pop_front();
    }
    draining_ = false;
    if (backlog_.empty()) backlog_visits_ = 0; // counted at queueing: some left before their turn
    share_backlog();
    return backlog_.empty();
}

void Broker::on_idle(uv_idle_t* h) {
    auto* self = static_cast<Broker*>(h->data);
    // Visit no more subscribers while the last slice's output still waits to be written: the
    // writes, not the visits, are what takes loop time (Worker::kBulkFlushBudgetNs).
    if (self->worker_.output_backlogged()) return;
    self->budget_turn_ = uv_now(self->worker_.uv());
    self->refill_budget();
    if (self->drain_backlog()) uv_idle_stop(h);
    if (!any_backlogged(self->workers_.size(), kThrottleVisits)) self->release_held();
}

void Broker::refill_budget() {
    budget_ = kSliceVisits;
    slice_deadline_ns_ = uv_hrtime() + kSliceBudgetNs;
}

void Broker::share_backlog() {
    auto i = static_cast<size_t>(worker_.index());
    if (i < kBacklogSlots) g_backlogs[i].visits.store(backlog_visits_, std::memory_order_relaxed);
}

void Broker::on_held_timer(uv_timer_t* h) {
    auto* self = static_cast<Broker*>(h->data);
    if (!any_backlogged(self->workers_.size(), kThrottleVisits)) self->release_held();
    if (self->held_.empty()) uv_timer_stop(h);
}

void Broker::hold(uint64_t token) {
    held_.push_back(token);
    // This worker's own backlog is watched by its idle handle; another worker's can only be polled
    // (its count is an atomic): every kHeldPollMs while something is held, not on the 100 ms tick,
    // so a publisher waits about as long as the slowest worker's delivery takes, not a tick more.
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&held_timer_)))
        uv_timer_start(&held_timer_, &Broker::on_held_timer, kHeldPollMs, kHeldPollMs);
}

void Broker::release_held() {
    if (held_.empty()) return;
    std::vector<uint64_t> tokens;
    tokens.swap(held_);
    for (uint64_t t : tokens)
        on_ack(t); // may publish again (and be held again): tokens were moved out first
}

// ---- publishing ----

uint64_t Broker::publish(std::vector<PublishItem>&& items, std::function<void(bool)> done) {
    if (bus_) return publish_on_bus(std::move(items), std::move(done));
    const size_t w = workers_.size();
    const auto self = static_cast<uint32_t>(worker_.index());
    // Owners first, so each batch is sized once: a PublishItem is over 600 bytes, and growing a
    // batch of hundreds by doubling moves each item about twice.
    std::vector<uint32_t> owners(items.size());
    std::vector<uint32_t> counts(w, 0);
    for (size_t k = 0; k < items.size(); ++k)
        ++counts[owners[k] = static_cast<uint32_t>(owner_of(items[k].channel))];
    std::vector<std::shared_ptr<PublishBatch>> batches(w);
    size_t remote = 0;
    for (size_t i = 0; i < w; ++i) {
        if (counts[i] == 0 || i == self) continue;
        batches[i] = std::make_shared<PublishBatch>();
        batches[i]->items.reserve(counts[i]);
        ++remote;
    }
    for (size_t k = 0; k < items.size(); ++k)
        if (owners[k] != self)
            batches[owners[k]]->items.push_back(std::move(items[k])); // the owner renders it
    stats_.messages_published.add(static_cast<int64_t>(items.size()));
    // One ack per remote owner, plus one for this worker's own delivery backlog (below).
    uint64_t token = next_token_++;
    pending_[token] = PendingPublish{std::move(done), remote + 1};
    for (size_t i = 0; i < w; ++i) {
        if (!batches[i]) continue;
        batches[i]->origin = worker_.index();
        batches[i]->token = token;
        send(static_cast<int>(i), loop::PublishToOwner{std::move(batches[i])});
    }
    // The channels this worker owns: each item made and kept in turn, as an owner does with a
    // batch, so a history channel's next message goes into memory its oldest just gave up, still in
    // cache. (Made all first, the pages the drops freed had gone cold behind the rest of the batch.)
    if (counts[self] > 0) {
        uint64_t now = uv_now(worker_.uv());
        for (size_t k = 0; k < items.size(); ++k)
            if (owners[k] == self) owner_keep(create_owned(std::move(items[k])), now);
    }
    // A small publish is held back only when the backlog is far longer: holding exists to keep a
    // heavy publisher from running ahead of its deliveries, not to make a light one (whose items on
    // a quiet channel went out at once) wait for someone else's flood.
    const size_t threshold =
        items.size() <= kSmallPublishItems ? kSmallPublishThrottleVisits : kThrottleVisits;
    if (backlog_visits_ > threshold || any_backlogged(w, threshold))
        hold(token); // answered when the deliveries caught up
    else
        on_ack(token);
    return pending_.count(token) ? token : 0;
}

uint64_t Broker::publish_on_bus(std::vector<PublishItem>&& items, std::function<void(bool)> done) {
    stats_.messages_published.add(static_cast<int64_t>(items.size()));
    if (items.empty()) {
        if (done) done(true);
        return 0;
    }
    using BusItem = RedisBus::BusItem;
    const bool assign_on = settings_.history_assign_ids;
    const bool history_on = settings_.history_size > 0;
    auto how_of = [&](const PublishItem& item) {
        if (!item.id && assign_on) return BusItem::How::KeepAssign;
        return item.id && history_on ? BusItem::How::Keep : BusItem::How::PublishOnly;
    };
    // One call per run of a channel's items (its order kept: each channel's items go out in the
    // order given, on one connection, so Redis hands every instance them in this order): up to
    // kMaxItemsPerCall items, which RedisBus sends as few messages (bus_stream.hpp), through the
    // history script when there is a stream.
    std::vector<std::pair<std::string_view, std::vector<BusItem>>> calls;
    std::unordered_map<std::string_view, size_t> open; // channel -> its run being filled
    for (const PublishItem& item : items) {
        BusItem b{item.json, how_of(item), item.id ? std::string_view(*item.id) : std::string_view()};
        auto it = open.find(item.channel);
        if (it == open.end() || calls[it->second].second.size() >= RedisBus::kMaxItemsPerCall) {
            calls.push_back({item.channel, {}});
            it = open.insert_or_assign(item.channel, calls.size() - 1).first;
        }
        calls[it->second].second.push_back(b);
    }
    uint64_t token = next_token_++;
    pending_[token] = PendingPublish{std::move(done), calls.size()};
    RedisBus::StreamBounds keep;
    if (assign_on || history_on) {
        keep.items =
            history_on ? static_cast<size_t>(settings_.history_size) : 1; // else: the stream only makes ids
        keep.bytes =
            history_on ? static_cast<size_t>(std::max<int64_t>(0, settings_.history_channel_bytes)) : 1;
        keep.ids_only = !history_on;
    }
    for (auto& [channel, run] : calls)
        bus_->publish(
            std::string(channel), run, [this, token](bool ok) { on_ack(token, ok); }, keep);
    return pending_.count(token) ? token : 0;
}

void Broker::start_bus(const BusAddress& address) {
    RedisBus::Handler& handler = *this; // a private base: convert here, not in make_unique
    bus_ = std::make_unique<RedisBus>(worker_, address, handler);
    bus_->start();
}

void Broker::stop_bus() {
    if (bus_) bus_->stop();
}

void Broker::on_bus_message(std::string_view channel, std::string_view payload) {
    // A run of items (bus_stream.hpp); items published without an id under history_assign_ids carry
    // the id Redis assigned in the script that kept them (RedisBus::publish).
    uint64_t now = uv_now(worker_.uv());
    bool ok =
        bus_stream::for_each_message_item(payload, [&](std::string_view item, std::string_view assigned) {
            PublishItemResult r = parse_publish_item(item, channel);
            if (!r.ok) {
                LOG_WARN("bus", "ignoring a bad item on channel %.*s: %s", static_cast<int>(channel.size()),
                         channel.data(), r.error.c_str());
                return;
            }
            MessageRef msg = create_owned(std::move(r.item));
            if (!assigned.empty() && !msg->id()) msg = Message::with_assigned_id(msg, std::string(assigned));
            owner_keep(msg, now);
        });
    if (!ok)
        LOG_WARN("bus", "ignoring the rest of a malformed message on channel %.*s",
                 static_cast<int>(channel.size()), channel.data());
}

std::vector<std::string> Broker::bus_channels() const {
    return directory_.channel_names();
}

void Broker::cancel_publish(uint64_t token) {
    auto it = pending_.find(token);
    if (it != pending_.end()) it->second.done = nullptr; // keep counting acks, call nothing
}

void Broker::on_ack(uint64_t token, bool ok) {
    auto it = pending_.find(token);
    if (it == pending_.end()) return;
    if (!ok) it->second.failed = true;
    if (--it->second.acks_left > 0) return;
    auto done = std::move(it->second.done);
    bool all_ok = !it->second.failed;
    pending_.erase(it);
    if (done) done(all_ok);
}

// ---- shard owner side ----

void Broker::owner_accept(PublishBatch& batch) {
    uint64_t now = uv_now(worker_.uv());
    for (PublishItem& item : batch.items)
        owner_keep(create_owned(std::move(item)), now);
    if (batch.token != 0 && batch.origin != worker_.index()) {
        send(batch.origin, loop::PublishAck{batch.token});
    }
}

void Broker::owner_route(const std::vector<Delivery>& deliveries) {
    for (const Delivery& d : deliveries) {
        for (uint32_t w : d.workers) {
            if (static_cast<int>(w) == worker_.index()) {
                deliver_local(d.message);
                continue;
            }
            send(static_cast<int>(w), loop::Deliver{d.message});
        }
    }
}

void Broker::owner_subscribe_delta(const std::string& channel, int worker, int32_t delta, bool linger) {
    SubscriberChange change = directory_.on_subscribe_delta(channel, static_cast<uint32_t>(worker), delta,
                                                            linger, uv_now(worker_.uv()));
    if (change != SubscriberChange::None) tell_interest(channel, change == SubscriberChange::First);
    if (!bus_) return;
    if (change == SubscriberChange::First) bus_->subscribe(channel);
    if (change == SubscriberChange::Last) {
        bus_->unsubscribe(channel);
        bus_subscribed_.erase(channel);
    }
}

void Broker::tell_interest(const std::string& channel, bool on) {
    if (interest_worker_ < 0) return;
    if (interest_worker_ == worker_.index()) {
        if (interest_handler_) interest_handler_(channel, on);
        return;
    }
    send(interest_worker_, loop::ChannelInterest{channel, on});
}

void Broker::on_inbox(int /*from*/, loop::ChannelInterest& m) {
    if (interest_handler_) interest_handler_(m.channel, m.on);
}

void Broker::recover() {
    for (size_t w = 0; w < workers_.size(); ++w) {
        if (static_cast<int>(w) == worker_.index()) {
            directory_.recover();
            if (recover_hook_) recover_hook_();
            continue;
        }
        send(static_cast<int>(w), loop::Recover{});
    }
}

std::optional<bool> Broker::check_behind(const std::string& channel, const std::string& prev_id,
                                         std::function<void(bool)> done, uint64_t* token) {
    int owner = owner_of(channel);
    if (owner == worker_.index()) {
        const std::string* last = directory_.last_id(channel);
        return last && *last != prev_id;
    }
    uint64_t t = next_token_++;
    checks_.emplace(t, std::move(done));
    *token = t;
    send(owner, loop::LastIdQuery{std::make_unique<const loop::LastIdQuery::Fields>(
                    loop::LastIdQuery::Fields{t, channel, prev_id})});
    return std::nullopt;
}

std::optional<uint64_t> Broker::tick_in(uint64_t now_ms) const {
    if (!held_.empty() || !parked_until_.empty() || history_.item_count() > 0) return 0;
    std::optional<uint64_t> next = directory_.next_expiry();
    if (!next) return std::nullopt;
    return *next > now_ms ? *next - now_ms : 0;
}

void Broker::tick(uint64_t now_ms) {
    // Held publishes waiting on another worker's backlog (this one's idle handle covers its own).
    if (!held_.empty() && !any_backlogged(workers_.size(), kThrottleVisits)) release_held();
    auto next = directory_.next_expiry();
    bool due = next && *next <= now_ms;
    if (!parked_until_.empty()) expire_parked(now_ms);
    if (history_.item_count() > 0) { // items past history_ttl (a few channels a tick)
        history_.expire(now_ms);
        sync_history_stats();
    }
    if (!due && directory_.id_cache_size() == 0) return;
    owner_route(directory_.expire(now_ms)); // also ages the duplicate-id cache
    for (const auto& channel : directory_.end_lingering(now_ms)) {
        tell_interest(channel, false);
        if (bus_) bus_->unsubscribe(channel);
    }
}

// ---- inbox messages ----

void Broker::on_inbox(int /*from*/, loop::PublishToOwner& m) {
    owner_accept(*m.batch);
}

void Broker::on_inbox(int /*from*/, loop::PublishAck& m) {
    on_ack(m.token);
}

void Broker::on_inbox(int /*from*/, loop::Deliver& m) {
    deliver_local(m.message);
}

void Broker::on_inbox(int from, loop::SubscribeDelta& m) {
    owner_subscribe_delta(m.channel, from, m.delta, m.linger);
}

void Broker::on_inbox(int /*from*/, loop::Recover& /*m*/) {
    directory_.recover();
    if (recover_hook_) recover_hook_();
}

void Broker::on_inbox(int from, loop::LastIdQuery& m) {
    // The asker's subscribe delta came through the same ring first, so the channel is known.
    const loop::LastIdQuery::Fields& q = *m.fields;
    const std::string* last = directory_.last_id(q.channel);
    send(from, loop::LastIdReply{q.token, last && *last != q.prev_id});
}

void Broker::on_inbox(int /*from*/, loop::LastIdReply& m) {
    auto it = checks_.find(m.token);
    if (it == checks_.end()) return; // the asker went away
    auto done = std::move(it->second);
    checks_.erase(it);
    done(m.behind);
}

// ---- history (history.hpp) ----
//
// Why a resume sends each item once and in order: the asker subscribes first (its SubscribeDelta,
// if any, goes to the owner ahead of the ReplayRequest on the same ring), so from the moment the
// owner reads the request it routes every new item to the asker too, and those items follow the
// ReplayReply on the owner's ring to the asker. Every item the owner routed to the asker before
// the request reaches the asker before the reply, or sits in the asker's delivery backlog: the
// former are held (ResumeState::held) and sent after the replay unless history had them; the
// latter are skipped while they are in the history the answer carried (the first live item with
// an id that is not in it ends that, as later ones were routed after the request). The owner keeps
// an item in history when it takes it, before routing it, so "in history" covers "routed before".

std::string Broker::next_assigned_id() {
    auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
    if (ms > assign_ms_) {
        assign_ms_ = ms;
        assign_seq_ = 0;
    } else {
        ++assign_seq_; // same millisecond, or the clock went back: keep increasing
    }
    return std::to_string(assign_ms_) + "-" + std::to_string(assign_seq_);
}

MessageRef Broker::create_owned(PublishItem&& item) {
    // The owner gives an id-less item its id before anything sees it (history, last id, delivery),
    // and before it is rendered, so it is rendered once. With the bus, ids come from the channel's
    // Redis stream instead (on_bus_message).
    if (settings_.history_assign_ids && !bus_ && !item.id) Message::assign_id(item, next_assigned_id());
    // A busy history channel's message is made in the channel's arena (HistoryStore::arena_for).
    core::ArenaScope scope(history_.arena_for(item.channel));
    return Message::create(std::move(item));
}

void Broker::owner_keep(const MessageRef& msg, uint64_t now) {
    // (An assigned id was given when the message was made: create_owned.)
    bool fresh = false;
    std::vector<Delivery> out = directory_.on_publish(msg, now, &fresh);
    // With the bus and [gripd] history_size, history is the channel's Redis Stream instead.
    bool in_redis = bus_ && settings_.history_size > 0;
    if (fresh && !in_redis && history_.is_active()) {
        // Every message kept here was made on this worker (create_owned), so history frees its own
        // memory later (see Message::made_on_this_thread).
        history_.on_publish(msg, now);
        sync_history_stats(); // also when it was not kept (an item too big empties its channel)
    }
    owner_route(out);
}

void Broker::sync_history_stats() {
    auto set = [](core::Counter& c, int64_t v) { c.add(v - c.get()); };
    set(stats_.history_channels, static_cast<int64_t>(history_.channel_count()));
    set(stats_.history_items, static_cast<int64_t>(history_.item_count()));
    set(stats_.history_bytes, static_cast<int64_t>(history_.byte_count()));
}

ReplayAnswer Broker::owner_replay(const ReplayAsk& ask) {
    uint64_t now = uv_now(worker_.uv());
    if (ask.bounds) {
        history_.set_bounds(ask.channel, *ask.bounds);
        history_enabled_ = true;
    }
    ReplayAnswer a;
    a.token = ask.token;
    a.kept = history_.items(ask.channel, now);
    sync_history_stats();
    a.end = a.kept.size();
    if (a.kept.empty()) {
        a.status = ReplayStatus::Unknown;
    } else if (ask.all) {
        a.status = ReplayStatus::Covered;
    } else {
        a.status = ReplayStatus::Gap;
        for (size_t i = a.kept.size(); i-- > 0;)
            if (*a.kept[i]->id() == ask.after_id) {
                a.start = i + 1;
                a.status = ReplayStatus::Covered;
                break;
            }
    }
    if (ask.limit > 0 && a.end - a.start > ask.limit) a.end = a.start + ask.limit;
    return a;
}

void Broker::resume(Subscription& sub, std::string_view after_id,
                    const std::optional<HistoryBounds>& bounds) {
    if (!sub.is_active()) return;
    if (sub.resume && sub.resume->token) resumes_.erase(sub.resume->token);
    sub.resume = std::make_unique<ResumeState>();
    auto ask = std::make_shared<ReplayAsk>();
    ask->token = next_token_++;
    ask->channel = sub.channel();
    ask->after_id = std::string(after_id);
    ask->bounds = bounds;
    ask->for_subscriber = true;
    sub.resume->token = ask->token;
    resumes_.emplace(ask->token, &sub);
    int owner = owner_of(ask->channel);
    if (owner == worker_.index()) {
        owner_ask(owner, std::move(ask)); // may answer at once
        return;
    }
    send(owner, loop::ReplayRequest{std::move(ask)});
}

void Broker::fetch_history(const std::string& channel, const std::string& after_id, bool all, size_t limit,
                           HistoryFn done) {
    auto ask = std::make_shared<ReplayAsk>();
    ask->token = next_token_++;
    ask->channel = channel;
    ask->after_id = after_id;
    ask->all = all;
    ask->limit = limit;
    history_asks_.emplace(ask->token, std::move(done));
    int owner = owner_of(channel);
    if (owner == worker_.index()) {
        owner_ask(owner, std::move(ask));
        return;
    }
    send(owner, loop::ReplayRequest{std::move(ask)});
}

void Broker::answer_to(int asker, ReplayAnswer&& a) {
    if (asker == worker_.index()) {
        on_answer(std::move(a));
        return;
    }
    send(asker, loop::ReplayReply{std::make_shared<ReplayAnswer>(std::move(a))});
}

void Broker::owner_ask(int asker, std::shared_ptr<ReplayAsk> ask) {
    if (!bus_ || settings_.history_size <= 0) {
        answer_to(asker, owner_replay(*ask));
        return;
    }
    // With the bus, history is the channel's Redis Stream (README "History and resume").
    if (ask->for_subscriber && (!bus_->is_connected() || !bus_subscribed_.count(ask->channel))) {
        // Its SUBSCRIBE (sent when the asker's subscription reached this owner, or when the bus
        // connects: an instance takes clients while its bus is still coming up) is not confirmed
        // yet: reading the stream now could miss an item published before the live ones arrive.
        parked_until_.emplace_back(uv_now(worker_.uv()) + kParkedMaxMs, ask->channel);
        parked_[ask->channel].emplace_back(asker, std::move(ask));
        return;
    }
    if (!bus_->is_connected()) {
        ReplayAnswer a;
        a.token = ask->token;
        a.status = ReplayStatus::Unavailable;
        answer_to(asker, std::move(a));
        return;
    }
    read_bus_history(asker, ask);
}

void Broker::expire_parked(uint64_t now_ms) {
    while (!parked_until_.empty() && parked_until_.front().first <= now_ms) {
        std::string channel = std::move(parked_until_.front().second);
        parked_until_.pop_front();
        auto it = parked_.find(channel);
        if (it == parked_.end()) continue; // let through already
        auto asks = std::move(it->second);
        parked_.erase(it);
        LOG_DEBUG("bus", "no SUBSCRIBE confirmation for %s: %zu resumes answered without history",
                  channel.c_str(), asks.size());
        for (auto& [asker, ask] : asks) {
            ReplayAnswer a;
            a.token = ask->token;
            answer_to(asker, std::move(a));
        }
    }
}

void Broker::on_bus_unsubscribed(std::string_view channel) {
    bus_subscribed_.erase(std::string(channel));
}

void Broker::on_bus_subscriptions_lost() {
    bus_subscribed_.clear();
}

void Broker::on_bus_subscribed(std::string_view channel) {
    std::string name(channel);
    bus_subscribed_[name] = true;
    auto it = parked_.find(name);
    if (it == parked_.end()) return;
    auto asks = std::move(it->second);
    parked_.erase(it);
    for (auto& [asker, ask] : asks)
        read_bus_history(asker, ask);
}

void Broker::read_bus_history(int asker, const std::shared_ptr<ReplayAsk>& ask) {
    size_t count = static_cast<size_t>(settings_.history_size);
    if (ask->bounds && ask->bounds->items < count) count = ask->bounds->items;
    uint64_t ttl_ms =
        ask->bounds ? ask->bounds->ttl_ms : static_cast<uint64_t>(std::max(0, settings_.history_ttl)) * 1000;
    std::string channel = ask->channel;
    bus_->read_history(
        channel, count,
        [this, asker, ask, ttl_ms](bool ok, const std::vector<RedisBus::StreamEntry>& entries) {
            ReplayAnswer a;
            a.token = ask->token;
            if (ok) {
                // Stream ids are Redis's wall-clock milliseconds.
                uint64_t now_ms = static_cast<uint64_t>(std::time(nullptr)) * 1000;
                // A marker stands for an item too big to keep (RedisBus::publish): a resume from
                // before it has a gap, one from its id is covered by what follows it.
                bool found = false, lost = false;
                for (auto& e : entries) {
                    if (ttl_ms > 0 && e.time_ms + ttl_ms <= now_ms) continue; // aged out
                    if (e.marker) {
                        if ((e.item_id.empty() ? e.stream_id : e.item_id) == ask->after_id) {
                            found = true;
                            a.start = a.kept.size();
                        } else if (found) {
                            lost = true;
                        }
                        continue;
                    }
                    PublishItemResult r = parse_publish_item(e.payload, ask->channel);
                    if (!r.ok) continue;
                    bool assigned = !r.item.id; // only kept without one when Redis assigned it
                    MessageRef m = Message::create(std::move(r.item));
                    if (assigned) m = Message::with_assigned_id(m, e.stream_id); // as delivered live
                    if (!found && *m->id() == ask->after_id) {
                        found = true;
                        a.start = a.kept.size() + 1;
                    }
                    a.kept.push_back(std::move(m));
                }
                a.end = a.kept.size();
                if (ask->all)
                    a.status = a.kept.empty() ? ReplayStatus::Unknown : ReplayStatus::Covered;
                else if (found)
                    a.status = lost ? ReplayStatus::Gap : ReplayStatus::Covered;
                else
                    a.status = a.kept.empty() ? ReplayStatus::Unknown : ReplayStatus::Gap;
                if (!found) a.start = 0;
                if (ask->limit > 0 && a.end - a.start > ask->limit) a.end = a.start + ask->limit;
                answer_to(asker, std::move(a));
                return;
            }
            a.end = a.kept.size();
            a.status = ReplayStatus::Unavailable;
            if (ask->limit > 0 && a.end - a.start > ask->limit) a.end = a.start + ask->limit;
            answer_to(asker, std::move(a));
        });
}

bool Broker::pass_resume(Subscription& sub, const MessageRef& msg) {
    ResumeState& r = *sub.resume;
    if (r.token) { // the answer is still out: hold the item until it comes
        if (r.held.size() < ResumeState::kMaxHeld)
            r.held.push_back(msg);
        else
            r.overflowed = true;
        return false;
    }
    if (!msg->id()) return true;
    if (std::binary_search(r.kept.begin(), r.kept.end(), *msg->id())) return false; // replayed already
    sub.resume.reset(); // routed after the request: so is everything after it
    return true;
}

void Broker::finish_resume(Subscription& sub, ReplayAnswer&& a) {
    std::unique_ptr<ResumeState> r = std::move(sub.resume);
    if (!r) r = std::make_unique<ResumeState>();
    r->token = 0;
    ReplayStatus status = r->overflowed && a.status == ReplayStatus::Covered ? ReplayStatus::Gap : a.status;
    if (status == ReplayStatus::Covered)
        stats_.history_replays.add();
    else
        stats_.history_misses.add();
    std::vector<MessageRef> held = std::move(r->held);
    // Live items routed before the request may still wait in this worker's backlog, and with the
    // bus live items reach the owner on another connection than the stream read: they are
    // skipped while their id is in the history the answer carried.
    std::vector<std::string> had;
    had.reserve(a.kept.size());
    for (const auto& m : a.kept)
        had.push_back(*m->id());
    std::sort(had.begin(), had.end());
    if ((bus_ || !backlog_.empty()) && !had.empty()) {
        r->kept = had;
        r->held.clear();
        r->overflowed = false;
    } else {
        r.reset();
    }
    replaying_ = &sub;
    sub.owner->on_resume(sub, status);
    for (size_t i = a.start; i < a.end && replaying_ == &sub; ++i)
        deliver_to(sub, a.kept[i]);
    // Held live items: those history had were sent above (or were before the resume point).
    for (const auto& m : held) {
        if (replaying_ != &sub) break;
        if (m->id() && std::binary_search(had.begin(), had.end(), *m->id())) continue;
        deliver_to(sub, m);
    }
    if (replaying_ == &sub) {
        replaying_ = nullptr;
        if (r && sub.is_active()) sub.resume = std::move(r);
    }
}

void Broker::on_inbox(int from, loop::ReplayRequest& m) {
    owner_ask(from, std::move(m.ask));
}

void Broker::on_inbox(int /*from*/, loop::ReplayReply& m) {
    on_answer(std::move(*m.answer));
}

void Broker::on_answer(ReplayAnswer&& a) {
    if (auto it = history_asks_.find(a.token); it != history_asks_.end()) {
        HistoryFn done = std::move(it->second);
        history_asks_.erase(it);
        done(a.status, std::vector<MessageRef>(a.kept.begin() + static_cast<std::ptrdiff_t>(a.start),
                                               a.kept.begin() + static_cast<std::ptrdiff_t>(a.end)));
        return;
    }
    auto it = resumes_.find(a.token);
    if (it == resumes_.end()) return; // the subscriber went away
    Subscription& sub = *it->second;
    resumes_.erase(it);
    finish_resume(sub, std::move(a));
}

} // namespace gripd::pubsub
