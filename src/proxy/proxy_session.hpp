// ProxySession: one client request forwarded to a backend and its response relayed back, read top
// to bottom as stages: start -> connect (with failover) -> send head and body -> relay response.
// A GRIP response is buffered and handed to the GripHandler instead of being relayed.
//
// States (State, changed only by to(), which refuses any other move):
//   Connecting -> Sending        a target answered; the request goes out
//   Connecting -> Connecting     that target failed; the next one is tried
//   Sending    -> Connecting     a reused connection had been closed by the backend; retried once
//   Sending    -> Relaying       a plain response head: relayed to the client as it comes
//   Sending    -> GripBuffering  a GRIP response: buffered whole for the GripHandler
//   any        -> Done           the client has its answer, was handed on, or is gone
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/access_log.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/jsonp_response.hpp"
#include "gripd/http/server_conn.hpp"
#include "request_share.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gripd::proxy {

class ProxyService;

class ProxySession final : public http::Exchange, public http::BackendUser {
  public:
    ProxySession(ProxyService& service, http::ClientStream& client,
                 std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                 http::RequestHead& head, bool trusted,
                 std::shared_ptr<const http::CrossOrigin> cross_origin = nullptr,
                 std::string jsonp_body = {});
    ~ProxySession() override;

    void on_start() override;
    // Grip-Last values for the request sent upstream (a held request asked again, behind).
    void set_grip_last(std::vector<std::string> values) { grip_last_ = std::move(values); }
    // This request is a held request asked again (the access line says `retry`, as Pushpin's does).
    void mark_retry() { is_retry_ = true; }
    // share_all: this request leads `group`; clients waiting on it get its GRIP answer, or are
    // released to send their own (request_share.hpp).
    void set_share(RequestShare::Group* group) { share_ = group; }

    // http::Exchange
    void on_request_body(std::string_view data) override;
    void on_request_end() override;
    void on_client_gone() override;
    void on_client_writable() override;
    bool keep_on_client_eof() const override { return state_ != State::GripBuffering; }

    // http::BackendUser
    void on_backend_connected() override;
    void on_backend_connect_failed(int uv_status) override;
    void on_backend_head(http::ResponseHead& head) override;
    void on_backend_body(std::string_view data) override;
    void on_backend_complete() override;
    void on_backend_error(int uv_status, bool retryable) override;
    void on_backend_writable() override;

    // One line for tests and debug logs: the state and what decides the next step.
    std::string dump() const;

  private:
    // GripStreaming: a stream hold's answer too large to buffer, relayed as it comes (its head and
    // body sent by the proxy, as Pushpin does); the hold starts when it is complete.
    enum class State : uint8_t { Connecting, Sending, Relaying, GripBuffering, GripStreaming, Done };
    static const char* state_name(State s);
    void to(State next);
    // Ends the session's use of the client (state Done) and returns it; nullptr if already done.
    http::ClientStream* take_client();
    void connect(const config::Target& target);
    // GripBuffering past kMaxGripBody: streams the answer if it is a stream hold (or a next link
    // without hold) using no build-id filter, as Pushpin does; false otherwise (the caller fails).
    bool start_grip_streaming(std::string_view data);
    void connect_next_target();
    std::string build_upstream_head(const config::Target& target) const;
    void send_upstream(std::string_view bytes);
    void send_body_chunk(std::string_view data);
    // Answers `status` with `message`, or with `debug_message` (when given) under [proxy] debug or the
    // route's `debug` option; CORS or a JSON-P wrapper when the request asks.
    void fail(int status, std::string_view message, std::string_view debug_message = {});
    // A plain backend response head, with CORS headers or a JSON-P wrapper when the request asks.
    void relay_head(http::ResponseHead& head);
    void finish_grip();
    void release_share(); // nothing to share: the waiting clients send their own requests
    void log_access(http::AccessLog::Outcome outcome, int code = 0, int64_t body_bytes = 0);
    // The target the access line names: the one in use, else the last one tried ("" if none).
    std::string access_target() const;

    ProxyService& service_;
    http::ClientStream* client_;
    std::shared_ptr<const config::RouteTable> routes_; // keeps route_ alive across reloads
    const config::Route& route_;
    // What we need of the request after its head was parsed.
    std::string method_;
    std::string uri_;        // as the client sent it (for debug logs)
    http::AccessLog access_; // what the access line needs of the request
    bool is_retry_ = false;
    http::RequestHead head_; // kept until the response starts (retries and failover rebuild from it)
    State state_ = State::Connecting;
    // Facts of the request, fixed when the session is made.
    struct Facts {
        bool is_head = false;          // a HEAD request: the response has no body
        bool chunked_upstream = false; // the request body goes upstream chunked
        bool trusted = false;          // GRIP passes through (an upstream GRIP proxy signed the request)
    };
    static Facts facts_of(const http::RequestHead& head, bool trusted);
    const Facts facts_;
    // The request side, which runs beside State (the body may end in any backend stage): whether
    // the client's whole request body has been read. Not folded into State: that would double its
    // four live states for one bit that only decides whether the backend connection can be reused.
    bool request_done_ = false;
    // Request bytes sent or waiting to be sent upstream, kept while small so a stale pooled
    // connection can be retried on a fresh one. A buffer's mode, not a stage: false once the bytes
    // outgrew kMaxReplay or the response began (then replay_ is empty for good).
    std::string replay_;
    bool replayable_ = true;
    std::string pending_; // request body waiting for the backend connection
    size_t target_index_ = 0;
    http::BackendLease backend_;
    bool retried_ = false; // a budget, not a stage: the one retry on a fresh connection is used
    int status_ = 0;
    int64_t bytes_out_ = 0;
    // GRIP: the whole backend response is kept until complete (bounded) and interpreted.
    std::vector<std::string> grip_last_;
    std::string connection_id_; // Grip-Connection-Id sent upstream (GRIP on, client untrusted)
    std::string saved_body_;    // the request body, kept (bounded) so a hold can re-send the request
    bool body_saved_ = true;    // a buffer's mode: false once the body outgrew what is kept
    http::ResponseHead grip_head_;
    std::string grip_body_;
    // CORS and JSON-P (auto_cross_origin or the route's aco; null when off), shared with a hold.
    std::shared_ptr<const http::CrossOrigin> cross_origin_;
    std::string jsonp_body_;                 // a JSON-P call's body, sent when the session starts
    std::optional<http::JsonpStream> jsonp_; // set while a relayed response is wrapped
    RequestShare::Group* share_ = nullptr;   // share_all: the group this request leads
};

} // namespace gripd::proxy
