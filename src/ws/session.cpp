#include "session.hpp"

#include "gripd/http/access_log.hpp"
#include "gripd/http/debug_text.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/uuid.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/ws/control.hpp"
#include "gripd/ws/handshake.hpp"
#include "gripd/ws/render.hpp"

#include <cstdio>
#include <ctime>
#include <openssl/rand.h>
#include <random>

namespace gripd::ws {

namespace {
constexpr size_t kFrameSizeMax = 16384; // Pushpin relays messages in frames of at most this size
constexpr size_t kMaxHeld = 1024;       // publishes held while a relayed message is half written
constexpr uint64_t kKeepAliveJitterMs = 1000;

uint64_t jitter_ms() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return rng() % kKeepAliveJitterMs;
}
} // namespace

std::string make_connection_id() {
    return core::random_uuid();
}

// ---- ClientLink ----

void ClientLink::on_start() {
    if (session_) session_->start();
}

void ClientLink::on_client_gone() {
    Session* s = session_;
    session_ = nullptr;
    if (s) s->on_client_gone();
}

void ClientLink::on_client_writable() {
    if (session_) session_->on_client_writable();
}

void ClientLink::on_raw_data(std::string_view data) {
    if (session_) session_->on_client_data(data);
}

// ---- Session ----

Session::Session(WsService& service, http::ClientStream& client,
                 std::shared_ptr<const config::RouteTable> routes, const config::Route& route, bool trusted)
    : service_(service), routes_(std::move(routes)), route_(route), trusted_(trusted), client_(&client) {
    service_.mutable_stats().sessions.add();
}

Session::~Session() {
    unsubscribe_all();
    if (link_) link_->detach();
}

std::string Session::client_key(const http::RequestHead& head) {
    const std::string* key = head.headers.get("Sec-WebSocket-Key");
    return key ? *key : std::string();
}

bool Session::accept_client(const http::Headers& headers, std::string_view client_key) {
    if (!client_) return false;
    std::string out = "HTTP/1.1 101 Switching Protocols\r\n";
    http::serialize_headers(headers, out);
    out += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    out += accept_key(client_key);
    out += "\r\n\r\n";
    if (!set_state(ClientState::Open)) { // a second answer to one handshake
        drop_client();
        return false;
    }
    service_.mutable_stats().connections_of(mode()).add();
    client_->send_raw(out);
    if (codec_) {
        client_->send_raw(codec_->opening());
        if (uint64_t ms = codec_->heartbeat_ms()) {
            heartbeat_ = std::make_unique<loop::TimerEntry>();
            heartbeat_->init(&service_.worker().timers(), this, &Session::on_heartbeat_timer);
            heartbeat_->arm(ms);
        }
    }
    client_->enter_raw_mode(); // may deliver frames the client sent early
    return client_ != nullptr;
}

void Session::on_heartbeat_timer(void* p) {
    auto* self = static_cast<Session*>(p);
    if (!self->client_ || self->client_close_sent() || !self->codec_) return;
    self->heartbeat_->arm(self->codec_->heartbeat_ms());
    self->client_->send_raw(self->codec_->heartbeat());
    self->check_backlog();
}

bool Session::send_encoded(std::string_view bytes) {
    std::string out;
    if (!codec_->encode(bytes, out)) {
        LOG_DEBUG("ws", "client %s: a message cannot be re-framed (too large or not UTF-8)",
                  client_->peer().c_str());
        close_client(kCloseInternalError, "");
        return false;
    }
    if (!out.empty()) client_->send_raw(out);
    return true;
}

