// PassthroughSession: a client WebSocket relayed frame by frame to a WebSocket backend (PROTOCOL.md
// §5.1): the backend's 101 answers the client (or its refusal is relayed), frames flow both ways with
// backpressure, ping/pong content and close codes are relayed, and once the backend accepts the
// `grip` extension its `c:` messages are control messages and only prefixed messages reach the client.
#pragma once

#include "backend_ws_conn.hpp"
#include "session.hpp"

#include <memory>
#include <string>

namespace gripd::ws {

class PassthroughSession final : public Session, public BackendWsUser {
  public:
    PassthroughSession(WsService& service, http::ClientStream& client,
                       std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                       bool trusted, http::RequestHead& head, size_t target_index);
    ~PassthroughSession() override;

    void start() override;
    WsMode mode() const override { return WsMode::Passthrough; }
    void stop() override;
    // The client side's dump plus the relay's: "... relay=<RelayState> backend=<...> ...".
    std::string dump() const override;

    // BackendWsUser
    void on_ws_connect_failed(int uv_status) override;
    void on_ws_open(http::ResponseHead& head) override;
    void on_ws_rejected(http::ResponseHead& head, std::string&& body) override;
    void on_ws_frame(const Frame& frame) override;
    void on_ws_error(const char* why) override;
    void on_ws_closed() override;
    void on_ws_writable() override;

  private:
    // Session
    void on_client_frame(const Frame& frame) override;
    void on_client_close(int code, std::string_view reason) override;
    void on_client_close_reply(int code, std::string_view reason) override;
    void on_client_ended(bool clean) override;
    void on_detach() override;
    void on_publish_close() override;
    void on_client_drained() override;
    bool relay_in_progress() const override { return relay_ == RelayState::Relaying; }
    FrameParser::Limits frame_limits() const override { return {service_.limits().max_frame, 0}; }

    void connect();
    void relay_data_frame(const Frame& frame);
    void pace_backend(); // pause the backend while the client is behind
    void close_backend(int code, std::string_view reason);
    void backend_gone();
    void log_access(int code) { log_handshake(code, head_.get(), route_.targets[target_index_]); }
    // The one transition function of the relay (see states.hpp).
    bool set_relay(RelayState to);

    size_t target_index_;
    std::unique_ptr<http::RequestHead> head_; // until the handshake is answered
    BackendWsHandle backend_;
    RelayState relay_ = RelayState::Idle; // the backend's current data message
    // Not lifecycle: backpressure (reading the backend stops while the client is behind), toggled
    // in any state.
    bool backend_paused_ = false;
};

} // namespace gripd::ws
