#include "gripd/pubsub/history.hpp"

#include <algorithm>

namespace gripd::pubsub {

uint64_t message_bytes(const Message& m) {
    uint64_t n = sizeof(Message) + m.channel().size() + (m.id() ? m.id()->size() : 0);
    if (auto* r = m.http_response()) n += r->body.size() + r->head.size();
    if (auto* st = m.http_stream()) n += st->chunk.size();
    if (auto* w = m.ws_message()) n += w->frame.size();
    return n;
}

const HistoryBounds& HistoryStore::bounds_of(std::string_view channel) const {
    if (!overrides_.empty()) {
        auto it = overrides_.find(channel);
        if (it != overrides_.end()) return it->second;
    }
    return defaults_;
}

void HistoryStore::set_bounds(std::string_view channel, const HistoryBounds& bounds) {
    auto it = overrides_.find(channel);
    if (bounds == defaults_) {
        if (it != overrides_.end()) overrides_.erase(it);
    } else if (it == overrides_.end()) {
        overrides_.emplace(std::string(channel), bounds);
    } else {
        it->second = bounds;
    }
    auto cit = channels_.find(channel);
    if (cit == channels_.end()) return;
    if (!bounds.is_on()) {
        erase(cit);
        return;
    }
    trim(cit->second, bounds, 0);
    if (cit->second.entries.empty()) erase(cit);
}

// A full channel drops its oldest item on every publish, and that item was last touched a
// history_size of publishes ago: its memory is cold. Fetching the next victims' memory ahead, one
// step per publish (the entry four from the front, whose message pointer is read two publishes
// later; the message two from the front; its rendered chunk one publish later, once the message's
// line is in), lets the drop find each in cache instead of stalling on it.
void HistoryStore::prefetch_next_oldest(const Channel& ch) {
    const auto& e = ch.entries;
    if (e.size() > 4) __builtin_prefetch(&e[4]);
    if (e.size() > 2) {
        // make_shared: the reference counts sit just before the message
        const char* m = reinterpret_cast<const char*>(e[2].msg.get());
        __builtin_prefetch(m - 16);
        for (size_t off = 0; off < sizeof(Message); off += 64)
            __builtin_prefetch(m + off);
        // In an arena, freeing it decrements its page's count: that line too, for writing.
        if (core::arena_owns(m)) __builtin_prefetch(core::arena_page_of(m), 1);
    }
    if (e.size() > 1)
        if (const Message::StreamPart* st = e[1].msg->http_stream()) __builtin_prefetch(st->chunk.data());
}

void HistoryStore::pop_oldest(Channel& ch) {
    ch.bytes -= ch.entries.front().bytes;
    byte_count_ -= ch.entries.front().bytes;
    --item_count_;
    ch.entries.pop_front();
}

void HistoryStore::trim(Channel& ch, const HistoryBounds& b, uint64_t now) {
    while (!ch.entries.empty() && (ch.entries.size() > b.items || ch.bytes > b.bytes))
        pop_oldest(ch);
    if (b.ttl_ms > 0 && now > 0)
        while (!ch.entries.empty() && ch.entries.front().time + b.ttl_ms <= now)
            pop_oldest(ch);
}

void HistoryStore::erase(Map<Channel>::iterator it) {
    while (!it->second.entries.empty())
        pop_oldest(it->second);
    lru_.erase(it->second.lru);
    channels_.erase(it); // its ages_ entries go stale
}

bool HistoryStore::on_publish(const MessageRef& msg, uint64_t now) {
    if (!msg->id() || !is_active()) return false;
    const HistoryBounds& b = bounds_of(msg->channel());
    if (!b.is_on()) return false;
    uint64_t size = message_bytes(*msg);
    if (size > b.bytes || size > total_bytes_max_) {
        // Would not fit even alone: not kept, and neither is what came before it, so a resume from
        // before it is told it has a gap instead of skipping it silently.
        if (auto it = channels_.find(msg->channel()); it != channels_.end()) erase(it);
        return false;
    }
    auto it = channels_.find(msg->channel());
    if (it == channels_.end()) {
        it = channels_.try_emplace(msg->channel()).first;
        lru_.push_back(msg->channel());
        it->second.lru = std::prev(lru_.end());
    } else {
        lru_.splice(lru_.end(), lru_, it->second.lru); // most recently published: last
    }
    Channel& ch = it->second;
    prefetch_next_oldest(ch);
    bool was_empty = ch.entries.empty();
    ch.entries.push_back(Entry{msg, now, size});
    ch.bytes += size;
    byte_count_ += size;
    ++item_count_;
    trim(ch, b, now);
    if (was_empty && b.ttl_ms > 0) ages_.emplace_back(now + b.ttl_ms, msg->channel());
    // The store's own bound: the channels published to least recently give way, oldest items first.
    // The new item stays: it fits alone (checked above) and is its channel's newest.
    while (byte_count_ > total_bytes_max_ && !lru_.empty()) {
        auto victim = channels_.find(lru_.front());
        pop_oldest(victim->second);
        if (victim->second.entries.empty()) erase(victim);
    }
    return true;
}

core::PageArena* HistoryStore::arena_for(std::string_view channel) {
    if (channels_.empty()) return nullptr;
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.entries.size() < kArenaMinItems) return nullptr;
    return &it->second.arena;
}

HistoryStore::Channel* HistoryStore::find_fresh(std::string_view channel, uint64_t now) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return nullptr;
    trim(it->second, bounds_of(channel), now);
    if (it->second.entries.empty()) {
        erase(it);
        return nullptr;
    }
    return &it->second;
}

Replay HistoryStore::after(std::string_view channel, std::string_view after_id, uint64_t now, size_t limit) {
    Replay r;
    Channel* ch = find_fresh(channel, now);
    if (!ch) return r;
    const auto& e = ch->entries;
    // From the newest back: the cost is the number of items returned (or all, for a gap).
    size_t start = 0;
    r.status = ReplayStatus::Gap;
    for (size_t i = e.size(); i-- > 0;) {
        if (*e[i].msg->id() == after_id) {
            start = i + 1;
            r.status = ReplayStatus::Covered;
            break;
        }
    }
    size_t end = e.size();
    if (limit > 0 && end - start > limit) end = start + limit;
    r.items.reserve(end - start);
    for (size_t i = start; i < end; ++i)
        r.items.push_back(e[i].msg);
    return r;
}

std::vector<MessageRef> HistoryStore::items(std::string_view channel, uint64_t now) {
    std::vector<MessageRef> out;
    if (Channel* ch = find_fresh(channel, now))
        for (const auto& e : ch->entries)
            out.push_back(e.msg);
    return out;
}

void HistoryStore::expire(uint64_t now) {
    // Each channel with an age limit has an entry here for when its oldest item ages out; a
    // channel's entries go stale when it is erased, and are re-queued while it keeps items.
    size_t budget = 64;
    while (!ages_.empty() && ages_.front().first <= now && budget-- > 0) {
        std::string name = std::move(ages_.front().second);
        ages_.pop_front();
        auto it = channels_.find(name);
        if (it == channels_.end()) continue;
        const HistoryBounds& b = bounds_of(name);
        trim(it->second, b, now);
        if (it->second.entries.empty()) {
            erase(it);
            continue;
        }
        if (b.ttl_ms > 0) ages_.emplace_back(it->second.entries.front().time + b.ttl_ms, std::move(name));
    }
}

} // namespace gripd::pubsub
