#include "gripd/grip/hold.hpp"

#include "gripd/core/log.hpp"
#include "gripd/grip/json_patch.hpp"
#include "gripd/grip/render.hpp"
#include "gripd/http/jsonp_response.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/filters.hpp"
#include "stream_next_link.hpp"

namespace gripd::grip {

// ---- Hold ----

Hold::Hold(HoldEnv env, http::ClientStream& client, const Instruct& instruct, size_t max_channels,
           const std::string& prefix)
    : env_(env), client_(&client), implicit_(instruct.implicit_channels), meta_(instruct.meta) {
    set_channels(instruct.channels, instruct.hold, max_channels, prefix);
    keep_channel_ids(instruct.channels, prefix);
}

void Hold::set_connection_id(std::string_view id) {
    size_t n = std::min(id.size(), sizeof(connection_id_) - 1);
    id.copy(connection_id_, n);
    connection_id_[n] = '\0';
}

void Hold::keep_channel_ids(const std::vector<Channel>& channels, const std::string& prefix) {
    ids_.reset();
    bool build_id = false;
    for (const auto& c : channels)
        for (const auto& f : c.filters)
            build_id = build_id || f == "build-id";
    if (!build_id) return;
    ids_ = std::make_unique<pubsub::ChannelIds>();
    for (const auto& c : channels)
        ids_->emplace_back(prefix + c.name, c.prev_id);
}

bool Hold::filter_content(const HoldSub* sub, const pubsub::Message* msg, std::string_view content,
                          std::optional<std::string>& out) {
    out.reset();
    std::string why;
    if (!sub) {
        // A proxied body: build-id, if any channel names it (Pushpin's ProxyContent filters).
        bool build_id = false;
        for (size_t i = 0; i < named_count_; ++i)
            build_id = build_id || pubsub::has_proxy_content_filter(subs_[i].filters);
        if (!build_id) return true;
        static const std::vector<std::string> kBuildId{"build-id"};
        out = pubsub::apply_content_filters(kBuildId, meta_, nullptr, content, why, true);
    } else {
        if (!pubsub::has_content_filter(sub->filters)) return true;
        if (ids_ && msg)
            for (auto& [channel, id] : *ids_)
                if (channel == sub->channel && id) id = msg->id();
        out = pubsub::apply_content_filters(sub->filters, meta_, ids_.get(), content, why);
    }
    if (out) return true;
    LOG_DEBUG("grip", "filter error for %s: %s", client_ ? client_->peer().c_str() : "-", why.c_str());
    return false;
}

void Hold::set_channels(const std::vector<Channel>& channels, HoldMode mode, size_t max_channels,
                        const std::string& prefix) {
    size_t n = channels.size() < max_channels ? channels.size() : max_channels;
    if (channels.size() > n)
        LOG_DEBUG("grip", "%zu channels requested, subscribing to the first %zu", channels.size(), n);
    // The target's sub= channels come after, unprefixed and uncapped, unless named already.
    std::vector<const std::string*> extra;
    for (const auto& name : implicit_) {
        bool named = false;
        for (size_t i = 0; i < n && !named; ++i)
            named = prefix.size() + channels[i].name.size() == name.size() && name.starts_with(prefix) &&
                    std::string_view(name).substr(prefix.size()) == channels[i].name;
        for (const auto* e : extra)
            named = named || *e == name;
        if (!named) extra.push_back(&name);
    }
    size_t total = n + extra.size();
    subs_ = total ? std::make_unique<HoldSub[]>(total) : nullptr;
    sub_count_ = total;
    named_count_ = n;
    auto format = mode == HoldMode::Stream ? pubsub::Subscription::Format::HttpStream
                                           : pubsub::Subscription::Format::HttpResponse;
    for (size_t i = 0; i < total; ++i) {
        subs_[i].owner = this;
        subs_[i].format = format;
        if (i < n) {
            subs_[i].channel = prefix + channels[i].name;
            subs_[i].filters = channels[i].filters;
        } else {
            subs_[i].channel = *extra[i - n];
        }
    }
}

bool Hold::has_subscription(std::string_view channel) const {
    for (size_t i = 0; i < sub_count_; ++i)
        if (subs_[i].is_active() && subs_[i].channel == channel) return true;
    return false;
}

Hold::~Hold() {
    dispatch_link.unlink();
    unsubscribe_all();
    // Every way a hold ends comes through here (its exchange is freed), so the gone link is sent
    // once whatever made the client leave.
    if (gone_) gone_();
}

void Hold::subscribe_all() {
    for (size_t i = 0; i < sub_count_; ++i) {
        if (subs_[i].is_active()) continue;
        env_.broker.subscribe(subs_[i], subs_[i].channel);
        env_.stats.subscriptions.add();
        LOG_DEBUG("grip", "subscribe channel=%s", subs_[i].channel.c_str());
    }
}

void Hold::unsubscribe_all() {
    for (size_t i = 0; i < sub_count_; ++i) {
        if (!subs_[i].is_active()) continue;
        env_.broker.unsubscribe(subs_[i]);
        env_.stats.subscriptions.sub();
    }
}

void Hold::on_client_gone() {
    client_ = nullptr;
    timer_.disarm();
    unsubscribe_all();
}

void Hold::end() {
    timer_.disarm();
    unsubscribe_all();
    http::ClientStream* c = client_;
    client_ = nullptr;
    if (c) c->end_response();
}

void Hold::resume_from(const std::string& channel, const std::string& id) {
    if (!resume_ || !client_) return;
    for (size_t i = 0; i < sub_count_; ++i)
        if (subs_[i].channel == channel && subs_[i].is_active()) {
            env_.broker.resume(subs_[i], id, resume_->bounds);
            return;
        }
}

void Hold::log_content_filter_mismatch(const pubsub::Message& msg) const {
    LOG_DEBUG("grip", "content filter mismatch on channel %s: ending the held request from %s",
              msg.channel().c_str(), client_ ? client_->peer().c_str() : "-");
}

// ---- ResponseHold ----

// The channels whose prev-id the backend gave, and the behind checks still out for them.
struct ResponseHold::PrevIds {
    struct Entry {
        std::string channel; // prefixed, as subscribed
        std::string name;    // as the backend named it (for Grip-Last)
        std::string id;
        uint64_t check = 0; // a behind check's token while it is out
    };
    std::vector<Entry> entries;
};

ResponseHold::ResponseHold(HoldEnv env, http::ClientStream& client, Instruct&& instruct, size_t max_channels,
                           const std::string& prefix, SavedRequest&& request, RetryFn retry)
    : Hold(env, client, instruct, max_channels, prefix), response_(std::move(instruct.response)),
      timeout_s_(instruct.timeout), request_(std::move(request)), retry_(std::move(retry)) {
    env_.stats.response_holds.add();
    timer_.init(&env_.worker.timers(), this, &ResponseHold::on_timeout);
    request_.grip_last.clear();
    for (size_t i = 0; i < named_count_; ++i) {
        const Channel& c = instruct.channels[i];
        if (!c.prev_id) continue;
        if (!prev_ids_) prev_ids_ = std::make_unique<PrevIds>();
        prev_ids_->entries.push_back({subs_[i].channel, c.name, *c.prev_id, 0});
    }
}

ResponseHold::~ResponseHold() {
    env_.stats.response_holds.sub();
    if (prev_ids_)
        for (auto& e : prev_ids_->entries)
            if (e.check) env_.broker.cancel_behind_check(e.check);
}

void ResponseHold::on_start() {
    subscribe_all();
    timer_.arm(static_cast<uint64_t>(timeout_s_) * 1000);
    if (prev_ids_ && resume_) {
        // From history: the items after each prev-id come at once (the first answers the client);
        // on_resume falls back to Grip-Last when history does not reach back that far.
        for (size_t i = 0; i < prev_ids_->entries.size() && client_; ++i)
            resume_from(prev_ids_->entries[i].channel, prev_ids_->entries[i].id);
        return;
    }
    if (!prev_ids_ || !retry_) return;
    // A hold that starts behind the channel (Pushpin: a prev-id conflict) is asked again at once.
    bool behind = false;
    for (auto& e : prev_ids_->entries) {
        auto answer = env_.broker.check_behind(
            e.channel, e.id,
            [this, &e](bool b) {
                e.check = 0;
                if (b && client_) ask_again(true);
            },
            &e.check);
        if (answer && *answer) behind = true;
    }
    if (behind) ask_again(true); // last: the new request replaces this hold
}

void ResponseHold::on_resume(pubsub::Subscription& sub, pubsub::ReplayStatus status) {
    if (!client_ || status == pubsub::ReplayStatus::Covered || !prev_ids_) return;
    const std::string& channel = static_cast<HoldSub&>(sub).channel;
    for (auto& e : prev_ids_->entries) {
        if (e.channel != channel) continue;
        if (status == pubsub::ReplayStatus::Gap) {
            LOG_DEBUG("grip", "history does not reach back to %s on %s: asking the backend", e.id.c_str(),
                      channel.c_str());
            if (retry_) ask_again(true);
            return;
        }
        // Nothing kept: is it behind the channel's last id (as without history)?
        if (!retry_ || e.check) return;
        auto answer = env_.broker.check_behind(
            e.channel, e.id,
            [this, &e](bool b) {
                e.check = 0;
                if (b && client_) ask_again(true);
            },
            &e.check);
        if (answer && *answer) ask_again(true);
        return;
    }
}

void ResponseHold::on_timeout(void* p) {
    auto* self = static_cast<ResponseHold*>(p);
    if (!self->client_) return;
    self->env_.stats.timeouts.add();
    self->unsubscribe_all();
    http::ClientStream* c = self->client_;
    self->client_ = nullptr;
    self->answer(*c, self->response_.code, self->response_.reason, self->response_.headers,
                 self->response_.body);
}

void ResponseHold::answer(http::ClientStream& c, int code, std::string reason, http::Headers headers,
                          std::string body) {
    http::finish_cross_origin(request_.cross_origin.get(), http::JsonpStyle::Held, code, reason, headers,
                              body);
    c.respond(code, reason, headers, body);
}

void ResponseHold::ask_again(bool behind) {
    timer_.disarm();
    unsubscribe_all();
    if (prev_ids_) {
        for (auto& e : prev_ids_->entries) {
            if (e.check) env_.broker.cancel_behind_check(e.check);
            e.check = 0;
            if (behind) request_.grip_last.push_back(e.name + "; last-id=" + e.id);
        }
    }
    http::ClientStream* c = client_;
    client_ = nullptr;
    if (retry_) {
        gone_ = nullptr; // the client stays: the new answer brings its own gone link, if any
        LOG_DEBUG("grip", "asking the backend again for %s (%s)", c->peer().c_str(),
                  behind ? "behind" : "hint");
        retry_(*c, std::move(request_));
    } else {
        answer(*c, response_.code, response_.reason, response_.headers, response_.body);
    }
}

void ResponseHold::recover() {
    if (client_ && retry_) ask_again(true); // the new request replaces this hold
}

void ResponseHold::on_message(pubsub::Subscription& sub, const pubsub::MessageRef& msg) {
    const auto* part = msg->http_response();
    if (!client_ || !part || !pubsub::passes_delivery_filters(sub, meta_, *msg)) return;
    if (part->action == pubsub::Action::Hint) {
        ask_again(false); // the new answer (maybe another hold) replaces this exchange
        return;
    }
    if (part->action != pubsub::Action::Send) return;
    if (prev_ids_ && msg->prev_id() && retry_) {
        // A message that does not follow what this hold has seen: something was missed.
        const std::string& channel = static_cast<HoldSub&>(sub).channel;
        for (const auto& e : prev_ids_->entries)
            if (e.channel == channel && e.id != *msg->prev_id()) {
                ask_again(true);
                return;
            }
    }
    timer_.disarm();
    unsubscribe_all();
    // body-patch: this hold's own body, patched (Pushpin answers 502 when the patch fails).
    std::optional<std::string> patched;
    if (part->body_patch) {
        std::string why;
        patched = apply_json_patch(response_.body, *part->body_patch, why);
        if (!patched) {
            LOG_DEBUG("grip", "failed to apply JSON patch on channel %s: %s", msg->channel().c_str(),
                      why.c_str());
            answer_error();
            return;
        }
    }
    std::optional<std::string> filtered;
    if (!filter_content(&static_cast<HoldSub&>(sub), msg.get(), patched ? *patched : part->body, filtered)) {
        answer_error();
        return;
    }
    if (filtered) patched = std::move(filtered);
    if (request_.cross_origin || !client_->is_http1()) {
        // CORS headers or a JSON-P wrapper make this client's answer its own: built here, not from
        // the bytes rendered once for every subscriber (HTTP/1.1 bytes: an HTTP/2 stream frames
        // its own).
        http::Headers headers;
        for (const auto& h : response_.headers)
            if (!pubsub::find_header(part->headers, h.name)) headers.add(h.name, h.value);
        for (const auto& h : part->headers)
            headers.add(h.name, h.value);
        headers.remove("Content-Length");
        http::ClientStream* c = client_;
        client_ = nullptr;
        std::string body;
        if (patched)
            body = std::move(*patched);
        else
            body = part->body;
        answer(*c, part->code, part->reason, std::move(headers), std::move(body));
        return;
    }
    ResponseOptions opts;
    opts.keep_alive = client_->client_keep_alive();
    opts.head = client_->request_is_head();
    std::string out;
    append_held_response(*part, response_.headers, opts, out,
                         patched ? std::optional<std::string_view>(*patched) : std::nullopt);
    http::ClientStream* c = client_;
    client_ = nullptr;
    c->send_raw(out);
    c->end_response();
}

void ResponseHold::on_content_filter_mismatch(pubsub::Subscription& /*sub*/, const pubsub::MessageRef& msg) {
    const auto* part = msg->http_response();
    if (!client_ || !part) return;
    log_content_filter_mismatch(*msg);
    timer_.disarm();
    unsubscribe_all();
    answer_error();
}

void ResponseHold::answer_error() {
    http::ClientStream* c = client_;
    client_ = nullptr;
    http::Headers h;
    h.add("Content-Type", "text/plain");
    answer(*c, 502, {}, std::move(h), "Error while proxying to origin.\n");
}

// ---- StreamHold ----

StreamHold::StreamHold(HoldEnv env, http::ClientStream& client, Instruct&& instruct, size_t max_channels,
                       const std::string& prefix, FetchLinkFn fetch_link)
    : Hold(env, client, instruct, max_channels, prefix), initial_(std::move(instruct.response)),
      keep_alive_(std::move(instruct.keep_alive)) {
    env_.stats.stream_holds.add();
    timer_.init(&env_.worker.timers(), this, &StreamHold::on_keep_alive);
    if (const std::string* ct = initial_.headers.get("Content-Type"))
        is_sse_ = std::string_view(*ct).substr(0, 17) == "text/event-stream";
    if (instruct.hold == HoldMode::Stream)
        for (size_t i = 0; i < named_count_; ++i)
            if (instruct.channels[i].prev_id)
                resume_ids_.emplace_back(subs_[i].channel, *instruct.channels[i].prev_id);
    if (instruct.next_link && fetch_link) {
        next_ = std::make_unique<NextLink>();
        next_->fetch = std::move(fetch_link);
        next_->link = std::move(instruct.next_link);
        next_->holding = instruct.hold == HoldMode::Stream;
        next_->max_channels = max_channels;
        next_->prefix = prefix;
        next_->timer.init(&env_.worker.timers(), this, &StreamHold::on_link_timer);
        for (const Channel& c : instruct.channels)
            if (c.prev_id) note_last_id(prefix + c.name, *c.prev_id);
    }
}

StreamHold::~StreamHold() {
    env_.stats.stream_holds.sub();
    if (next_)
        for (uint64_t t : next_->checks)
            env_.broker.cancel_behind_check(t);
}

void StreamHold::on_start() {
    http::ClientStream* c = client_;
    if (!response_sent_) {
        std::optional<std::string> filtered;
        bool filter_ok = initial_.body.empty() || filter_content(nullptr, nullptr, initial_.body, filtered);
        if (!c->send_head(initial_.code, initial_.reason, initial_.headers, -1)) return;
        if (!filter_ok) {
            end(); // Pushpin: the head, then the end of the response
            return;
        }
        if (filtered)
            c->send_body(*filtered);
        else if (!initial_.body.empty())
            c->send_body(initial_.body);
    }
    // What the stream still needs is only the subscriptions and the keep-alive: free the rest.
    initial_ = InstructResponse{};
    subscribe_all();
    arm_keep_alive();
    if (resume_) {
        // From history: each channel with a prev-id from it; a single channel also from the
        // client's Last-Event-ID (an SSE client sends it by itself when it reconnects).
        if (resume_ids_.empty() && !resume_->last_event_id.empty() && named_count_ == 1)
            resume_ids_.emplace_back(subs_[0].channel, resume_->last_event_id);
        auto ids = std::move(resume_ids_);
        for (const auto& [channel, id] : ids)
            resume_from(channel, id);
        if (!client_) return;
    } else {
        resume_ids_.clear();
        resume_ids_.shrink_to_fit();
    }
    if (next_) {
        // A plain response goes on at once; a stream hold is paced as Pushpin paces it (about a
        // second), so a backend that always answers with a link cannot make us poll it flat out,
        // unless it is behind its channel already.
        if (next_->holding) {
            schedule_next(kNextLinkPacingMs);
            check_behind(); // may follow the link at once: last
        } else {
            fetch_next();
        }
    }
}

void StreamHold::on_client_gone() {
    Hold::on_client_gone();
    if (next_) {
        next_->timer.disarm();
        next_->in_flight.reset();
    }
}

void StreamHold::arm_keep_alive() {
    if (keep_alive_)
        timer_.arm(static_cast<uint64_t>(keep_alive_->timeout) * 1000);
    else
        timer_.disarm();
}

void StreamHold::sent_data() {
    if (keep_alive_ && keep_alive_->mode == KeepAliveMode::Idle)
        timer_.arm(static_cast<uint64_t>(keep_alive_->timeout) * 1000);
}

// A client that does not read cannot make us buffer without bound: cut it off.
bool StreamHold::check_backlog() {
    if (!client_ || client_->queued_bytes() <= env_.max_queued_bytes) return true;
    LOG_DEBUG("grip", "cutting off slow stream client %s (%zu bytes queued)", client_->peer().c_str(),
              client_->queued_bytes());
    env_.stats.slow_clients_cut.add();
    timer_.disarm();
    unsubscribe_all();
    if (next_) {
        next_->timer.disarm();
        next_->in_flight.reset();
    }
    http::ClientStream* c = client_;
    client_ = nullptr;
    c->cut_off();
    return false;
}

void StreamHold::on_keep_alive(void* p) {
    auto* self = static_cast<StreamHold*>(p);
    if (!self->client_ || !self->keep_alive_) return;
    self->client_->send_body(self->keep_alive_->data);
    self->timer_.arm(static_cast<uint64_t>(self->keep_alive_->timeout) * 1000);
    self->check_backlog();
}

void StreamHold::on_content_filter_mismatch(pubsub::Subscription& /*sub*/, const pubsub::MessageRef& msg) {
    if (!client_ || !msg->http_stream()) return;
    log_content_filter_mismatch(*msg);
    end();
}

void StreamHold::on_resume(pubsub::Subscription& sub, pubsub::ReplayStatus status) {
    if (!client_ || status == pubsub::ReplayStatus::Covered) return;
    const std::string& channel = static_cast<HoldSub&>(sub).channel;
    LOG_DEBUG("grip", "history cannot cover the resume on %s for %s", channel.c_str(),
              client_->peer().c_str());
    if (next_ && next_->holding) {
        fetch_next(); // the link brings what was missed (Grip-Last says from where)
        return;
    }
    if (!is_sse_) {
        end(); // a plain stream has no way to say it: it ends, and the client starts over
        return;
    }
    // The SSE signal (README "History and resume"): an event a client can listen for.
    std::string name = channel;
    std::string data = "event: gripd-gap\ndata: {\"channel\":\"";
    for (char ch : name) {
        if (ch == '"' || ch == '\\') data += '\\';
        if (static_cast<unsigned char>(ch) >= 0x20) data += ch;
    }
    data +=
        status == pubsub::ReplayStatus::Gap ? "\",\"reason\":\"gap\"}\n\n" : "\",\"reason\":\"unknown\"}\n\n";
    client_->send_body(data);
    sent_data();
    check_backlog();
}

void StreamHold::on_message(pubsub::Subscription& sub, const pubsub::MessageRef& msg) {
    const auto* part = msg->http_stream();
    if (!client_ || !part || !pubsub::passes_delivery_filters(sub, meta_, *msg)) return;
    if (part->action == pubsub::Action::Close) {
        // A close naming a connection (gripd) ends only the stream that has that id.
        if (!part->connection_id || *part->connection_id == connection_id_) end();
        return;
    }
    if (part->action == pubsub::Action::Hint) {
        recover(); // Pushpin: the stream re-requests its next link (nothing without one)
        return;
    }
    if (part->action != pubsub::Action::Send || part->chunk.empty()) return;
    if (next_ && next_->holding && misses_before(static_cast<HoldSub&>(sub).channel, *msg)) {
        // The link brings what was missed (Grip-Last says from where); this item is not sent.
        fetch_next();
        return;
    }
    std::optional<std::string> filtered;
    if (!filter_content(&static_cast<HoldSub&>(sub), msg.get(), part->content(), filtered)) {
        end(); // Pushpin's doError on a stream: the response ends
        return;
    }
    if (filtered) {
        if (!filtered->empty()) client_->send_body(*filtered); // an empty chunk would end the response
    } else if (client_->is_chunked_response())
        client_->send_raw(part->chunk, msg);
    else
        client_->send_body(part->content(), msg); // shared, not copied (HTTP/2 streams, HTTP/1.0)
    sent_data();
    if (next_) {
        if (msg->id()) note_last_id(static_cast<HoldSub&>(sub).channel, *msg->id());
        // The link's timeout counts quiet time: a delivery starts it again.
        if (next_->quiet_wait) next_->timer.arm(static_cast<uint64_t>(next_->link->timeout) * 1000);
    }
    check_backlog();
}

} // namespace gripd::grip