void Session::on_codec_frame(const Frame& frame) {
    std::vector<std::string> messages;
    if (!codec_->decode(frame, messages)) {
        service_.mutable_stats().protocol_errors.add();
        LOG_DEBUG("ws", "client %s sent a payload its transport does not allow (closing with 1007)",
                  client_->peer().c_str());
        if (!client_close_sent()) {
            std::string f;
            append_close_frame(f, kCloseInvalidData, "");
            send_close_frame(f, {});
        }
        end_client(false, Ending::Flush, true);
        return;
    }
    for (const auto& m : messages) {
        if (!client_ || is_finished() || client_close_received()) return;
        Frame one{WsOpcode::Text, WsOpcode::Text, true, true, m};
        on_client_frame(one);
    }
}

void Session::reject_client(int status, std::string_view reason, const http::Headers& headers,
                            std::string_view body) {
    http::ClientStream* c = client_;
    if (!c) return;
    client_ = nullptr;
    if (link_) link_->detach();
    link_ = nullptr;
    set_state(ClientState::Ended);
    c->respond(status, reason, headers, body);
    if (!c->is_closing()) c->close_after_flush(); // the request was an upgrade: nothing follows on it
}

void Session::log_handshake(int code, const http::RequestHead* head, const config::Target& target) const {
    if (!core::log_enabled(core::LogLevel::Info)) return;
    http::RequestHead none;
    none.method = "GET";
    http::AccessLog line(head ? *head : none, "ws", client_ ? std::string_view(client_->peer()) : "",
                         service_.settings());
    line.write("ws", target.to_string(), target.over_http,
               route_.explicit_id ? route_.id : std::string_view(), http::AccessLog::Outcome::Response, code,
               0);
}

void Session::reject_bad_gateway(bool no_target_connected) {
    http::Headers h;
    h.add("Content-Type", "text/plain");
    if (no_target_connected && http::debug_enabled(service_.settings(), route_))
        reject_client(502, {}, h, http::unable_to_connect_text(route_));
    else
        reject_client(502, {}, h, "Error while proxying to origin.\n");
}

bool Session::set_state(ClientState to) {
    return enter_state(state_, to, "ws session");
}

std::string Session::dump() const {
    return format_dump(
        state_name(state_),
        {{"grip", grip_}, {"detached", detached_}, {"paused", paused_}, {"trusted", trusted_}});
}

http::ClientStream* Session::release_client() {
    http::ClientStream* c = client_;
    if (!c) return nullptr;
    bool was_accepted = state_ != ClientState::Handshake;
    client_ = nullptr;
    if (link_) link_->detach();
    link_ = nullptr;
    if (close_timer_) close_timer_->disarm();
    if (keep_alive_) keep_alive_->timer.disarm();
    if (heartbeat_) heartbeat_->disarm();
    if (delayed_) {
        // A pending send-delayed message goes with the client, as in Pushpin. (Not freed here:
        // this may run inside its timer's callback.)
        delayed_->timer.disarm();
        delayed_->pending = delayed_->due = false;
        delayed_->content = std::string();
    }
    held_.clear();
    held_bytes_ = 0;
    unsubscribe_all();
    if (was_accepted) service_.mutable_stats().connections_of(mode()).sub();
    set_state(ClientState::Ended);
    return c;
}

void Session::end_client(bool clean, Ending how, bool notify) {
    http::ClientStream* c = release_client();
    if (!c) return;
    switch (how) {
    case Ending::Flush:
        c->close_after_flush();
        break;
    case Ending::Abort:
        c->abort_response();
        break;
    case Ending::Reset:
        c->cut_off();
        break;
    }
    if (notify) on_client_ended(clean);
}

void Session::on_client_gone() {
    // The connection is closing on its own (peer gone, error, server stop).
    link_ = nullptr; // the link has let go of us already
    bool clean = state_ == ClientState::Closed;
    if (!release_client()) return;
    on_client_ended(clean);
}

void Session::on_client_writable() {
    if (client_) on_client_drained();
}

void Session::pause_client() {
    if (!client_ || paused_) return;
    paused_ = true;
    client_->pause_request_body();
}

void Session::resume_client() {
    if (!client_ || !paused_) return;
    paused_ = false;
    client_->resume_request_body();
}

