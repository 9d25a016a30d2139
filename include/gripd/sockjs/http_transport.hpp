// SockJS's HTTP transports (Pushpin 1.36's SockJsSession in its Http mode): `xhr` and `jsonp`
// polling with `xhr_send` and `jsonp_send`. Each session id gets one HttpSession, which is a
// WebSocket client as far as the ws module knows: it is the http::ClientStream a ws::Session is
// started with (a synthetic upgrade request), so the session runs the same WebSocket-over-HTTP or
// passthrough handling as the websocket transport. The HttpSession reads the frames that session
// writes (the 101, data and close frames) and answers polls from them; sends become masked client
// frames fed to the session.
//
// Bounds (test/LIMITS.md): a request body 100,000 bytes (400, as Pushpin's manager); messages
// waiting for a poll 200,000 bytes and 4,096 items (beyond: the session ends, as Pushpin's
// BUFFER_SIZE); one send request waiting at a time (400 "Already sending"); sessions per worker
// kMaxSessions (503).
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/http/ws_handler.hpp"
#include "gripd/loop/deletable.hpp"
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/sockjs/relay.hpp"
#include "gripd/ws/frame.hpp"

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace gripd::loop {
class Worker;
}

namespace gripd::sockjs {

class HttpTransports;
class HttpSession;

constexpr size_t kMaxRequestBody = 100000; // Pushpin's MAX_REQUEST_BODY
constexpr size_t kMaxQueuedBytes = 200000; // Pushpin's BUFFER_SIZE
constexpr size_t kMaxQueuedItems = 4096;   // gripd: messages waiting for a poll
constexpr size_t kMaxSessions = 10000;     // gripd: HTTP-transport sessions per worker
constexpr uint64_t kUnconnectedMs = 5000;  // Pushpin's UNCONNECTED_TIMEOUT: no poll this long ends it
constexpr uint64_t kLingerMs = 5000;       // a closed session's close value is kept this long

// One SockJS HTTP request (any transport under `/<server>/<session>/`): reads the body, then is
// dispatched. A poll stays installed until it is answered. Three kinds (relay.hpp): a local
// request on the session's owner; a local request relayed to the owner (relay_token_ set until
// the answer comes back); and, on the owner, one standing for a relayed request (origin_ >= 0: its
// answer goes back through the inbox).
class TransportRequest final : public http::Exchange {
  public:
    TransportRequest(HttpTransports& owner, http::ClientStream& conn,
                     std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                     http::RequestHead head, bool trusted);
    // On the session's owner: the request relayed from worker `origin`.
    TransportRequest(HttpTransports& owner, int origin, RelayedRequest&& relayed);
    ~TransportRequest() override;
    void on_request_body(std::string_view data) override;
    void on_request_end() override;
    void on_client_gone() override;

    // Answers with Pushpin's common SockJS headers; the request is done.
    void respond(int status, std::string_view content_type, std::string_view body);
    // A 200 with `text` (JSON-P wrapped when there is a callback).
    void respond_ok(std::string_view text);
    // Answers with these headers (the common ones already in); the request is done.
    void answer(int status, const http::Headers& headers, std::string_view body);
    // Not answered yet and its client still there.
    bool live() const { return conn_ != nullptr || (origin_ >= 0 && !answered_); }

    HttpTransports& owner_;
    http::ClientStream* conn_ = nullptr;
    std::shared_ptr<const config::RouteTable> routes_;
    const config::Route& route_;
    http::RequestHead head_;
    bool trusted_;
    bool tls_ = false;
    std::string peer_;
    std::string body_;
    std::string sid_, transport_, callback_;
    HttpSession* session_ = nullptr; // while it waits on a session (a poll, a paused send)
    std::vector<std::string> sends_; // a send waiting for the session to read again
    bool too_large_ = false;
    uint64_t relay_token_ = 0; // origin side: out at the owner under this token
    int origin_ = -1;          // owner side: the worker the client is on
    uint64_t origin_token_ = 0;
    bool answered_ = false; // owner side: the answer went back

  private:
    void parse_target();
};

class HttpSession final : public loop::Deletable, public http::ClientStream {
  public:
    HttpSession(HttpTransports& owner, std::string sid, const TransportRequest& first);
    ~HttpSession() override;

    // Starts the ws session; `first` (the opening poll) is answered "o" once it accepts.
    void start(TransportRequest& first, http::WsHandler& ws);
    // A later request for this session id.
    void handle(TransportRequest& req);
    // The poll or send `req` is gone.
    void on_request_gone(TransportRequest& req);
    // Linger: closed, only its close value is left.
    bool is_lingering() const { return state_ == State::Lingering; }
    const std::string& close_value() const { return close_value_; }
    // The worker is going away: forget requests and the ws session without telling them.
    void abandon();

