#include "gripd/http/server_conn.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/tls_server.hpp"

#include <algorithm>
#include <cstdio>

namespace gripd::http {

namespace {
// What an HTTP/2 client sends first instead of a request (RFC 9113 3.4); no HTTP/1.1 request
// starts so ("PRI" is no method we serve).
constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Pipelined requests wait while this much of the previous responses is still queued for the
// client: one that sends requests and never reads its answers makes us hold at most this much
// (plus one response), not every answer.
constexpr size_t kNextRequestMaxQueued = 256 * 1024;
} // namespace

ServerConn::ServerConn(loop::Worker& worker, Service& service, net::Transport transport)
    : TcpConn(worker, transport), service_(service) {
    parser_.emplace(static_cast<RequestParser::Handler&>(*this),
                    RequestParser::Limits{service.max_header_bytes()});
}

// ---- states ----

const char* ServerConn::state_name(State s) {
    switch (s) {
    case State::New:
        return "New";
    case State::Idle:
        return "Idle";
    case State::ReadingHead:
        return "ReadingHead";
    case State::ReadingBody:
        return "ReadingBody";
    case State::ReadingBodyResponding:
        return "ReadingBodyResponding";
    case State::Handling:
        return "Handling";
    case State::Responding:
        return "Responding";
    case State::AnsweredEarly:
        return "AnsweredEarly";
    case State::Finished:
        return "Finished";
    case State::WaitingDrain:
        return "WaitingDrain";
    case State::Raw:
        return "Raw";
    case State::Closing:
        return "Closing";
    case State::Refused:
        return "Refused";
    }
    return "?";
}

bool ServerConn::can_transition(State from, State to) {
    using S = State;
    switch (to) {
    case S::New:
        return false;
    case S::Idle:
        return from == S::New || from == S::Finished || from == S::WaitingDrain;
    case S::ReadingHead:
        return from == S::Idle;
    case S::ReadingBody:
        return from == S::Idle || from == S::ReadingHead;
    case S::ReadingBodyResponding:
    case S::Handling:
        return from == S::ReadingBody;
    case S::Responding:
        return from == S::Handling || from == S::ReadingBodyResponding;
    case S::AnsweredEarly:
        return from == S::ReadingBody || from == S::ReadingBodyResponding;
    case S::Finished:
        return from == S::Handling || from == S::Responding || from == S::AnsweredEarly;
    case S::WaitingDrain:
        return from == S::Finished || from == S::WaitingDrain;
    case S::Raw: // an upgrade, or HTTP/2 (its preface instead of a first request, or ALPN h2)
        return from == S::Idle || from == S::ReadingHead || from == S::ReadingBody ||
               from == S::ReadingBodyResponding || from == S::Handling || from == S::Responding;
    case S::Closing:
        return from != S::New && from != S::Refused;
    case S::Refused:
        return from == S::New || from == S::Refused;
    }
    return false;
}

bool ServerConn::to(State next) {
    if (GRIPD_CHECK(can_transition(state_, next))) {
        state_ = next;
        return true;
    }
    LOG_ERROR(service_.log_target(), "connection from %s: no move %s -> %s: closing it", peer_ip_.c_str(),
              state_name(state_), state_name(next));
    GRIPD_ASSERT(!"impossible ServerConn transition");
    close(); // a release build drops the one broken connection
    return false;
}

bool ServerConn::request_complete() const {
    return state_ == State::Handling || state_ == State::Responding || state_ == State::Finished ||
           state_ == State::WaitingDrain;
}

bool ServerConn::response_started() const {
    return state_ == State::ReadingBodyResponding || state_ == State::Responding ||
           state_ == State::AnsweredEarly || state_ == State::Finished || state_ == State::WaitingDrain ||
           state_ == State::Raw;
}

bool ServerConn::response_ended() const {
    return state_ == State::AnsweredEarly || state_ == State::Finished || state_ == State::WaitingDrain;
}

std::string ServerConn::dump() const {
    static const char* const kWait[] = {"None", "Idle", "Header", "Body", "Send"};
    auto b = [](bool v) { return v ? "1" : "0"; };
    std::string s =
        std::string("ServerConn{state=") + state_name(state_) + " wait=" + kWait[static_cast<int>(wait_)] +
        " keep_alive=" + b(facts_.keep_alive) + " head=" + b(facts_.head) + " http10=" + b(facts_.http10) +
        " has_body=" + b(facts_.has_body) + " chunked=" + b(facts_.chunked) +
        " no_body=" + b(facts_.no_body) + " body_paused=" + b(body_paused_) +
        " exchange=" + b(exchange_ != nullptr) + " pending=" + std::to_string(pending_in_.size()) + "}";
    return s;
}

// The start of every request/response cycle: the one place the request's facts are reset.
void ServerConn::begin_cycle() {
    if (!to(State::Idle)) return;
    facts_ = Facts{};
    wait_ = Wait::Idle;
    timer().arm(service_.idle_timeout_ms());
}

void ServerConn::notify_stopping() {
    if (state_ == State::Raw && exchange_) {
        exchange_->on_server_stopping();
        return;
    }
    if (state_ == State::Idle && fresh_ && !exchange_ && wait_ == Wait::Idle) timer().arm(kStopFreshMs);
}

void ServerConn::set_peer_address(const sockaddr& addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (addr.sa_family == AF_INET)
        uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&addr), buf, sizeof(buf));
    else if (addr.sa_family == AF_INET6)
        uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&addr), buf, sizeof(buf));
    peer_ip_ = buf;
}

