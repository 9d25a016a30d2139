// Listener: a TCP listening socket opened with SO_REUSEPORT by every worker on the same address, so
// the kernel spreads accepted connections across loops. Accepted sockets become ServerConns served
// by one Service and tracked in a ConnSet (for graceful stop).
#pragma once

#include "gripd/config/listen_addr.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/http/server_conn.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <uv.h>

namespace gripd::http {

// The open client connections of one service on one worker.
class ConnSet {
  public:
    void add(ServerConn& c) { list_.push_back(c); }
    // Closes connections that are between requests (used when stopping).
    void close_idle();
    void close_all();
    size_t size() const { return list_.size(); }
    // Cuts (TCP reset) the connections with the most output queued in libuv, largest first, each
    // with at least `min_queued` bytes, until `want` queued bytes were freed or `max_conns` were cut.
    // For the memory ceiling: O(n) in this set's connections, run only while over it.
    size_t cut_slowest(size_t min_queued, uint64_t want, size_t max_conns);

  private:
    core::IntrusiveList<ServerConn, &ServerConn::worker_link> list_;
};

// A process-wide cap on open connections (client_maxconn), shared by every worker's listeners.
struct ConnLimit {
    std::atomic<int64_t> open{0};
    int64_t max = 0; // 0 = unlimited
};

class Listener {
  public:
    // Opens and starts listening; returns nullptr and sets *error on failure. The listener frees
    // itself after close(). `memory_guarded`: refuse connections with 503 while the process is near
    // its memory ceiling (client ports; not the control API, so publishes still reach everyone).
    static Listener* open(loop::Worker& worker, const config::ListenAddr& addr, Service& service,
                          ConnSet& conns, ConnLimit* limit, std::string* error, bool memory_guarded = false);
    void close();
    int port() const { return port_; }

  private:
    Listener(loop::Worker& worker, Service& service, ConnSet& conns, ConnLimit* limit)
        : worker_(worker), service_(service), conns_(conns), limit_(limit) {}
    static void on_connection(uv_stream_t* server, int status);

    loop::Worker& worker_;
    Service& service_;
    ConnSet& conns_;
    ConnLimit* limit_;
    bool memory_guarded_ = false;
    uv_tcp_t tcp_{};
    int port_ = 0;
};

} // namespace gripd::http
