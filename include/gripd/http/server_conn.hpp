// ServerConn: the server side of one HTTP/1.1 client connection (client port or control API).
// It parses requests (keep-alive, pipelining), hands each one to an Exchange created by its
// Service, and frames the Exchange's response (Content-Length, chunked or close-delimited).
// Pipelined requests wait until the current response has ended. Only one Exchange is live at a time.
#pragma once

#include "gripd/core/counter.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/http/headers.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/loop/deletable.hpp"
#include "gripd/net/tcp_conn.hpp"

#include <memory>
#include <optional>
#include <string>

namespace gripd::http {

class ServerConn;
struct ConnLimit;

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
};

// What the listener serves: creates Exchanges for requests on its connections.
class Service {
  public:
    virtual ~Service() = default;
    // Returns the exchange for this request. It may answer at once (e.g. an error) by calling
    // conn.respond(...) and returning nullptr.
    virtual std::unique_ptr<Exchange> start_exchange(ServerConn& conn, RequestHead& head) = 0;
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
    virtual void on_request_rejected(ServerConn&, int /*status*/) {}
    // The status and text a rejected request gets; a service may answer some in its own words.
    virtual void rejection(int* status, std::string* message) const { (void)status, (void)message; }

    // Statistics kept by the connections (single writer: the service's worker).
    core::Counter connections; // gauge
    core::Counter requests;
};

class ServerConn final : public net::TcpConn, private RequestParser::Handler {
  public:
    ServerConn(loop::Worker& worker, Service& service);

    // Starts reading; call after uv_accept succeeded.
    void start();
    // Answers 503 with `reason` as the body and closes (client_maxconn reached, or the memory limit).
    void refuse_overloaded(std::string_view reason = "Too many connections");
    // Releases one slot of `limit` when this connection closes.
    void set_conn_limit(struct ConnLimit* limit) { conn_limit_ = limit; }
    // Between requests, nothing buffered: safe to close when stopping.
    bool is_idle() const { return !exchange_ && !got_first_byte_ && pending_in_.empty(); }

    // --- used by the current Exchange ---
    // Sends the status line and headers. content_length < 0 means unknown: chunked for HTTP/1.1
    // clients, close-delimited for HTTP/1.0. Framing and hop-by-hop headers in `headers` are ignored;
    // the connection writes its own. Returns false if the connection is closing.
    bool send_head(int status, std::string_view reason, const Headers& headers, int64_t content_length);
    // Body bytes (framed as chosen by send_head). `keep` as in TcpConn::write.
    bool send_body(std::string_view data, const std::shared_ptr<const void>& keep = {});
    // Sends already-framed bytes verbatim (e.g. pre-rendered chunks shared by many subscribers).
    bool send_raw(std::string_view data, const std::shared_ptr<const void>& keep = {});
    // Ends the response; the exchange is deleted after the current callback. With keep-alive the next
    // pipelined request is processed, otherwise the connection is closed after flushing.
    void end_response();
    // Replaces the current exchange (e.g. a proxy session handing the client to a GRIP hold). The old
    // one is deleted after the current callback.
    void set_exchange(std::unique_ptr<Exchange> next);
    // Ends the response abnormally: the client sees a truncated response (connection closed).
    void abort_response();
    // Like abort_response(), for a client that stopped reading: resets the connection so the bytes
    // the kernel still holds for it are dropped rather than sent.
    void cut_off();
    // Convenience: a complete response with a small body (e.g. errors).
    void respond(int status, std::string_view reason, const Headers& headers, std::string_view body);
    void respond_text(int status, std::string_view body);

    // Protocol upgrade hand-off (WebSocket): from now on every byte the client sends, including what
    // was read after the upgrade request's head, goes to the exchange's on_raw_data, and the exchange
    // writes with send_raw. The exchange must have answered the upgrade itself (e.g. with a 101).
    // Ends with abort_response() or close_after_flush(). The HTTP parser is freed (no HTTP follows).
    void enter_raw_mode();
    bool is_raw() const { return raw_; }

    void pause_request_body(); // stop reading the request body (backpressure)
    void resume_request_body();

    bool is_chunked_response() const { return chunked_; }
    bool request_is_head() const { return head_request_; }
    bool request_complete() const { return request_done_; }
    bool response_started() const { return head_sent_; }
    bool client_keep_alive() const { return keep_alive_; }
    const std::string& peer() const { return peer_ip_; }

  protected:
    void on_data(const char* data, size_t len) override;
    void on_read_end(int status) override;
    void on_write_drained() override;
    void on_close() override;
    void on_timeout() override;

  private:
    void on_request_head(RequestHead& head) override;
    void on_request_body(std::string_view data) override;
    void on_request_complete() override;
    void drive(const char* data, size_t len);
    void feed(const char* data, size_t len);
    void handle_parse_error();
    void finish_exchange();
    void maybe_next_request();
    void resume_if_idle();
    void arm_idle();
    void arm_body_timeout();
    void arm_send_timeout();
    void on_body_timeout();
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
    std::string pending_in_; // bytes read but not parsed yet (pipelined requests)
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
    uint64_t bytes_out_ = 0; // bytes handed to write()
    uint64_t send_mark_ = 0; // bytes the kernel had taken when the send timeout was last armed
    bool keep_alive_ = true;
    bool head_request_ = false;
    bool http10_ = false;
    bool request_done_ = false;
    bool head_sent_ = false;
    bool chunked_ = false;
    bool no_body_ = false;
    bool driving_ = false;
    bool in_parser_ = false;
    bool response_ended_ = false;
    bool next_waits_drain_ = false; // the next pipelined request waits for the client to read
    bool request_has_body_ = false;
    bool body_paused_ = false;
    bool got_first_byte_ = false;
    bool counted_ = false;
    bool raw_ = false;
};

} // namespace gripd::http
