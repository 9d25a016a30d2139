// ServerConn: the server side of one HTTP/1.1 client connection (client port or control API).
// It parses requests (keep-alive, pipelining), hands each one to an Exchange created by its
// Service, and frames the Exchange's response (Content-Length, chunked or close-delimited).
// Pipelined requests wait until the current response has ended. Only one Exchange is live at a time.
#pragma once

#include "gripd/core/counter.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/http/client_stream.hpp"
#include "gripd/http/headers.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/loop/deletable.hpp"
#include "gripd/net/tcp_conn.hpp"
#include "gripd/stats/events.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gripd::http {

class ServerConn;
struct ConnLimit;
struct ShedCandidate;

// One request/response on a ServerConn. Created by Service::start_exchange when a request head has
// been parsed. The connection deletes it (deferred) after end_response() or when the client goes.
class Exchange : public loop::Deletable {
  public:
    // Called once the connection has installed this exchange (it may answer at once from here).
    virtual void on_start() {}
    virtual void on_request_body(std::string_view data) = 0;
    virtual void on_request_end() = 0;
    // The client connection is closing (peer gone, error, shutdown). The exchange must drop every
    // reference to the connection; it is deleted right after this returns.
    virtual void on_client_gone() = 0;
    // The client's write queue drained (for backpressure on the producer side).
    virtual void on_client_writable() {}
    // The peer half-closed its side after the whole request was read. Default: treat as gone.
    virtual bool keep_on_client_eof() const { return false; }
    // Whether this exchange takes over the connection after an Upgrade request (WebSocket). If not,
    // the upgrade is declined: the request is read on as plain HTTP and the connection ends after.
    virtual bool wants_upgrade() const { return false; }
    // Raw mode (after a protocol upgrade, see ServerConn::enter_raw_mode): bytes from the client.
    virtual void on_raw_data(std::string_view /*data*/) {}
    // The server is stopping (SIGTERM): a raw exchange that multiplexes requests (HTTP/2) stops
    // taking new ones and ends once those under way have (HTTP/1.1 connections do so by themselves).
    virtual void on_server_stopping() {}
    // The memory ceiling (server.cpp memory_tick): a raw exchange that buffers output of its own
    // (HTTP/2: each stream's output waiting for its window) adds each of those queues holding at
    // least `min_queued` bytes to `out`, and returns the bytes it holds for the connection as a whole
    // (HTTP/2: nghttp2's own allocations), which count with the connection's queued output.
    virtual size_t shed_candidates(size_t /*min_queued*/, std::vector<ShedCandidate>& /*out*/) { return 0; }
};

// One consumer the memory ceiling may cut: a whole connection (reset) or one stream of it.
struct ShedCandidate {
    size_t bytes = 0;
    ServerConn* conn = nullptr;     // cut with a TCP reset
    ClientStream* stream = nullptr; // cut with ClientStream::cut_off (HTTP/2: RST_STREAM CANCEL)
};

class Service;
// Takes a connection over for HTTP/2 (the h2 module provides it; see Service::h2_factory).
using H2Factory = std::unique_ptr<Exchange> (*)(ServerConn& conn, Service& service);

// What the listener serves: creates Exchanges for requests on its connections.
class Service {
  public:
    virtual ~Service() = default;
    // Returns the exchange for this request. It may answer at once (e.g. an error) by calling
    // conn.respond(...) and returning nullptr.
    virtual std::unique_ptr<Exchange> start_exchange(ClientStream& conn, RequestHead& head) = 0;
    // Limits applied to every connection of this service.
    virtual size_t max_header_bytes() const = 0;
    virtual uint64_t idle_timeout_ms() const = 0;
    virtual uint64_t header_timeout_ms() const = 0;
    // A request body that pauses this long (the client sends nothing while we read) is cut off: 408
    // if no response started, else the connection is closed. 0 = no limit.
    virtual uint64_t body_timeout_ms() const { return 0; }
    // A client that takes no byte of its pending output for this long is cut off. 0 = no limit.
    virtual uint64_t send_timeout_ms() const { return 0; }
    virtual const char* log_target() const { return "server"; }
    // Called when a request was rejected by the parser (status >= 400) to let the service log it.
    virtual void on_request_rejected(ClientStream&, int /*status*/) {}
    // The status and text a rejected request gets; a service may answer some in its own words.
    virtual void rejection(int* status, std::string* message) const { (void)status, (void)message; }

    // Set when this service's clients may speak HTTP/2: h2c with prior knowledge (the connection
    // preface on a plaintext port) and ALPN "h2" on TLS ports. Null: HTTP/1.x only.
    H2Factory h2_factory = nullptr;

    // Statistics kept by the connections (single writer: the service's worker).
    core::Counter connections; // gauge
    core::Counter requests;
    // Whether its requests are `conn` and `activity` stats events (the proxy's, as Pushpin's).
    bool stats_events = false;
};

