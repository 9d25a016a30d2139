// WohSession: a client WebSocket served by WebSocket-over-HTTP (PROTOCOL.md §5.2), read top to
// bottom as: OPEN request -> 101 (or the backend's refusal relayed) -> client messages batched into
// POSTs, one in flight at a time -> responses turned into client frames and control messages ->
// CLOSE / DISCONNECT. Transport errors are retried (5 times, 1 s doubling plus up to 1 s jitter).
#pragma once

#include "gripd/http/backend_pool.hpp"
#include "gripd/ws/event_queue.hpp"
#include "gripd/ws/events.hpp"
#include "session.hpp"

#include <memory>
#include <string>
#include <vector>

namespace gripd::ws {

class WohSession final : public Session, public http::BackendUser {
  public:
    WohSession(WsService& service, http::ClientStream& client,
               std::shared_ptr<const config::RouteTable> routes, const config::Route& route, bool trusted,
               http::RequestHead& head, size_t target_index);
    ~WohSession() override;

    void start() override;
    WsMode mode() const override { return WsMode::OverHttp; }
    std::string_view connection_id() const override { return cid_; }
    void stop() override;
    // The client side's dump plus the backend side's: "... backend=<WohState> ...".
    std::string dump() const override;

    // http::BackendUser
    void on_backend_connected() override;
    void on_backend_connect_failed(int uv_status) override;
    void on_backend_head(http::ResponseHead& head) override;
    void on_backend_body(std::string_view data) override;
    void on_backend_complete() override;
    void on_backend_error(int uv_status, bool retryable) override;

  private:
    struct Request; // the request in flight

    // Session
    void on_client_frame(const Frame& frame) override;
    void on_client_close(int code, std::string_view reason) override;
    void on_client_close_reply(int code, std::string_view reason) override;
    void on_client_ended(bool clean) override;
    void on_detach() override;
    void on_publish_close() override;
    void on_refresh() override;
    void on_client_drained() override;
    FrameParser::Limits frame_limits() const override;

    bool prepare_target(); // headers and path for target_index_
    bool need_update() const;
    void update();
    std::string render_request(const std::string& body, size_t replayed) const;
    void send_request();
    void handle_response(std::unique_ptr<Request> r);
    bool apply_accepted(Request& r, const http::Headers& headers);
    void apply_meta(const http::Headers& headers);
    bool accept(const http::Headers& response_headers);
    void process_events(std::string_view body, bool skip_first, Request& r);
    void on_peer_close(bool ours_accepted, int code, const std::string& reason);
    void connect_failed_while_opening();
    void retry_later();
    void fail(const char* why);
    void backend_done();
    void refuse_open();
    void queue_close(int code, std::string_view reason);
    void clear_out();
    void log_access(int code) { log_handshake(code, head_.get(), route_.targets[target_index_]); }
    static void on_timer(void* self);
    // The one transition function of the backend side (see states.hpp).
    bool set_state(WohState to);

    size_t target_index_;
    std::unique_ptr<http::RequestHead> head_; // until the handshake is answered (failover rebuilds from it)
    // "POST <path> HTTP/1.1" and the forwarded handshake headers, rendered once for every request.
    std::string request_head_;
    std::unique_ptr<http::BackendTarget> tls_target_;       // for an ssl target only
    char cid_[37] = {};                                     // Connection-Id (a UUID), kept inline
    std::vector<std::pair<std::string, std::string>> meta_; // from Set-Meta-* (sent as Meta-*)
    EventQueue out_;         // complete client messages not yet accepted, encoded (bounded: see .cpp)
    std::string assembling_; // a fragmented client message in progress
    EventType assembling_type_ = EventType::Text;
    std::unique_ptr<Request> req_;
    http::BackendLease backend_;
    loop::TimerEntry timer_; // retry delay, or Keep-Alive-Interval while idle
    int keep_alive_interval_ = -1;
    int retries_ = 0;
    size_t replay_messages_ = 0; // out_ events at the front already offered once
    size_t replay_bytes_ = 0;    // and their content bytes
    int close_code_ = -1;        // for the CLOSE event we send
    std::string close_reason_;
    WohState state_ = WohState::Opening;
    // Not lifecycle: what every request carries, decided once per target by prepare_target().
    bool sign_ = false;     // sign each request (Grip-Sig)
    bool features_ = false; // send Grip-Feature (kept out of request_head_: it is a constant)
    // Not lifecycle: work wanted (a Keep-Alive-Interval poll or a refresh), cleared by the request
    // that does it; it may be set in any connected state.
    bool update_queued_ = false;
    // Re-entrancy guard, not lifecycle: inside handle_response, where a callback (a client closing)
    // must not start the next request before this response is fully applied.
    bool processing_ = false;
};

} // namespace gripd::ws
