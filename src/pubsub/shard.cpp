#include "gripd/pubsub/shard.hpp"

#include <algorithm>

namespace gripd::pubsub {

uint32_t shard_of(std::string_view channel, uint32_t shard_count) {
    uint32_t h = 2166136261u;
    for (unsigned char c : channel) {
        h ^= c;
        h *= 16777619u;
    }
    return shard_count ? h % shard_count : 0;
}

uint64_t ShardDirectory::clamp(uint64_t now) {
    if (now < last_now_) return last_now_;
    last_now_ = now;
    return now;
}

const ShardDirectory::Channel* ShardDirectory::find(std::string_view channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? nullptr : &it->second;
}

void ShardDirectory::age_id_cache(uint64_t now) {
    while (!id_expiry_.empty() && id_expiry_.front().first <= now) {
        auto it = id_cache_.find(id_expiry_.front().second);
        if (it != id_cache_.end() && it->second == id_expiry_.front().first) id_cache_.erase(it);
        id_expiry_.pop_front();
    }
}

bool ShardDirectory::is_duplicate(const Message& msg, uint64_t now) {
    if (config_.id_cache_ttl_ms == 0 || !msg.id()) return false;
    std::string key;
    key.reserve(msg.channel().size() + 1 + msg.id()->size());
    key += msg.channel();
    key += '\0';
    key += *msg.id();
    if (id_cache_.count(key)) return true;
    uint64_t expiry = now + config_.id_cache_ttl_ms;
    id_expiry_.emplace_back(expiry, key);
    id_cache_.emplace(std::move(key), expiry);
    return false;
}

void ShardDirectory::deliver(const Channel& ch, const MessageRef& msg, std::vector<Delivery>& out) {
    if (ch.workers.empty()) return; // lingering: sequenced, delivered to nobody
    Delivery d;
    d.message = msg;
    d.workers.reserve(ch.workers.size());
    for (const auto& wc : ch.workers)
        d.workers.push_back(wc.worker);
    out.push_back(std::move(d));
}

void ShardDirectory::set_last_id(Channel& ch, const std::optional<std::string>& id) {
    if (id) {
        if (!ch.seq) ch.seq = std::make_unique<Sequence>();
        ch.seq->last_id = id;
    } else if (ch.seq) {
        ch.seq->last_id.reset();
        if (ch.seq->waiting_by_prev_id.empty()) ch.seq.reset();
    }
}

// Sends `msg` and then every waiting message that follows it.
void ShardDirectory::send(Channel& ch, const MessageRef& msg, std::vector<Delivery>& out) {
    MessageRef m = msg;
    for (;;) {
        set_last_id(ch, m->id());
        deliver(ch, m, out);
        if (!m->id() || ch.seq->waiting_by_prev_id.empty()) return;
        auto& waiting = ch.seq->waiting_by_prev_id;
        auto it = waiting.find(*m->id());
        if (it == waiting.end()) return;
        m = std::move(it->second.msg);
        waiting.erase(it); // its WaitRef goes stale
    }
}

std::vector<Delivery> ShardDirectory::on_publish(const MessageRef& msg, uint64_t now, bool* fresh) {
    std::vector<Delivery> out;
    now = clamp(now);
    age_id_cache(now);
    if (is_duplicate(*msg, now)) return out;
    if (fresh) *fresh = true;
    auto it = channels_.find(msg->channel());
    if (it == channels_.end()) return out; // nobody listens: deliver nowhere, learn nothing
    Channel& ch = it->second;
    if (msg->no_seq()) {
        deliver(ch, msg, out);
        return out;
    }
    const auto& prev = msg->prev_id();
    if (ch.seq && ch.seq->last_id && prev && *ch.seq->last_id != *prev) {
        auto& waiting = ch.seq->waiting_by_prev_id;
        if (waiting.count(*prev)) return out;                  // one waiter per prev-id
        if (waiting.size() >= config_.pending_max) return out; // too many gaps
        uint64_t serial = next_serial_++;
        waiting.emplace(*prev, Waiting{msg, serial});
        waiting_by_time_.push_back(WaitRef{now, serial, msg->channel(), *prev});
        return out;
    }
    send(ch, msg, out);
    return out;
}

std::vector<Delivery> ShardDirectory::expire(uint64_t now) {
    std::vector<Delivery> out;
    now = clamp(now);
    age_id_cache(now);
    while (!waiting_by_time_.empty()) {
        WaitRef& ref = waiting_by_time_.front();
        auto cit = channels_.find(ref.channel);
        Waiting* w = nullptr;
        if (cit != channels_.end() && cit->second.seq) {
            auto& waiting = cit->second.seq->waiting_by_prev_id;
            auto wit = waiting.find(ref.prev_id);
            if (wit != waiting.end() && wit->second.serial == ref.serial) w = &wit->second;
        }
        if (!w) { // released or forgotten already
            waiting_by_time_.pop_front();
            continue;
        }
        if (ref.time + config_.message_wait_ms > now) break;
        MessageRef m = std::move(w->msg);
        cit->second.seq->waiting_by_prev_id.erase(ref.prev_id);
        waiting_by_time_.pop_front();
        send(cit->second, m, out);
    }
    return out;
}

std::optional<uint64_t> ShardDirectory::next_expiry() const {
    std::optional<uint64_t> next;
    if (!waiting_by_time_.empty()) next = waiting_by_time_.front().time + config_.message_wait_ms;
    if (!id_expiry_.empty() && (!next || id_expiry_.front().first < *next)) next = id_expiry_.front().first;
    if (!lingering_.empty() && (!next || lingering_.front().first < *next)) next = lingering_.front().first;
    return next;
}

void ShardDirectory::WorkerCounts::add(uint32_t worker, uint32_t n) {
    WorkerCount* d = data();
    uint32_t pos = 0;
    while (pos < size_ && d[pos].worker < worker)
        ++pos;
    if (pos < size_ && d[pos].worker == worker) {
        d[pos].count += n;
        return;
    }
    if (size_ == capacity_) {
        uint32_t grown = capacity_ * 2;
        auto bigger = std::make_unique<WorkerCount[]>(grown);
        std::copy(d, d + size_, bigger.get());
        heap_ = std::move(bigger);
        capacity_ = grown;
        d = heap_.get();
    }
    std::copy_backward(d + pos, d + size_, d + size_ + 1);
    d[pos] = WorkerCount{worker, n};
    ++size_;
}

bool ShardDirectory::WorkerCounts::take(uint32_t worker, uint64_t n) {
    WorkerCount* d = data();
    uint32_t pos = 0;
    while (pos < size_ && d[pos].worker != worker)
        ++pos;
    if (pos == size_) return false;
    if (n < d[pos].count) {
        d[pos].count -= static_cast<uint32_t>(n);
        return true;
    }
    std::copy(d + pos + 1, d + size_, d + pos);
    --size_;
    return true;
}

SubscriberChange ShardDirectory::on_subscribe_delta(std::string_view channel, uint32_t worker, int64_t delta,
                                                    bool linger, uint64_t now) {
    if (delta == 0) return SubscriberChange::None;
    auto it = channels_.find(channel);
    if (delta > 0) {
        bool created = it == channels_.end();
        if (created) it = channels_.try_emplace(std::string(channel)).first;
        it->second.workers.add(worker, static_cast<uint32_t>(delta));
        it->second.linger_until = 0; // revived: its lingering_ entry goes stale
        return created ? SubscriberChange::First : SubscriberChange::None;
    }
    if (it == channels_.end()) return SubscriberChange::None;
    auto& ws = it->second.workers;
    if (!ws.take(worker, static_cast<uint64_t>(-delta))) return SubscriberChange::None;
    if (!ws.empty()) return SubscriberChange::None;
    if (linger && config_.subscription_linger_ms > 0) {
        uint64_t until = std::max<uint64_t>(1, clamp(now) + config_.subscription_linger_ms);
        it->second.linger_until = until;
        lingering_.emplace_back(until, it->first);
        return SubscriberChange::None;
    }
    channels_.erase(it); // last id and waiting messages go too; their WaitRefs go stale
    return SubscriberChange::Last;
}

std::vector<std::string> ShardDirectory::end_lingering(uint64_t now) {
    std::vector<std::string> out;
    now = clamp(now);
    while (!lingering_.empty() && lingering_.front().first <= now) {
        auto it = channels_.find(lingering_.front().second);
        if (it != channels_.end() && it->second.workers.empty() &&
            it->second.linger_until == lingering_.front().first) {
            channels_.erase(it);
            out.push_back(std::move(lingering_.front().second));
        }
        lingering_.pop_front();
    }
    return out;
}

bool ShardDirectory::is_lingering(std::string_view channel) const {
    const Channel* ch = find(channel);
    return ch && ch->workers.empty();
}

void ShardDirectory::recover() {
    for (auto& [name, ch] : channels_)
        set_last_id(ch, std::nullopt);
}

std::vector<std::string> ShardDirectory::channel_names() const {
    std::vector<std::string> out;
    out.reserve(channels_.size());
    for (const auto& [name, ch] : channels_)
        out.push_back(name);
    return out;
}

std::vector<uint32_t> ShardDirectory::workers_of(std::string_view channel) const {
    std::vector<uint32_t> out;
    if (const Channel* ch = find(channel))
        for (const auto& wc : ch->workers)
            out.push_back(wc.worker);
    return out;
}

const std::string* ShardDirectory::last_id(std::string_view channel) const {
    const Channel* ch = find(channel);
    return ch && ch->seq && ch->seq->last_id ? &*ch->seq->last_id : nullptr;
}

size_t ShardDirectory::pending_count(std::string_view channel) const {
    const Channel* ch = find(channel);
    return ch && ch->seq ? ch->seq->waiting_by_prev_id.size() : 0;
}

} // namespace gripd::pubsub