class ServerConn final : public net::TcpConn, public ClientStream, private RequestParser::Handler {
  public:
    // The connection's lifecycle, one request/response cycle after another. Reading the request and
    // writing the response overlap (an exchange may answer before the body is in), so the states in
    // the middle name both sides. Changed only by to(), which refuses any move can_transition() does
    // not list.
    //
    //   New -> Idle                   start(): waiting for a request (idle timer)
    //   New -> Refused                refuse_overloaded(), or closed before start()
    //   Idle -> ReadingHead           the first byte of a request arrived (header timer)
    //   Idle|ReadingHead -> ReadingBody          a head was parsed: an exchange is live
    //   ReadingBody -> ReadingBodyResponding     the response head went out before the request's end
    //   ReadingBody -> Handling                  the whole request was read, no response yet
    //   ReadingBodyResponding -> Responding      the whole request was read while answering
    //   Handling -> Responding                   the response head went out
    //   ReadingBody[Responding] -> AnsweredEarly the response ended before the end of a bodiless request
    //   Handling|Responding|AnsweredEarly -> Finished   request read and response ended
    //   Finished -> Idle              keep-alive: the next request (pipelined bytes are parsed at once)
    //   Finished -> WaitingDrain      too much output queued: the next request waits for the client
    //   WaitingDrain -> Idle          the client read it
    //   any request state -> Raw      enter_raw_mode(): a protocol upgrade took the connection over
    //   any -> Closing                no further request (close, error, no keep-alive, shutdown)
    enum class State : uint8_t {
        New,
        Idle,
        ReadingHead,
        ReadingBody,
        ReadingBodyResponding,
        Handling,
        Responding,
        AnsweredEarly,
        Finished,
        WaitingDrain,
        Raw,
        Closing,
        Refused,
    };
    static const char* state_name(State s);
    // The transition table (pure, for tests): whether `to` may follow `from`.
    static bool can_transition(State from, State to);

    ServerConn(loop::Worker& worker, Service& service, net::Transport transport = net::Transport::Tcp);

    // Starts reading; call after uv_accept succeeded.
    void start();
    // The client's address as accepted, before start() (else start() asks the socket for it).
    void set_peer_address(const sockaddr& addr);
    // Answers 503 with `reason` as the body and closes (client_maxconn reached, or the memory limit).
    // Instead of start().
    void refuse_overloaded(std::string_view reason = "Too many connections");
    // Releases one slot of `limit` when this connection closes.
    void set_conn_limit(struct ConnLimit* limit) { conn_limit_ = limit; }
    // Between requests, nothing buffered: safe to close when stopping. Not a fresh connection (no
    // request yet): its request may be in the kernel's buffer, unread, and closing would reset it.
    bool is_idle() const { return state_ == State::Idle && !exchange_ && pending_in_.empty() && !fresh_; }
    // What a fresh connection gets at stop to send its first request (answered with Connection: close).
    static constexpr uint64_t kStopFreshMs = 2000;

    // --- used by the current Exchange ---
    // Sends the status line and headers. content_length < 0 means unknown: chunked for HTTP/1.1
    // clients, close-delimited for HTTP/1.0. Framing and hop-by-hop headers in `headers` are ignored;
    // the connection writes its own. Returns false if the connection is closing.
    bool send_head(int status, std::string_view reason, const Headers& headers,
                   int64_t content_length) override;
    // Body bytes (framed as chosen by send_head). `keep` as in TcpConn::write.
    bool send_body(std::string_view data, const std::shared_ptr<const void>& keep = {}) override;
    // Sends already-framed bytes verbatim (e.g. pre-rendered chunks shared by many subscribers).
    bool send_raw(std::string_view data, const std::shared_ptr<const void>& keep = {}) override;
    // Ends the response; the exchange is deleted after the current callback. With keep-alive the next
    // pipelined request is processed, otherwise the connection is closed after flushing.
    void end_response() override;
    // Replaces the current exchange (e.g. a proxy session handing the client to a GRIP hold). The old
    // one is deleted after the current callback.
    void set_exchange(std::unique_ptr<Exchange> next) override;
    // Ends the response abnormally: the client sees a truncated response (connection closed).
    void abort_response() override;
    // Like abort_response(), for a client that stopped reading: resets the connection so the bytes
    // the kernel still holds for it are dropped rather than sent.
    void cut_off() override;

    // Protocol upgrade hand-off (WebSocket): from now on every byte the client sends, including what
    // was read after the upgrade request's head, goes to the exchange's on_raw_data, and the exchange
    // writes with send_raw. The exchange must have answered the upgrade itself (e.g. with a 101).
    // Ends with abort_response() or close_after_flush(). The HTTP parser is freed (no HTTP follows).
    void enter_raw_mode() override;
    bool is_raw() const { return state_ == State::Raw; }

    void pause_request_body() override; // stop reading the request body (backpressure)
    void resume_request_body() override;