void Session::on_client_data(std::string_view data) {
    if (!client_ || client_close_received()) return; // nothing may follow a close frame
    if (!parser_) {
        FrameParser::Handler& handler = *this; // a protected base: convert here, not in make_unique
        parser_ = std::make_unique<FrameParser>(handler, FrameParser::Role::Server, frame_limits());
    }
    parser_->feed(data.data(), data.size());
    if (!client_ || is_finished()) return;
    if (parser_->state() == FrameParser::State::Ok) {
        if (parser_->is_idle() && !parser_->in_message()) parser_.reset();
        return;
    }
    if (parser_->state() == FrameParser::State::Error) {
        service_.mutable_stats().protocol_errors.add();
        LOG_DEBUG("ws", "client %s broke the protocol: %s (closing with %d)", client_->peer().c_str(),
                  parser_->error_message(), parser_->error_code());
        if (!client_close_sent()) {
            std::string f;
            append_close_frame(f, parser_->error_code(), "");
            send_close_frame(f, {});
        }
        end_client(false, Ending::Flush, true); // nothing if the client went meanwhile
    }
}

void Session::on_frame(const Frame& frame) {
    if (frame.opcode == WsOpcode::Close) {
        ClosePayload cp;
        int err = 0;
        parse_close_payload(frame.payload, &cp, &err); // validated by the parser
        peer_close_code_ = cp.code;
        bool answer = client_close_sent(); // their close answers ours
        if (!set_state(after_close_received(state_))) {
            drop_client();
            return;
        }
        if (answer) {
            on_client_close_reply(cp.code, cp.reason);
            end_client(true, Ending::Flush, true);
            return;
        }
        if (detached_) {
            close_client(cp.code == kCloseNoStatus ? -1 : cp.code, cp.reason);
            return;
        }
        on_client_close(cp.code, cp.reason);
        return;
    }
    if (codec_ && !detached_ && frame.opcode != WsOpcode::Ping && frame.opcode != WsOpcode::Pong) {
        on_codec_frame(frame);
        return;
    }
    if (detached_) {
        // Nothing is relayed any more; answer pings ourselves.
        if (frame.opcode == WsOpcode::Ping) {
            std::string f;
            append_frame(f, WsOpcode::Pong, frame.payload);
            send_frames(f);
        }
        return;
    }
    on_client_frame(frame);
}

void Session::send_frames(std::string_view bytes, const std::shared_ptr<const void>& keep) {
    if (!client_ || client_close_sent()) return;
    if (codec_) {
        if (send_encoded(bytes)) check_backlog();
        return;
    }
    client_->send_raw(bytes, keep);
    check_backlog();
}

void Session::send_message(WsOpcode type, std::string_view data) {
    if (!client_ || client_close_sent()) return;
    std::string out;
    if (type == WsOpcode::Ping || type == WsOpcode::Pong)
        append_frame(out, type, data.substr(0, 125));
    else
        append_message(out, type, data, kFrameSizeMax);
    send_relayed(out, true);
}

void Session::send_relayed(std::string_view frame_bytes, bool ends_message) {
    if (!client_ || client_close_sent()) return;
    if (ends_message) service_.mutable_stats().messages_out.add();
    note_activity();
    // Relayed data is flow-controlled (the backend side waits for the client): no cap here.
    if (codec_) {
        send_encoded(frame_bytes);
        return;
    }
    client_->send_raw(frame_bytes);
}

bool Session::check_backlog() {
    if (!client_ || client_->queued_bytes() <= service_.limits().max_client_queue) return true;
    LOG_DEBUG("ws", "cutting off slow WebSocket client %s (%zu bytes queued)", client_->peer().c_str(),
              client_->queued_bytes());
    service_.mutable_stats().slow_clients_cut.add();
    end_client(false, Ending::Reset, true);
    return false;
}