void ServerConn::start() {
    service_.connections.add();
    if (peer_ip_.empty()) peer_ip_ = peer_ip();
    h2_possible_ = service_.h2_factory != nullptr;
    begin_cycle();
    // A TLS client has the header timeout for its handshake (one bounded wait, however slowly
    // the bytes trickle in); the idle wait starts once it is done.
    if (is_tls()) timer().arm(service_.header_timeout_ms());
    start_reading();
}

void ServerConn::on_tls_established() {
    if (h2_possible_ && tls()->alpn() == "h2") {
        start_h2(nullptr, 0);
        return;
    }
    if (state_ == State::Idle && wait_ == Wait::Idle) timer().arm(service_.idle_timeout_ms());
}

void ServerConn::refuse_overloaded(std::string_view reason) {
    if (!to(State::Refused)) return;
    if (is_tls()) { // nothing can be said before the handshake: just close
        close();
        return;
    }
    facts_.keep_alive = false;
    out("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: " +
        std::to_string(reason.size()) + "\r\nConnection: close\r\n\r\n" + std::string(reason));
    close_after_flush();
}

// The body timeout runs while a request body is owed and we are reading it; any body byte restarts it.
void ServerConn::arm_body_timeout() {
    uint64_t ms = service_.body_timeout_ms();
    if (ms == 0 || !reading_body() || !facts_.has_body || body_paused_ || !exchange_) {
        if (wait_ == Wait::Body) {
            wait_ = Wait::None;
            timer().disarm();
        }
        return;
    }
    wait_ = Wait::Body;
    timer().arm(ms);
}

// The send timeout runs while output is queued for the client, once nothing else is timed. It measures
// progress (bytes the kernel took), not completion: a slow reader is fine, a stalled one is cut off.
void ServerConn::arm_send_timeout() {
    uint64_t ms = service_.send_timeout_ms();
    if (ms == 0 || wait_ != Wait::None || !exchange_ || is_closing()) return;
    wait_ = Wait::Send;
    send_mark_ = bytes_out_ - queued_bytes();
    timer().arm(ms);
}

bool ServerConn::out(std::string_view data, const std::shared_ptr<const void>& keep) {
    bytes_out_ += data.size();
    bool ok = write(data, keep);
    if (ok) arm_send_timeout();
    return ok;
}

// ---- reading and parsing ----

