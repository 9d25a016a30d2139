// StreamHold: following next links (grip/next_link.hpp, PROTOCOL.md §3.5), as observed on pushpin
// 1.36: the link's answer must be 2xx; its body is appended to the client's response and its
// headers are not (an application/grip-instruct body is appended as it is, not interpreted); its
// Grip-* headers decide what follows: a stream hold (re)subscribes to the channels it names, a link
// is followed (at once without a hold, after its timeout of quiet or about a second with one), and
// neither ends the response. Failures are retried 5 times, then the response ends cleanly.
#include "stream_next_link.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/loop/worker.hpp"

#include <random>

namespace gripd::grip {

namespace {
uint64_t retry_jitter_ms() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return rng() % 1000;
}
} // namespace

void StreamHold::note_last_id(const std::string& channel, const std::string& id) {
    for (auto& l : next_->last_ids)
        if (l.channel == channel) {
            l.id = id;
            return;
        }
    next_->last_ids.push_back({channel, id});
}

void StreamHold::check_behind() {
    bool behind = false;
    for (const auto& l : next_->last_ids) {
        uint64_t token = 0;
        auto answer = env_.broker.check_behind(
            l.channel, l.id,
            [this](bool b) {
                if (b && client_ && next_->holding) fetch_next();
            },
            &token);
        if (token) next_->checks.push_back(token);
        if (answer && *answer) behind = true;
    }
    if (behind) fetch_next();
}

bool StreamHold::misses_before(const std::string& channel, const pubsub::Message& msg) const {
    if (!msg.prev_id()) return false;
    for (const auto& l : next_->last_ids)
        if (l.channel == channel) return l.id != *msg.prev_id();
    return false;
}

void StreamHold::recover() {
    if (client_ && next_ && next_->link) fetch_next();
}

void StreamHold::schedule_next(uint64_t delay_ms) {
    next_->quiet_wait = false;
    next_->timer.arm(delay_ms);
}

void StreamHold::on_link_timer(void* p) {
    auto* self = static_cast<StreamHold*>(p);
    if (self->client_) self->fetch_next();
}

void StreamHold::fetch_next() {
    NextLink& n = *next_;
    n.quiet_wait = false;
    n.timer.disarm();
    if (!n.link) return;
    if (n.in_flight) {
        n.again = true;
        return;
    }
    n.again = false;
    std::vector<std::string> grip_last;
    for (const auto& l : n.last_ids) {
        // Grip-Last names channels as the backend did, without the route prefix.
        std::string_view name = l.channel;
        if (name.starts_with(n.prefix)) name.remove_prefix(n.prefix.size());
        grip_last.push_back(std::string(name) + "; last-id=" + l.id);
    }
    n.in_flight = n.fetch(n.link->url, grip_last, *this);
    if (!n.in_flight) {
        on_link_failed("the link cannot be followed (another host, or no route)");
        return;
    }
    n.in_flight->start(); // may report (and end this hold's fetch) before it returns
}

void StreamHold::on_link_failed(const char* why) {
    auto done = std::move(next_->in_flight); // freed on return, after its callback
    if (!client_) return;
    NextLink& n = *next_;
    if (n.failures >= kNextLinkRetries) {
        LOG_INFO("grip", "next link %s failed %d times (%s): ending the response to %s",
                 n.link ? n.link->url.c_str() : "-", n.failures + 1, why, client_->peer().c_str());
        end();
        return;
    }
    uint64_t delay = (kNextLinkRetryBaseMs << n.failures) + retry_jitter_ms();
    ++n.failures;
    LOG_DEBUG("grip", "next link %s: %s; trying again in %llu ms", n.link ? n.link->url.c_str() : "-", why,
              static_cast<unsigned long long>(delay));
    schedule_next(delay);
}

void StreamHold::on_link_response(http::ResponseHead& head, std::string& body) {
    auto done = std::move(next_->in_flight); // freed on return, after its callback
    if (!client_) return;
    if (head.status < 200 || head.status > 299) {
        std::string why = "status " + std::to_string(head.status);
        on_link_failed(why.c_str());
        return;
    }
    // Only the Grip-* headers instruct here: the body is content whatever its type.
    head.headers.remove("Content-Type");
    InstructResult r = parse_instruct(head.status, head.reason, head.headers, {});
    if (!r.ok) {
        std::string why = "bad GRIP instructions: " + r.error;
        on_link_failed(why.c_str());
        return;
    }
    NextLink& n = *next_;
    n.failures = 0;
    Instruct& in = r.instruct;
    bool holding = in.hold == HoldMode::Stream;
    unsubscribe_all();
    if (holding) {
        set_channels(in.channels, in.hold, n.max_channels, n.prefix);
        keep_channel_ids(in.channels, n.prefix);
        for (const Channel& c : in.channels)
            if (c.prev_id) note_last_id(n.prefix + c.name, *c.prev_id);
        meta_ = std::move(in.meta);
        keep_alive_ = std::move(in.keep_alive);
        arm_keep_alive();
    } else {
        set_channels({}, HoldMode::Stream, 0, n.prefix);
    }
    n.holding = holding;
    n.link = std::move(in.next_link);
    if (!body.empty()) {
        std::optional<std::string> filtered;
        if (!filter_content(nullptr, nullptr, body, filtered)) {
            end(); // Pushpin's doError on a stream: the response ends
            return;
        }
        client_->send_body(filtered ? *filtered : body);
        sent_data();
    }
    if (!n.link && !holding) {
        end(); // the chain is over
        return;
    }
    subscribe_all();
    if (!check_backlog()) return;
    if (!n.link) return;
    if (!holding || n.again) {
        fetch_next(); // may end this hold: nothing after it
    } else if (n.link->timeout > 0) {
        n.quiet_wait = true;
        n.timer.arm(static_cast<uint64_t>(n.link->timeout) * 1000);
    } else {
        schedule_next(kNextLinkPacingMs);
    }
}

} // namespace gripd::grip
