#include "gripd/pubsub/broker.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/filters.hpp"

#include <algorithm>
#include <array>
#include <atomic>

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
                             static_cast<uint64_t>(settings.subscription_linger) * 1000}) {
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

uint32_t cost_of(const loop::InboxBody& body) {
    uint64_t n = sizeof(loop::InboxMessage);
    if (auto* d = std::get_if<loop::Deliver>(&body)) n += message_cost(*d->message);
    if (auto* p = std::get_if<loop::PublishToOwner>(&body))
        for (const MessageRef& m : p->batch->messages)
            n += message_cost(*m);
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

void Broker::subscribe(Subscription& sub, std::string_view channel) {
    if (sub.is_active()) return;
    bool first = local_.subscribe(sub, channel);
    if (first) {
        stats_.channels.add();
        tell_owner(sub.channel(), +1);
    }
}

void Broker::unsubscribe(Subscription& sub) {
    if (!sub.is_active()) return;
    // Pushpin lingers a channel's state only when a long-poll was the last to leave.
    bool linger = sub.format == Subscription::Format::HttpResponse;
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
    if (!filters_match(sub, *msg)) {
        stats_.deliveries_skipped.add();
        sub.owner->on_content_filter_mismatch(sub, msg);
        return;
    }
    stats_.messages_delivered.add();
    sub.owner->on_message(sub, msg);
}

void Broker::deliver_local(const MessageRef& msg) {
    uint64_t turn = uv_now(worker_.uv());
    if (turn != budget_turn_) {
        budget_turn_ = turn;
        refill_budget();
    }
    size_t n = local_.count(msg->channel());
    if (n == 0) return;
    if (backlog_.empty() && n <= std::min(budget_, kVisitChunk) && !worker_.output_backlogged()) {
        budget_ -= n;
        loop::Worker::BulkOutput bulk(worker_);
        // The walk tolerates subscribers unsubscribing (themselves or others) from their callback.
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
    std::vector<std::shared_ptr<PublishBatch>> batches(w);
    for (auto& item : items) {
        int owner = owner_of(item.channel);
        auto& b = batches[static_cast<size_t>(owner)];
        if (!b) b = std::make_shared<PublishBatch>();
        b->messages.push_back(Message::create(std::move(item)));
    }
    stats_.messages_published.add(static_cast<int64_t>(items.size()));
    size_t remote = 0;
    for (size_t i = 0; i < w; ++i)
        if (batches[i] && static_cast<int>(i) != worker_.index()) ++remote;
    // One ack per remote owner, plus one for this worker's own delivery backlog (below).
    uint64_t token = next_token_++;
    pending_[token] = PendingPublish{std::move(done), remote + 1};
    for (size_t i = 0; i < w; ++i) {
        if (!batches[i]) continue;
        batches[i]->origin = worker_.index();
        batches[i]->token = token;
        if (static_cast<int>(i) == worker_.index()) {
            owner_accept(*batches[i]);
            continue;
        }
        send(static_cast<int>(i), loop::PublishToOwner{std::move(batches[i])});
    }
    if (backlog_visits_ > kThrottleVisits || any_backlogged(w, kThrottleVisits))
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
    uint64_t token = next_token_++;
    pending_[token] = PendingPublish{std::move(done), items.size()};
    // In order on one connection: Redis hands every instance each channel's items in this order.
    for (const PublishItem& item : items)
        bus_->publish(item.channel, item.json, [this, token](bool ok) { on_ack(token, ok); });
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
    PublishItemResult r = parse_publish_item(payload, channel);
    if (!r.ok) {
        LOG_WARN("bus", "ignoring a bad item on channel %.*s: %s", static_cast<int>(channel.size()),
                 channel.data(), r.error.c_str());
        return;
    }
    owner_route(directory_.on_publish(Message::create(std::move(r.item)), uv_now(worker_.uv())));
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

void Broker::owner_accept(const PublishBatch& batch) {
    uint64_t now = uv_now(worker_.uv());
    for (const MessageRef& m : batch.messages)
        owner_route(directory_.on_publish(m, now));
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
    if (!bus_) return;
    if (change == SubscriberChange::First) bus_->subscribe(channel);
    if (change == SubscriberChange::Last) bus_->unsubscribe(channel);
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

void Broker::tick(uint64_t now_ms) {
    // Held publishes waiting on another worker's backlog (this one's idle handle covers its own).
    if (!held_.empty() && !any_backlogged(workers_.size(), kThrottleVisits)) release_held();
    auto next = directory_.next_expiry();
    bool due = next && *next <= now_ms;
    if (!due && directory_.id_cache_size() == 0) return;
    owner_route(directory_.expire(now_ms)); // also ages the duplicate-id cache
    for (const auto& channel : directory_.end_lingering(now_ms))
        if (bus_) bus_->unsubscribe(channel);
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

} // namespace gripd::pubsub