void ServerConn::enter_raw_mode() {
    if (!to(State::Raw)) return;
    wait_ = Wait::None;
    timer().disarm();
    if (!is_reading() && !is_closing()) start_reading();
    if (!pending_in_.empty() && exchange_) {
        std::string buf = std::move(pending_in_);
        pending_in_.clear();
        exchange_->on_raw_data(buf);
    }
    // From inside the parser (an exchange answering in on_start) drive() releases it on the way out.
    if (!in_parser_ && !driving_) release_http_state();
}

// Nothing but raw bytes follows an upgrade: free what only HTTP parsing needs (llhttp's state, the
// header scanner and their buffers), so that an idle WebSocket is as small as it can be.
void ServerConn::release_http_state() {
    parser_.reset();
    std::string().swap(pending_in_);
}

void ServerConn::on_data(const char* data, size_t len) {
    if (state_ == State::Raw) {
        if (exchange_) exchange_->on_raw_data(std::string_view(data, len));
        return;
    }
    if (h2_possible_ && check_h2_preface(data, len)) return;
    // The first byte of a request starts the header timer: in Idle, and for the next pipelined
    // request while it waits for the client to read (WaitingDrain).
    if (!exchange_ && (state_ == State::Idle || state_ == State::WaitingDrain) && wait_ != Wait::Header) {
        if (state_ == State::Idle && !to(State::ReadingHead)) return;
        fresh_ = false;
        wait_ = Wait::Header;
        timer().arm(service_.header_timeout_ms());
    }
    if (pending_in_.empty() && !driving_) {
        drive(data, len);
    } else {
        pending_in_.append(data, len);
        drive(nullptr, 0);
    }
}

// The connection's first bytes: the HTTP/2 preface (h2c with prior knowledge) hands the connection
// to HTTP/2; a prefix of it waits for more (bounded by the preface's 24 bytes and the header
// timeout); anything else is HTTP/1.x. Returns true when it took the bytes.
bool ServerConn::check_h2_preface(const char* data, size_t len) {
    size_t seen = pending_in_.size();
    if (exchange_ || (state_ != State::Idle && state_ != State::ReadingHead) || seen >= kH2Preface.size()) {
        h2_possible_ = false;
        return false;
    }
    size_t take = std::min(len, kH2Preface.size() - seen);
    if (std::string_view(data, take) != kH2Preface.substr(seen, take)) {
        h2_possible_ = false; // HTTP/1.x: the bytes held so far are parsed with these
        return false;
    }
    if (seen + take == kH2Preface.size()) {
        start_h2(data, len);
        return true;
    }
    if (state_ == State::Idle) {
        if (!to(State::ReadingHead)) return true;
        wait_ = Wait::Header;
        timer().arm(service_.header_timeout_ms());
    }
    pending_in_.append(data, len);
    return true;
}

// Hands the connection to HTTP/2 as a raw exchange (the session multiplexes its own exchanges on
// streams); `data` (after what pending_in_ holds) are its first bytes.
void ServerConn::start_h2(const char* data, size_t len) {
    h2_possible_ = false;
    std::unique_ptr<Exchange> session = service_.h2_factory(*this, service_);
    if (!session) {
        close();
        return;
    }
    exchange_ = std::move(session);
    if (!to(State::Raw)) return;
    wait_ = Wait::None;
    timer().disarm();
    std::string first = std::move(pending_in_);
    if (data) first.append(data, len);
    release_http_state();
    exchange_->on_start();
    if (exchange_ && !first.empty() && !is_closing()) exchange_->on_raw_data(first);
    if (!is_reading() && !is_closing() && !is_shutting_down()) start_reading();
}