void Session::close_client(int code, std::string_view reason) {
    if (!client_ || client_close_sent()) return;
    std::string f;
    append_close_frame(f, code, reason);
    close_client_with_frame(f, {});
}

void Session::close_client_with_frame(std::string_view frame, const std::shared_ptr<const void>& keep) {
    if (!client_ || client_close_sent()) return;
    if (state_ == ClientState::Handshake || !send_close_frame(frame, keep)) {
        drop_client(); // nothing if the client went while we wrote
        return;
    }
    if (keep_alive_) keep_alive_->timer.disarm();
    if (state_ == ClientState::Closed) {
        end_client(true, Ending::Flush, true);
        return;
    }
    if (!close_timer_) {
        close_timer_ = std::make_unique<loop::TimerEntry>();
        close_timer_->init(&service_.worker().timers(), this, &Session::on_close_timer);
    }
    close_timer_->arm(service_.limits().close_timeout_ms);
}

bool Session::send_close_frame(std::string_view frame, const std::shared_ptr<const void>& keep) {
    if (!set_state(after_close_sent(state_))) return false;
    client_->send_raw(frame, keep);
    return client_ != nullptr;
}

void Session::on_close_timer(void* p) {
    auto* self = static_cast<Session*>(p);
    if (!self->client_) return;
    LOG_DEBUG("ws", "client %s did not answer our close frame (%s)", self->client_->peer().c_str(),
              self->dump().c_str());
    self->end_client(false, Ending::Abort, true);
}

// ---- GRIP ----

void Session::subscribe(const std::string& channel, std::vector<std::string> filters, bool implicit,
                        const std::optional<std::string>& last_id) {
    for (const auto& s : subs_)
        if (s->is_active() && s->channel() == channel) return;
    if (subs_.size() >= static_cast<size_t>(service_.settings().connection_subscription_max)) {
        LOG_DEBUG("ws", "subscription to %s ignored: connection already has %zu", channel.c_str(),
                  subs_.size());
        return;
    }
    auto s = std::make_unique<Sub>();
    s->owner = this;
    s->filters = std::move(filters);
    s->format = pubsub::Subscription::Format::WsMessage;
    s->implicit = implicit;
    service_.broker().subscribe(*s, channel);
    service_.mutable_stats().subscriptions.add();
    LOG_DEBUG("ws", "subscribe channel=%s", channel.c_str());
    subs_.push_back(std::move(s));
    if (last_id) resume(*subs_.back(), *last_id);
}

void Session::resume(pubsub::Subscription& sub, const std::string& last_id) {
    // History (README "History and resume"): on when the route or [gripd] keeps some.
    const auto& st = service_.settings();
    int size = route_.history_size >= 0 ? route_.history_size : st.history_size;
    if (size <= 0) {
        LOG_DEBUG("ws", "subscribe last-id on %s: no history on this route", sub.channel().c_str());
        on_resume(sub, pubsub::ReplayStatus::Unknown);
        return;
    }
    std::optional<pubsub::HistoryBounds> bounds;
    if (route_.history_size >= 0 || route_.history_ttl >= 0)
        bounds = pubsub::HistoryBounds{
            static_cast<uint32_t>(size), static_cast<uint64_t>(st.history_channel_bytes),
            static_cast<uint64_t>(route_.history_ttl >= 0 ? route_.history_ttl : st.history_ttl) * 1000};
    service_.broker().resume(sub, last_id, bounds);
}

void Session::on_resume(pubsub::Subscription& sub, pubsub::ReplayStatus status) {
    if (status == pubsub::ReplayStatus::Covered || !client_) return;
    if (state_ != ClientState::Open && state_ != ClientState::CloseReceived) return;
    // The signal (README "History and resume"): a text message the client can recognise.
    std::string text = "{\"type\":\"gripd-gap\",\"channel\":";
    core::json::append_string(text, sub.channel());
    text += status == pubsub::ReplayStatus::Gap ? ",\"reason\":\"gap\"}" : ",\"reason\":\"unknown\"}";
    send_message(WsOpcode::Text, text);
}

