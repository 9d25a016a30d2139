// Backend connections: the client side of HTTP/1.1 towards backends. Each worker has one
// BackendPool keeping idle keep-alive connections per target (host:port); a BackendConn belongs to
// one worker and serves one request at a time for one BackendUser (a proxy session).
#pragma once

#include "gripd/core/intrusive_list.hpp"
#include "gripd/http/response_parser.hpp"
#include "gripd/net/outbound_conn.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace gripd::http {

class BackendConn;
class BackendPool;

// Receives the events of the request it sent on a BackendConn.
class BackendUser {
  public:
    virtual ~BackendUser() = default;
    virtual void on_backend_connected(BackendConn& conn) = 0;
    // Connecting failed (DNS, refused, timeout); the connection is gone.
    virtual void on_backend_connect_failed(int uv_status) = 0;
    virtual void on_backend_head(ResponseHead& head) = 0;
    virtual void on_backend_body(std::string_view data) = 0;
    virtual void on_backend_complete() = 0;
    // The connection failed after connecting. `reused` tells whether it came from the idle pool and
    // no response byte was seen (the request may be retried on a fresh connection).
    virtual void on_backend_error(int uv_status, bool retryable) = 0;
    virtual void on_backend_writable() {}
};

struct BackendTarget {
    std::string host; // name or numeric address (no brackets)
    int port = 80;
    std::optional<net::TlsSettings> tls; // an `ssl` target
    // Pooled connections are shared only between identical targets (TLS name and checks included).
    std::string key() const {
        std::string k = host + ":" + std::to_string(port);
        if (tls) k += (tls->verify ? " tls " : " tls-insecure ") + tls->server_name;
        return k;
    }
};

class BackendConn final : public net::OutboundConn, private ResponseParser::Handler {
  public:
    // Sends bytes of the request. Returns false if the connection is gone. Until the response head
    // arrives, each send restarts the response timeout (the backend is owed nothing while the
    // request is still coming).
    bool send(std::string_view data);
    // The user is done with this connection: back to the pool if it finished cleanly, else closed.
    void release();
    // The user gives up (client gone, error): close without reuse.
    void abandon();
    // Response body flow control.
    void pause_response() { stop_reading(); }
    void resume_response() { start_reading(); }
    // For HEAD requests: the response has no body.
    void expect_no_body(bool v) { parser_.expect_no_body(v); }
    bool was_reused() const { return reused_; }
    // True until on_backend_connected or on_backend_connect_failed (see BackendPool::acquire).
    using OutboundConn::connecting;

  private:
    friend class BackendPool;
    BackendConn(loop::Worker& worker, BackendPool& pool, std::string key);

    void attach(BackendUser& user, bool reused);
    void arm_response_timeout();

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

    enum class State { Connecting, Busy, Idle, Done };
    BackendPool& pool_;
    std::string key_;
    ResponseParser parser_;
    BackendUser* user_ = nullptr;
    State state_ = State::Connecting;
    bool reused_ = false;
    bool got_bytes_ = false;
    bool complete_ = false;
    bool keep_alive_ = true;
    bool in_feed_ = false;
    bool release_pending_ = false;
    bool awaiting_head_ = false; // Busy and no response head yet: the response timeout runs

  public:
    core::ListHook idle_link;
};

class BackendPool {
  public:
    explicit BackendPool(loop::Worker& worker) : worker_(worker) {}
    BackendPool(const BackendPool&) = delete;
    BackendPool& operator=(const BackendPool&) = delete;

    void set_limits(uint64_t connect_timeout_ms, uint64_t idle_timeout_ms, size_t max_idle_per_target) {
        connect_timeout_ms_ = connect_timeout_ms;
        idle_timeout_ms_ = idle_timeout_ms;
        max_idle_per_target_ = max_idle_per_target;
    }
    // How long a backend may stay silent after the last request byte before its response head
    // (then the user gets on_backend_error(UV_ETIMEDOUT)). 0 = no limit.
    void set_response_timeout(uint64_t ms) { response_timeout_ms_ = ms; }
    // Gives `user` a connection to `target`: an idle one at once (on_backend_connected called before
    // this returns), or a new one when connected. Either way exactly one of on_backend_connected /
    // on_backend_connect_failed follows, unless the user abandons the returned connection first
    // (it must, if it goes away while connecting). Returns nullptr if the attempt already failed.
    BackendConn* acquire(const BackendTarget& target, BackendUser& user);
    // Closes every idle connection (shutdown).
    void close_idle();
    size_t idle_count() const;

  private:
    friend class BackendConn;
    struct IdleList {
        core::IntrusiveList<BackendConn, &BackendConn::idle_link> list;
        size_t count = 0;
    };
    void park(BackendConn& conn);
    void unpark(BackendConn& conn);

    loop::Worker& worker_;
    std::unordered_map<std::string, std::unique_ptr<IdleList>> idle_;
    uint64_t connect_timeout_ms_ = 5000;
    uint64_t idle_timeout_ms_ = 60000;
    size_t max_idle_per_target_ = 256;
    uint64_t response_timeout_ms_ = 60000;
};

} // namespace gripd::http
