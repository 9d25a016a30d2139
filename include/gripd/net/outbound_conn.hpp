// OutboundConn: a TcpConn that gripd opens itself, towards a backend. It owns the one way of
// getting there: numeric addresses directly, names through the worker's resolver (IPv4 preferred),
// a connect timeout on the connection's timer (covering the TLS handshake too), TCP_NODELAY once
// connected, and TLS (net/tls_client) for `ssl` targets: subclasses send with transmit() and
// receive plaintext in on_received() either way. Exactly one of on_connected / on_connect_failed
// follows connect(), unless the connection closes first.
#pragma once

#include "gripd/net/tcp_conn.hpp"

#include <memory>
#include <string>

namespace gripd::net {

class TlsClient;

// TLS towards a backend.
struct TlsSettings {
    std::string server_name; // SNI and the name the certificate must carry
    bool verify = true;      // false: the route's `insecure`
    // mTLS (the target's client_cert/client_key): PEM certificate (then its chain) and private key.
    std::shared_ptr<const std::string> client_cert_pem;
    std::shared_ptr<const std::string> client_key_pem;
    std::string client_identity; // the files' names, so pooled connections are shared only with the same
};

class OutboundConn : public TcpConn {
  protected:
    explicit OutboundConn(loop::Worker& worker);
    ~OutboundConn() override;

    // Starts connecting to host:port (a name or a numeric IPv4/IPv6 address, no brackets), with
    // TLS when `tls` is given.
    void connect(const std::string& host, int port, uint64_t timeout_ms, const TlsSettings* tls = nullptr);
    bool connecting() const { return connecting_; }
    // An `untrusted` target: connecting to an internal name or address (net/address_policy.hpp)
    // fails with UV_EPERM. Set before connect().
    void set_deny_internal(bool on) { deny_internal_ = on; }
    // Sends plaintext (encrypted first on a TLS connection). False if the connection is gone.
    bool transmit(std::string_view data, const std::shared_ptr<const void>& keep = {});

    // Connected (and the TLS handshake done); the timeout is disarmed and TCP_NODELAY set.
    virtual void on_connected() = 0;
    // Plaintext from the backend.
    virtual void on_received(const char* data, size_t len) = 0;
    // The backend closed its side (UV_EOF) or the connection failed (negative uv error).
    virtual void on_received_end(int status) = 0;
    // Lookup, connect or timeout failed (uv error code); the connection is still open: the
    // subclass closes it and tells its user.
    virtual void on_connect_failed(int uv_status) = 0;
    // The connection's timer fired after connecting (e.g. an idle limit of the subclass's own).
    virtual void on_timer_after_connect() {}

  private:
    struct DnsQuery;
    void connect_addr(const sockaddr* addr);
    void fail_connect(int uv_status);
    void connected();
    void fail_tls(const char* when);
    static void on_connect_done(uv_connect_t* req, int status);
    void on_timeout() final;
    void on_data(const char* data, size_t len) final;
    void on_read_end(int status) final;

    DnsQuery* dns_ = nullptr;
    std::unique_ptr<TlsSettings> tls_settings_; // until the TCP connection is up
    std::unique_ptr<TlsClient> tls_;
    uv_connect_t connect_req_{};
    bool connecting_ = false;
    bool deny_internal_ = false;
};

} // namespace gripd::net
