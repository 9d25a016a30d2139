#include "gripd/http/server_conn.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/loop/worker.hpp"

#include <cstdio>

namespace gripd::http {

namespace {
// Pipelined requests wait while this much of the previous responses is still queued for the
// client: one that sends requests and never reads its answers makes us hold at most this much
// (plus one response), not every answer.
constexpr size_t kNextRequestMaxQueued = 256 * 1024;
} // namespace

ServerConn::ServerConn(loop::Worker& worker, Service& service) : TcpConn(worker), service_(service) {
    parser_.emplace(static_cast<RequestParser::Handler&>(*this),
                    RequestParser::Limits{service.max_header_bytes()});
}

void ServerConn::start() {
    service_.connections.add();
    counted_ = true;
    peer_ip_ = peer_ip();
    arm_idle();
    start_reading();
}

void ServerConn::refuse_overloaded(std::string_view reason) {
    keep_alive_ = false;
    out("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: " +
        std::to_string(reason.size()) + "\r\nConnection: close\r\n\r\n" + std::string(reason));
    close_after_flush();
}

void ServerConn::arm_idle() {
    got_first_byte_ = false;
    wait_ = Wait::Idle;
    timer().arm(service_.idle_timeout_ms());
}

// The body timeout runs while a request body is owed and we are reading it; any body byte restarts it.
void ServerConn::arm_body_timeout() {
    uint64_t ms = service_.body_timeout_ms();
    if (ms == 0 || raw_ || request_done_ || !request_has_body_ || body_paused_ || !exchange_) {
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
    raw_ = true;
    head_sent_ = true;
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
    if (raw_) {
        if (exchange_) exchange_->on_raw_data(std::string_view(data, len));
        return;
    }
    if (!exchange_ && !got_first_byte_) {
        got_first_byte_ = true;
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
    while (!is_closing() && !is_shutting_down() && !pending_in_.empty() && !raw_ &&
           parser_->state() == RequestParser::State::Ok && !body_paused_) {
        std::string buf = std::move(pending_in_);
        pending_in_.clear();
        feed(buf.data(), buf.size());
        resume_if_idle();
    }
    driving_ = false;
    if (raw_) {
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
    if (parser_ && parser_->state() == RequestParser::State::Paused && !exchange_ && !request_done_ &&
        !response_ended_)
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
        // The bytes after an upgrade request's head belong to the new protocol. They wait in
        // pending_in_ until the exchange enters raw mode; without one taking over, the connection
        // ends after the response.
        if (exchange_ && !raw_ && !exchange_->wants_upgrade()) {
            // Declined (e.g. h2c): the rest of the request is ordinary HTTP/1.1.
            keep_alive_ = false;
            parser_->resume();
            std::string rest = std::move(pending_in_);
            pending_in_.clear();
            feed(rest.data(), rest.size());
        } else if (raw_ && exchange_ && !pending_in_.empty()) {
            std::string buf = std::move(pending_in_);
            pending_in_.clear();
            exchange_->on_raw_data(buf);
        } else if (!exchange_) {
            keep_alive_ = false;
            pending_in_.clear();
        }
        break;
    default:
        break;
    }
}

void ServerConn::handle_parse_error() {
    int status = parser_->error_status();
    service_.on_request_rejected(*this, status);
    LOG_DEBUG(service_.log_target(), "bad request from %s: %d %.*s", peer_ip_.c_str(), status,
              static_cast<int>(parser_->error_message().size()), parser_->error_message().data());
    pending_in_.clear();
    keep_alive_ = false;
    if (exchange_) {
        auto ex = std::move(exchange_);
        ex->on_client_gone();
        worker_.defer_delete(std::move(ex));
        if (head_sent_) {
            close();
            return;
        }
    }
    std::string msg(parser_->error_message());
    if (msg.empty()) msg = std::string(reason_phrase(status));
    service_.rejection(&status, &msg);
    msg += '\n';
    head_request_ = false;
    Headers h;
    h.add("Content-Type", "text/plain");
    respond(status, {}, h, msg);
    close_after_flush(); // the parser cannot go on after an error
}

void ServerConn::on_request_head(RequestHead& head) {
    wait_ = Wait::None;
    timer().disarm();
    service_.requests.add();
    keep_alive_ = head.keep_alive;
    http10_ = head.version_major == 1 && head.version_minor == 0;
    head_request_ = head.method == "HEAD";
    request_done_ = false;
    response_ended_ = false;
    request_has_body_ = head.chunked || head.content_length > 0;
    head_sent_ = false;
    chunked_ = false;
    no_body_ = false;
    bool expect_continue = head.expect_continue;
    exchange_ = service_.start_exchange(*this, head);
    if (!exchange_) return;
    if (expect_continue && !head_sent_ && !is_closing()) out("HTTP/1.1 100 Continue\r\n\r\n");
    exchange_->on_start();
    if (exchange_ && !is_closing()) arm_body_timeout();
}

void ServerConn::on_request_body(std::string_view data) {
    if (wait_ == Wait::Body) arm_body_timeout();
    if (exchange_) exchange_->on_request_body(data);
}

void ServerConn::on_request_complete() {
    request_done_ = true;
    if (wait_ == Wait::Body) {
        wait_ = Wait::None;
        timer().disarm();
        if (queued_bytes() > 0) arm_send_timeout();
    }
    if (exchange_)
        exchange_->on_request_end();
    else if (!response_ended_)
        respond_text(500, "Internal Server Error\n"); // never leave a request unanswered
    maybe_next_request();
}

void ServerConn::on_read_end(int status) {
    if (status != UV_EOF)
        LOG_DEBUG(service_.log_target(), "read error from %s: %s", peer_ip_.c_str(), uv_strerror(status));
    if (exchange_ && status == UV_EOF && request_done_ && exchange_->keep_on_client_eof()) {
        keep_alive_ = false; // answer what was asked, then close
        return;
    }
    close();
}

void ServerConn::on_timeout() {
    Wait what = wait_;
    wait_ = Wait::None;
    if (what == Wait::Body) {
        on_body_timeout();
        return;
    }
    if (what == Wait::Send) {
        on_send_timeout();
        return;
    }
    if (exchange_) return; // exchanges manage their own time
    LOG_DEBUG(service_.log_target(), "closing %s connection from %s", got_first_byte_ ? "slow" : "idle",
              peer_ip_.c_str());
    close();
}

void ServerConn::on_body_timeout() {
    if (!exchange_ || request_done_ || is_closing()) return;
    LOG_DEBUG(service_.log_target(), "request body from %s stalled for %llu ms: closing", peer_ip_.c_str(),
              static_cast<unsigned long long>(service_.body_timeout_ms()));
    keep_alive_ = false;
    pending_in_.clear();
    auto ex = std::move(exchange_);
    ex->on_client_gone(); // drops the backend request, which never gets the rest of its body
    worker_.defer_delete(std::move(ex));
    if (head_sent_) {
        close(); // a response under way ends truncated
        return;
    }
    head_request_ = false;
    Headers h;
    h.add("Content-Type", "text/plain");
    respond(408, {}, h, "Request body timeout\n");
    close_after_flush();
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
    if (next_waits_drain_) {
        next_waits_drain_ = false;
        maybe_next_request();
        return;
    }
    if (exchange_) exchange_->on_client_writable();
}

void ServerConn::on_close() {
    worker_link.unlink();
    if (conn_limit_) conn_limit_->open.fetch_sub(1);
    if (counted_) service_.connections.sub();
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
    if (is_closing() || is_shutting_down() || head_sent_) return false;
    head_sent_ = true;
    bool informational = status >= 100 && status < 200;
    no_body_ = head_request_ || status == 204 || status == 304 || informational;
    std::string out;
    out.reserve(256);
    append_status_line(status, reason, out);
    for (const auto& h : headers) {
        if (is_hop_by_hop(h.name) && !core::iequals(h.name, "content-encoding")) continue;
        append_header_line(h.name, h.value, out);
    }
    if (head_request_ || status == 304) {
        if (content_length >= 0) out += "Content-Length: " + std::to_string(content_length) + "\r\n";
    } else if (status == 204 || informational) {
        // no framing
    } else if (content_length >= 0) {
        out += "Content-Length: " + std::to_string(content_length) + "\r\n";
    } else if (!http10_) {
        out += "Transfer-Encoding: chunked\r\n";
        chunked_ = true;
    } else {
        keep_alive_ = false; // HTTP/1.0 without a length: the end of the body is the end of the connection
    }
    if (!keep_alive_)
        out += "Connection: close\r\n";
    else if (http10_)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
    return this->out(out);
}

bool ServerConn::send_body(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (no_body_ || data.empty()) return !is_closing();
    if (!chunked_) return out(data, keep);
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
    if (chunked_ && !no_body_) {
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

void ServerConn::cut_off() {
    if (exchange_) worker_.defer_delete(std::move(exchange_));
    reset();
}

void ServerConn::respond(int status, std::string_view reason, const Headers& headers, std::string_view body) {
    send_head(status, reason, headers, static_cast<int64_t>(body.size()));
    send_body(body);
    end_response();
}

void ServerConn::respond_text(int status, std::string_view body) {
    Headers h;
    h.add("Content-Type", "text/plain");
    respond(status, {}, h, body);
}

void ServerConn::pause_request_body() {
    if (raw_) {
        stop_reading();
        return;
    }
    body_paused_ = true;
    if (is_reading()) stop_reading();
    arm_body_timeout(); // we are not reading: the client is not late
}

void ServerConn::resume_request_body() {
    if (raw_) {
        start_reading();
        return;
    }
    if (!body_paused_) return;
    body_paused_ = false;
    arm_body_timeout();
    drive(nullptr, 0);
}

void ServerConn::finish_exchange() {
    if (exchange_) worker_.defer_delete(std::move(exchange_));
    if (wait_ == Wait::Body || wait_ == Wait::Send) {
        wait_ = Wait::None;
        timer().disarm();
    }
    body_paused_ = false;
    response_ended_ = true;
    if (!request_done_ && request_has_body_) {
        // Answered before the body arrived (an error): do not read a body nobody wants.
        keep_alive_ = false;
        close_after_flush();
        return;
    }
    maybe_next_request();
}

void ServerConn::maybe_next_request() {
    if (!request_done_ || !response_ended_ || raw_ || is_closing() || is_shutting_down()) return;
    if (!keep_alive_ || worker_.is_stopping()) {
        close_after_flush();
        return;
    }
    if (queued_bytes() > kNextRequestMaxQueued) {
        next_waits_drain_ = true; // on_write_drained goes on
        return;
    }
    request_done_ = false;
    response_ended_ = false;
    head_sent_ = false;
    arm_idle();
    if (!in_parser_) {
        resume_if_idle();
        drive(nullptr, 0);
    }
}

} // namespace gripd::http
