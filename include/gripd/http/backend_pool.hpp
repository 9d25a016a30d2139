// Backend connections: the client side of HTTP/1.1 towards backends. Each worker has one
// BackendPool keeping idle keep-alive connections per target (host:port); a BackendConn belongs to
// one worker and serves one request at a time for one BackendUser (a proxy session).
//
// Ownership: a user holds its connection only through a BackendLease, filled by
// BackendPool::acquire. The lease is move-only and does the right thing when it goes away: while
// connecting it cancels the connect, once connected it abandons the connection (closed, never
// reused) unless the user gave it back with release() first. A connection that ends by itself
// (connect failure, error, shutdown) empties its lease before telling the user, so a lease never
// points at a closed connection and no user keeps a raw pointer to one.
#pragma once

#include "gripd/core/intrusive_list.hpp"
#include "gripd/core/tether.hpp"
#include "gripd/http/response_parser.hpp"
#include "gripd/net/outbound_conn.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <uv.h>
#include <vector>

namespace gripd::http {

class BackendConn;
class BackendPool;

// Receives the events of the request it sent on a BackendConn.
class BackendUser {
  public:
    virtual ~BackendUser() = default;
    // The lease given to acquire() is ready: send the request through it.
    virtual void on_backend_connected() = 0;
    // Connecting failed (DNS, refused, timeout); the connection is gone and the lease empty.
    virtual void on_backend_connect_failed(int uv_status) = 0;
    virtual void on_backend_head(ResponseHead& head) = 0;
    virtual void on_backend_body(std::string_view data) = 0;
    virtual void on_backend_complete() = 0;
    // The connection failed after connecting; it is gone and the lease empty. `retryable`: it came
    // from the idle pool and no response byte was seen (the request may be retried on a fresh one).
    virtual void on_backend_error(int uv_status, bool retryable) = 0;
    virtual void on_backend_writable() {}
};

struct BackendTarget {
    std::string host; // name or numeric address (no brackets)
    int port = 80;
    std::optional<net::TlsSettings> tls; // an `ssl` target
    bool deny_internal = false;          // an `untrusted` target (net/address_policy.hpp)
    // Pooled connections are shared only between identical targets (TLS name and checks included).
    std::string key() const {
        std::string k = host + ":" + std::to_string(port);
        if (deny_internal) k += " untrusted";
        if (tls) k += (tls->verify ? " tls " : " tls-insecure ") + tls->server_name;
        if (tls && !tls->client_identity.empty()) k += " cert " + tls->client_identity;
        return k;
    }
};

// A user's hold on one backend connection (see the ownership rules above). Empty by default.
class BackendLease {
  public:
    BackendLease() = default;
    BackendLease(BackendLease&& other) noexcept = default;
    BackendLease& operator=(BackendLease&& other) noexcept;
    ~BackendLease() { abandon(); }

    // Holds a connection, connecting or ready.
    explicit operator bool() const { return static_cast<bool>(conn_); }
    // Holds a connected connection, one the request can be sent on.
    bool ready() const;
    // The connection; precondition: *this is not empty.
    BackendConn* operator->() const { return conn_.get(); }
    // Gives the connection back: to the idle pool if its exchange finished cleanly, else closed.
    void release();
    // Closes the connection without reuse, or cancels the connect. No-op when empty.
    void abandon();

  private:
    friend class BackendPool;
    core::Tether<BackendConn> conn_;
};

class BackendConn final : public net::OutboundConn, public core::Tethered, private ResponseParser::Handler {
  public:
    // Sends bytes of the request. Returns false if the connection is gone. Until the response head
    // arrives, each send restarts the response timeout (the backend is owed nothing while the
    // request is still coming).
    bool send(std::string_view data);
    // Response body flow control.
    void pause_response() { stop_reading(); }
    void resume_response() { start_reading(); }
    // For HEAD requests: the response has no body.
    void expect_no_body(bool v) { parser_.expect_no_body(v); }
    bool was_reused() const { return facts_.reused; }

    // The connection's lifecycle. Changed only by to(), which refuses any move can_transition()
    // does not list.
    //   Connecting -> Sending         connected: the user sends its request (response timeout runs)
    //   Idle -> Sending               taken from the pool by a new user
    //   Sending -> ReadingHead        the first response byte arrived (a response head under way)
    //   ReadingHead -> Receiving      the response head was parsed: its body is relayed
    //   Receiving -> Complete         the whole response was read; the user releases it
    //   Complete -> Idle              released with keep-alive: parked in the pool
    //   any -> Done                   closed (never reused again)
    enum class State : uint8_t { Connecting, Sending, ReadingHead, Receiving, Complete, Idle, Done };
    static bool can_transition(State from, State to);
    static const char* state_name(State s);
    State state() const { return state_; }
    // One line for tests and debug logs: the state and the remaining flags.
    std::string dump() const;

  private:
    friend class BackendPool;
    friend class BackendLease;
    BackendConn(loop::Worker& worker, BackendPool& pool, std::string key);

