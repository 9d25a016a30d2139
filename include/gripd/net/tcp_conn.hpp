// TcpConn: one stream socket (TCP, or a unix socket for a local_ports client) owned by one worker
// loop, with a bounded write queue. Client connections
// and backend connections derive from it. Reads go into the worker's shared read buffer, so an idle
// connection holds no read buffer of its own. Writes are gathered during a loop iteration and sent
// at its end with one writev per connection (Worker flushes them), so several messages for one
// client cost one system call; only what the kernel does not take is queued in libuv. Follows the lifetime
// rules in loop/handle.hpp: the object deletes itself in the close callback.
#pragma once

#include "gripd/loop/flushable.hpp"
#include "gripd/loop/timer_wheel.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <uv.h>
#include <vector>

namespace gripd::loop {
class Worker;
}

namespace gripd::net {

class TlsServerSession;

// The kind of socket under a connection: it picks the libuv handle type.
enum class Transport : uint8_t { Tcp, Unix };

class TcpConn : public loop::Flushable {
  public:
    explicit TcpConn(loop::Worker& worker, Transport transport = Transport::Tcp);
    TcpConn(const TcpConn&) = delete;
    TcpConn& operator=(const TcpConn&) = delete;

    // Only for a Tcp connection.
    uv_tcp_t* tcp();
    // Only for a Unix connection.
    uv_pipe_t* pipe();
    uv_stream_t* stream() { return &handle_.stream; }
    Transport transport() const { return transport_; }
    loop::Worker& worker() { return worker_; }

    void start_reading();
    void stop_reading();
    bool is_reading() const { return reading_ != Reading::Stopped; }

    // Queues bytes for the peer. The bytes are copied unless `keep` owns them (shared, immutable data
    // such as a pre-rendered published message) and they are not tiny; then only a reference is
    // held until written.
    // Returns false if the connection is closing or the write failed (the connection is then closed).
    bool write(std::string_view data, const std::shared_ptr<const void>& keep = {});
    // Bytes accepted by write() that the kernel has not taken yet, plus the weight of each pending
    // write request (so that byte caps bound many small writes as well).
    size_t queued_bytes() const { return queued_bytes_ + gathered_bytes_; }
    // Sends what this iteration gathered (called by the worker at the end of each iteration, and
    // before a shutdown).
    void flush() override;

    // Closes now; pending writes are cancelled. Idempotent.
    void close();
    // Closes now with a TCP reset: what the kernel still holds for the peer is dropped instead of
    // trickling out to a client that does not read (its send buffer is freed at once). A unix socket
    // has no reset: closing it frees its buffers.
    void reset();
    // Sends everything queued, then a FIN; closes when the peer closes or after a short linger.
    void close_after_flush();
    bool is_closing() const { return life_ == Life::Closed; }
    bool is_shutting_down() const { return life_ == Life::ShuttingDown; }

    // The socket's life: Open -> ShuttingDown (close_after_flush: FIN sent, draining the peer's
    // leftovers until its FIN or the linger) -> Closed; or Open -> Closed. Only life_to() changes it.
    enum class Life : uint8_t { Open, ShuttingDown, Closed };
    // Whether we read: Stopped; Active (libuv delivers reads); Yielded (libuv stopped for the rest of
    // this loop turn by the per-turn read cap; is_reading() stays true and flush() starts it again).
    enum class Reading : uint8_t { Stopped, Active, Yielded };
    static bool can_transition(Life from, Life to);
    static const char* life_name(Life l);
    static const char* reading_name(Reading r);
    Life life() const { return life_; }
    Reading reading() const { return reading_; }

    // Peer address as text ("" if unknown, and for a unix socket client: it has no address).
    std::string peer_ip() const;

    // TLS as a byte filter (server side, net/tls_server): from now on bytes read are decrypted
    // before on_data() and bytes written are encrypted (into the gather buffer, so the plaintext
    // path is untouched). Call before start_reading().
    void start_tls(std::unique_ptr<TlsServerSession> session);
    bool is_tls() const { return tls_ != nullptr; }
    // The TLS handshake completed (false on a plaintext connection).
    bool tls_established() const;
    const TlsServerSession* tls() const { return tls_.get(); }

  protected:
    virtual ~TcpConn();
    // Bytes read from the peer; valid only during the call.
    virtual void on_data(const char* data, size_t len) = 0;
    // The peer closed its side (UV_EOF) or the socket failed (negative uv error).
    virtual void on_read_end(int status) = 0;
    // The write queue fell to zero after having queued bytes.
    virtual void on_write_drained() {}
    // Called once when close starts, before the handle is closed.
    virtual void on_close() {}
    // The connection's own timer fired (see timer()).
    virtual void on_timeout() {}
    // The TLS handshake completed (TLS connections only), before any plaintext arrives.
    virtual void on_tls_established() {}

    loop::TimerEntry& timer() { return timer_; }

    loop::Worker& worker_;

  private:
    struct WriteReq;
    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
    static void on_write_done(uv_write_t* req, int status);
    static void on_shutdown_done(uv_shutdown_t* req, int status);
    static void on_closed(uv_handle_t* h);
    static void on_timer(void* self);
    void fail_write(int status);
    bool queue_rest(const uv_buf_t* iov, size_t n, size_t seg, size_t written, size_t total);
    void close_with(bool reset);
    void life_to(Life next);
    void schedule_flush();
    // What flush() sends (sealing TLS plaintext first), without its per-turn bookkeeping: the
    // connection may stay in the worker's flush list, whose later flush() then finds nothing.
    void send_gathered();
    // TLS: the ciphertext appended to gather_ since `from` becomes owned output.
    void took_ciphertext(size_t from);
    void on_ciphertext(const char* data, size_t len);
    bool write_tls(std::string_view data);
    // TLS: encrypts tls_plain_ into gather_; false (and the connection closing) if that failed.
    bool seal_tls();
    void fail_tls(const char* when);
    // One piece of gathered output: owned bytes (offset into gather_) or shared bytes kept alive.
    struct Segment {
        const char* data; // shared bytes (owned segments use offset)
        size_t offset;
        size_t len;
        std::shared_ptr<const void> keep;
    };

    // One handle, by transport_; every libuv stream type starts with the uv_stream_t fields. The
    // largest member comes first, so `{}` zeroes all of it.
    union Handle {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
        uv_stream_t stream;
    } handle_{};
    loop::TimerEntry timer_;
    std::unique_ptr<TlsServerSession> tls_; // null on plaintext connections
    size_t queued_bytes_ = 0;
    size_t gathered_bytes_ = 0;
    std::string gather_;            // owned bytes of this iteration's segments
    std::string tls_plain_;         // TLS: plaintext written this iteration, sealed by flush()
    std::vector<Segment> segments_; // this iteration's output, in order
    uint32_t read_turn_ = 0;        // uv_now() (truncated) of the loop turn read_this_turn_ counts
    uint32_t read_this_turn_ = 0;   // bytes read in that turn
    uint32_t pending_writes_ = 0;
    Life life_ = Life::Open;
    Reading reading_ = Reading::Stopped;
    Transport transport_;
    // Membership, not lifecycle: this connection is in the worker's flush list for this turn (like
    // an intrusive list hook; the list is a vector, so the flag keeps it from being added twice).
    bool in_flush_list_ = false;
};

} // namespace gripd::net
