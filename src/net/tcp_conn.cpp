#include "gripd/net/tcp_conn.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"

#include <cstring>

namespace gripd::net {

namespace {
constexpr uint64_t kLingerMs = 2000; // how long a half-closed connection waits for the peer's FIN
}

struct TcpConn::WriteReq {
    uv_write_t req{};
    TcpConn* conn = nullptr;
    std::string owned;
    std::shared_ptr<const void> keep;
    size_t len = 0;
};

TcpConn::TcpConn(loop::Worker& worker) : worker_(worker) {
    uv_tcp_init(worker.uv(), &tcp_);
    tcp_.data = this;
    timer_.init(&worker.timers(), this, &TcpConn::on_timer);
}

TcpConn::~TcpConn() = default;

void TcpConn::start_reading() {
    if (reading_ || closing_) return;
    if (uv_read_start(stream(), &TcpConn::on_alloc, &TcpConn::on_read) == 0) reading_ = true;
}

void TcpConn::stop_reading() {
    if (!reading_) return;
    uv_read_stop(stream());
    reading_ = false;
}

void TcpConn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<TcpConn*>(h->data);
    auto& rb = self->worker_.read_buffer();
    *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
}

void TcpConn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<TcpConn*>(s->data);
    if (n > 0) {
        if (self->shutting_down_) return; // draining the peer's leftovers before closing
        self->on_data(buf->base, static_cast<size_t>(n));
    } else if (n < 0) {
        self->stop_reading();
        if (self->shutting_down_) {
            self->close();
            return;
        }
        self->on_read_end(static_cast<int>(n));
    }
}

bool TcpConn::write(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (closing_ || shutting_down_) return false;
    if (data.empty()) return true;
    size_t offset = 0;
    if (pending_writes_ == 0) {
        uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
        int r = uv_try_write(stream(), &b, 1);
        if (r >= 0) {
            offset = static_cast<size_t>(r);
            if (offset == data.size()) return true;
        } else if (r != UV_EAGAIN) {
            fail_write(r);
            return false;
        }
    }
    auto req = std::make_unique<WriteReq>();
    req->conn = this;
    std::string_view rest = data.substr(offset);
    uv_buf_t b;
    if (keep) {
        req->keep = keep;
        b = uv_buf_init(const_cast<char*>(rest.data()), static_cast<unsigned>(rest.size()));
    } else {
        req->owned.assign(rest);
        b = uv_buf_init(req->owned.data(), static_cast<unsigned>(req->owned.size()));
    }
    req->len = rest.size();
    req->req.data = req.get();
    int r = uv_write(&req->req, stream(), &b, 1, &TcpConn::on_write_done);
    if (r != 0) {
        fail_write(r);
        return false;
    }
    queued_bytes_ += req->len;
    ++pending_writes_;
    req.release(); // owned by libuv until on_write_done
    return true;
}

void TcpConn::on_write_done(uv_write_t* r, int status) {
    std::unique_ptr<WriteReq> req(static_cast<WriteReq*>(r->data));
    TcpConn* self = req->conn;
    self->queued_bytes_ -= req->len;
    --self->pending_writes_;
    if (status == UV_ECANCELED || self->closing_) return;
    if (status < 0) {
        self->fail_write(status);
        return;
    }
    if (self->pending_writes_ == 0) self->on_write_drained();
}

void TcpConn::fail_write(int status) {
    LOG_DEBUG("net", "write failed: %s", uv_strerror(status));
    close();
}

void TcpConn::close() {
    if (closing_) return;
    closing_ = true;
    timer_.disarm();
    reading_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpConn::on_closed);
    on_close(); // the handle is already closing: whatever this triggers sees it so
}

void TcpConn::close_after_flush() {
    if (closing_ || shutting_down_) return;
    shutting_down_ = true;
    auto* req = new uv_shutdown_t; // freed in on_shutdown_done (libuv owns it meanwhile)
    req->data = this;
    if (uv_shutdown(req, stream(), &TcpConn::on_shutdown_done) != 0) {
        delete req;
        close();
        return;
    }
    timer_.arm(kLingerMs);
}

void TcpConn::on_shutdown_done(uv_shutdown_t* req, int status) {
    auto* self = static_cast<TcpConn*>(req->data);
    delete req;
    if (status == UV_ECANCELED || self->closing_) return;
    if (status < 0) {
        self->close();
        return;
    }
    // Keep reading (and discarding) until the peer's FIN so unread input does not turn into a RST
    // that could destroy the response we just sent.
    self->start_reading();
}

void TcpConn::on_timer(void* p) {
    auto* self = static_cast<TcpConn*>(p);
    if (self->shutting_down_) {
        self->close();
        return;
    }
    self->on_timeout();
}

void TcpConn::on_closed(uv_handle_t* h) { delete static_cast<TcpConn*>(h->data); }

std::string TcpConn::peer_ip() const {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET)
        uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), buf, sizeof(buf));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), buf, sizeof(buf));
    return buf;
}

} // namespace gripd::net
