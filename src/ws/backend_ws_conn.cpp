#include "backend_ws_conn.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/loop/worker.hpp"

#include <memory>

namespace gripd::ws {

namespace {
constexpr size_t kRefusedBodyMax = 100000;
}

BackendWsConn::BackendWsConn(loop::Worker& worker, BackendWsUser& user, std::string request,
                             std::string expected_accept, uint64_t max_frame)
    : OutboundConn(worker), user_(&user), request_(std::move(request)),
      expected_accept_(std::move(expected_accept)), response_(*this, http::ResponseParser::Limits{}),
      frames_(*this, FrameParser::Role::Client, FrameParser::Limits{max_frame, 0}) {}

void BackendWsConn::start(loop::Worker& worker, BackendWsUser& user, const http::BackendTarget& target,
                          uint64_t connect_timeout_ms, std::string request, std::string expected_accept,
                          uint64_t max_frame, BackendWsHandle& handle) {
    handle.detach();
    // Frees itself in its close callback (loop/handle.hpp).
    auto* c = new BackendWsConn(worker, user, std::move(request), std::move(expected_accept), max_frame);
    handle.conn_.tie(*c); // before connecting: a failure may be reported at once, emptying it
    c->set_deny_internal(target.deny_internal);
    c->connect(target.host, target.port, connect_timeout_ms, target.tls ? &*target.tls : nullptr);
}

BackendWsUser* BackendWsConn::end_use() {
    BackendWsUser* u = user_;
    user_ = nullptr;
    cut_tether();
    return u;
}

void BackendWsHandle::detach() {
    if (BackendWsConn* c = conn_.untie()) c->detach();
}

void BackendWsConn::on_connected() {
    std::string req_bytes = std::move(request_);
    transmit(req_bytes);
    start_reading();
}

void BackendWsConn::on_connect_failed(int status) {
    set_ended();
    BackendWsUser* u = end_use();
    close();
    if (u) u->on_ws_connect_failed(status);
}

void BackendWsConn::fail(const char* why) {
    set_ended();
    BackendWsUser* u = end_use();
    close();
    if (u) u->on_ws_error(why);
}

void BackendWsConn::on_timer_after_connect() {
    set_ended();
    close();
}

void BackendWsConn::on_received(const char* data, size_t len) {
    if (state_ == BackendWsState::Ended) return; // closing: nothing more is read
    if (state_ == BackendWsState::Connecting || state_ == BackendWsState::Refused) {
        size_t used = response_.feed(data, len);
        if (is_closing()) return;
        auto st = response_.state();
        if (st == http::ResponseParser::State::Error) {
            fail("bad handshake response");
            return;
        }
        if (st != http::ResponseParser::State::Upgrade || !is_open()) return;
        data += used;
        len -= used;
        if (len == 0) return;
    }
    frames_.feed(data, len);
    if (is_closing()) return;
    if (frames_.state() == FrameParser::State::Error) {
        LOG_DEBUG("ws", "backend broke the WebSocket protocol: %s", frames_.error_message());
        set_ended();
        std::string f;
        uint8_t mask[4];
        random_mask(mask);
        append_close_frame(f, frames_.error_code(), "", mask);
        transmit(f);
        BackendWsUser* u = end_use();
        close_after_flush();
        if (u) u->on_ws_error("protocol error");
    }
}

void BackendWsConn::on_response_head(http::ResponseHead& head) {
    if (head.status == 101) {
        bool ok =
            head.headers.has_token("Upgrade", "websocket") && head.headers.has_token("Connection", "upgrade");
        const std::string* accept = head.headers.get("Sec-WebSocket-Accept");
        if (!ok || !accept || core::trim(*accept) != expected_accept_) {
            fail("bad 101 from backend");
            return;
        }
        if (!set_state(BackendWsState::Open)) {
            fail("bad state");
            return;
        }
        std::string().swap(expected_accept_);
        if (user_) user_->on_ws_open(head);
        return;
    }
    if (!set_state(BackendWsState::Refused)) {
        fail("bad state");
        return;
    }
    refused_ = std::move(head);
}

void BackendWsConn::on_response_body(std::string_view data) {
    if (refused_body_.size() < kRefusedBodyMax)
        refused_body_.append(data.substr(0, kRefusedBodyMax - refused_body_.size()));
}

void BackendWsConn::on_response_complete() {
    if (state_ != BackendWsState::Refused) return;
    set_ended();
    BackendWsUser* u = end_use();
    close();
    if (u) u->on_ws_rejected(refused_, std::move(refused_body_));
}

void BackendWsConn::on_frame(const Frame& frame) {
    if (frame.opcode == WsOpcode::Close) {
        BackendWsState next = after_close_received(state_); // unchanged once ended
        if (next != state_ && !set_state(next)) return fail("bad state");
    }
    if (user_) user_->on_ws_frame(frame);
    if (frame.opcode == WsOpcode::Close && close_sent() && !is_closing()) close_after_flush();
}

void BackendWsConn::on_received_end(int status) {
    if (state_ == BackendWsState::Refused && status == UV_EOF && response_.finish())
        return; // body ended by EOF
    BackendWsUser* u = end_use();
    bool clean = state_ == BackendWsState::Closed;
    set_ended();
    close();
    if (!u) return;
    if (clean)
        u->on_ws_closed();
    else
        u->on_ws_error(status == UV_EOF ? "backend closed the connection" : uv_strerror(status));
}

bool BackendWsConn::set_state(BackendWsState to) {
    return enter_state(state_, to, "ws backend connection");
}

void BackendWsConn::on_write_drained() {
    if (user_) user_->on_ws_writable();
}

void BackendWsConn::on_close() {
    set_ended();
    end_use(); // closed under its user (shutdown): the handle must not point here any more
}

void BackendWsConn::send_frame(WsOpcode opcode, std::string_view payload, bool fin) {
    if (!is_open() || close_sent()) return;
    std::string f;
    uint8_t mask[4];
    random_mask(mask);
    append_frame(f, opcode, payload, fin, mask);
    transmit(f);
}

void BackendWsConn::send_close(int code, std::string_view reason) {
    if (!is_open() || close_sent()) return;
    std::string f;
    uint8_t mask[4];
    random_mask(mask);
    append_close_frame(f, code, reason, mask);
    transmit(f);
    if (!set_state(after_close_sent(state_))) return fail("bad state");
    if (state_ == BackendWsState::Closed) close_after_flush();
}

void BackendWsConn::detach() {
    user_ = nullptr;
    if (is_closing()) return;
    if (!is_open()) {
        close();
        return;
    }
    close_after_flush();
}

} // namespace gripd::ws