// Feeds the parser from `data` (if given) and then from pending_in_, for as long as the parser
// accepts input. Never re-entered: a finishing exchange only resumes the parser and this loop
// picks up the remaining bytes.
void ServerConn::drive(const char* data, size_t len) {
    if (driving_) {
        if (data) pending_in_.append(data, len);
        return;
    }
    driving_ = true;
    if (data) {
        feed(data, len);
        resume_if_idle();
    }
    while (!is_closing() && !is_shutting_down() && !pending_in_.empty() && state_ != State::Raw &&
           parser_->state() == RequestParser::State::Ok && !body_paused_) {
        std::string buf = std::move(pending_in_);
        pending_in_.clear();
        feed(buf.data(), buf.size());
        resume_if_idle();
    }
    driving_ = false;
    if (state_ == State::Raw) {
        // Entered raw mode while parsing; reading is the raw exchange's business from now on.
        release_http_state();
        return;
    }
    if (is_closing() || is_shutting_down()) return;
    // Bound what a client can make us hold: stop reading while a full header's worth is waiting.
    bool too_much = pending_in_.size() > service_.max_header_bytes();
    if ((too_much || body_paused_) && is_reading())
        stop_reading();
    else if (!too_much && !body_paused_ && !is_reading())
        start_reading();
}

// The parser pauses after every request; once that request's response has ended too, go on.
void ServerConn::resume_if_idle() {
    if (parser_ && parser_->state() == RequestParser::State::Paused && !exchange_ &&
        (state_ == State::Idle || state_ == State::ReadingHead))
        parser_->resume();
}

void ServerConn::feed(const char* data, size_t len) {
    in_parser_ = true;
    size_t used = parser_->feed(data, len);
    in_parser_ = false;
    if (used < len) pending_in_.insert(0, data + used, len - used);
    switch (parser_->state()) {
    case RequestParser::State::Error:
        handle_parse_error();
        break;
    case RequestParser::State::Upgrade:
        feed_upgrade();
        break;
    default:
        break;
    }
}

// The bytes after an upgrade request's head belong to the new protocol. They wait in pending_in_
// until the exchange enters raw mode; without one taking over, the connection ends after the response.
void ServerConn::feed_upgrade() {
    bool raw = state_ == State::Raw;
    if (exchange_ && !raw && !exchange_->wants_upgrade()) {
        // Declined (e.g. h2c): the rest of the request is ordinary HTTP/1.1.
        facts_.keep_alive = false;
        parser_->resume();
        std::string rest = std::move(pending_in_);
        pending_in_.clear();
        feed(rest.data(), rest.size());
    } else if (raw && exchange_ && !pending_in_.empty()) {
        std::string buf = std::move(pending_in_);
        pending_in_.clear();
        exchange_->on_raw_data(buf);
    } else if (!exchange_) {
        facts_.keep_alive = false;
        pending_in_.clear();
    }
}

void ServerConn::handle_parse_error() {
    int status = parser_->error_status();
    service_.on_request_rejected(*this, status);
    LOG_DEBUG(service_.log_target(), "bad request from %s: %d %.*s", peer_ip_.c_str(), status,
              static_cast<int>(parser_->error_message().size()), parser_->error_message().data());
    pending_in_.clear();
    facts_.keep_alive = false;
    if (exchange_) {
        auto ex = std::move(exchange_);
        ex->on_client_gone();
        worker_.defer_delete(std::move(ex));
    }
    std::string msg(parser_->error_message());
    if (msg.empty()) msg = std::string(reason_phrase(status));
    service_.rejection(&status, &msg);
    msg += '\n';
    reject(status, msg); // the parser cannot go on after an error
}

// Answers an error of our own (bad request, body timeout) and closes after it; a response already
// under way ends truncated instead. The exchange, if any, is gone already.
void ServerConn::reject(int status, std::string_view body) {
    bool started = response_started();
    if (!to(State::Closing)) return;
    if (started) {
        close();
        return;
    }
    facts_.head = false;
    facts_.keep_alive = false;
    Headers h;
    h.add("Content-Type", "text/plain");
    if (write_head(status, {}, h, static_cast<int64_t>(body.size()))) send_body(body);
    if (wait_ == Wait::Body || wait_ == Wait::Send) {
        wait_ = Wait::None;
        timer().disarm();
    }
    body_paused_ = false;
    close_after_flush();
}