    // http::ClientStream: what the ws session writes to its "client".
    bool send_head(int status, std::string_view reason, const http::Headers& headers, int64_t) override;
    bool send_body(std::string_view data, const std::shared_ptr<const void>& = {}) override;
    bool send_raw(std::string_view data, const std::shared_ptr<const void>& = {}) override;
    void end_response() override;
    void set_exchange(std::unique_ptr<http::Exchange> next) override { link_ = std::move(next); }
    void abort_response() override { on_ws_ended(); }
    void cut_off() override { on_ws_ended(); }
    void close_after_flush() override { on_ws_ended(); }
    void enter_raw_mode() override {}
    void pause_request_body() override { paused_ = true; }
    void resume_request_body() override;
    bool is_chunked_response() const override { return false; }
    bool request_is_head() const override { return false; }
    bool request_complete() const override { return true; }
    bool response_started() const override { return state_ != State::Connecting; }
    bool client_keep_alive() const override { return false; }
    const std::string& peer() const override { return peer_; }
    size_t queued_bytes() const override { return queued_bytes_; }
    bool is_closing() const override { return state_ != State::Connecting && state_ != State::Open; }
    bool is_tls() const override { return tls_; }

  private:
    enum class State : uint8_t { Connecting, Open, Closing, Lingering, Ended };
    struct Frames final : ws::FrameParser::Handler {
        HttpSession* self;
        void on_frame(const ws::Frame& f) override { self->on_ws_frame(f); }
    };

    void on_ws_frame(const ws::Frame& f);
    void on_ws_ended();
    void deliver_sends(TransportRequest& req);
    void try_write();
    void set_close(int code, std::string_view reason);
    void linger();
    // Ends the session on an error (overflow, no poll in time, the ws session vanished): a waiting
    // poll gets 410, the ws session sees its client go.
    void fail(const char* why);
    void remove();
    void detach_requests();
    void arm(uint64_t ms);
    static void on_timer(void* self);

    HttpTransports& owner_;
    std::string sid_;
    std::string peer_;
    bool tls_;
    State state_ = State::Connecting;
    std::unique_ptr<http::Exchange> link_; // the ws session's ClientLink
    TransportRequest* poll_ = nullptr;
    TransportRequest* send_ = nullptr; // a send waiting while the ws session is paused
    Frames frames_;
    ws::FrameParser parser_;
    std::string message_; // a data message arriving in fragments (bounded by the parser's limit)
    std::deque<std::string> queue_;
    size_t queued_bytes_ = 0;
    // A rejected handshake being answered (send_head .. end_response).
    int reject_status_ = 0;
    http::Headers reject_headers_;
    std::string reject_body_;
    std::string close_value_; // `[code,"reason"]` once the ws session closed
    bool close_sent_ = false;
    bool peer_closed_ = false;
    bool paused_ = false;
    loop::TimerEntry timer_;
};

class HttpTransports {
  public:
    // `workers`: every worker (index order), for relaying to a session's owner; one: no relaying.
    HttpTransports(loop::Worker& worker, http::WsHandler* ws, std::vector<loop::Worker*> workers = {})
        : worker_(worker), ws_(ws), workers_(std::move(workers)) {}
    ~HttpTransports();
    HttpTransports(const HttpTransports&) = delete;
    HttpTransports& operator=(const HttpTransports&) = delete;

    std::unique_ptr<http::Exchange> start(http::ClientStream& conn,
                                          std::shared_ptr<const config::RouteTable> routes,
                                          const config::Route& route, http::RequestHead& head, bool trusted);
    void set_ws_handler(http::WsHandler* ws) { ws_ = ws; }
    size_t session_count() const { return sessions_.size(); }
    size_t relayed_count() const { return relayed_.size(); }
    size_t remote_count() const { return remote_.size(); }

    // --- from requests and sessions ---
    // A request read in full: to its session here, or relayed to the session's owner.
    void dispatch(TransportRequest& req);
    void remove(const std::string& sid);
    loop::Worker& worker() { return worker_; }

    // --- relaying (relay.cpp) ---
    // Origin side: the relayed request's client went away (or it is being freed).
    void cancel_relay(TransportRequest& req);
    // Owner side: a relayed request's answer, to send back; `req` is freed after this turn.
    void send_answer(TransportRequest& req, int status, const http::Headers& headers, std::string_view body);
    // From the inbox.
    void on_relay(int from, std::shared_ptr<RelayedRequest> request);
    void on_answer(const std::shared_ptr<RelayedAnswer>& answer);
    void on_gone(int from, uint64_t token);

  private:
    // Origin side: sends `req` to worker `owner`, or answers 503 when it cannot.
    void relay(TransportRequest& req, int owner);
    void serve(TransportRequest& req);
    static uint64_t remote_key(int from, uint64_t token) {
        return (static_cast<uint64_t>(from) << 48) | token;
    }

    loop::Worker& worker_;
    http::WsHandler* ws_;
    std::vector<loop::Worker*> workers_;
    std::unordered_map<std::string, std::unique_ptr<HttpSession>> sessions_;
    std::unordered_map<uint64_t, TransportRequest*> relayed_; // origin side, by token
    uint64_t next_token_ = 0;
    // Owner side: the requests relayed here, by remote_key(); freed once answered or gone.
    std::unordered_map<uint64_t, std::unique_ptr<TransportRequest>> remote_;
};

} // namespace gripd::sockjs
