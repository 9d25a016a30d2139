// The HTTP/2 session and its streams (private to src/h2; see gripd/h2/session.hpp).
#pragma once

#include "gripd/core/intrusive_list.hpp"
#include "gripd/h2/session.hpp"
#include "gripd/http/client_stream.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/deletable.hpp"
#include "gripd/loop/flushable.hpp"
#include "gripd/loop/timer_wheel.hpp"

#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <vector>

namespace gripd::h2 {

class Session;

// One request/response on a stream. Small on purpose (an idle held SSE stream is this object, its
// exchange and nghttp2's own stream record): the request head lives only until the exchange starts,
// and the output buffer is empty while the client keeps up.
class Stream final : public http::ClientStream, public loop::Deletable {
  public:
    // Request, then response, as nghttp2 tells us and the exchange does.
    //   Headers -> Body       the request head arrived: the exchange runs, the body may follow
    //   Body -> Complete      END_STREAM from the client: the whole request is in
    //   any -> Closed         the stream closed (ended both ways, reset, or the connection went)
    enum class State : uint8_t { Headers, Body, Complete, Closed };
    // Where the response is: nothing yet, head sent, or ended (END_STREAM queued).
    enum class Out : uint8_t { None, Started, Ended };

    Stream(Session& session, int32_t id);
    ~Stream() override;

    // --- http::ClientStream ---
    bool send_head(int status, std::string_view reason, const http::Headers& headers,
                   int64_t content_length) override;
    bool send_body(std::string_view data, const std::shared_ptr<const void>& keep = {}) override;
    bool send_raw(std::string_view data, const std::shared_ptr<const void>& keep = {}) override;
    void end_response() override;
    void set_exchange(std::unique_ptr<http::Exchange> next) override;
    void abort_response() override;
    void cut_off() override;
    void close_after_flush() override { end_response(); }
    // A WebSocket over this stream (RFC 8441): DATA both ways carry the protocol's bytes.
    void enter_raw_mode() override;
    void pause_request_body() override;
    void resume_request_body() override;
    bool is_chunked_response() const override { return false; }
    bool request_is_head() const override { return head_request_; }
    bool request_complete() const override { return state_ == State::Complete && !tunnel_; }
    bool response_started() const override { return out_state_ != Out::None; }
    bool client_keep_alive() const override { return true; }
    const std::string& peer() const override;
    // Output bytes waiting, each piece with its own weight (so many tiny pieces count too).
    size_t queued_bytes() const override { return out_bytes_ + (out_.size() - out_head_) * sizeof(OutPiece); }
    bool is_closing() const override { return state_ == State::Closed || session_ == nullptr; }
    bool is_tls() const override;
    bool is_http1() const override { return false; }
    const std::string& stats_conn_id() const override { return stats_conn_.id(); }

    // --- driven by the Session ---
    bool on_header(std::string_view name, std::string_view value, size_t max_bytes);
    void on_request_head(bool end_stream);
    void on_body(const uint8_t* data, size_t len);
    void on_request_end();
    // The stream is gone (closed, reset, connection lost): drop the exchange.
    void on_closed();
    // nghttp2 asks how many body bytes go in the next DATA frame (at most `len`); they are written
    // by write_data without a copy (NGHTTP2_DATA_FLAG_NO_COPY).
    ssize_t read_body(size_t len, uint32_t* flags);
    // Writes one DATA frame: nghttp2's 9-byte frame header, then `len` bytes of the queue, shared
    // pieces by reference (a publish's payload is not copied per stream).
    int write_data(const uint8_t* framehd, size_t len);
    // The sweep: whether this stream made no output progress since the last one (then reset it).
    bool stalled_since_last_sweep();
    // The output drained: tell the exchange (called by the Session outside nghttp2).
    void notify_writable();

    int32_t id() const { return id_; }
    bool has_head() const { return state_ != State::Headers; }
    core::ListHook link; // the session's list of streams

  private:
    // One piece of output: a shared payload referenced (publishes), or bytes of our own (small
    // writes are copied and coalesced).
    struct OutPiece {
        std::shared_ptr<const void> keep; // null: the bytes are `own`
        std::string_view shared;
        std::string own;
        std::string_view bytes() const { return keep ? shared : std::string_view(own); }
    };
    void queue_out(std::string_view data, const std::shared_ptr<const void>& keep);
    void clear_out();
    // Tells the memory guard how much output this stream holds now (delta since the last call).
    void account();
    void drop_exchange();
    void start_tunnel(http::RequestHead& head);
    bool send_upgrade_answer(std::string_view data);
    nghttp2_session* ng() const;

