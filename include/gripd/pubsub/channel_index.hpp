// ChannelIndex: a worker's local "channel -> subscriptions" index (DESIGN.md "The publish path").
//
// Each subscription embeds an IndexHook (by deriving from it), so subscribing never allocates per
// subscription (only per channel) and unsubscribing is O(1). subscribe()/unsubscribe() report a
// channel's first and last local subscription: those are the only moments the shard owner must be
// told. One worker thread only; no locking.
//
// Delivery walks a channel with for_each(). The callback may unsubscribe the subscription it is
// given, any other subscription, or subscribe new ones (which are not visited by that walk: they
// came after the message). The channel's entry is kept alive until the walk ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

namespace gripd::pubsub {

template <class T> class ChannelIndex;

// The per-subscription link. 32 bytes; derive the subscription type from it.
class IndexHook {
  public:
    IndexHook() = default;
    IndexHook(const IndexHook&) = delete;
    IndexHook& operator=(const IndexHook&) = delete;
    bool is_subscribed() const { return entry_ != nullptr; }

  private:
    template <class T> friend class ChannelIndex;
    IndexHook* prev_ = nullptr;
    IndexHook* next_ = nullptr;
    void* entry_ = nullptr; // the ChannelIndex entry while subscribed
    bool marker_ = false;   // a walk's position or end marker, not a subscription
};

template <class T> class ChannelIndex {
    static_assert(std::is_base_of_v<IndexHook, T>, "T must derive from IndexHook");

  public:
    ChannelIndex() = default;
    ChannelIndex(const ChannelIndex&) = delete;
    ChannelIndex& operator=(const ChannelIndex&) = delete;
    // Every subscription must be unsubscribed before the index goes away.
    ~ChannelIndex() = default;

    // Adds `sub` to `channel` (no-op returning false if `sub` is already subscribed somewhere).
    // Returns true when it is the channel's first local subscription.
    bool subscribe(T& sub, std::string_view channel) {
        IndexHook& h = sub;
        if (h.entry_) return false;
        auto it = entries_.find(channel);
        if (it == entries_.end()) it = entries_.try_emplace(std::string(channel)).first;
        Entry& e = it->second;
        if (!e.name) e.init(&it->first);
        link_before(&e.head, &h);
        h.entry_ = &e;
        ++subscriptions_;
        return ++e.count == 1;
    }

    // Removes `sub` from its channel (no-op returning false if not subscribed). Returns true when it
    // was the channel's last local subscription; then on_last(channel name) runs first, while the
    // name still exists.
    template <class OnLast> bool unsubscribe(T& sub, OnLast&& on_last) {
        IndexHook& h = sub;
        if (!h.entry_) return false;
        Entry& e = *static_cast<Entry*>(h.entry_);
        unlink(&h);
        h.entry_ = nullptr;
        --subscriptions_;
        bool last = --e.count == 0;
        if (last) on_last(*e.name);
        if (last && e.walks == 0) erase(e);
        return last;
    }
    bool unsubscribe(T& sub) {
        return unsubscribe(sub, [](const std::string&) {});
    }

    // The channel `sub` is subscribed to. Precondition: sub.is_subscribed().
    static const std::string& channel_of(const T& sub) {
        const IndexHook& h = sub;
        return *static_cast<const Entry*>(h.entry_)->name;
    }

    // Calls f(T&) for each subscription of `channel` present when the walk starts, in subscription
    // order. Returns how many were visited.
    template <class F> size_t for_each(std::string_view channel, F&& f) {
        auto it = entries_.find(channel);
        if (it == entries_.end()) return 0;
        Entry& e = it->second;
        ++e.walks;
        IndexHook end;
        end.marker_ = true;
        link_before(&e.head, &end);
        IndexHook pos;
        pos.marker_ = true;
        size_t visited = 0;
        IndexHook* h = e.head.next_;
        while (h != &end) {
            if (h->marker_) { // another (nested) walk's marker
                h = h->next_;
                continue;
            }
            link_before(h->next_, &pos); // remember where to go on, whatever f unlinks
            ++visited;
            f(static_cast<T&>(*h));
            h = pos.next_;
            unlink(&pos);
        }
        unlink(&end);
        if (--e.walks == 0 && e.count == 0) erase(e);
        return visited;
    }

    // A walk that can stop and go on in a later loop turn (delivery in slices), with the same rules
    // as for_each(): it visits the subscriptions present when it began, in order, whatever is
    // unsubscribed meanwhile. Its markers sit in the channel's list: a Walk must not move, and must
    // be finished or abandoned before it goes away.
    class Walk {
      public:
        Walk() { pos_.marker_ = end_.marker_ = true; }
        Walk(const Walk&) = delete;
        Walk& operator=(const Walk&) = delete;
        bool is_active() const { return entry_ != nullptr; }

      private:
        friend class ChannelIndex;
        IndexHook pos_; // linked before the next subscription to visit
        IndexHook end_; // linked after the last subscription present when the walk began
        void* entry_ = nullptr;
    };

    // Starts `w` over `channel`; false (and `w` stays inactive) if the channel has no subscription.
    bool begin_walk(std::string_view channel, Walk& w) {
        auto it = entries_.find(channel);
        if (it == entries_.end() || w.entry_) return false;
        Entry& e = it->second;
        ++e.walks;
        w.entry_ = &e;
        link_before(&e.head, &w.end_);
        link_before(e.head.next_, &w.pos_);
        return true;
    }

    // Visits up to `budget` subscriptions of `w` with f(T&). Returns how many it visited; when the
    // walk reached its end, `w` is inactive again.
    template <class F> size_t step(Walk& w, size_t budget, F&& f) {
        if (!w.entry_) return 0;
        IndexHook* h = w.pos_.next_;
        unlink(&w.pos_);
        size_t visited = 0;
        while (h != &w.end_ && visited < budget) {
            if (h->marker_) {
                h = h->next_;
                continue;
            }
            link_before(h->next_, &w.pos_);
            ++visited;
            f(static_cast<T&>(*h));
            h = w.pos_.next_;
            unlink(&w.pos_);
        }
        if (h == &w.end_)
            abandon_at(w);
        else
            link_before(h, &w.pos_);
        return visited;
    }

    // Ends `w` where it is (no-op if inactive).
    void abandon(Walk& w) {
        if (!w.entry_) return;
        unlink(&w.pos_);
        abandon_at(w);
    }

    size_t count(std::string_view channel) const {
        auto it = entries_.find(channel);
        return it == entries_.end() ? 0 : it->second.count;
    }
    bool has(std::string_view channel) const { return count(channel) > 0; }
    size_t channel_count() const { return entries_.size(); }
    size_t subscription_count() const { return subscriptions_; }

  private:
    struct Entry {
        IndexHook head; // sentinel of a circular list
        const std::string* name = nullptr;
        size_t count = 0;
        uint32_t walks = 0;
        void init(const std::string* key) {
            name = key;
            head.prev_ = head.next_ = &head;
            head.marker_ = true;
        }
    };
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    void erase(Entry& e) { entries_.erase(entries_.find(*e.name)); }
    // The end of a resumable walk whose position marker is already unlinked.
    void abandon_at(Walk& w) {
        Entry& e = *static_cast<Entry*>(w.entry_);
        unlink(&w.end_);
        w.entry_ = nullptr;
        if (--e.walks == 0 && e.count == 0) erase(e);
    }
    static void link_before(IndexHook* at, IndexHook* h) {
        h->next_ = at;
        h->prev_ = at->prev_;
        at->prev_->next_ = h;
        at->prev_ = h;
    }
    static void unlink(IndexHook* h) {
        h->prev_->next_ = h->next_;
        h->next_->prev_ = h->prev_;
        h->prev_ = h->next_ = nullptr;
    }

    // Node-based: entries (and their sentinels) never move while the map rehashes.
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
    size_t subscriptions_ = 0;
};

} // namespace gripd::pubsub
