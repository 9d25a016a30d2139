#include "woh_session.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/jwt.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/loop/worker.hpp"

#include <cstdio>
#include <ctime>
#include <random>

namespace gripd::ws {

namespace {
// Pushpin: a request body at most (one larger message goes alone) / events buffered from the client.
// Every byte of every event counts, framing included.
constexpr size_t kBufferSize = 200000;
// Events buffered from the client: reading pauses at kBufferSize bytes or kEventsMax events. The
// read in progress is still parsed (at most 64 KiB, which encodes to at most 128 KiB, 10923 events:
// a masked frame is 6 bytes or more), so the hard bounds are never reached by a client that TCP
// paces; one that gets past them anyway (an unforeseen path) is closed with 1008, never buffered.
constexpr size_t kEventsMax = 16384;
constexpr size_t kHardBytes = kBufferSize + 256 * 1024;
constexpr size_t kHardEvents = kEventsMax + 16384;
constexpr size_t kResponseBodyMax = 1000000; // Pushpin: response body limit
constexpr size_t kRejectBodyMax = 100000;    // Pushpin: body of a refused OPEN relayed to the client
constexpr int kRetryMax = 5;
constexpr uint64_t kRetryBaseMs = 1000;
constexpr uint64_t kRetryJitterMs = 1000;
constexpr std::string_view kEventsType = "application/websocket-events";

uint64_t retry_jitter() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return rng() % kRetryJitterMs;
}

// A CLOSE event's content is a close frame's payload, read by the one close payload parser. An
// invalid one (1 byte, a code that may not be sent, a reason that is not UTF-8) counts as a CLOSE
// without a code: the client must never be sent an invalid close frame.
void read_peer_close(std::string_view content, int* code, std::string* reason) {
    ClosePayload cp;
    int error = 0;
    if (!parse_close_payload(content, &cp, &error)) {
        LOG_DEBUG("ws", "backend sent an invalid CLOSE payload: relayed without a code");
        return;
    }
    if (cp.code == kCloseNoStatus) return;
    *code = cp.code;
    *reason = std::string(cp.reason);
}

bool is_private_response_header(std::string_view name) {
    static constexpr std::string_view kNames[] = {"Content-Length",           "Content-Type",
                                                  "Keep-Alive-Interval",      "Content-Bytes-Accepted",
                                                  "Sec-WebSocket-Extensions", "Sec-WebSocket-Accept"};
    for (auto n : kNames)
        if (core::iequals(name, n)) return true;
    return core::istarts_with(name, "Set-Meta-") || http::is_hop_by_hop(name);
}
} // namespace

struct WohSession::Request {
    std::string wire;    // the whole request (kept to resend it on a retry)
    size_t messages = 0; // out_ events it carries
    size_t content = 0;  // their content bytes
    size_t close_content = 0;
    bool maxed = false; // out_ had more than fitted
    bool open = false;
    bool disconnect = false;
    bool close = false;
    bool fast_retried = false;
    bool retry_wait = false; // waits for the retry timer, on no connection
    bool got_head = false;
    http::ResponseHead head;
    std::string body;
};

WohSession::WohSession(WsService& service, http::ClientStream& client,
                       std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                       bool trusted, http::RequestHead& head, size_t target_index)
    : Session(service, client, std::move(routes), route, trusted), target_index_(target_index),
      head_(std::make_unique<http::RequestHead>(std::move(head))) {
    std::string cid = make_connection_id();
    std::snprintf(cid_, sizeof(cid_), "%s", cid.c_str());
    timer_.init(&service_.worker().timers(), this, &WohSession::on_timer);
}

// The lease abandons a backend connection still held; one that closed (shutdown) emptied it first.
WohSession::~WohSession() = default;

// ---- opening ----

bool WohSession::prepare_target() {
    const config::Target& t = route_.targets[target_index_];
    http::Headers h = upstream_headers(*head_, t);
    // An ssl target's TLS name comes from the handshake's headers, which are not kept.
    if (t.ssl)
        tls_target_ = std::make_unique<http::BackendTarget>(http::backend_target(route_, t, head_->headers));
    else
        tls_target_.reset();
    sign_ = h.has("Grip-Sig");
    features_ = h.has("Grip-Feature");
    for (auto name : {"Grip-Sig", "Grip-Feature", "Upgrade", "Accept", "Connection-Id", "Content-Length",
                      "Content-Type", "Content-Bytes-Replayed", "Sec-WebSocket-Extensions"})
        h.remove(name);
    h.remove_prefix("Meta-");
    h.add("Sec-WebSocket-Extensions", "grip"); // Pushpin 1.36 offers it on every route
    request_head_ = "POST ";
    request_head_ += http::upstream_target(route_, head_->target);
    request_head_ += " HTTP/1.1\r\n";
    http::serialize_headers(h, request_head_);
    request_head_.shrink_to_fit(); // kept for the connection's life: no growth slack
    return true;
}