void ServerConn::on_request_head(RequestHead& head) {
    wait_ = Wait::None;
    timer().disarm();
    if (!to(State::ReadingBody)) return;
    service_.requests.add();
    facts_.keep_alive = head.keep_alive;
    facts_.http10 = head.version_major == 1 && head.version_minor == 0;
    facts_.head = head.method == "HEAD";
    facts_.has_body = head.chunked || head.content_length > 0;
    bool expect_continue = head.expect_continue;
    if (service_.stats_events && stats::enabled())
        stats_conn_.open(head.upgrade && head.headers.has_token("Upgrade", "websocket"), peer(), is_tls());
    exchange_ = service_.start_exchange(*this, head);
    if (!exchange_) return;
    if (expect_continue && !response_started() && !is_closing()) out("HTTP/1.1 100 Continue\r\n\r\n");
    exchange_->on_start();
    if (exchange_ && !is_closing()) arm_body_timeout();
}

void ServerConn::on_request_body(std::string_view data) {
    if (wait_ == Wait::Body) arm_body_timeout();
    if (exchange_) exchange_->on_request_body(data);
}

void ServerConn::on_request_complete() {
    switch (state_) {
    case State::ReadingBody:
        to(State::Handling);
        break;
    case State::ReadingBodyResponding:
        to(State::Responding);
        break;
    case State::AnsweredEarly:
        to(State::Finished);
        break;
    case State::Raw:
    case State::Closing:
        break; // the end of a request nobody reads any more
    default:
        to(State::Handling); // the end of a request that never began: refused (a bug)
        return;
    }
    if (wait_ == Wait::Body) {
        wait_ = Wait::None;
        timer().disarm();
        if (queued_bytes() > 0) arm_send_timeout();
    }
    if (exchange_)
        exchange_->on_request_end();
    else if (!response_ended() && state_ != State::Closing && state_ != State::Raw)
        respond_text(500, "Internal Server Error\n"); // never leave a request unanswered
    maybe_next_request();
}

void ServerConn::on_read_end(int status) {
    if (status != UV_EOF)
        LOG_DEBUG(service_.log_target(), "read error from %s: %s", peer_ip_.c_str(), uv_strerror(status));
    if (exchange_ && status == UV_EOF && request_complete() && exchange_->keep_on_client_eof()) {
        facts_.keep_alive = false; // answer what was asked, then close
        return;
    }
    close();
}

// Between requests, with the last answer still queued: a client that takes none of it for the send
// timeout (the idle timeout when there is none) is cut off, as one that stops reading an answer is.
void ServerConn::arm_drain_timeout() {
    uint64_t ms = service_.send_timeout_ms() ? service_.send_timeout_ms() : service_.idle_timeout_ms();
    wait_ = Wait::Send;
    send_mark_ = bytes_out_ - queued_bytes();
    timer().arm(ms);
}

void ServerConn::on_drain_timeout() {
    uint64_t taken = bytes_out_ - queued_bytes();
    if (taken > send_mark_) {
        arm_drain_timeout(); // slow but reading
        return;
    }
    LOG_DEBUG(service_.log_target(),
              "client %s took none of its last answer (%zu bytes waiting): cutting it off", peer_ip_.c_str(),
              queued_bytes());
    reset(); // on_close moves to Closing
}

void ServerConn::on_timeout() {
    Wait what = wait_;
    wait_ = Wait::None;
    if (state_ == State::WaitingDrain && what == Wait::Send) {
        on_drain_timeout();
        return;
    }
    if (what == Wait::Body) {
        on_body_timeout();
        return;
    }
    if (what == Wait::Send) {
        on_send_timeout();
        return;
    }
    if (exchange_) return; // exchanges manage their own time
    if (is_tls() && !tls_established()) {
        LOG_DEBUG(service_.log_target(), "TLS handshake from %s timed out", peer_ip_.c_str());
        close();
        return;
    }
    LOG_DEBUG(service_.log_target(), "closing %s connection from %s", state_ == State::Idle ? "idle" : "slow",
              peer_ip_.c_str());
    close();
}

