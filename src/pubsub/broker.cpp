#include "gripd/pubsub/broker.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"

namespace gripd::pubsub {

using loop::InboxMessage;

namespace {
// FNV-1a: stable across processes and runs, cheap for short channel names.
uint32_t fnv1a(std::string_view s) {
    uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

bool filters_match(const Subscription& sub, const Message& msg) {
    const std::optional<std::vector<std::string>>* wanted = nullptr;
    if (auto* s = msg.http_stream()) wanted = &s->content_filters;
    else if (auto* r = msg.http_response()) wanted = &r->content_filters;
    else if (auto* w = msg.ws_message()) wanted = &w->content_filters;
    if (!wanted || !*wanted) return true;
    return **wanted == sub.filters;
}
} // namespace

Broker::Broker(loop::Worker& worker, std::vector<loop::Worker*> workers, const config::Settings& settings)
    : worker_(worker), workers_(std::move(workers)), settings_(settings),
      sequencer_(SequencerConfig{static_cast<uint64_t>(settings.message_wait),
                                 static_cast<uint64_t>(settings.id_cache_ttl) * 1000}) {}

Broker::~Broker() = default;

uint32_t Broker::shard_of_channel(std::string_view channel) { return fnv1a(channel) % kShards; }

int Broker::owner_of(std::string_view channel) const {
    return static_cast<int>(shard_of_channel(channel) % static_cast<uint32_t>(workers_.size()));
}

void Broker::send(int worker, InboxMessage&& msg) { workers_[static_cast<size_t>(worker)]->post(worker_.index(), std::move(msg)); }

// ---- local subscriptions ----

void Broker::subscribe(Subscription& sub) {
    if (sub.is_active()) return;
    auto [it, inserted] = local_.try_emplace(sub.channel);
    LocalChannel& lc = it->second;
    lc.subs.push_back(sub);
    ++local_subscriptions_;
    if (inserted) stats_.channels.add();
    if (++lc.count == 1 && inserted) tell_owner(sub.channel, +1);
}

void Broker::unsubscribe(Subscription& sub) {
    if (!sub.is_active()) return;
    sub.link.unlink();
    --local_subscriptions_;
    auto it = local_.find(sub.channel);
    if (it == local_.end()) return;
    if (--it->second.count == 0 && !it->second.delivering) drop_local(it);
}

void Broker::drop_local(std::unordered_map<std::string, LocalChannel>::iterator it) {
    std::string channel = it->first;
    local_.erase(it);
    stats_.channels.sub();
    tell_owner(channel, -1);
}

void Broker::tell_owner(const std::string& channel, int64_t delta) {
    int owner = owner_of(channel);
    if (owner == worker_.index()) {
        owner_subscribe_delta(channel, owner, delta);
        return;
    }
    InboxMessage m;
    m.kind = InboxMessage::Kind::Subscribe;
    m.text = channel;
    m.value = delta;
    send(owner, std::move(m));
}

void Broker::deliver_local(const MessageRef& msg) {
    auto it = local_.find(msg->channel());
    if (it == local_.end()) return;
    // A subscriber may unsubscribe (or close) while we walk the list: for_each tolerates unlinking
    // the current element, and the channel entry is kept until the walk is over. Subscriptions added
    // meanwhile go to the back and see this message too (they subscribed before it arrived here).
    LocalChannel& lc = it->second;
    lc.delivering = true;
    lc.subs.for_each([&](Subscription& sub) {
        if (!filters_match(sub, *msg)) {
            stats_.deliveries_skipped.add();
            return;
        }
        stats_.messages_delivered.add();
        sub.owner->on_message(sub, msg);
    });
    lc.delivering = false;
    if (lc.count == 0) drop_local(it);
}

// ---- publishing ----

uint64_t Broker::publish(std::vector<PublishItem>&& items, std::function<void()> done) {
    const size_t w = workers_.size();
    std::vector<std::shared_ptr<PublishBatch>> batches(w);
    for (auto& item : items) {
        int owner = owner_of(item.channel);
        auto& b = batches[static_cast<size_t>(owner)];
        if (!b) b = std::make_shared<PublishBatch>();
        b->messages.push_back(Message::create(std::move(item)));
    }
    stats_.messages_published.add(static_cast<int64_t>(items.size()));
    uint64_t token = 0;
    size_t remote = 0;
    for (size_t i = 0; i < w; ++i)
        if (batches[i] && static_cast<int>(i) != worker_.index()) ++remote;
    if (remote > 0) {
        token = next_token_++;
        pending_[token] = PendingPublish{std::move(done), remote};
    }
    for (size_t i = 0; i < w; ++i) {
        if (!batches[i]) continue;
        batches[i]->origin = worker_.index();
        batches[i]->token = token;
        if (static_cast<int>(i) == worker_.index()) {
            owner_accept(*batches[i]);
            continue;
        }
        InboxMessage m;
        m.kind = InboxMessage::Kind::Publish;
        m.payload = std::move(batches[i]);
        send(static_cast<int>(i), std::move(m));
    }
    if (remote == 0 && done) done();
    return token;
}

void Broker::cancel_publish(uint64_t token) {
    auto it = pending_.find(token);
    if (it != pending_.end()) it->second.done = nullptr; // keep counting acks, call nothing
}

void Broker::on_ack(uint64_t token) {
    auto it = pending_.find(token);
    if (it == pending_.end()) return;
    if (--it->second.acks_left > 0) return;
    auto done = std::move(it->second.done);
    pending_.erase(it);
    if (done) done();
}

// ---- shard owner side ----

void Broker::owner_accept(const PublishBatch& batch) {
    uint64_t now = uv_now(worker_.uv());
    for (const MessageRef& m : batch.messages) {
        bool tracked = owned_.count(m->channel()) > 0;
        for (const MessageRef& out : sequencer_.accept(m, now, tracked)) owner_route(out);
    }
    if (batch.token != 0 && batch.origin != worker_.index()) {
        InboxMessage ack;
        ack.kind = InboxMessage::Kind::PublishAck;
        ack.value = static_cast<int64_t>(batch.token);
        send(batch.origin, std::move(ack));
    }
}

void Broker::owner_route(const MessageRef& msg) {
    auto it = owned_.find(msg->channel());
    if (it == owned_.end()) return; // nobody listens anywhere
    const auto& per_worker = it->second.subscribers_per_worker;
    for (size_t w = 0; w < per_worker.size(); ++w) {
        if (per_worker[w] == 0) continue;
        if (static_cast<int>(w) == worker_.index()) {
            deliver_local(msg);
            continue;
        }
        InboxMessage m;
        m.kind = InboxMessage::Kind::Deliver;
        m.payload = msg;
        send(static_cast<int>(w), std::move(m));
    }
}

void Broker::owner_subscribe_delta(const std::string& channel, int worker, int64_t delta) {
    auto [it, inserted] = owned_.try_emplace(channel);
    OwnedChannel& oc = it->second;
    if (inserted) oc.subscribers_per_worker.assign(workers_.size(), 0);
    uint32_t& n = oc.subscribers_per_worker[static_cast<size_t>(worker)];
    if (delta > 0) {
        if (n++ == 0) ++oc.workers_with_subscribers;
    } else if (n > 0) {
        if (--n == 0) --oc.workers_with_subscribers;
    }
    if (oc.workers_with_subscribers == 0) {
        owned_.erase(it);
        for (const MessageRef& m : sequencer_.forget(channel)) (void)m; // nobody left to deliver to
    }
}

void Broker::recover() {
    for (size_t w = 0; w < workers_.size(); ++w) {
        if (static_cast<int>(w) == worker_.index()) {
            for (const MessageRef& m : sequencer_.reset()) owner_route(m);
            continue;
        }
        InboxMessage m;
        m.kind = InboxMessage::Kind::Recover;
        send(static_cast<int>(w), std::move(m));
    }
}

void Broker::tick(uint64_t now_ms) {
    if (sequencer_.pending() == 0) return;
    for (const MessageRef& out : sequencer_.expire(now_ms)) owner_route(out);
}

bool Broker::handle(InboxMessage& msg) {
    switch (msg.kind) {
    case InboxMessage::Kind::Publish: {
        auto batch = std::static_pointer_cast<const PublishBatch>(msg.payload);
        owner_accept(*batch);
        return true;
    }
    case InboxMessage::Kind::PublishAck: on_ack(static_cast<uint64_t>(msg.value)); return true;
    case InboxMessage::Kind::Deliver: deliver_local(std::static_pointer_cast<const Message>(msg.payload)); return true;
    case InboxMessage::Kind::Subscribe: owner_subscribe_delta(msg.text, msg.from, msg.value); return true;
    case InboxMessage::Kind::Recover:
        for (const MessageRef& m : sequencer_.reset()) owner_route(m);
        return true;
    default: return false;
    }
}

} // namespace gripd::pubsub
