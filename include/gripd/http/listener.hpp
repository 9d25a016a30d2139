// Listener: a TCP listening socket opened with SO_REUSEPORT by every worker on the same address, so
// the kernel spreads accepted connections across loops by a hash of the client's address, or one
// socket every worker accepts on through its own dup() (a unix socket; a TLS port, where a handshake
// costs enough that connections must go to whichever worker is free). Accepted sockets become
// ServerConns served by one Service and tracked in a ConnSet (for graceful stop).
//
// The listener accepts by itself (a uv_poll_t on the socket) rather than through uv_listen, because
// libuv's answer to EMFILE is to accept and drop every waiting connection with a reserve fd, which
// silently loses clients and, once another loop of the process took the freed fd, spins its accept
// loop at 100 % CPU. Here, when the process is out of file descriptors (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) the listener stops polling for kAcceptPause; waiting clients stay in the kernel's backlog
// and are served once fds are free again. One warning per kLogInterval for the whole process says
// how often it happened.
#pragma once

#include "gripd/config/listen_addr.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/timer_wheel.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <uv.h>

namespace gripd::net {
class TlsCertSource;
class TlsCertStore;
} // namespace gripd::net

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
    static constexpr uint64_t kAcceptPauseMs = 100;   // out of fds: stop accepting this long
    static constexpr uint64_t kLogIntervalMs = 10000; // at most one warning per interval (process)
    static constexpr int kAcceptBatch = 64;           // accepts per readiness event (fairness)
    // On a socket every worker shares, one accept per wakeup: a worker busy with handshakes leaves
    // the next connection to an idle one instead of taking a batch of them for itself.
    static constexpr int kSharedAcceptBatch = 1;

    // Binds `addr` (SO_REUSEPORT, so a process taking the port over binds beside this one) and
    // listens; returns the socket, or -1 with *error set.
    static int listen_tcp(const config::ListenAddr& addr, std::string* error);

    // Opens and starts listening; returns nullptr and sets *error on failure. The listener frees
    // itself after close(). `memory_guarded`: refuse connections with 503 while the process is near
    // its memory ceiling (client ports; not the control API, so publishes still reach everyone).
    // `tls`: a TLS port ([runner] https_ports) with the certificates of that source.
    static Listener* open(loop::Worker& worker, const config::ListenAddr& addr, Service& service,
                          ConnSet& conns, ConnLimit* limit, std::string* error, bool memory_guarded = false,
                          const net::TlsCertSource* tls = nullptr);
    // open() on a socket from listen_tcp() (owned from here on, closed on failure too). `shared`: every
    // worker accepts on its own dup() of one socket, so one accept queue feeds the workers that are
    // free rather than each worker its own queue by a hash of the client's address.
    static Listener* adopt_tcp(loop::Worker& worker, int fd, const config::ListenAddr& addr, Service& service,
                               ConnSet& conns, ConnLimit* limit, std::string* error, bool memory_guarded,
                               const net::TlsCertSource* tls, bool shared);
    // The same on a socket that already listens (owned from here on, closed on failure too), e.g. a
    // dup() of a unix socket (net::UnixSocketFile) that every worker accepts on (each woken
    // exclusively, as on a shared TLS port). `name` is for errors.
    static Listener* adopt(loop::Worker& worker, int fd, net::Transport transport, const std::string& name,
                           Service& service, ConnSet& conns, ConnLimit* limit, std::string* error,
                           bool memory_guarded = false);
    void close();
    // Stopping (SIGTERM, or handing over to a new process): accepts what already waits in the
    // backlog, then closes the socket at once. With SO_REUSEPORT each listening socket has its own
    // queue, and the kernel resets whatever is still queued on a socket when it closes; another
    // process on the same port gets every new connection after that.
    void close_draining();
    int port() const { return port_; } // 0 for a unix socket
    // Only from close()'s callback (or open() failing before the poll handle exists).
    ~Listener();

  private:
    Listener(loop::Worker& worker, Service& service, ConnSet& conns, ConnLimit* limit)
        : worker_(worker), service_(service), conns_(conns), limit_(limit) {}
    static Listener* make(loop::Worker& worker, int fd, net::Transport transport, const std::string& name,
                          Service& service, ConnSet& conns, ConnLimit* limit, std::string* error,
                          bool memory_guarded, bool shared);
    // A shared socket is in the loop's epoll set with EPOLLEXCLUSIVE (see make()); false if the
    // kernel refused that, and it is polled as any other socket.
    bool register_exclusive();
    void unregister_exclusive();
    void watch();   // start taking readiness events
    void unwatch(); // stop (an accept pause, closing)
    static void on_readable(uv_poll_t* poll, int status, int events);
    static void on_resume(void* self);
    void accept_some();
    // `peer` (may be null: unknown) is the client's address as accept4() gave it.
    void serve(int fd, const sockaddr* peer = nullptr);
    void pause_accepting(int err);

    loop::Worker& worker_;
    Service& service_;
    ConnSet& conns_;
    ConnLimit* limit_;
    int fd_ = -1; // the listening socket (owned; closed after the poll handle)
    // Exclusive wakeups on a shared socket: fd_ itself is in the loop's epoll set, its events
    // tagged with wake_fd_ (an eventfd that is never written), so libuv hands them to poll_, which
    // watches wake_fd_. -1 otherwise, and poll_ watches fd_.
    int wake_fd_ = -1;
    bool watching_ = false;
    uv_poll_t poll_{};
    loop::TimerEntry resume_; // ends an accept pause
    bool closing_ = false;
    int accept_batch_ = kAcceptBatch;
    bool memory_guarded_ = false;
    bool nodelay_inherited_ = false; // TCP_NODELAY set on the listening socket, so on every accepted one
    int port_ = 0;
    int addr_port_ = 0; // the configured port (names default_<port>; port_ is the bound one)
    const net::TlsCertSource* tls_ = nullptr;
    std::shared_ptr<const net::TlsCertStore> tls_store_; // this worker's copy of tls_'s current store
    uint64_t tls_gen_ = 0;
    net::Transport transport_ = net::Transport::Tcp;
};

} // namespace gripd::http