void WohSession::start() {
    prepare_target();
    update();
}

std::string WohSession::render_request(const std::string& body, size_t replayed) const {
    std::string out;
    out.reserve(request_head_.size() + body.size() + 256);
    out += request_head_;
    if (sign_) { // set only when upstream_headers() signed, so the key is there and can sign
        const core::JwtKeyRef& key = route_.sig_key ? route_.sig_key : service_.settings().sig_key;
        const std::string& iss = route_.sig_iss.empty() ? service_.settings().sig_iss : route_.sig_iss;
        out += "Grip-Sig: ";
        out += core::cached_grip_sig(iss, key, static_cast<int64_t>(std::time(nullptr)));
        out += "\r\n";
    }
    if (features_) {
        out += "Grip-Feature: ";
        out += http::kGripFeatures;
        out += "\r\n";
    }
    out += "Accept: application/websocket-events\r\nConnection-Id: ";
    out += cid_;
    out += "\r\nContent-Type: application/websocket-events\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\n";
    if (replayed > 0) out += "Content-Bytes-Replayed: " + std::to_string(replayed) + "\r\n";
    http::Headers meta;
    for (const auto& [name, value] : meta_)
        meta.add("Meta-" + name, value);
    http::serialize_headers(meta, out);
    out += "\r\n";
    out += body;
    return out;
}

// ---- requests ----

bool WohSession::need_update() const {
    if (req_ || state_ == WohState::Opening || state_ == WohState::Closed) return false;
    if (state_ == WohState::Disconnecting) return true;
    if (update_queued_) return true;
    if (state_ == WohState::DisconnectSent) return false;
    // Room for the answer: hold back while the client is slow to read.
    if (client_queued_bytes() >= kBufferSize) return false;
    bool new_data = out_.events() > replay_messages_ || out_.content_bytes() > replay_bytes_;
    if (!out_.empty() && new_data) return true;
    return (state_ == WohState::CloseQueued || state_ == WohState::CloseAnswering) && out_.empty();
}

void WohSession::update() {
    if (req_ || processing_ || state_ == WohState::Closed || is_finished()) return;
    if (service_.worker().is_stopping()) {
        backend_done();
        return;
    }
    update_queued_ = false;
    timer_.disarm();
    auto r = std::make_unique<Request>();
    std::string body;
    if (state_ == WohState::Opening) {
        if (!has_client()) { // the client left while the backend deferred the OPEN
            backend_done();
            return;
        }
        append_event(body, EventType::Open);
        r->open = true;
    } else if (state_ == WohState::Disconnecting) {
        append_event(body, EventType::Disconnect);
        if (!set_state(WohState::DisconnectSent)) return fail("bad state");
        r->disconnect = true;
    } else if (state_ != WohState::DisconnectSent) {
        const config::Target& t = route_.targets[target_index_];
        size_t max_events = t.one_event ? 1 : SIZE_MAX;
        EventQueue::Batch b = out_.front(kBufferSize, max_events);
        body.assign(b.bytes);
        r->messages = b.events;
        r->content = b.content;
        r->maxed = b.events < out_.events();
        // The CLOSE goes after every pending event, in a body that stays within the cap (else in
        // the next request: nothing the client sent before its close is dropped).
        bool close_due = state_ == WohState::CloseQueued || state_ == WohState::CloseAnswering;
        if (close_due && !r->maxed && b.events < max_events) {
            std::string close;
            if (close_code_ >= 0) {
                std::string p = close_payload(close_code_, close_reason_);
                append_event(close, EventType::Close, p);
                r->close_content = p.size();
            } else {
                append_event(close, EventType::Close);
            }
            if (b.events == 0 || body.size() + close.size() <= kBufferSize) {
                body += close;
                r->close = true;
            } else {
                r->close_content = 0;
            }
        }
    }
    r->wire = render_request(body, replay_bytes_);
    req_ = std::move(r);
    send_request();
}

