#include "gripd/net/outbound_conn.hpp"

#include "gripd/net/address_policy.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/tls_client.hpp"

#include <memory>

namespace gripd::net {

// An address lookup in flight. libuv cannot cancel a running lookup, and the connection may be
// gone before it answers; then `conn` is cleared and the query frees itself when libuv calls back.
struct OutboundConn::DnsQuery {
    uv_getaddrinfo_t req{};
    OutboundConn* conn = nullptr;
};

OutboundConn::OutboundConn(loop::Worker& worker) : TcpConn(worker) {}

OutboundConn::~OutboundConn() {
    if (dns_) dns_->conn = nullptr;
}

void OutboundConn::connect(const std::string& host, int port, uint64_t timeout_ms, const TlsSettings* tls) {
    connecting_ = true;
    if (tls) tls_settings_ = std::make_unique<TlsSettings>(*tls);
    timer().arm(timeout_ms);
    if (deny_internal_ && is_internal_name(host)) {
        LOG_DEBUG("backend", "%s: an untrusted target may not reach internal names", host.c_str());
        fail_connect(UV_EPERM);
        return;
    }
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
    if (deny_internal_ && is_internal_address(addr)) {
        LOG_DEBUG("backend", "an untrusted target may not reach internal addresses: not connecting");
        fail_connect(UV_EPERM);
        return;
    }
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
    if (!self->tls_settings_) {
        self->connected();
        return;
    }
    // TLS: the handshake runs under the same connect timeout.
    std::unique_ptr<TlsSettings> settings = std::move(self->tls_settings_);
    self->tls_ = std::make_unique<TlsClient>(settings->server_name, settings->verify,
                                             settings->client_cert_pem.get(), settings->client_key_pem.get());
    std::string out;
    TlsClient::Status s = self->tls_->start(out);
    if (s == TlsClient::Status::Error) {
        self->fail_tls("starting the handshake");
        return;
    }
    if (!out.empty() && !self->write(out)) return;
    self->start_reading();
}

void OutboundConn::connected() {
    timer().disarm();
    connecting_ = false;
    on_connected();
}

void OutboundConn::fail_tls(const char* when) {
    LOG_WARN("backend", "TLS with %s failed while %s: %s", peer_ip().c_str(), when, tls_->error().c_str());
    if (connecting_)
        fail_connect(UV_EPROTO);
    else
        on_received_end(UV_EPROTO);
}

bool OutboundConn::transmit(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (!tls_) return write(data, keep);
    std::string out;
    if (!tls_->encrypt(data, out)) {
        fail_tls("sending");
        return false;
    }
    return write(out);
}

void OutboundConn::on_data(const char* data, size_t len) {
    if (!tls_) {
        on_received(data, len);
        return;
    }
    std::string plain, out;
    TlsClient::Status s = tls_->feed(std::string_view(data, len), plain, out);
    if (!out.empty() && !write(out)) return;
    if (s == TlsClient::Status::Error) {
        fail_tls(connecting_ ? "shaking hands" : "receiving");
        return;
    }
    if (connecting_) {
        if (!tls_->ready()) return;
        connected();
        if (is_closing()) return;
    }
    if (!plain.empty()) on_received(plain.data(), plain.size());
}

void OutboundConn::on_read_end(int status) {
    if (connecting_) { // the backend hung up during the TLS handshake
        LOG_WARN("backend", "TLS with %s failed: the connection closed during the handshake",
                 peer_ip().c_str());
        fail_connect(status == UV_EOF ? UV_ECONNRESET : status);
        return;
    }
    on_received_end(status);
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
