#include "gripd/http/listener.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/handle.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/memory_guard.hpp"
#include "gripd/net/tls_server.hpp"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace gripd::http {

void ConnSet::close_idle() {
    list_.for_each([](ServerConn& c) {
        if (c.is_idle())
            c.close();
        else
            c.notify_stopping(); // an HTTP/2 session sends GOAWAY and ends with its last stream
    });
}

void ConnSet::close_all() {
    list_.for_each([](ServerConn& c) { c.close(); });
}

size_t ConnSet::cut_slowest(size_t min_queued, uint64_t want, size_t max_conns) {
    std::vector<ShedCandidate> slow;
    list_.for_each([&](ServerConn& c) {
        if (!c.is_closing()) c.shed_candidates(min_queued, slow);
    });
    std::sort(slow.begin(), slow.end(), [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
    size_t cut = 0;
    uint64_t freed = 0;
    for (auto& s : slow) {
        if (cut >= max_conns || freed >= want) break;
        // A stream's connection may have been cut before it (then the stream is closing already).
        if (s.stream && s.stream->is_closing()) continue;
        if (s.conn && s.conn->is_closing()) continue;
        LOG_DEBUG("server", "memory limit: cutting a slow %s (%zu bytes queued)",
                  s.stream ? "HTTP/2 stream" : "client", s.bytes);
        freed += s.bytes;
        ++cut;
        if (s.stream)
            s.stream->cut_off(); // RST_STREAM(CANCEL): the connection's other streams go on
        else
            s.conn->reset(); // a reset also drops what the kernel still holds for it
    }
    return cut;
}

int Listener::listen_tcp(const config::ListenAddr& addr, std::string* error) {
    sockaddr_storage ss{};
    int family = addr.is_ipv6() ? AF_INET6 : AF_INET;
    int r = family == AF_INET6
                ? uv_ip6_addr(addr.addr.c_str(), addr.port, reinterpret_cast<sockaddr_in6*>(&ss))
                : uv_ip4_addr(addr.addr.c_str(), addr.port, reinterpret_cast<sockaddr_in*>(&ss));
    if (r != 0) {
        *error = "bad listen address " + addr.to_string();
        return -1;
    }
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        *error = std::string("SO_REUSEPORT: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    // Linux copies TCP_NODELAY to every socket accept() returns: set once here, it saves a
    // setsockopt() per connection (Listener::serve sets it itself if this fails).
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    socklen_t len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        *error = "bind " + addr.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    if (::listen(fd, 4096) != 0) {
        *error = "listen " + addr.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

Listener* Listener::open(loop::Worker& worker, const config::ListenAddr& addr, Service& service,
                         ConnSet& conns, ConnLimit* limit, std::string* error, bool memory_guarded,
                         const net::TlsCertSource* tls) {
    int fd = listen_tcp(addr, error);
    if (fd < 0) return nullptr;
    return adopt_tcp(worker, fd, addr, service, conns, limit, error, memory_guarded, tls, false);
}

Listener* Listener::adopt_tcp(loop::Worker& worker, int fd, const config::ListenAddr& addr, Service& service,
                              ConnSet& conns, ConnLimit* limit, std::string* error, bool memory_guarded,
                              const net::TlsCertSource* tls, bool shared) {
    Listener* self = make(worker, fd, net::Transport::Tcp, addr.to_string(), service, conns, limit, error,
                          memory_guarded, shared);
    if (!self) return nullptr;
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    self->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    self->addr_port_ = addr.port != 0 ? addr.port : self->port_; // names default_<port>
    self->tls_ = tls;
    self->accept_batch_ = shared ? kSharedAcceptBatch : kAcceptBatch;
    int nodelay = 0;
    socklen_t optlen = sizeof(nodelay);
    self->nodelay_inherited_ =
        ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &optlen) == 0 && nodelay != 0;
    return self;
}

Listener* Listener::adopt(loop::Worker& worker, int fd, net::Transport transport, const std::string& name,
                          Service& service, ConnSet& conns, ConnLimit* limit, std::string* error,
                          bool memory_guarded) {
    return make(worker, fd, transport, name, service, conns, limit, error, memory_guarded, true);
}

// A socket every worker shares would wake every idle worker for each connection (libuv registers
// its fds without EPOLLEXCLUSIVE), and all but one find nothing to accept: on a TLS port, where
// the workers are often idle between handshakes, those wakeups were most of the difference in
// context switches per handshake from nginx, which asks for EPOLLEXCLUSIVE. So a shared socket is
// put into the loop's epoll set here, exclusively, with its events tagged as the eventfd's that
// poll_ watches: libuv dispatches an event by that tag (epoll_event.data.fd), and never touches
// the registration of a descriptor it was not given.
Listener* Listener::make(loop::Worker& worker, int fd, net::Transport transport, const std::string& name,
                         Service& service, ConnSet& conns, ConnLimit* limit, std::string* error,
                         bool memory_guarded, bool shared) {
    auto self = std::unique_ptr<Listener>(new Listener(worker, service, conns, limit));
    self->memory_guarded_ = memory_guarded;
    self->transport_ = transport;
    self->fd_ = fd;
    if (shared) {
        self->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (self->wake_fd_ >= 0 && !self->register_exclusive()) {
            ::close(self->wake_fd_);
            self->wake_fd_ = -1;
        }
    }
    int r = self->wake_fd_ >= 0 ? uv_poll_init(worker.uv(), &self->poll_, self->wake_fd_)
                                : uv_poll_init_socket(worker.uv(), &self->poll_, fd);
    if (r != 0) {
        *error = "listen " + name + ": " + uv_strerror(r);
        return nullptr; // the destructor unregisters and closes the sockets; no poll handle yet
    }
    self->poll_.data = self.get();
    self->resume_.init(&worker.timers(), self.get(), &Listener::on_resume);
    // Exclusive: registered already, and no loop turn (so no event) comes before this start.
    r = uv_poll_start(&self->poll_, UV_READABLE, &Listener::on_readable);
    if (r != 0) {
        *error = "listen " + name + ": " + uv_strerror(r);
        // The handle is initialised: it must go through uv_close, which frees the listener.
        self.release()->close();
        return nullptr;
    }
    self->watching_ = true;
    return self.release();
}

bool Listener::register_exclusive() {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    e.data.fd = wake_fd_;
    return ::epoll_ctl(uv_backend_fd(worker_.uv()), EPOLL_CTL_ADD, fd_, &e) == 0;
}

void Listener::watch() {
    if (watching_ || closing_) return;
    watching_ = wake_fd_ >= 0 ? register_exclusive()
                              : uv_poll_start(&poll_, UV_READABLE, &Listener::on_readable) == 0;
}

// Exclusive: the registration must go before fd_ closes. Other workers hold dups of the same socket,
// and epoll drops a registration only when the last descriptor of its file closes: left in, it would
// go on reporting under wake_fd_'s number after wake_fd_ is gone (and that number is reused).
void Listener::unregister_exclusive() {
    if (wake_fd_ >= 0 && fd_ >= 0) ::epoll_ctl(uv_backend_fd(worker_.uv()), EPOLL_CTL_DEL, fd_, nullptr);
}

void Listener::unwatch() {
    if (wake_fd_ >= 0)
        unregister_exclusive();
    else if (watching_)
        uv_poll_stop(&poll_);
    watching_ = false;
}

Listener::~Listener() {
    unregister_exclusive(); // however it got here (a failed make(), a loop torn down by uv_walk)
    if (fd_ >= 0) ::close(fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Listener::close() {
    if (closing_) return;
    unwatch();
    closing_ = true;
    resume_.disarm();
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &loop::delete_owner_on_close<Listener>);
}

void Listener::close_draining() {
    if (closing_) return;
    unwatch();
    // accept_some() would stop after one batch; the whole backlog must go before close. It is
    // bounded by the backlog given to listen(). Errors end the loop (pause_accepting's resume timer
    // is disarmed by close()).
    size_t taken = 0;
    for (;;) {
        int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM) continue;
            break;
        }
        serve(fd); // served as any other request; the response says Connection: close
        ++taken;
    }
    if (taken > 0) LOG_DEBUG("server", "stopping: took %zu waiting connections before closing", taken);
    close(); // stops the poll handle now; it frees the listener on a later turn
    // The socket closes now, not with the listener: fewer connections can land on it in between
    // (those would be reset).
    ::close(fd_);
    fd_ = -1;
}

void Listener::on_readable(uv_poll_t* poll, int status, int /*events*/) {
    auto* self = static_cast<Listener*>(poll->data);
    if (!self->watching_) return; // fetched in the same epoll_wait as an unwatch() before it
    if (status < 0) {
        LOG_WARN("server", "listening socket failed: %s", uv_strerror(status));
        return;
    }
    self->accept_some();
}

void Listener::on_resume(void* owner) {
    auto* self = static_cast<Listener*>(owner);
    if (self->closing_) return;
    self->watch();
    self->accept_some(); // the poll reports the backlog again too, but do not wait a turn for it
}

// Accepts up to accept_batch_ connections, so one busy port cannot starve the rest of the loop (the
// poll is level-triggered: what is left wakes us again on the next iteration).
void Listener::accept_some() {
    for (int i = 0; i < accept_batch_ && !closing_; ++i) {
        // The peer's address comes with the accept (no getpeername() per connection later).
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof(peer);
        int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            serve(fd, transport_ == net::Transport::Tcp ? reinterpret_cast<const sockaddr*>(&peer) : nullptr);
            continue;
        }
        int err = errno;
        switch (err) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED: // the client gave up while waiting in the backlog
        case EPROTO:
        case EPERM: // refused by a firewall rule
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            pause_accepting(err);
            return;
        default:
            LOG_WARN("server", "accept failed: %s", std::strerror(err));
            return;
        }
    }
}

void Listener::pause_accepting(int err) {
    // Out of descriptors (or kernel memory): retrying at once would fail the same way and spin the
    // loop, so stop polling for a moment. Pending clients wait in the backlog meanwhile.
    unwatch();
    resume_.arm(kAcceptPauseMs);
    static std::atomic<uint64_t> last_log_ms{0};
    static std::atomic<uint64_t> suppressed{0};
    uint64_t now = uv_hrtime() / 1000000;
    uint64_t last = last_log_ms.load(std::memory_order_relaxed);
    if (last != 0 && now - last < kLogIntervalMs) {
        suppressed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (!last_log_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
        suppressed.fetch_add(1, std::memory_order_relaxed);
        return; // another loop logs this interval
    }
    uint64_t more = suppressed.exchange(0, std::memory_order_relaxed);
    LOG_WARN("server",
             "accept failed: %s: not accepting for %llu ms at a time until descriptors are free "
             "(%llu more since the last warning; at most one warning per %llu s)",
             std::strerror(err), static_cast<unsigned long long>(kAcceptPauseMs),
             static_cast<unsigned long long>(more), static_cast<unsigned long long>(kLogIntervalMs / 1000));
}

void Listener::serve(int fd, const sockaddr* peer) {
    auto* conn = new ServerConn(worker_, service_, transport_); // frees itself in its close callback
    const bool tcp = transport_ == net::Transport::Tcp;
    if ((tcp ? uv_tcp_open(conn->tcp(), fd) : uv_pipe_open(conn->pipe(), fd)) != 0) {
        ::close(fd);
        conn->close();
        return;
    }
    if (tcp && !nodelay_inherited_) uv_tcp_nodelay(conn->tcp(), 1);
    if (peer) conn->set_peer_address(*peer);
    worker_.on_client_opened();
    conns_.add(*conn);
    if (tls_) // before anything is written: a refusal below then closes without plaintext bytes
        conn->start_tls(std::make_unique<net::TlsServerSession>(
            tls_->current(tls_store_, tls_gen_, worker_.index()), addr_port_));
    if (memory_guarded_ && net::MemoryGuard::instance().refusing()) {
        net::MemoryGuard::instance().count_refused();
        LOG_DEBUG("server", "near the memory limit: refusing a connection");
        conn->refuse_overloaded("Memory limit reached");
        return;
    }
    if (limit_ && limit_->max > 0 && limit_->open.fetch_add(1) >= limit_->max) {
        limit_->open.fetch_sub(1);
        LOG_WARN("server", "client_maxconn (%lld) reached: refusing a connection",
                 static_cast<long long>(limit_->max));
        conn->refuse_overloaded();
        return;
    }
    conn->set_conn_limit(limit_);
    conn->start();
}

} // namespace gripd::http