void WohSession::send_request() {
    const config::Target& t = route_.targets[target_index_];
    service_.mutable_stats().woh_requests.add();
    req_->got_head = false;
    req_->head = http::ResponseHead{};
    req_->body.clear();
    http::BackendTarget plain{t.connect_host, t.connect_port, std::nullopt};
    plain.deny_internal = !t.trusted;
    service_.backends().acquire(tls_target_ ? *tls_target_ : plain, *this, backend_);
}

void WohSession::on_backend_connected() {
    if (!GRIPD_CHECK(req_)) { // acquire is only called with a request, and req_ goes only with the lease
        backend_.release();
        return;
    }
    backend_->expect_no_body(false);
    backend_->send(req_->wire);
}

void WohSession::on_backend_connect_failed(int uv_status) {
    if (!req_) return;
    const config::Target& t = route_.targets[target_index_];
    LOG_DEBUG("ws", "connect to %s:%d failed: %s", t.connect_host.c_str(), t.connect_port,
              uv_strerror(uv_status));
    if (state_ == WohState::Opening) {
        connect_failed_while_opening();
        return;
    }
    retry_later();
}

void WohSession::on_backend_error(int uv_status, bool retryable) {
    if (!req_) return;
    if (retryable && !req_->fast_retried) {
        // A pooled connection the backend had closed: once more on a fresh one, at once.
        req_->fast_retried = true;
        send_request();
        return;
    }
    LOG_DEBUG("ws", "backend connection failed during a request for %s: %s", cid_, uv_strerror(uv_status));
    if (state_ == WohState::Opening) {
        req_.reset();
        refuse_open();
        return;
    }
    fail("backend connection failed");
}

// The OPEN went wrong (no backend, an error, a bad answer): the client gets a 502 instead of a 101.
void WohSession::refuse_open() {
    log_access(502);
    reject_bad_gateway();
    backend_done();
}

void WohSession::connect_failed_while_opening() {
    req_.reset();
    while (++target_index_ < route_.targets.size()) {
        const config::Target& t = route_.targets[target_index_];
        if (t.type == config::TargetType::Default && t.over_http) {
            prepare_target();
            update();
            return;
        }
    }
    --target_index_;
    refuse_open();
}

void WohSession::retry_later() {
    if (retries_ >= kRetryMax) {
        fail("backend unreachable");
        return;
    }
    uint64_t delay = kRetryBaseMs << retries_;
    delay += retry_jitter();
    ++retries_;
    LOG_DEBUG("ws", "woh: trying again in %llums", static_cast<unsigned long long>(delay));
    req_->retry_wait = true;
    timer_.arm(delay);
}

void WohSession::on_timer(void* p) {
    auto* self = static_cast<WohSession*>(p);
    if (self->req_ && self->req_->retry_wait) {
        self->req_->retry_wait = false;
        self->send_request();
        return;
    }
    // Keep-Alive-Interval: an (empty) request so that the backend may push.
    if (!self->req_ && is_connected(self->state_)) self->update_queued_ = true;
    self->update();
}

void WohSession::on_backend_head(http::ResponseHead& head) {
    if (!req_) return;
    req_->head = std::move(head);
    req_->got_head = true;
}

void WohSession::on_backend_body(std::string_view data) {
    if (!req_) return;
    if (req_->body.size() + data.size() > kResponseBodyMax) {
        backend_.abandon();
        if (state_ == WohState::Opening) {
            req_.reset();
            refuse_open();
            return;
        }
        fail("response body too large");
        return;
    }
    req_->body.append(data);
}

void WohSession::on_backend_complete() {
    backend_.release();
    if (!req_) return;
    retries_ = 0;
    std::unique_ptr<Request> r = std::move(req_);
    processing_ = true;
    handle_response(std::move(r));
    processing_ = false;
    if (is_finished()) return;
    if (state_ == WohState::Closed) return;
    if (need_update())
        update();
    else if (keep_alive_interval_ > 0 && !req_ && !is_disconnecting(state_))
        timer_.arm(static_cast<uint64_t>(keep_alive_interval_) * 1000);
}

// ---- responses ----

