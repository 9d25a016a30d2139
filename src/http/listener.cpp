#include "gripd/http/listener.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/memory_guard.hpp"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace gripd::http {

void ConnSet::close_idle() {
    list_.for_each([](ServerConn& c) {
        if (c.is_idle()) c.close();
    });
}

void ConnSet::close_all() {
    list_.for_each([](ServerConn& c) { c.close(); });
}

size_t ConnSet::cut_slowest(size_t min_queued, uint64_t want, size_t max_conns) {
    std::vector<std::pair<size_t, ServerConn*>> slow;
    list_.for_each([&](ServerConn& c) {
        size_t q = c.queued_bytes();
        if (q >= min_queued && !c.is_closing()) slow.emplace_back(q, &c);
    });
    std::sort(slow.begin(), slow.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    size_t cut = 0;
    uint64_t freed = 0;
    for (auto& [q, c] : slow) {
        if (cut >= max_conns || freed >= want) break;
        LOG_DEBUG("server", "memory limit: cutting a slow client (%zu bytes queued)", q);
        freed += q;
        ++cut;
        c->reset(); // a reset also drops what the kernel still holds for it
    }
    return cut;
}

namespace {

// A counted ServerConn: releases its slot in the ConnLimit when it closes.
int open_reuseport_socket(const config::ListenAddr& addr, std::string* error) {
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
    socklen_t len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        *error = "bind " + addr.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

Listener* Listener::open(loop::Worker& worker, const config::ListenAddr& addr, Service& service,
                         ConnSet& conns, ConnLimit* limit, std::string* error, bool memory_guarded) {
    int fd = open_reuseport_socket(addr, error);
    if (fd < 0) return nullptr;
    auto self = std::unique_ptr<Listener>(new Listener(worker, service, conns, limit));
    self->memory_guarded_ = memory_guarded;
    uv_tcp_init(worker.uv(), &self->tcp_);
    self->tcp_.data = self.get();
    int r = uv_tcp_open(&self->tcp_, fd);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&self->tcp_), 4096, &Listener::on_connection);
    if (r != 0) {
        *error = "listen " + addr.to_string() + ": " + uv_strerror(r);
        // The handle is initialised: it must go through uv_close, which frees the listener.
        self.release()->close();
        return nullptr;
    }
    sockaddr_storage ss{};
    int len = sizeof(ss);
    uv_tcp_getsockname(&self->tcp_, reinterpret_cast<sockaddr*>(&ss), &len);
    self->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return self.release();
}

void Listener::close() {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
}

void Listener::on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<Listener*>(server->data);
    if (status < 0) {
        LOG_WARN("server", "accept failed: %s", uv_strerror(status));
        return;
    }
    auto* conn = new ServerConn(self->worker_, self->service_); // frees itself in its close callback
    if (uv_accept(server, conn->stream()) != 0) {
        conn->close();
        return;
    }
    uv_tcp_nodelay(conn->tcp(), 1);
    self->worker_.on_client_opened();
    self->conns_.add(*conn);
    if (self->memory_guarded_ && net::MemoryGuard::instance().refusing()) {
        net::MemoryGuard::instance().count_refused();
        LOG_DEBUG("server", "near the memory limit: refusing a connection");
        conn->refuse_overloaded("Memory limit reached");
        return;
    }
    if (self->limit_ && self->limit_->max > 0 && self->limit_->open.fetch_add(1) >= self->limit_->max) {
        self->limit_->open.fetch_sub(1);
        LOG_WARN("server", "client_maxconn (%lld) reached: refusing a connection",
                 static_cast<long long>(self->limit_->max));
        conn->refuse_overloaded();
        return;
    }
    conn->set_conn_limit(self->limit_);
    conn->start();
}

} // namespace gripd::http