    Session* session_; // null once the session let go of this stream
    int32_t id_;
    int worker_index_ = 0; // the memory guard's slot
    State state_ = State::Headers;
    Out out_state_ = Out::None;
    // Facts of the request, not lifecycle.
    bool head_request_ = false;
    bool body_paused_ = false;
    bool no_body_ = false; // the response has no body (HEAD, 204, 304)
    // RFC 8441 extended CONNECT: `:protocol websocket` seen (ws_protocol_), the request handed on as
    // an HTTP/1.1 upgrade (tunnel_), and the exchange took the stream over (raw_).
    bool ws_protocol_ = false;
    bool tunnel_ = false;
    bool raw_ = false;
    std::unique_ptr<http::RequestHead> head_; // only while the request head is being decoded
    size_t head_bytes_ = 0;
    std::unique_ptr<http::Exchange> exchange_;
    stats::ConnTrack stats_conn_; // this request's `conn` stats events
    // Response body nghttp2 has not taken (flow control): pieces from out_head_ on, the first one
    // consumed up to out_off_; compacted when half the vector is consumed (O(1) amortized).
    std::vector<OutPiece> out_;
    size_t out_head_ = 0;
    size_t out_off_ = 0;
    size_t out_bytes_ = 0;
    size_t accounted_ = 0; // what the memory guard was told (queued_bytes() then)
    uint64_t sent_ = 0;    // body bytes nghttp2 took (progress, for the stall sweep)
    uint64_t sent_mark_ = 0;
    size_t unconsumed_ = 0; // request body bytes received while paused (window not reopened)
};

class Session final : public http::Exchange, public loop::Flushable {
  public:
    // Running -> Stopping (GOAWAY sent: the streams under way finish) -> Closed (connection gone).
    enum class State : uint8_t { Running, Stopping, Closed };

    Session(http::ServerConn& conn, http::Service& service);
    ~Session() override;
    bool init();

    // --- http::Exchange (the connection in raw mode) ---
    void on_start() override;
    void on_request_body(std::string_view) override {}
    void on_request_end() override {}
    void on_client_gone() override;
    void on_client_writable() override { pump(); }
    void on_raw_data(std::string_view data) override;
    void on_server_stopping() override;

    // Sends what nghttp2 has to send, as far as the connection's output cap allows. Deferred while
    // inside nghttp2 (the outer call sends).
    void pump();
    // Pumps at the end of this loop iteration (loop::Flushable). Streams use this, never pump():
    // sending may close streams, which must not happen under an exchange that is writing.
    void schedule_pump();
    void flush() override {
        pump_scheduled_ = false;
        pump();
    }
    nghttp2_session* ng() const { return ng_; }
    http::ServerConn* conn() const { return conn_; }
    http::Service& service() { return service_; }
    loop::Worker& worker() { return worker_; }
    // A stream's output is waiting on the client's window: watch it for stalls.
    void watch_stalls();
    // A stream ended: remove it (the object dies after the current callback).
    void release(Stream& s);
    // `id`'s output drained while inside nghttp2: notify it after.
    void queue_writable(int32_t id) { writable_.push_back(id); }

    // nghttp2 callbacks (static trampolines in session.cpp call these).
    int on_begin_headers(int32_t id);
    int on_header(int32_t id, std::string_view name, std::string_view value);
    int on_frame_recv(const nghttp2_frame* frame);
    int on_data_chunk(int32_t id, const uint8_t* data, size_t len);
    int on_stream_close(int32_t id, uint32_t error_code);
    int on_frame_send(const nghttp2_frame* frame);
    Stream* stream(int32_t id) const;
    // Memory ceiling: this connection's streams with at least `min_queued` bytes waiting; returns
    // nghttp2's own allocations for the connection (counted by the session's allocator).
    size_t shed_candidates(size_t min_queued, std::vector<http::ShedCandidate>& out) override;
    // nghttp2's allocator (nghttp2_mem): counts the session's bytes.
    void count_alloc(int64_t delta) {
        ng_bytes_ = static_cast<size_t>(static_cast<int64_t>(ng_bytes_) + delta);
    }
    size_t ng_bytes() const { return ng_bytes_; }

  private:
    void close_conn(bool graceful);
    // Whether a stream has its whole request head (partial heads do not keep a connection open).
    bool serving();
    void arm_idle();
    static void on_timer(void* self);
    void sweep();

    http::ServerConn* conn_;
    http::Service& service_;
    loop::Worker& worker_;
    nghttp2_session* ng_ = nullptr;
    size_t ng_bytes_ = 0; // live bytes nghttp2 allocated for this session
    core::IntrusiveList<Stream, &Stream::link> streams_;
    size_t stream_count_ = 0;
    loop::TimerEntry timer_; // idle (no stream) or stall sweep
    enum class Wait : uint8_t { None, Idle, Sweep };
    Wait wait_ = Wait::None;
    State state_ = State::Running;
    // Re-entrancy guard, not lifecycle: inside nghttp2 (recv/send), where sending must wait.
    bool in_ng_ = false;
    bool want_pump_ = false;
    bool pump_scheduled_ = false;   // membership of the worker's flush list, not lifecycle
    std::vector<int32_t> writable_; // streams to notify after the current send
};

} // namespace gripd::h2