void WohSession::handle_response(std::unique_ptr<Request> r) {
    const http::ResponseHead& head = r->head;
    const std::string* ct = head.headers.get("Content-Type");
    bool ok = head.status == 200 && ct && *ct == kEventsType;
    if (!ok) {
        if (state_ == WohState::Opening) {
            // The backend refused the connection: relay its answer.
            log_access(head.status);
            http::Headers h = head.headers;
            h.remove("Content-Length");
            std::string_view body(r->body);
            reject_client(head.status, head.reason, h, body.substr(0, kRejectBodyMax));
            backend_done();
            return;
        }
        fail(head.status != 200 ? "backend answered an error status"
                                : "backend answered without websocket events");
        return;
    }

    if (const std::string* kai = head.headers.get("Keep-Alive-Interval")) {
        auto v = core::parse_int(core::trim(*kai));
        keep_alive_interval_ = v && *v > 0 ? static_cast<int>(*v < 20 ? 20 : (*v > 86400 ? 86400 : *v)) : -1;
    }
    if (!apply_accepted(*r, head.headers)) return;
    apply_meta(head.headers);

    // The whole body is checked first (a malformed one is refused before any of it is acted on, as
    // Pushpin does), then read again event by event: no per-event copies.
    size_t count = 0;
    EventType first_type = EventType::Unknown;
    {
        EventReader check(r->body);
        EventView e;
        while (check.next(&e))
            if (count++ == 0) first_type = e.type;
        if (check.error()) {
            if (state_ == WohState::Opening) {
                refuse_open();
                return;
            }
            fail("bad events in response");
            return;
        }
    }

    bool skip_first = false;
    if (state_ == WohState::Opening) {
        // The backend must answer with OPEN first. An empty answer with a Keep-Alive-Interval
        // defers the decision: OPEN is asked again after the interval (as Pushpin does).
        if (count == 0 && keep_alive_interval_ > 0) {
            if (!has_client()) backend_done();
            return;
        }
        if (count == 0 || first_type != EventType::Open) {
            refuse_open();
            return;
        }
        skip_first = true;
        // The client may have left while we were opening: the backend then hears DISCONNECT.
        if (!set_state(has_client() ? WohState::Open : WohState::Disconnecting)) return fail("bad state");
        if (has_client() && !accept(head.headers)) return;
    }
    if (r->disconnect) {
        backend_done();
        return;
    }
    process_events(r->body, skip_first, *r);
}

bool WohSession::apply_accepted(Request& r, const http::Headers& headers) {
    size_t with_close = r.content + r.close_content;
    size_t accepted = with_close;
    if (const std::string* cba = headers.get("Content-Bytes-Accepted")) {
        auto v = core::parse_int(core::trim(*cba));
        if (v && *v >= 0) accepted = static_cast<size_t>(*v);
        if (accepted > with_close) {
            fail("backend accepted more content than offered");
            return false;
        }
    }
    size_t non_close = accepted < r.content ? accepted : r.content;
    size_t removed = out_.consume(r.messages, non_close);
    if (r.maxed && removed == 0 && non_close == 0 && r.messages > 0) {
        fail("backend accepted nothing of a full request");
        return false;
    }
    replay_messages_ = r.messages - removed;
    replay_bytes_ = r.content - non_close;
    if (r.close) {
        if (non_close < r.content) {
            r.close = false; // content must be accepted first: offer the close again later
        } else if (accepted < with_close) {
            fail("backend did not accept the close");
            return false;
        }
    }
    if (r.close) {
        clear_out();
        replay_messages_ = replay_bytes_ = 0;
    }
    if (out_.empty()) clear_out();
    if (out_.bytes() < kBufferSize / 2 && out_.events() < kEventsMax / 2) resume_client();
    return true;
}

void WohSession::apply_meta(const http::Headers& headers) {
    for (const auto& h : headers) {
        if (h.name.size() < 10 || !core::istarts_with(h.name, "Set-Meta-")) continue;
        std::string name = h.name.substr(9);
        for (auto it = meta_.begin(); it != meta_.end();) {
            if (core::iequals(it->first, name))
                it = meta_.erase(it);
            else
                ++it;
        }
        if (!h.value.empty()) meta_.emplace_back(std::move(name), h.value);
    }
}

bool WohSession::accept(const http::Headers& response_headers) {
    http::Headers out;
    for (const auto& h : response_headers)
        if (!is_private_response_header(h.name)) out.add(h.name, h.value);
    negotiate_grip(response_headers, out);
    subscribe_implicit(route_.targets[target_index_]);
    log_access(101);
    std::string key = client_key(*head_);
    head_.reset(); // the handshake is answered: what remains is in request_head_
    return accept_client(out, key) && !is_finished();
}