void Session::subscribe_implicit(const config::Target& target) {
    // Pushpin 1.36 does not apply the route prefix to sub= channels.
    for (const auto& ch : target.subscriptions)
        subscribe(ch, {}, true);
}

void Session::unsubscribe_all() {
    for (auto& s : subs_) {
        if (!s->is_active()) continue;
        service_.broker().unsubscribe(*s);
        service_.mutable_stats().subscriptions.sub();
    }
    subs_.clear();
}

void Session::apply_control(std::string_view json) {
    std::string error;
    auto m = parse_control_message(json, &error);
    if (!m) {
        LOG_DEBUG("ws", "ignoring control message: %s", error.c_str());
        return;
    }
    switch (m->type) {
    case ControlMessage::Type::Subscribe:
        if (client_) subscribe(route_.prefix + m->channel, std::move(m->filters), false, m->last_id);
        break;
    case ControlMessage::Type::Unsubscribe: {
        std::string channel = route_.prefix + m->channel;
        for (auto it = subs_.begin(); it != subs_.end(); ++it) {
            if (!(*it)->is_active() || (*it)->channel() != channel || (*it)->implicit) continue;
            if ((*it)->is_active()) {
                service_.broker().unsubscribe(**it);
                service_.mutable_stats().subscriptions.sub();
            }
            subs_.erase(it);
            break;
        }
        break;
    }
    case ControlMessage::Type::Detach:
        if (!detached_) {
            detached_ = true;
            on_detach();
        }
        break;
    case ControlMessage::Type::SetMeta: {
        for (auto it = meta_.begin(); it != meta_.end(); ++it)
            if (it->first == m->name) {
                meta_.erase(it);
                break;
            }
        if (m->value) meta_.emplace_back(m->name, *m->value);
        break;
    }
    case ControlMessage::Type::KeepAlive:
        setup_keep_alive(*m);
        break;
    case ControlMessage::Type::SendDelayed:
        send_delayed(*m);
        break;
    case ControlMessage::Type::FlushDelayed:
        flush_delayed();
        break;
    case ControlMessage::Type::Session:
        // Pushpin 1.36 only hands the id to its external session-state service (handler
        // state_spec, which gripd does not have and warns about at startup): nothing to do.
        LOG_DEBUG("ws", "session id %s noted (no session-state service)",
                  m->value ? m->value->c_str() : "(none)");
        break;
    }
}

void Session::send_delayed(const ControlMessage& m) {
    if (!client_) return;
    // As Pushpin's WsSession::sendDelayed: a message already waiting is sent now, then this one
    // waits its timeout (seconds; absent or 0: 1 s). No content: an empty message, as Pushpin.
    flush_delayed();
    if (!client_) return;
    if (!delayed_) {
        delayed_ = std::make_unique<Delayed>();
        delayed_->timer.init(&service_.worker().timers(), this, &Session::on_delayed_timer);
    }
    delayed_->type = opcode_of(m.message_type);
    delayed_->content = m.content.value_or(std::string());
    delayed_->pending = true;
    delayed_->due = false;
    int timeout = m.timeout > 0 ? m.timeout : kDefaultSendDelayedTimeout;
    delayed_->timer.arm(static_cast<uint64_t>(timeout) * 1000);
}

void Session::flush_delayed() {
    if (!delayed_ || !delayed_->pending) return;
    delayed_->timer.disarm();
    if (relay_in_progress()) {
        // Behind the relayed message being written, like a held publish (flush_held sends it).
        delayed_->due = true;
        return;
    }
    delayed_->pending = false;
    delayed_->due = false;
    std::string content = std::move(delayed_->content);
    delayed_->content.clear();
    send_message(delayed_->type, content);
    check_backlog();
}

