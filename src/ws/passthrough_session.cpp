#include "passthrough_session.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/ws/handshake.hpp"

namespace gripd::ws {

namespace {
constexpr size_t kHighWater = 256 * 1024; // pause the other side above this many queued bytes
constexpr uint64_t kMaxBackendFrame = 16 * 1024 * 1024;

bool is_handshake_header(std::string_view name) {
    static constexpr std::string_view kNames[] = {"Sec-WebSocket-Accept", "Sec-WebSocket-Extensions",
                                                  "Content-Length"};
    for (auto n : kNames)
        if (core::iequals(name, n)) return true;
    return http::is_hop_by_hop(name);
}
} // namespace

PassthroughSession::PassthroughSession(WsService& service, http::ClientStream& client,
                                       std::shared_ptr<const config::RouteTable> routes,
                                       const config::Route& route, bool trusted, http::RequestHead& head,
                                       size_t target_index)
    : Session(service, client, std::move(routes), route, trusted), target_index_(target_index),
      head_(std::make_unique<http::RequestHead>(std::move(head))) {}

// The handle lets go of a backend connection still held; one that closed (shutdown) emptied it first.
PassthroughSession::~PassthroughSession() = default;

void PassthroughSession::start() {
    connect();
}

void PassthroughSession::connect() {
    const config::Target& t = route_.targets[target_index_];
    http::Headers h = upstream_headers(*head_, t);
    for (auto name : {"Sec-WebSocket-Key", "Sec-WebSocket-Extensions", "Sec-WebSocket-Version", "Upgrade",
                      "Content-Length"})
        h.remove(name);
    std::string key = make_client_key();
    h.add("Upgrade", "websocket");
    h.add("Connection", "Upgrade");
    h.add("Sec-WebSocket-Key", key);
    h.add("Sec-WebSocket-Version", "13");
    h.add("Sec-WebSocket-Extensions", "grip");
    std::string request;
    http::serialize_request_head("GET", http::upstream_target(route_, head_->target), h, request);
    BackendWsConn::start(service_.worker(), *this, http::backend_target(route_, t, head_->headers),
                         static_cast<uint64_t>(service_.settings().connect_timeout) * 1000,
                         std::move(request), accept_key(key), kMaxBackendFrame, backend_);
}

void PassthroughSession::on_ws_connect_failed(int uv_status) {
    const config::Target& t = route_.targets[target_index_];
    LOG_DEBUG("ws", "connect to %s:%d failed: %s", t.connect_host.c_str(), t.connect_port,
              uv_strerror(uv_status));
    if (!has_client()) {
        finish();
        return;
    }
    // An untrusted target at an internal address (UV_EPERM): as Pushpin, no other target is tried.
    if (!(uv_status == UV_EPERM && !t.trusted)) {
        while (++target_index_ < route_.targets.size()) {
            const config::Target& next = route_.targets[target_index_];
            if (next.type == config::TargetType::Default && !next.over_http) {
                connect();
                return;
            }
        }
        --target_index_;
    }
    log_access(502);
    reject_bad_gateway(/*no_target_connected=*/true);
    finish();
}

void PassthroughSession::on_ws_open(http::ResponseHead& head) {
    if (!has_client()) {
        backend_gone();
        return;
    }
    http::Headers out;
    for (const auto& hd : head.headers)
        if (!is_handshake_header(hd.name)) out.add(hd.name, hd.value);
    negotiate_grip(head.headers, out);
    subscribe_implicit(route_.targets[target_index_]);
    log_access(101);
    std::string key = client_key(*head_);
    head_.reset();
    accept_client(out, key);
}

void PassthroughSession::on_ws_rejected(http::ResponseHead& head, std::string&& body) {
    log_access(head.status);
    http::Headers h = head.headers;
    h.remove("Content-Length");
    h.remove("Transfer-Encoding");
    if (has_client()) reject_client(head.status, head.reason, h, body);
    finish();
}

// ---- backend -> client ----

void PassthroughSession::on_ws_frame(const Frame& f) {
    switch (f.opcode) {
    case WsOpcode::Close: {
        ClosePayload cp;
        int err = 0;
        parse_close_payload(f.payload, &cp, &err);
        int code = cp.code == kCloseNoStatus ? -1 : cp.code;
        if (is_detached() || !has_client()) {
            close_backend(code, cp.reason); // answer it; the client side goes on (or is gone)
            backend_gone();
            return;
        }
        // Relay it: if the client closed first this is the answer, else the client's answer goes back.
        close_client(code, cp.reason);
        if (backend_ && backend_->close_sent()) backend_gone();
        return;
    }
    case WsOpcode::Ping:
    case WsOpcode::Pong:
        if (has_client() && !is_detached()) send_message(f.opcode, f.payload);
        pace_backend(); // a ping flood is flow-controlled like data
        return;
    default:
        relay_data_frame(f);
        return;
    }
}

void PassthroughSession::relay_data_frame(const Frame& f) {
    if (f.first) {
        // The frame parser allows no new message before the last one's final frame.
        if (!check_transition(relay_ == RelayState::Idle, "ws passthrough relay", state_name(relay_),
                              "a new message")) {
            drop_client();
            return;
        }
        std::string_view payload = f.payload;
        auto skip_rest = [&] { // a message not relayed: its later frames are dropped too
            if (!f.fin) set_relay(RelayState::Skipping);
        };
        if (is_detached() || !has_client()) {
            skip_rest();
            return;
        }
        if (grip_enabled()) {
            if (f.opcode == WsOpcode::Text && payload.substr(0, 2) == "c:") {
                // Control messages must fit in one frame.
                if (f.fin) apply_control(payload.substr(2));
                skip_rest();
                return;
            }
            std::string_view prefix = message_prefix();
            if (payload.substr(0, prefix.size()) != prefix) {
                LOG_TRACE("ws", "dropping unprefixed backend message");
                skip_rest();
                return;
            }
            payload.remove_prefix(prefix.size());
        }
        std::string out;
        append_frame(out, f.opcode, payload, f.fin);
        if (!f.fin) set_relay(RelayState::Relaying);
        send_relayed(out, f.fin);
    } else {
        if (relay_ == RelayState::Skipping) {
            if (f.fin) set_relay(RelayState::Idle);
            return;
        }
        if (!has_client()) {
            if (f.fin && relay_ == RelayState::Relaying) set_relay(RelayState::Idle); // nobody to relay to
            return;
        }
        std::string out;
        append_frame(out, WsOpcode::Continuation, f.payload, f.fin);
        if (f.fin && relay_ == RelayState::Relaying) set_relay(RelayState::Idle);
        send_relayed(out, f.fin);
    }
    if (relay_ != RelayState::Relaying) flush_held();
    pace_backend();
}

bool PassthroughSession::set_relay(RelayState to) {
    return enter_state(relay_, to, "ws passthrough relay");
}

std::string PassthroughSession::dump() const {
    std::string out = Session::dump() + " relay=" + state_name(relay_) + " backend=";
    out += backend_ ? backend_->dump() : std::string("none");
    return out + format_flags({{"backend_paused", backend_paused_}});
}

void PassthroughSession::pace_backend() {
    if (backend_ && has_client() && client_queued_bytes() > kHighWater && !backend_paused_) {
        backend_paused_ = true;
        backend_->pause();
    }
}

void PassthroughSession::on_client_drained() {
    if (backend_ && backend_paused_ && client_queued_bytes() < kHighWater / 2) {
        backend_paused_ = false;
        backend_->resume();
    }
}

// ---- client -> backend ----

void PassthroughSession::on_client_frame(const Frame& f) {
    if (!backend_) return;
    backend_->send_frame(f.opcode, f.payload, f.fin);
    if (f.fin && f.opcode != WsOpcode::Ping && f.opcode != WsOpcode::Pong)
        service_.mutable_stats().messages_in.add();
    if (backend_ && backend_->queued_bytes() > kHighWater) pause_client();
}

void PassthroughSession::on_ws_writable() {
    if (backend_ && backend_->queued_bytes() < kHighWater / 2) resume_client();
}

void PassthroughSession::on_client_close(int code, std::string_view reason) {
    if (!backend_) {
        close_client(code == kCloseNoStatus ? -1 : code, reason);
        return;
    }
    close_backend(code == kCloseNoStatus ? -1 : code, reason); // the backend's answer goes to the client
}

void PassthroughSession::on_client_close_reply(int code, std::string_view reason) {
    // The backend (or a publish) closed first: the client's answer goes back.
    if (backend_ && !backend_->close_sent()) close_backend(code == kCloseNoStatus ? -1 : code, reason);
}

void PassthroughSession::on_client_ended(bool clean) {
    if (backend_) {
        if (!clean && !backend_->close_sent()) backend_->send_close(kCloseGoingAway, "");
        backend_gone();
        return;
    }
    finish();
}

void PassthroughSession::on_detach() {
    close_backend(-1, "");
}

void PassthroughSession::on_publish_close() {
    close_backend(-1, "");
}

void PassthroughSession::close_backend(int code, std::string_view reason) {
    if (!backend_ || backend_->close_sent()) return;
    backend_->send_close(code, reason);
    if (backend_->close_received()) backend_gone(); // handshake complete: the connection ends on its own
}

void PassthroughSession::on_ws_error(const char* why) {
    if (!has_client()) {
        finish();
        return;
    }
    if (is_detached() || client_close_sent()) return; // nothing more is expected from the backend
    const config::Target& t = route_.targets[target_index_];
    LOG_INFO("ws", "closing WebSocket from %s: backend %s failed: %s",
             client() ? client()->peer().c_str() : "-", t.to_string().c_str(), why);
    service_.mutable_stats().backend_failures.add();
    close_client(kCloseInternalError, "");
}

void PassthroughSession::on_ws_closed() {
    if (!has_client()) finish();
}

void PassthroughSession::backend_gone() {
    backend_.detach();
    if (!has_client()) finish();
}

void PassthroughSession::stop() {
    if (backend_) {
        backend_->send_close(kCloseGoingAway, "");
        backend_.detach();
    }
    Session::stop();
}

} // namespace gripd::ws
