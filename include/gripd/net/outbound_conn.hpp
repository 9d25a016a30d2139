// OutboundConn: a TcpConn that gripd opens itself, towards a backend. It owns the one way of
// getting there: numeric addresses directly, names through the worker's resolver (IPv4 preferred),
// a connect timeout on the connection's timer, TCP_NODELAY once connected. Exactly one of
// on_connected / on_connect_failed follows connect(), unless the connection closes first.
#pragma once

#include "gripd/net/tcp_conn.hpp"

#include <string>

namespace gripd::net {

class OutboundConn : public TcpConn {
  protected:
    explicit OutboundConn(loop::Worker& worker) : TcpConn(worker) {}
    ~OutboundConn() override;

    // Starts connecting to host:port (a name or a numeric IPv4/IPv6 address, no brackets).
    void connect(const std::string& host, int port, uint64_t timeout_ms);
    bool connecting() const { return connecting_; }

    // Connected; the timeout is disarmed and TCP_NODELAY set.
    virtual void on_connected() = 0;
    // Lookup, connect or timeout failed (uv error code); the connection is still open: the
    // subclass closes it and tells its user.
    virtual void on_connect_failed(int uv_status) = 0;
    // The connection's timer fired after connecting (e.g. an idle limit of the subclass's own).
    virtual void on_timer_after_connect() {}

  private:
    struct DnsQuery;
    void connect_addr(const sockaddr* addr);
    void fail_connect(int uv_status);
    static void on_connect_done(uv_connect_t* req, int status);
    void on_timeout() final;

    DnsQuery* dns_ = nullptr;
    uv_connect_t connect_req_{};
    bool connecting_ = false;
};

} // namespace gripd::net