void Session::on_delayed_timer(void* p) {
    auto* self = static_cast<Session*>(p);
    if (!self->client_) return;
    self->flush_delayed();
}

void Session::setup_keep_alive(const ControlMessage& m) {
    int timeout = m.timeout >= 0 ? m.timeout : kDefaultKeepAliveTimeout;
    if (!m.content || timeout <= 0) {
        keep_alive_.reset();
        return;
    }
    if (!keep_alive_) {
        keep_alive_ = std::make_unique<KeepAlive>();
        keep_alive_->timer.init(&service_.worker().timers(), this, &Session::on_keep_alive_timer);
    }
    keep_alive_->frame.clear();
    WsOpcode op = opcode_of(m.message_type);
    if (op == WsOpcode::Ping || op == WsOpcode::Pong)
        append_frame(keep_alive_->frame, op, std::string_view(*m.content).substr(0, 125));
    else
        append_message(keep_alive_->frame, op, *m.content, kFrameSizeMax);
    keep_alive_->timeout_ms = static_cast<uint64_t>(timeout) * 1000;
    keep_alive_->interval = m.interval;
    arm_keep_alive();
}

void Session::arm_keep_alive() {
    if (!keep_alive_ || !client_ || client_close_sent()) return;
    uint64_t j = jitter_ms();
    uint64_t t = keep_alive_->timeout_ms > j ? keep_alive_->timeout_ms - j : keep_alive_->timeout_ms;
    keep_alive_->timer.arm(t);
}

void Session::note_activity() {
    if (keep_alive_ && !keep_alive_->interval) arm_keep_alive();
}

void Session::on_keep_alive_timer(void* p) {
    auto* self = static_cast<Session*>(p);
    if (!self->client_ || !self->keep_alive_) return;
    self->service_.mutable_stats().messages_out.add();
    self->arm_keep_alive();
    self->send_frames(self->keep_alive_->frame);
}

http::Headers Session::upstream_headers(const http::RequestHead& head, const config::Target& t) {
    http::ForwardContext ctx{service_.settings(),
                             route_,
                             t,
                             client_ ? std::string_view(client_->peer()) : std::string_view(),
                             client_ && client_->is_tls(),
                             trusted_,
                             static_cast<int64_t>(std::time(nullptr))};
    return http::upstream_headers(head, ctx);
}

void Session::negotiate_grip(const http::Headers& backend_headers, http::Headers& out) {
    auto grip = find_extension(backend_headers, "grip");
    if (!grip) return;
    if (!trusted_) {
        const std::string* p = grip->param("message-prefix");
        enable_grip(p ? *p : std::string("m:"));
        return;
    }
    for (auto v : backend_headers.get_all("Sec-WebSocket-Extensions"))
        out.add("Sec-WebSocket-Extensions", v);
}

void Session::relay_backend_message(WsOpcode type, std::string_view data) {
    if (!grip_) {
        send_message(type, data);
        return;
    }
    if (type == WsOpcode::Text && data.substr(0, 2) == "c:") {
        apply_control(data.substr(2));
        return;
    }
    if (data.substr(0, message_prefix_.size()) == message_prefix_) {
        send_message(type, data.substr(message_prefix_.size()));
        return;
    }
    LOG_TRACE("ws", "dropping unprefixed backend message");
}

// ---- publishes ----

bool Session::has_subscription(std::string_view channel) const {
    for (const auto& s : subs_)
        if (s->is_active() && s->channel() == channel) return true;
    return false;
}