void WohSession::process_events(std::string_view body, bool skip_first, Request& r) {
    bool closed = false;
    bool disconnected = false;
    int peer_code = -1;
    std::string peer_reason;
    EventReader reader(body);
    EventView e;
    if (skip_first) reader.next(&e);
    while (reader.next(&e)) {
        switch (e.type) {
        case EventType::Open:
            disconnected = true;
            break;
        case EventType::Text:
        case EventType::Binary:
            if (has_client() && !is_detached() && !client_close_sent())
                relay_backend_message(e.type == EventType::Text ? WsOpcode::Text : WsOpcode::Binary,
                                      e.content);
            break;
        case EventType::Ping:
        case EventType::Pong:
            if (has_client() && !is_detached())
                send_message(e.type == EventType::Ping ? WsOpcode::Ping : WsOpcode::Pong, e.content);
            break;
        case EventType::Close:
            closed = true;
            read_peer_close(e.content, &peer_code, &peer_reason);
            break;
        case EventType::Disconnect:
            disconnected = true;
            break;
        default:
            break; // unknown events are ignored, as Pushpin does
        }
        if (closed || disconnected || is_finished()) break;
    }
    if (is_finished()) return;
    // Our CLOSE was accepted, by this response or an earlier one.
    bool ours_accepted = r.close || state_ == WohState::CloseSent;
    if (r.close && state_ == WohState::CloseQueued && !set_state(after_close_accepted(state_)))
        return fail("bad state");

    if (closed) {
        on_peer_close(ours_accepted, peer_code < 0 ? kCloseNormal : peer_code, peer_reason);
        return;
    }
    if (ours_accepted && keep_alive_interval_ < 0) {
        // Without keep-alives the backend had one chance to answer our close.
        disconnected = true;
    }
    if (disconnected) {
        if (has_client() && !is_detached()) {
            if (client_close_received())
                close_client(client_close_code() == kCloseNoStatus ? -1 : client_close_code(), "");
            else if (client_close_sent())
                // As Pushpin, the connection ends without waiting for the client's answer, but after
                // our close frame: it may still be queued (a busy turn defers bulk output), and an
                // abort would discard it.
                end_client_after_output();
            else
                drop_client(); // as Pushpin: the client sees the connection end without a close frame
        }
        backend_done();
        return;
    }
    // Both CLOSEs are through: the backend's came earlier, ours was accepted now.
    if (ours_accepted && state_ == WohState::CloseAnswering) backend_done();
}

// A CLOSE without a code reaches the client as 1000 (`code`), as with Pushpin.
void WohSession::on_peer_close(bool ours_accepted, int code, const std::string& reason) {
    bool relay = has_client() && !is_detached();
    if (ours_accepted) {
        // Both sides closed: the client gets the backend's answer.
        if (relay) close_client(code, reason);
        backend_done();
        return;
    }
    if (!relay) {
        backend_done();
        return;
    }
    // The backend closes first: the client is told; its answer goes back as our CLOSE (the state
    // changes first: the client's answer may come back inside close_client).
    WohState next = after_peer_close(state_);
    if (next != state_ && !set_state(next)) return fail("bad state");
    close_client(code, reason);
}

// ---- client side ----

FrameParser::Limits WohSession::frame_limits() const {
    return {service_.limits().max_message, service_.limits().max_message};
}

void WohSession::clear_out() {
    out_.clear(); // an idle session keeps no buffer
}

void WohSession::on_client_frame(const Frame& f) {
    // Client messages go on until the client closes (the backend closing first does not stop them).
    if (state_ != WohState::Open && state_ != WohState::CloseReceived) return;
    // As Pushpin: an empty message is an event without content ("TEXT\r\n").
    switch (f.opcode) {
    case WsOpcode::Text:
    case WsOpcode::Binary:
    case WsOpcode::Continuation:
        if (f.first) {
            assembling_type_ = f.message_type == WsOpcode::Text ? EventType::Text : EventType::Binary;
            if (f.fin) {
                out_.push(assembling_type_, f.payload);
            } else {
                assembling_.assign(f.payload); // bounded by the parser's max_message
                return;
            }
        } else {
            assembling_.append(f.payload);
            if (!f.fin) return;
            out_.push(assembling_type_, assembling_);
            std::string().swap(assembling_);
        }
        break;
    case WsOpcode::Ping:
        out_.push(EventType::Ping, f.payload);
        break;
    case WsOpcode::Pong:
        out_.push(EventType::Pong, f.payload);
        break;
    default:
        return;
    }
    service_.mutable_stats().messages_in.add();
    if (out_.bytes() > kHardBytes || out_.events() > kHardEvents) {
        LOG_DEBUG("ws", "closing WebSocket %s: %zu events (%zu bytes) waiting for the backend", cid_,
                  out_.events(), out_.bytes());
        service_.mutable_stats().protocol_errors.add();
        // The backend hears DISCONNECT, as for any client that vanished.
        if (!set_state(WohState::Disconnecting)) return fail("bad state");
        clear_out();
        close_client(kClosePolicy, "");
        if (need_update()) update();
        return;
    }
    // The backend is behind: stop reading the client (the kernel's window then stops the sender).
    if (out_.bytes() >= kBufferSize || out_.events() >= kEventsMax) pause_client();
    if (need_update()) update();
}