void ServerConn::on_body_timeout() {
    if (!exchange_ || !reading_body() || is_closing()) return;
    LOG_DEBUG(service_.log_target(), "request body from %s stalled for %llu ms: closing", peer_ip_.c_str(),
              static_cast<unsigned long long>(service_.body_timeout_ms()));
    facts_.keep_alive = false;
    pending_in_.clear();
    auto ex = std::move(exchange_);
    ex->on_client_gone(); // drops the backend request, which never gets the rest of its body
    worker_.defer_delete(std::move(ex));
    reject(408, "Request body timeout\n"); // a response under way ends truncated
}

void ServerConn::on_send_timeout() {
    if (!exchange_ || is_closing()) return;
    size_t queued = queued_bytes();
    if (queued == 0) return; // all sent; the next write arms it again
    uint64_t taken = bytes_out_ - queued;
    if (taken > send_mark_) {
        arm_send_timeout(); // slow but reading
        return;
    }
    LOG_DEBUG(service_.log_target(),
              "client %s took no output for %llu ms (%zu bytes waiting): cutting it off", peer_ip_.c_str(),
              static_cast<unsigned long long>(service_.send_timeout_ms()), queued);
    auto ex = std::move(exchange_);
    ex->on_client_gone(); // the exchange did not ask for this: it must let go of the connection
    worker_.defer_delete(std::move(ex));
    reset(); // drop what the kernel still holds for a client that does not read
}

void ServerConn::on_write_drained() {
    if (state_ == State::WaitingDrain) {
        maybe_next_request();
        return;
    }
    if (exchange_) exchange_->on_client_writable();
}

void ServerConn::on_close() {
    worker_link.unlink();
    if (conn_limit_) conn_limit_->open.fetch_sub(1);
    bool counted = state_ != State::New && state_ != State::Refused; // start() counted it
    to(counted ? State::Closing : State::Refused);
    if (counted) service_.connections.sub();
    stats_conn_.close();
    if (exchange_) {
        auto ex = std::move(exchange_);
        ex->on_client_gone();
        worker_.defer_delete(std::move(ex));
    }
    worker_.on_client_closed();
}

// ---- writing the response ----

bool ServerConn::send_head(int status, std::string_view reason, const Headers& headers,
                           int64_t content_length) {
    if (is_closing() || is_shutting_down()) return false;
    if (state_ == State::ReadingBody) {
        if (!to(State::ReadingBodyResponding)) return false;
    } else if (state_ == State::Handling) {
        if (!to(State::Responding)) return false;
    } else {
        return false; // a head went out already, or there is no request to answer
    }
    return write_head(status, reason, headers, content_length);
}

// Writes the status line and headers and records the framing in facts_.
bool ServerConn::write_head(int status, std::string_view reason, const Headers& headers,
                            int64_t content_length) {
    if (is_closing() || is_shutting_down()) return false;
    bool informational = status >= 100 && status < 200;
    facts_.no_body = facts_.head || status == 204 || status == 304 || informational;
    std::string out;
    out.reserve(256);
    append_status_line(status, reason, out);
    for (const auto& h : headers) {
        if (is_hop_by_hop(h.name) && !core::iequals(h.name, "content-encoding")) continue;
        append_header_line(h.name, h.value, out);
    }
    if (facts_.head || status == 304) {
        if (content_length >= 0) out += "Content-Length: " + std::to_string(content_length) + "\r\n";
    } else if (status == 204 || informational) {
        // no framing
    } else if (content_length >= 0) {
        out += "Content-Length: " + std::to_string(content_length) + "\r\n";
    } else if (!facts_.http10) {
        out += "Transfer-Encoding: chunked\r\n";
        facts_.chunked = true;
    } else {
        facts_.keep_alive =
            false; // HTTP/1.0 without a length: the end of the body is the end of the connection
    }
    // Stopping: the connection closes after this response (finish_cycle), so the client knows not to
    // send another request on it.
    if (!facts_.keep_alive || (worker_.is_stopping() && !informational))
        out += "Connection: close\r\n";
    else if (facts_.http10)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
    return this->out(out);
}

