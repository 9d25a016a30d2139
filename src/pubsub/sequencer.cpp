#include "gripd/pubsub/sequencer.hpp"

namespace gripd::pubsub {

void Sequencer::take(ChannelState& st, const MessageRef& msg, std::vector<MessageRef>& out) {
    if (msg->id()) {
        st.last_id = *msg->id();
        st.has_last = true;
    }
    out.push_back(msg);
}

// After an item went out, any waiting item that follows it goes too (and so on).
void Sequencer::drain_followers(ChannelState& st, std::vector<MessageRef>& out) {
    bool progressed = true;
    while (progressed && !st.waiting.empty()) {
        progressed = false;
        for (auto it = st.waiting.begin(); it != st.waiting.end(); ++it) {
            if (st.has_last && it->msg->prev_id() && *it->msg->prev_id() == st.last_id) {
                MessageRef m = it->msg;
                st.waiting.erase(it);
                --waiting_total_;
                take(st, m, out);
                progressed = true;
                break;
            }
        }
    }
}

bool Sequencer::is_duplicate(ChannelState& st, const MessageRef& msg, uint64_t now_ms) {
    if (config_.id_cache_ttl_ms == 0 || !msg->id()) return false;
    for (auto it = st.seen.begin(); it != st.seen.end();) {
        if (it->second <= now_ms)
            it = st.seen.erase(it);
        else
            ++it;
    }
    auto [it, inserted] = st.seen.try_emplace(*msg->id(), now_ms + config_.id_cache_ttl_ms);
    return !inserted;
}

std::vector<MessageRef> Sequencer::accept(const MessageRef& msg, uint64_t now_ms, bool tracked) {
    std::vector<MessageRef> out;
    if (msg->no_seq()) {
        out.push_back(msg);
        return out;
    }
    if (!tracked) {
        // Nobody listens: remember nothing (a later subscriber starts from a clean slate).
        auto it = channels_.find(msg->channel());
        if (it == channels_.end()) {
            out.push_back(msg);
            return out;
        }
    }
    ChannelState& st = channels_[msg->channel()];
    if (is_duplicate(st, msg, now_ms)) return out;
    const auto& prev = msg->prev_id();
    if (!prev || !st.has_last || *prev == st.last_id) {
        take(st, msg, out);
        drain_followers(st, out);
        return out;
    }
    if (st.waiting.size() >= config_.max_pending_per_channel) {
        // Too many gaps: release the oldest waiting item to make room (never drop).
        take(st, st.waiting.front().msg, out);
        st.waiting.pop_front();
        --waiting_total_;
    }
    st.waiting.push_back(Waiting{msg, now_ms + config_.message_wait_ms});
    ++waiting_total_;
    drain_followers(st, out);
    return out;
}

std::vector<MessageRef> Sequencer::expire(uint64_t now_ms) {
    std::vector<MessageRef> out;
    if (waiting_total_ == 0) return out;
    for (auto& [channel, st] : channels_) {
        while (!st.waiting.empty() && st.waiting.front().deadline <= now_ms) {
            MessageRef m = st.waiting.front().msg;
            st.waiting.pop_front();
            --waiting_total_;
            take(st, m, out);
            drain_followers(st, out);
        }
    }
    return out;
}

std::vector<MessageRef> Sequencer::forget(const std::string& channel) {
    std::vector<MessageRef> out;
    auto it = channels_.find(channel);
    if (it == channels_.end()) return out;
    for (auto& w : it->second.waiting) out.push_back(w.msg);
    waiting_total_ -= it->second.waiting.size();
    channels_.erase(it);
    return out;
}

std::vector<MessageRef> Sequencer::reset() {
    std::vector<MessageRef> out;
    for (auto& [channel, st] : channels_)
        for (auto& w : st.waiting) out.push_back(w.msg);
    channels_.clear();
    waiting_total_ = 0;
    return out;
}

uint64_t Sequencer::next_deadline() const {
    uint64_t best = 0;
    for (const auto& [c, st] : channels_)
        if (!st.waiting.empty() && (best == 0 || st.waiting.front().deadline < best)) best = st.waiting.front().deadline;
    return best;
}

} // namespace gripd::pubsub