void WohSession::queue_close(int code, std::string_view reason) {
    // Once closing, disconnecting or closed there is nothing more to queue.
    WohState next = after_close_queued(state_);
    if (next == state_ && state_ != WohState::Opening) return;
    if (!set_state(next)) return fail("close before open"); // only after the OPEN was accepted
    close_code_ = code == kCloseNoStatus ? -1 : code;
    close_reason_ = std::string(reason);
    if (need_update()) update();
}

void WohSession::on_client_close(int code, std::string_view reason) {
    if (state_ == WohState::Opening || state_ == WohState::Closed) {
        close_client(code == kCloseNoStatus ? -1 : code, reason);
        return;
    }
    queue_close(code, reason);
}

void WohSession::on_client_close_reply(int code, std::string_view reason) {
    // The backend (or a publish) closed first; the client's answer is our CLOSE.
    if (state_ == WohState::CloseReceived) queue_close(code, reason);
}

void WohSession::on_client_ended(bool clean) {
    if (state_ == WohState::Closed) {
        finish();
        return;
    }
    if (service_.worker().is_stopping()) {
        backend_.abandon();
        backend_done();
        return;
    }
    bool closing = state_ == WohState::CloseQueued || state_ == WohState::CloseSent ||
                   state_ == WohState::CloseReceived || state_ == WohState::CloseAnswering;
    if (clean && closing) {
        // The close handshake is done with the client; the backend side finishes on its own.
        if (need_update()) update();
        return;
    }
    // Unclean end: tell the backend the connection is gone (still opening: once the OPEN is
    // answered, which finds the client gone).
    if (is_connected(state_) && !set_state(WohState::Disconnecting)) return fail("bad state");
    clear_out();
    if (need_update()) update();
}

void WohSession::on_detach() {
    // Stop relaying; close the backend side (CLOSE without a code, as Pushpin).
    queue_close(-1, "");
}

void WohSession::on_publish_close() {
    queue_close(-1, "");
}

void WohSession::on_refresh() {
    if (!is_connected(state_)) return;
    update_queued_ = true;
    if (need_update()) update();
}

void WohSession::on_client_drained() {
    if (need_update()) update();
}

// ---- ending ----

void WohSession::fail(const char* why) {
    const config::Target& t = route_.targets[target_index_];
    LOG_INFO("ws", "closing WebSocket %s: backend %s failed: %s", cid_, t.to_string().c_str(), why);
    LOG_DEBUG("ws", "WebSocket %s failed in %s", cid_, dump().c_str());
    service_.mutable_stats().backend_failures.add();
    req_.reset();
    backend_.abandon();
    WohState was = state_;
    if (state_ != WohState::Closed) set_state(WohState::Closed);
    timer_.disarm();
    if (has_client()) {
        if (was == WohState::Opening)
            reject_bad_gateway();
        else if (!is_detached())
            close_client(kCloseInternalError, "");
    }
    backend_done();
}

void WohSession::backend_done() {
    if (state_ != WohState::Closed) set_state(WohState::Closed);
    timer_.disarm();
    req_.reset();
    clear_out();
    std::string().swap(assembling_);
    if (!has_client()) finish();
}

void WohSession::stop() {
    backend_.abandon();
    if (state_ != WohState::Closed) set_state(WohState::Closed);
    timer_.disarm();
    req_.reset();
    Session::stop();
}

bool WohSession::set_state(WohState to) {
    return enter_state(state_, to, "ws-over-http session");
}

std::string WohSession::dump() const {
    return Session::dump() + " backend=" + state_name(state_) +
           format_flags({{"sign", sign_},
                         {"features", features_},
                         {"update_queued", update_queued_},
                         {"processing", processing_}});
}

} // namespace gripd::ws
