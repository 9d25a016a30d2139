// HistoryStore: the last items of each channel, kept by the channel's shard owner beside its last id
// (DESIGN.md "The publish path"), so a subscriber that is behind is served from it before live items.
// Pure logic, time passed in (milliseconds from a monotonic clock).
//
// Rules:
//  - Off unless bounds say so: with default bounds of 0 items, nothing is kept and nothing is
//    allocated, unless a channel was given bounds of its own (set_bounds: a route's override).
//  - Only items with an `id` are kept (a resume point is an id), in the order the owner took them
//    (publish order per channel), each with all its formats (the shared, immutable Message).
//  - Per channel: at most `items` items, `bytes` bytes (the rendered formats) and items younger
//    than `ttl_ms` (0 = no age limit). Over a bound, the oldest go first.
//  - Per store: at most `total_bytes` over every channel; over it, the channel published to least
//    recently loses its items first (a flood of one-off channels cannot grow memory).
//  - A busy channel (kArenaMinItems kept) has its messages made in a page arena of its own
//    (arena_for, core/page_arena.hpp): they die oldest first, so whole pages come free together,
//    away from the heap the publish path churns.
//  - A replay after id X returns the items after X. If X is not kept (never was, or aged out), it is
//    a gap: every kept item is returned and the caller is told, so it can say so to its client.
#pragma once

#include "gripd/core/page_arena.hpp"
#include "gripd/pubsub/message.hpp"

#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gripd::pubsub {

struct HistoryBounds {
    uint32_t items = 0;       // 0 = keep nothing
    uint64_t bytes = 1 << 20; // per channel
    uint64_t ttl_ms = 0;      // 0 = no age limit
    bool is_on() const { return items > 0 && bytes > 0; }
    bool operator==(const HistoryBounds&) const = default;
};

enum class ReplayStatus : uint8_t {
    Covered, // the id is kept: `items` are exactly the ones after it
    Gap,     // the id is not kept but others are: `items` are all that is kept (something may be lost)
    Unknown, // nothing is kept for the channel: nobody can tell what was missed
    // With the bus: the history could not be read (the bus is down, or Redis refused the read), so
    // nothing is known now; a resume treats it as Unknown, GET /history answers 503.
    Unavailable,
};

struct Replay {
    ReplayStatus status = ReplayStatus::Unknown;
    std::vector<MessageRef> items; // oldest first
};

// The bytes a message keeps alive (its rendered formats and names).
uint64_t message_bytes(const Message& m);

class HistoryStore {
  public:
    explicit HistoryStore(const HistoryBounds& defaults = {}, uint64_t total_bytes = 64ull << 20)
        : defaults_(defaults), total_bytes_max_(total_bytes) {}
    HistoryStore(const HistoryStore&) = delete;
    HistoryStore& operator=(const HistoryStore&) = delete;

    // Whether any channel may keep history (defaults on, or some channel has bounds of its own).
    bool is_active() const { return defaults_.is_on() || !overrides_.empty(); }
    // Keeps `msg` if it has an id and its channel keeps history; returns whether it was kept.
    bool on_publish(const MessageRef& msg, uint64_t now);
    // Gives `channel` bounds of its own (a route's override; the latest call wins). Items off make
    // the channel keep nothing.
    void set_bounds(std::string_view channel, const HistoryBounds& bounds);
    // The items after `after_id`, at most `limit` (0 = all; with a limit, the oldest ones).
    Replay after(std::string_view channel, std::string_view after_id, uint64_t now, size_t limit = 0);
    // Every kept item of the channel, oldest first.
    std::vector<MessageRef> items(std::string_view channel, uint64_t now);
    // Drops the items past their age (amortized: a few channels per call).
    void expire(uint64_t now);
    // Where to make the channel's next message (an ArenaScope around Message::create), or nullptr
    // (the heap) for a channel that keeps fewer than kArenaMinItems: a few pages per busy channel
    // are a small share of what it keeps, but would be most of what a quiet one keeps.
    core::PageArena* arena_for(std::string_view channel);
    static constexpr size_t kArenaMinItems = 64;

    size_t channel_count() const { return channels_.size(); }
    size_t item_count() const { return item_count_; }
    uint64_t byte_count() const { return byte_count_; }
    const HistoryBounds& defaults() const { return defaults_; }

  private:
    struct Entry {
        MessageRef msg;
        uint64_t time;
        uint64_t bytes;
    };
    struct Channel {
        core::PageArena arena; // declared first, so it goes after the entries made in it
        std::deque<Entry> entries;
        uint64_t bytes = 0;
        std::list<std::string>::iterator lru; // in lru_
    };
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    template <class V> using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

    const HistoryBounds& bounds_of(std::string_view channel) const;
    void trim(Channel& ch, const HistoryBounds& b, uint64_t now);
    void pop_oldest(Channel& ch);
    static void prefetch_next_oldest(const Channel& ch);
    void erase(Map<Channel>::iterator it);
    Channel* find_fresh(std::string_view channel, uint64_t now);

    HistoryBounds defaults_;
    uint64_t total_bytes_max_;
    Map<Channel> channels_;
    Map<HistoryBounds> overrides_;
    std::list<std::string> lru_;                        // channel names, least recently published first
    std::deque<std::pair<uint64_t, std::string>> ages_; // (check at, channel): when to look again
    size_t item_count_ = 0;
    uint64_t byte_count_ = 0;
};

} // namespace gripd::pubsub
