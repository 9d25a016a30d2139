// BackendWsConn: the client side of a passthrough WebSocket, towards the backend. One TCP socket
// on the session's worker: connect (DNS, connect timeout), send the handshake, read the answer with
// the HTTP response parser (a 101 switches to WebSocket frames, anything else is a refusal to
// relay), then frames both ways (ours masked, theirs validated by FrameParser in client role).
// Follows loop/handle.hpp: it frees itself in its close callback; the user is told at most once
// that it failed, and never after it let go. The user holds it only through a BackendWsHandle
// (core/tether.hpp), which the connection empties when it ends by itself.
#pragma once

#include "gripd/core/tether.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/response_parser.hpp"
#include "gripd/net/outbound_conn.hpp"
#include "gripd/ws/frame.hpp"
#include "states.hpp"

#include <string>

namespace gripd::ws {

class BackendWsUser {
  public:
    virtual ~BackendWsUser() = default;
    // Connecting failed (DNS, refused, timeout); the connection is gone.
    virtual void on_ws_connect_failed(int uv_status) = 0;
    // The backend accepted (a 101 with the right Sec-WebSocket-Accept).
    virtual void on_ws_open(http::ResponseHead& head) = 0;
    // The backend answered the handshake with something else; the connection is gone.
    virtual void on_ws_rejected(http::ResponseHead& head, std::string&& body) = 0;
    virtual void on_ws_frame(const Frame& frame) = 0;
    // The connection failed or broke the protocol (not called after a completed close handshake);
    // the connection is gone.
    virtual void on_ws_error(const char* why) = 0;
    // The backend closed the TCP connection after the close handshake.
    virtual void on_ws_closed() = 0;
    virtual void on_ws_writable() {}
};

class BackendWsConn;

// A session's hold on its backend WebSocket connection. Move-only; letting go (detach() or the
// destructor) ends the user's part: no more callbacks, and the connection closes once what was
// queued is flushed. Empty once the connection ended by itself (failed, closed, refused).
class BackendWsHandle {
  public:
    BackendWsHandle() = default;
    BackendWsHandle(BackendWsHandle&& other) noexcept = default;
    BackendWsHandle& operator=(BackendWsHandle&& other) noexcept {
        if (this != &other) {
            detach();
            conn_ = std::move(other.conn_);
        }
        return *this;
    }
    ~BackendWsHandle() { detach(); }

    explicit operator bool() const { return static_cast<bool>(conn_); }
    BackendWsConn* operator->() const { return conn_.get(); }
    void detach();

  private:
    friend class BackendWsConn;
    core::Tether<BackendWsConn> conn_;
};

class BackendWsConn final : public net::OutboundConn,
                            public core::Tethered,
                            private http::ResponseParser::Handler,
                            private FrameParser::Handler {
  public:
    // Starts connecting to `target` through `handle` (whatever it held is let go first) and sends
    // `request` (the handshake) once connected.
    static void start(loop::Worker& worker, BackendWsUser& user, const http::BackendTarget& target,
                      uint64_t connect_timeout_ms, std::string request, std::string expected_accept,
                      uint64_t max_frame, BackendWsHandle& handle);

    // Sends one frame (masked, as a client must).
    void send_frame(WsOpcode opcode, std::string_view payload, bool fin = true);
    // Sends our close frame; the connection ends when the backend answers (or after a linger).
    void send_close(int code, std::string_view reason);
    bool close_sent() const {
        return state_ == BackendWsState::CloseSent || state_ == BackendWsState::Closed;
    }
    bool close_received() const {
        return state_ == BackendWsState::CloseReceived || state_ == BackendWsState::Closed;
    }
    void pause() { stop_reading(); }
    void resume() {
        if (is_open()) start_reading();
    }
    BackendWsState state() const { return state_; }
    // "state=<name>", for tests and debug logs (no flags: all of its state is the enum).
    std::string dump() const { return format_dump(state_name(state_), {}); }

  private:
    friend class BackendWsHandle;
    BackendWsConn(loop::Worker& worker, BackendWsUser& user, std::string request, std::string expected_accept,
                  uint64_t max_frame);
    void fail(const char* why);
    // The one transition function (see states.hpp).
    bool set_state(BackendWsState to);
    // No more frames either way (idempotent: a failure may follow a refusal or an error).
    void set_ended() {
        if (state_ != BackendWsState::Ended) set_state(BackendWsState::Ended);
    }
    // The 101 was checked: frames may flow (until the connection ends).
    bool is_open() const {
        return state_ != BackendWsState::Connecting && state_ != BackendWsState::Refused &&
               state_ != BackendWsState::Ended;
    }
    // The user is done (through its handle): no more callbacks; the connection ends after flushing.
    void detach();
    // Empties the handle and returns the user to tell: the connection ends by itself.
    BackendWsUser* end_use();

    // OutboundConn
    void on_connected() override;
    void on_connect_failed(int status) override;
    void on_timer_after_connect() override;

    // TcpConn
    void on_received(const char* data, size_t len) override;
    void on_received_end(int status) override;
    void on_write_drained() override;
    void on_close() override;
    // ResponseParser::Handler
    void on_response_head(http::ResponseHead& head) override;
    void on_response_body(std::string_view data) override;
    void on_response_complete() override;
    // FrameParser::Handler
    void on_frame(const Frame& frame) override;

    BackendWsUser* user_;
    std::string request_;
    std::string expected_accept_;
    http::ResponseParser response_;
    FrameParser frames_;
    http::ResponseHead refused_; // a non-101 answer, until its body is complete
    std::string refused_body_;
    BackendWsState state_ = BackendWsState::Connecting;
};

} // namespace gripd::ws