    // Starts a use by `user` (state Sending). False if refused (a bug; the connection is closing).
    bool attach(BackendUser& user, bool reused);
    // The user is done (through its lease): back to the pool if it finished cleanly, else closed.
    void release();
    // The user gives up: close without reuse.
    void abandon();
    // Empties the lease, if any, and returns the user to tell: the connection ends by itself.
    BackendUser* end_use();
    void arm_response_timeout();
    // Moves to `next`; an impossible move asserts in debug builds and, in release builds, is logged,
    // counted and closes the connection (false).
    bool to(State next);
    // In use by a user: the request can be sent and its response is being read.
    bool busy() const {
        return state_ == State::Sending || state_ == State::ReadingHead || state_ == State::Receiving ||
               state_ == State::Complete;
    }
    bool awaiting_head() const { return state_ == State::Sending || state_ == State::ReadingHead; }

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
    void on_response_head(ResponseHead& head) override;
    void on_response_body(std::string_view data) override;
    void on_response_complete() override;

    BackendPool& pool_;
    std::string key_;
    // A stand-in while the request waits for room under max_backend_conns_per_target: not
    // connected; its target, to connect when room frees up.
    std::unique_ptr<BackendTarget> queued_;
    bool counted_ = false; // counts against its target's open connections
    ResponseParser parser_;
    BackendUser* user_ = nullptr;
    State state_ = State::Connecting;
    // What is known of the current use; reset in one place, attach().
    struct Facts {
        bool reused = false; // taken from the idle pool (a failure before any response byte may be retried)
        bool keep_alive = true; // the response allows reuse (no Connection: close, no bytes after it)
    };
    Facts facts_;
    // Re-entrancy guard, not lifecycle: the user may release the connection from inside a parser
    // callback; the release then waits (release_pending_) until the parser has returned.
    bool in_feed_ = false;
    bool release_pending_ = false;

  public:
    core::ListHook idle_link; // in its pool's idle list for its target, while idle
    core::ListHook wait_link; // in its pool's queue for its target, while a stand-in
    core::ListHook pool_link; // in its pool's list of every open connection
};

class BackendPool {
  public:
    explicit BackendPool(loop::Worker& worker) : worker_(worker) {}
    ~BackendPool();
    BackendPool(const BackendPool&) = delete;
    BackendPool& operator=(const BackendPool&) = delete;

    void set_limits(uint64_t connect_timeout_ms, uint64_t idle_timeout_ms, size_t max_idle_per_target) {
        connect_timeout_ms_ = connect_timeout_ms;
        idle_timeout_ms_ = idle_timeout_ms;
        max_idle_per_target_ = max_idle_per_target;
    }
    // `[gripd] max_backend_conns_per_target`: open connections (connecting, in use or idle) to one
    // target on this worker; 0 = no limit. A request beyond it waits in a FIFO queue per target
    // (at most kMaxWaitingFactor x the limit, at least kMinWaiting) for a connection to come back or
    // close, for up to the connect timeout; a full queue or the timeout fails it as a connect
    // failure (the route's next target, else 502).
    void set_max_per_target(size_t n) { max_per_target_ = n; }
    static constexpr size_t kMaxWaitingFactor = 4;
    static constexpr size_t kMinWaiting = 64;
    // How long a backend may stay silent after the last request byte before its response head
    // (then the user gets on_backend_error(UV_ETIMEDOUT)). 0 = no limit.
    void set_response_timeout(uint64_t ms) { response_timeout_ms_ = ms; }
    // Gives `user` a connection to `target` through `lease` (whatever it held is abandoned first): an
    // idle one at once (on_backend_connected is called before this returns), or a new one when
    // connected. Exactly one of on_backend_connected / on_backend_connect_failed follows (possibly
    // before this returns), unless the lease is abandoned or destroyed first.
    void acquire(const BackendTarget& target, BackendUser& user, BackendLease& lease);
    // Closes every idle connection (stop: no new requests will come).
    void close_idle();
    // Closes every connection, leased ones too (the end of a stop); their leases are emptied and
    // their users are not called again.
    void close_all();
    size_t idle_count() const;
    // Open connections to `target` (connecting, in use or idle) and requests waiting for one.
    size_t open_count(const BackendTarget& target) const;
    size_t waiting_count(const BackendTarget& target) const;

  private:
    friend class BackendConn;
    // Per target: its idle connections, how many are open, and the requests waiting for room.
    struct IdleList {
        core::IntrusiveList<BackendConn, &BackendConn::idle_link> list;
        size_t count = 0;
        size_t open = 0;
        core::IntrusiveList<BackendConn, &BackendConn::wait_link> waiting;
        size_t waiting_count = 0;
    };
    IdleList& slot(const std::string& key);
    void park(BackendConn& conn);
    void unpark(BackendConn& conn);
    void start(BackendConn& conn, const BackendTarget& target);
    // A connection to `key` came back or closed: serve its queue from the next loop turn (never from
    // inside another user's callback).
    void wake(const std::string& key);
    void serve(const std::string& key);
    static void on_wake(uv_idle_t* h);

    loop::Worker& worker_;
    std::unordered_map<std::string, std::unique_ptr<IdleList>> idle_;
    size_t max_per_target_ = 0;
    std::vector<std::string> to_serve_; // keys woken, served on the next turn
    uv_idle_t wake_{};
    bool wake_init_ = false;
    core::IntrusiveList<BackendConn, &BackendConn::pool_link> all_;
    uint64_t connect_timeout_ms_ = 5000;
    uint64_t idle_timeout_ms_ = 60000;
    size_t max_idle_per_target_ = 256;
    uint64_t response_timeout_ms_ = 60000;
};

} // namespace gripd::http
