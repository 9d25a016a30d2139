#include "gripd/net/outbound_conn.hpp"

#include "gripd/loop/worker.hpp"

#include <memory>

namespace gripd::net {

// An address lookup in flight. libuv cannot cancel a running lookup, and the connection may be
// gone before it answers; then `conn` is cleared and the query frees itself when libuv calls back.
struct OutboundConn::DnsQuery {
    uv_getaddrinfo_t req{};
    OutboundConn* conn = nullptr;
};

OutboundConn::~OutboundConn() {
    if (dns_) dns_->conn = nullptr;
}

void OutboundConn::connect(const std::string& host, int port, uint64_t timeout_ms) {
    connecting_ = true;
    timer().arm(timeout_ms);
    sockaddr_storage ss{};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
        connect_addr(reinterpret_cast<sockaddr*>(&ss));
        return;
    }
    auto q = std::make_unique<DnsQuery>();
    q->conn = this;
    q->req.data = q.get();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    std::string port_text = std::to_string(port);
    int r = uv_getaddrinfo(
        worker_.uv(), &q->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
            std::unique_ptr<DnsQuery> q(static_cast<DnsQuery*>(req->data));
            std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(res, uv_freeaddrinfo);
            OutboundConn* conn = q->conn;
            if (!conn) return;
            conn->dns_ = nullptr;
            if (conn->is_closing() || !conn->connecting_) return;
            if (status != 0 || !res) {
                conn->fail_connect(status != 0 ? status : UV_EAI_NONAME);
                return;
            }
            // Prefer IPv4 where both exist: backends on "localhost" usually listen there.
            addrinfo* pick = res;
            for (addrinfo* a = res; a; a = a->ai_next)
                if (a->ai_family == AF_INET) {
                    pick = a;
                    break;
                }
            conn->connect_addr(pick->ai_addr);
        },
        host.c_str(), port_text.c_str(), &hints);
    if (r != 0) {
        fail_connect(r);
        return;
    }
    dns_ = q.release(); // freed by the callback
}

void OutboundConn::connect_addr(const sockaddr* addr) {
    connect_req_.data = this;
    int r = uv_tcp_connect(&connect_req_, tcp(), addr, &OutboundConn::on_connect_done);
    if (r != 0) fail_connect(r);
}

void OutboundConn::on_connect_done(uv_connect_t* req, int status) {
    auto* self = static_cast<OutboundConn*>(req->data);
    if (status == UV_ECANCELED || self->is_closing() || !self->connecting_) return;
    if (status != 0) {
        self->fail_connect(status);
        return;
    }
    uv_tcp_nodelay(self->tcp(), 1);
    self->timer().disarm();
    self->connecting_ = false;
    self->on_connected();
}

void OutboundConn::fail_connect(int uv_status) {
    connecting_ = false;
    timer().disarm();
    on_connect_failed(uv_status);
}

void OutboundConn::on_timeout() {
    if (connecting_) {
        fail_connect(UV_ETIMEDOUT);
        return;
    }
    on_timer_after_connect();
}

} // namespace gripd::net