bool ServerConn::send_body(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (facts_.no_body || data.empty()) return !is_closing();
    if (!facts_.chunked) return out(data, keep);
    std::string framed;
    framed.reserve(data.size() + 16);
    append_chunk(framed, data);
    return out(framed);
}

bool ServerConn::send_raw(std::string_view data, const std::shared_ptr<const void>& keep) {
    return out(data, keep);
}

void ServerConn::end_response() {
    if (is_closing()) return;
    if (facts_.chunked && !facts_.no_body) {
        std::string last;
        append_last_chunk(last);
        out(last);
    }
    finish_exchange();
}

void ServerConn::set_exchange(std::unique_ptr<Exchange> next) {
    if (exchange_) worker_.defer_delete(std::move(exchange_));
    exchange_ = std::move(next);
}

void ServerConn::abort_response() {
    if (exchange_) worker_.defer_delete(std::move(exchange_));
    close();
}

void ServerConn::shed_candidates(size_t min_queued, std::vector<ShedCandidate>& out) {
    size_t own = queued_bytes();
    if (state_ == State::Raw && exchange_) own += exchange_->shed_candidates(min_queued, out);
    if (own >= min_queued) out.push_back(ShedCandidate{own, this, nullptr});
}

void ServerConn::cut_off() {
    if (exchange_) worker_.defer_delete(std::move(exchange_));
    reset();
}

void ServerConn::pause_request_body() {
    if (state_ == State::Raw) {
        stop_reading();
        return;
    }
    body_paused_ = true;
    if (is_reading()) stop_reading();
    arm_body_timeout(); // we are not reading: the client is not late
}

void ServerConn::resume_request_body() {
    if (state_ == State::Raw) {
        start_reading();
        return;
    }
    if (!body_paused_) return;
    body_paused_ = false;
    arm_body_timeout();
    drive(nullptr, 0);
}

void ServerConn::finish_exchange() {
    stats_conn_.close();
    if (exchange_) worker_.defer_delete(std::move(exchange_));
    if (wait_ == Wait::Body || wait_ == Wait::Send) {
        wait_ = Wait::None;
        timer().disarm();
    }
    body_paused_ = false;
    switch (state_) {
    case State::ReadingBody:
    case State::ReadingBodyResponding:
    case State::Raw:
        if (facts_.has_body) {
            // Answered before the body arrived (an error): do not read a body nobody wants.
            facts_.keep_alive = false;
            if (!to(State::Closing)) return;
            close_after_flush();
            return;
        }
        // A bodiless request: its end is parsed next (a raw connection never parses it).
        if (state_ != State::Raw) to(State::AnsweredEarly);
        return;
    case State::Handling:
    case State::Responding:
        if (!to(State::Finished)) return;
        break;
    default:
        break; // ended already, or closing
    }
    maybe_next_request();
}

void ServerConn::maybe_next_request() {
    if (state_ != State::Finished && state_ != State::WaitingDrain) return;
    if (is_closing() || is_shutting_down()) {
        to(State::Closing);
        return;
    }
    if (!facts_.keep_alive || worker_.is_stopping()) {
        if (!to(State::Closing)) return;
        close_after_flush();
        return;
    }
    if (queued_bytes() > kNextRequestMaxQueued) {
        if (state_ != State::WaitingDrain) arm_drain_timeout();
        to(State::WaitingDrain); // on_write_drained goes on
        return;
    }
    begin_cycle();
    if (!in_parser_) {
        resume_if_idle();
        drive(nullptr, 0);
    }
}

} // namespace gripd::http