namespace {

// `msg` with its ws-message content run through the subscription's content filters (var-subst,
// build-id; pubsub/filters.hpp): each subscriber's meta makes its own frame, so the shared one
// cannot serve. Null when a filter fails: Pushpin 1.36 drops the item for that subscriber.
pubsub::MessageRef filtered_message(const pubsub::Subscription& sub, const pubsub::Meta& meta,
                                    const pubsub::Message& msg) {
    const auto* part = msg.ws_message();
    std::string why;
    auto content = pubsub::apply_content_filters(sub.filters, meta, nullptr, part->payload(), why);
    if (!content) {
        LOG_DEBUG("ws", "filter error on channel %s: %s", msg.channel().c_str(), why.c_str());
        return nullptr;
    }
    pubsub::PublishItem item;
    item.channel = msg.channel();
    item.id = msg.id();
    item.ws_message.emplace();
    item.ws_message->type = part->type;
    item.ws_message->content = std::move(*content);
    return pubsub::Message::create(std::move(item));
}

} // namespace

void Session::on_message(pubsub::Subscription& sub, const pubsub::MessageRef& original) {
    pubsub::MessageRef msg = original;
    const auto* part = msg->ws_message();
    if (!part || !client_ || (state_ != ClientState::Open && state_ != ClientState::CloseReceived)) return;
    // As Pushpin, the filters apply to every action (a skipped close does not close).
    if (!pubsub::passes_delivery_filters(sub, meta_, *msg)) return;
    switch (part->action) {
    case pubsub::Action::Send:
        if (part->frame.empty()) return;
        if (pubsub::has_content_filter(sub.filters) && !(msg = filtered_message(sub, meta_, *msg))) return;
        if (relay_in_progress()) {
            // Held publishes count against the client's output cap like queued ones: a client
            // (or backend) that keeps a relayed message half written is cut off as a slow
            // consumer, never left to lose publishes silently.
            held_bytes_ += part->frame.size();
            if (held_.size() >= kMaxHeld ||
                held_bytes_ + client_->queued_bytes() > service_.limits().max_client_queue) {
                LOG_DEBUG("ws", "cutting off WebSocket client %s: %zu publishes (%zu bytes) held",
                          client_->peer().c_str(), held_.size(), held_bytes_);
                service_.mutable_stats().slow_clients_cut.add();
                end_client(false, Ending::Reset, true);
                return;
            }
            held_.push_back(msg);
            return;
        }
        deliver(msg);
        break;
    case pubsub::Action::Close:
        if (part->connection_id && *part->connection_id != connection_id()) return; // another connection's
        on_publish_close();
        if (part->frame.empty())
            close_client(part->close_code, part->close_reason);
        else
            close_client_with_frame(part->frame, msg);
        break;
    case pubsub::Action::Refresh:
        on_refresh();
        break;
    default:
        break;
    }
}

void Session::deliver(const pubsub::MessageRef& msg) {
    service_.mutable_stats().messages_out.add();
    service_.mutable_stats().deliveries.add();
    note_activity();
    send_frames(msg->ws_message()->frame, msg); // rendered once, shared by every subscriber
}

void Session::flush_held() {
    if (delayed_ && delayed_->due) {
        // Its time came while a relayed message was half written: it goes now that it ended.
        flush_delayed();
    }
    if (held_.empty()) return;
    std::vector<pubsub::MessageRef> held = std::move(held_);
    held_.clear();
    held_bytes_ = 0;
    for (const auto& m : held) {
        if (!client_ || client_close_sent()) break;
        deliver(m);
    }
}

void Session::stop() {
    if (client_ && (state_ == ClientState::Open || state_ == ClientState::CloseReceived)) {
        std::string f;
        append_close_frame(f, kCloseGoingAway, "");
        send_close_frame(f, {});
    }
    if (client_) end_client(false, Ending::Flush, false);
    finish();
}

void Session::finish() {
    if (is_finished()) return;
    if (client_) end_client(false, Ending::Abort, false);
    if (!set_state(ClientState::Finished)) state_ = ClientState::Finished; // logged: it ends all the same
    unsubscribe_all();
    keep_alive_.reset();
    delayed_.reset();
    heartbeat_.reset();
    if (close_timer_) close_timer_->disarm();
    service_.mutable_stats().sessions.sub();
    service_.release(*this);
}

} // namespace gripd::ws