    bool is_chunked_response() const override { return facts_.chunked; }
    bool request_is_head() const override { return facts_.head; }
    bool request_complete() const override;
    bool response_started() const override;
    bool client_keep_alive() const override { return facts_.keep_alive; }
    const std::string& peer() const override { return peer_ip_; }
    const std::string& stats_conn_id() const override { return stats_conn_.id(); }
    // ClientStream's names for what TcpConn does.
    size_t queued_bytes() const override { return TcpConn::queued_bytes(); }
    // The memory ceiling's view of this connection: itself (its queued output and what its raw
    // exchange holds for it) and, for HTTP/2, its streams, each with at least `min_queued` bytes.
    void shed_candidates(size_t min_queued, std::vector<ShedCandidate>& out);
    bool is_closing() const override { return TcpConn::is_closing(); }
    bool is_tls() const override { return TcpConn::is_tls(); }
    void close_after_flush() override { TcpConn::close_after_flush(); }
    // Tells a raw exchange (HTTP/2) that the server stops (see Exchange::on_server_stopping).
    // A fresh connection (is_idle) gets kStopFreshMs for its first request instead of its idle timeout.
    void notify_stopping();

    State state() const { return state_; }
    // One line for tests and debug logs: the state, the request's facts and the remaining flags.
    std::string dump() const;

  protected:
    void on_data(const char* data, size_t len) override;
    void on_read_end(int status) override;
    void on_write_drained() override;
    void on_close() override;
    void on_timeout() override;
    void on_tls_established() override;

  private:
    // What is known of the current request and of the framing chosen for its response. Reset in one
    // place, begin_cycle(), at the start of every request/response cycle; filled from the request
    // head (on_request_head) and the response head (write_head).
    struct Facts {
        bool keep_alive = true; // the connection may carry another request after this one
        bool head = false;      // a HEAD request: the response has no body
        bool http10 = false;    // an HTTP/1.0 client: no chunked framing
        bool has_body = false;  // the request has a body (Content-Length > 0 or chunked)
        bool chunked = false;   // the response is sent chunked
        bool no_body = false;   // the response has no body (HEAD, 204, 304, 1xx)
    };

    // Moves to `next`, or (an impossible move: a bug) asserts in debug builds, and in release builds
    // logs, counts and closes the connection; returns false then.
    bool to(State next);
    void begin_cycle();
    bool reading_body() const {
        return state_ == State::ReadingBody || state_ == State::ReadingBodyResponding;
    }
    bool response_ended() const;

    void on_request_head(RequestHead& head) override;
    void on_request_body(std::string_view data) override;
    void on_request_complete() override;
    bool check_h2_preface(const char* data, size_t len);
    void start_h2(const char* data, size_t len);
    void drive(const char* data, size_t len);
    void feed(const char* data, size_t len);
    void feed_upgrade();
    void handle_parse_error();
    void reject(int status, std::string_view body);
    bool write_head(int status, std::string_view reason, const Headers& headers, int64_t content_length);
    void finish_exchange();
    void maybe_next_request();
    void resume_if_idle();
    void arm_body_timeout();
    void arm_send_timeout();
    void on_body_timeout();
    void arm_drain_timeout();
    void on_drain_timeout();
    void on_send_timeout();
    bool out(std::string_view data, const std::shared_ptr<const void>& keep = {});
    void release_http_state();

  public:
    core::ListHook worker_link; // the worker's list of open client connections (for shutdown)

  private:
    Service& service_;
    struct ConnLimit* conn_limit_ = nullptr;
    // Reset once the connection is in raw mode: an idle WebSocket keeps no HTTP parser.
    std::optional<RequestParser> parser_;
    std::unique_ptr<Exchange> exchange_;
    stats::ConnTrack stats_conn_; // the current request's `conn` stats events
    std::string pending_in_;      // bytes read but not parsed yet (pipelined requests)
    std::string peer_ip_;
    // What the connection's one timer currently measures.
    enum class Wait : uint8_t {
        None,
        Idle,   // between requests
        Header, // a request head under way
        Body,   // the request body (not paused by us)
        Send,   // output the client has not taken yet
    };
    Wait wait_ = Wait::None;
    State state_ = State::New;
    Facts facts_;
    uint64_t bytes_out_ = 0; // bytes handed to write()
    uint64_t send_mark_ = 0; // bytes the kernel had taken when the send timeout was last armed
    // Flow control, not lifecycle: the exchange asked us to stop reading (pause_request_body) until
    // it resumes or its response ends. Any state that reads may be paused.
    bool body_paused_ = false;
    // Re-entrancy guards, not lifecycle: an exchange called from inside the parser (in_parser_) or
    // from inside drive()'s loop (driving_) may end its response and so start the next cycle; the
    // next request's bytes must then wait for the outer call instead of re-entering llhttp.
    bool driving_ = false;
    bool in_parser_ = false;
    // A negotiated feature, not lifecycle: the first bytes may still be the HTTP/2 preface.
    bool h2_possible_ = false;
    bool fresh_ = true; // no request started on it yet
};

} // namespace gripd::http
