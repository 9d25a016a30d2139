#include "proxy_session.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/core/uuid.hpp"
#include "gripd/grip/instruct.hpp"
#include "gripd/http/debug_text.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/proxy/grip_handler.hpp"
#include "gripd/proxy/proxy_service.hpp"

#include <ctime>

namespace gripd::proxy {

namespace {
constexpr size_t kHighWater = 256 * 1024; // pause the producer above this many queued bytes
constexpr size_t kMaxReplay = 64 * 1024;  // request bytes kept for a retry on a fresh connection
constexpr size_t kMaxGripBody = 100000;   // Pushpin's limit for a GRIP instruct response
} // namespace

ProxySession::ProxySession(ProxyService& service, http::ClientStream& client,
                           std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                           http::RequestHead& head, bool trusted,
                           std::shared_ptr<const http::CrossOrigin> cross_origin, std::string jsonp_body)
    : service_(service), client_(&client), routes_(std::move(routes)), route_(route),
      facts_(facts_of(head, trusted)), cross_origin_(std::move(cross_origin)),
      jsonp_body_(std::move(jsonp_body)) {
    access_ = http::AccessLog(head, "http", client.peer(), service.settings());
    method_ = head.method;
    uri_ = head.target;
    head_ = std::move(head);
    // The id a publisher names to close this client's stream alone (Grip-Connection-Id).
    if (http::grip_enabled(route_) && !trusted) connection_id_ = core::random_uuid();
}

ProxySession::Facts ProxySession::facts_of(const http::RequestHead& head, bool trusted) {
    Facts f;
    f.is_head = head.method == "HEAD";
    f.chunked_upstream = head.chunked;
    f.trusted = trusted;
    return f;
}

ProxySession::~ProxySession() {
    release_share(); // the lease abandons a connection still held
}

void ProxySession::release_share() {
    if (share_) service_.shares().release(std::exchange(share_, nullptr));
}

const char* ProxySession::state_name(State s) {
    switch (s) {
    case State::Connecting:
        return "Connecting";
    case State::Sending:
        return "Sending";
    case State::Relaying:
        return "Relaying";
    case State::GripBuffering:
        return "GripBuffering";
    case State::GripStreaming:
        return "GripStreaming";
    case State::Done:
        return "Done";
    }
    return "?";
}

void ProxySession::to(State next) {
    [[maybe_unused]] bool allowed = false;
    switch (next) {
    case State::Connecting:
        allowed = state_ == State::Connecting || state_ == State::Sending;
        break;
    case State::Sending:
        allowed = state_ == State::Connecting;
        break;
    case State::Relaying:
    case State::GripBuffering:
        allowed = state_ == State::Sending;
        break;
    case State::GripStreaming:
        allowed = state_ == State::GripBuffering;
        break;
    case State::Done:
        allowed = true;
        break;
    }
    GRIPD_ASSERT(allowed);
    state_ = next;
}

http::ClientStream* ProxySession::take_client() {
    to(State::Done);
    http::ClientStream* c = client_;
    client_ = nullptr;
    return c;
}

std::string ProxySession::dump() const {
    return std::string("ProxySession{state=") + state_name(state_) +
           " target=" + std::to_string(target_index_) + " backend=" +
           (backend_.ready() ? "ready"
            : backend_       ? "connecting"
                             : "none") +
           " request_done=" + (request_done_ ? "1" : "0") + " replayable=" + (replayable_ ? "1" : "0") +
           " retried=" + (retried_ ? "1" : "0") + " client=" + (client_ ? "1" : "0") + "}";
}

// Stage 1: pick the first target that connects.
void ProxySession::on_start() {
    if (!jsonp_body_.empty()) {
        // A JSON-P call's body (its request has none of its own): sent, and kept for a retry, as
        // if the client had sent it.
        std::string body = std::move(jsonp_body_);
        on_request_body(body);
    }
    connect_next_target();
}

std::string ProxySession::build_upstream_head(const config::Target& target) const {
    http::ForwardContext ctx{service_.settings(),
                             route_,
                             target,
                             client_ ? std::string_view(client_->peer()) : "",
                             client_ && client_->is_tls(),
                             facts_.trusted,
                             static_cast<int64_t>(std::time(nullptr))};
    return http::upstream_request_head(head_, ctx, grip_last_, connection_id_);
}

void ProxySession::connect_next_target() {
    const auto& targets = route_.targets;
    while (target_index_ < targets.size()) {
        const config::Target& t = targets[target_index_];
        if (t.type == config::TargetType::Test && service_.grip_handler()) {
            http::ClientStream* c = take_client();
            GripOutcome out = service_.grip_handler()->serve_test(*c, route_, head_, cross_origin_);
            if (out.held)
                log_access(http::AccessLog::Outcome::Accept);
            else
                log_access(http::AccessLog::Outcome::Response, out.code, out.body_bytes);
            return;
        }
        if (t.type != config::TargetType::Default) {
            ++target_index_; // ZeroMQ targets are not supported: try the next target
            continue;
        }
        if (t.over_http && !facts_.trusted) {
            // As Pushpin: only gripd itself speaks WebSocket-over-HTTP events to such a backend.
            const std::string* ct = head_.headers.get("Content-Type");
            if (ct && core::trim(std::string_view(*ct).substr(0, ct->find(';'))) ==
                          "application/websocket-events") {
                fail(403, "Client not allowed to send WebSocket events directly.\n");
                return;
            }
        }
        connect(t);
        return;
    }
    fail(502, "Error while proxying to origin.\n", http::unable_to_connect_text(route_));
}

void ProxySession::connect(const config::Target& target) {
    to(State::Connecting);
    service_.backends().acquire(http::backend_target(route_, target, head_.headers), *this, backend_);
}

void ProxySession::on_backend_connect_failed(int uv_status) {
    if (!client_) return;
    const auto& t = route_.targets[target_index_];
    LOG_DEBUG("proxy", "connect to %s:%d failed: %s", t.connect_host.c_str(), t.connect_port,
              uv_strerror(uv_status));
    if (uv_status == UV_EPERM && !t.trusted) {
        // An untrusted target at an internal address: as Pushpin's policy error, no other target.
        bool debug = service_.settings().debug || route_.debug;
        fail(502, debug ? "Error: Origin host/IP blocked.\n" : "Error while proxying to origin.\n");
        return;
    }
    ++target_index_;
    connect_next_target();
}

// Stage 2: connected; send what we have.
void ProxySession::on_backend_connected() {
    to(State::Sending);
    backend_->expect_no_body(facts_.is_head);
    std::string first = build_upstream_head(route_.targets[target_index_]);
    if (replayable_)
        first += replay_;
    else
        first += pending_;
    pending_.clear();
    if (!replayable_) replay_.clear();
    send_upstream(first);
    if (client_ && backend_.ready() && backend_->queued_bytes() < kHighWater) client_->resume_request_body();
}

void ProxySession::send_upstream(std::string_view bytes) {
    if (!backend_.ready()) return;
    backend_->send(bytes);
    if (client_ && backend_.ready() && backend_->queued_bytes() > kHighWater) client_->pause_request_body();
}

void ProxySession::send_body_chunk(std::string_view data) {
    std::string framed;
    if (facts_.chunked_upstream) {
        http::append_chunk(framed, data);
        data = framed;
    }
    if (replayable_) {
        if (replay_.size() + data.size() <= kMaxReplay) {
            replay_.append(data);
        } else {
            replayable_ = false;
            if (!backend_.ready()) pending_ = std::move(replay_);
            replay_.clear();
        }
    }
    if (backend_.ready()) {
        send_upstream(data);
    } else if (!replayable_) {
        pending_.append(data);
        if (pending_.size() > kHighWater && client_) client_->pause_request_body();
    }
}

void ProxySession::on_request_body(std::string_view data) {
    if (body_saved_) {
        if (saved_body_.size() + data.size() <= kMaxGripBody) {
            saved_body_.append(data);
        } else {
            body_saved_ = false;
            saved_body_.clear();
            saved_body_.shrink_to_fit();
        }
    }
    send_body_chunk(data);
}

void ProxySession::on_request_end() {
    request_done_ = true;
    if (facts_.chunked_upstream) {
        std::string last;
        http::append_last_chunk(last);
        if (replayable_) replay_ += last;
        if (backend_.ready())
            send_upstream(last);
        else if (!replayable_)
            pending_ += last;
    }
}

void ProxySession::on_backend_writable() {
    if (client_ && backend_.ready() && backend_->queued_bytes() < kHighWater / 2)
        client_->resume_request_body();
}

// Stage 3: the response.
void ProxySession::on_backend_head(http::ResponseHead& head) {
    if (!client_) return;
    status_ = head.status;
    replay_.clear();
    replayable_ = false;
    if (http::grip_enabled(route_) && !facts_.trusted && service_.grip_handler() &&
        service_.grip_handler()->is_grip(head)) {
        if (!body_saved_) {
            // As Pushpin: a hold must be able to send its request again, and a request body over
            // kMaxGripBody was not kept (a retry would send its Content-Length with no body).
            backend_.abandon();
            fail(400, "Request too large to accept GRIP instruct.\n");
            return;
        }
        to(State::GripBuffering);
        grip_head_ = std::move(head);
        return;
    }
    // Not GRIP: nothing will re-send this request, drop what only that needed.
    release_share();
    head_.headers.clear();
    saved_body_.clear();
    to(State::Relaying);
    relay_head(head);
}

void ProxySession::relay_head(http::ResponseHead& head) {
    // Headers the backend nominated as hop-by-hop (Connection: X-Foo) stop here too.
    std::vector<std::string> nominated;
    for (auto name : head.headers.get_list("Connection"))
        nominated.emplace_back(name);
    for (const auto& n : nominated)
        head.headers.remove(n);
    if (cross_origin_ && cross_origin_->is_jsonp()) {
        // Wrapped as it streams: the length is not known before the end.
        jsonp_.emplace(*cross_origin_);
        std::string start = jsonp_->start(head.status,
                                          head.reason.empty() ? http::reason_phrase(head.status)
                                                              : std::string_view(head.reason),
                                          head.headers);
        client_->send_head(200, "OK", http::JsonpStream::wrapper_headers(head.headers), -1);
        bytes_out_ += static_cast<int64_t>(start.size());
        client_->send_body(start);
        return;
    }
    if (cross_origin_) http::apply_cors_headers(*cross_origin_, head.headers);
    int64_t length = head.chunked ? -1 : head.content_length;
    if (facts_.is_head) length = head.content_length; // HEAD: announce what GET would send
    client_->send_head(head.status, head.reason, head.headers, length);
}

void ProxySession::on_backend_body(std::string_view data) {
    if (!client_) return;
    if (state_ == State::GripBuffering) {
        if (grip_body_.size() + data.size() > kMaxGripBody) {
            if (start_grip_streaming(data)) return;
            LOG_WARN("proxy", "GRIP response from backend larger than %zu bytes", kMaxGripBody);
            backend_.abandon();
            fail(502, "Error while proxying to origin.\n",
                 "GRIP instruct response too large from " + route_.targets[target_index_].to_string() + "\n");
            return;
        }
        grip_body_.append(data);
        return;
    }
    if (jsonp_ && state_ != State::GripStreaming) {
        std::string wrapped = jsonp_->body(data);
        bytes_out_ += static_cast<int64_t>(wrapped.size());
        if (!wrapped.empty()) client_->send_body(wrapped);
    } else {
        bytes_out_ += static_cast<int64_t>(data.size());
        client_->send_body(data);
    }
    if (client_ && backend_.ready() && client_->queued_bytes() > kHighWater) backend_->pause_response();
}

bool ProxySession::start_grip_streaming(std::string_view data) {
    grip::InstructResult r =
        grip::parse_instruct(grip_head_.status, grip_head_.reason, grip_head_.headers, {});
    if (!r.ok) return false;
    grip::Instruct& in = r.instruct;
    bool streams = in.hold == grip::HoldMode::Stream || (in.hold == grip::HoldMode::None && in.next_link);
    for (const auto& c : in.channels)
        for (const auto& f : c.filters)
            streams = streams && f != "build-id"; // it rewrites the initial body: Pushpin buffers then
    if (!streams) return false;
    LOG_DEBUG("proxy", "GRIP stream answer over %zu bytes from %s: relaying it, then holding", kMaxGripBody,
              access_target().c_str());
    to(State::GripStreaming);
    if (cross_origin_) http::apply_cors_headers(*cross_origin_, in.response.headers);
    if (!client_->send_head(in.response.code, in.response.reason, in.response.headers, -1)) return true;
    std::string start = std::move(grip_body_);
    grip_body_.clear();
    bytes_out_ += static_cast<int64_t>(start.size() + data.size());
    if (!start.empty()) client_->send_body(start);
    if (client_ && !data.empty()) client_->send_body(data);
    if (client_ && backend_.ready() && client_->queued_bytes() > kHighWater) backend_->pause_response();
    return true;
}

void ProxySession::on_client_writable() {
    if (backend_.ready() && (state_ == State::Relaying || state_ == State::GripStreaming))
        backend_->resume_response();
}

void ProxySession::on_backend_complete() {
    // Reuse the connection only if the whole request went out.
    if (request_done_)
        backend_.release();
    else
        backend_.abandon();
    if (!client_) return;
    if (state_ == State::GripBuffering || state_ == State::GripStreaming) {
        finish_grip();
        return;
    }
    if (jsonp_) {
        std::string end = jsonp_->end();
        bytes_out_ += static_cast<int64_t>(end.size());
        client_->send_body(end);
        if (!client_) return;
    }
    log_access(http::AccessLog::Outcome::Response, status_, bytes_out_);
    take_client()->end_response();
}

void ProxySession::finish_grip() {
    bool streamed = state_ == State::GripStreaming;
    http::ClientStream* c = take_client();
    // The handler takes over the client connection (hold) or answers it.
    grip::SavedRequest saved;
    saved.head = std::move(head_);
    if (body_saved_) saved.body = std::move(saved_body_);
    saved.cross_origin = cross_origin_;
    saved.connection_id = std::move(connection_id_);
    saved.response_sent = streamed;
    // The target that answered: its sub= channels are subscribed too.
    static const std::vector<std::string> kNone;
    const std::vector<std::string>& implicit =
        target_index_ < route_.targets.size() ? route_.targets[target_index_].subscriptions : kNone;
    // share_all: the clients waiting on this request get the same answer, after this one.
    RequestShare::Group* group = std::exchange(share_, nullptr);
    std::optional<http::ResponseHead> shared_head;
    std::string shared_body;
    if (group) {
        shared_head = grip_head_;
        shared_body = grip_body_;
    }
    // The access line is written once the handler has answered or held the client, as Pushpin's proxy
    // writes it when its handler replies (hold: `accept`; bad instructions: the 502 it sent).
    GripOutcome out = service_.grip_handler()->on_grip_response(
        *c, route_, implicit, routes_, std::move(saved), std::move(grip_head_), std::move(grip_body_));
    if (group) service_.shares().grip_answer(group, implicit, *shared_head, shared_body);
    if (out.held)
        log_access(http::AccessLog::Outcome::Accept);
    else
        log_access(http::AccessLog::Outcome::Response, out.code, out.body_bytes);
}

void ProxySession::on_backend_error(int uv_status, bool retryable) {
    if (!client_) return;
    if (retryable && !retried_ && replayable_) {
        // A pooled connection the backend had closed: try once more on a fresh one.
        retried_ = true;
        const auto& t = route_.targets[target_index_];
        LOG_DEBUG("proxy", "retrying %s on a new connection to %s:%d", uri_.c_str(), t.connect_host.c_str(),
                  t.connect_port);
        connect(t);
        return;
    }
    LOG_DEBUG("proxy", "backend failed during %s %s: %s", method_.c_str(), uri_.c_str(),
              uv_strerror(uv_status));
    if (state_ == State::Relaying || state_ == State::GripStreaming) {
        log_access(http::AccessLog::Outcome::Error);
        take_client()->abort_response(); // the client sees a truncated response, never a wrong one
        return;
    }
    if (uv_status == UV_ETIMEDOUT) {
        fail(504, "Timed out waiting for the origin.\n");
        return;
    }
    fail(502, "Error while proxying to origin.\n");
}

void ProxySession::fail(int status, std::string_view message, std::string_view debug_message) {
    release_share();
    if (!client_) return;
    // [proxy] debug or the route's `debug`: Pushpin's detailed text instead of the generic one.
    if (!debug_message.empty() && http::debug_enabled(service_.settings(), route_)) message = debug_message;
    log_access(http::AccessLog::Outcome::Response, status, static_cast<int64_t>(message.size()));
    int code = status;
    std::string reason, body(message);
    http::Headers headers;
    headers.add("Content-Type", "text/plain");
    headers.add("Content-Length", std::to_string(body.size())); // as Pushpin: in a JSON-P header map
    http::finish_cross_origin(cross_origin_.get(), http::JsonpStyle::Relayed, code, reason, headers, body);
    take_client()->respond(code, reason, headers, body);
}

void ProxySession::on_client_gone() {
    release_share();
    client_ = nullptr;
    to(State::Done);
    backend_.abandon();
}

std::string ProxySession::access_target() const {
    const auto& targets = route_.targets;
    if (targets.empty()) return {};
    return targets[std::min(target_index_, targets.size() - 1)].to_string();
}

void ProxySession::log_access(http::AccessLog::Outcome outcome, int code, int64_t body_bytes) {
    if (!core::log_enabled(core::LogLevel::Info)) return;
    access_.write("proxy", access_target(), false, route_.explicit_id ? route_.id : std::string_view(),
                  outcome, code, body_bytes, is_retry_);
}

} // namespace gripd::proxy
