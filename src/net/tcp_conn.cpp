#include "gripd/net/tcp_conn.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/memory_guard.hpp"
#include "gripd/net/tls_server.hpp"

#include <cstring>

namespace gripd::net {

namespace {
constexpr uint64_t kLingerMs = 2000; // how long a half-closed connection waits for the peer's FIN
// Shared bytes shorter than this are copied: a reference (and its view) outweighs them, and a
// flood of tiny shared frames (empty publishes) would otherwise cost far more than it counts.
constexpr size_t kShareMin = 256;
// Bounded loop time: libuv reads a stream up to 32 times in a row while it has data (2 MiB with the
// worker's 64 KiB buffer), and a flood of tiny frames or pipelined requests makes each byte work.
// Past this many bytes in one loop turn a connection stops reading until the turn's end, so the
// other ready connections go first.
constexpr uint32_t kReadBytesPerTurn = 256 * 1024;
} // namespace

struct TcpConn::WriteReq {
    struct View {
        const char* data; // shared bytes
        size_t offset;    // owned bytes: offset into `owned`
        bool shared;
        size_t len = 0;
        View(const char* d, size_t off_or_len, bool sh) : data(d), offset(sh ? 0 : off_or_len), shared(sh) {
            if (sh) len = off_or_len;
        }
    };
    uv_write_t req{};
    TcpConn* conn = nullptr;
    std::string owned;
    std::vector<std::shared_ptr<const void>> keeps;
    std::vector<View> views;
    size_t len = 0;
    size_t cost = 0; // what queued_bytes_ counts for it: its bytes and its own weight
};

TcpConn::TcpConn(loop::Worker& worker, Transport transport) : worker_(worker), transport_(transport) {
    if (transport == Transport::Tcp)
        uv_tcp_init(worker.uv(), &handle_.tcp);
    else
        uv_pipe_init(worker.uv(), &handle_.pipe, 0);
    handle_.stream.data = this;
    timer_.init(&worker.timers(), this, &TcpConn::on_timer);
}

uv_tcp_t* TcpConn::tcp() {
    GRIPD_ASSERT(transport_ == Transport::Tcp);
    return &handle_.tcp;
}

uv_pipe_t* TcpConn::pipe() {
    GRIPD_ASSERT(transport_ == Transport::Unix);
    return &handle_.pipe;
}

TcpConn::~TcpConn() {
    worker_.forget_flush(*this); // it may still wait as bulk output for a later turn
}

bool TcpConn::can_transition(Life from, Life to) {
    switch (to) {
    case Life::Open:
        return false;
    case Life::ShuttingDown:
        return from == Life::Open;
    case Life::Closed:
        return from != Life::Closed;
    }
    return false;
}

const char* TcpConn::life_name(Life l) {
    switch (l) {
    case Life::Open:
        return "Open";
    case Life::ShuttingDown:
        return "ShuttingDown";
    case Life::Closed:
        return "Closed";
    }
    return "?";
}

const char* TcpConn::reading_name(Reading r) {
    switch (r) {
    case Reading::Stopped:
        return "Stopped";
    case Reading::Active:
        return "Active";
    case Reading::Yielded:
        return "Yielded";
    }
    return "?";
}

// Every caller checks the current life first (the moves are one-way), so a refusal is a bug here.
void TcpConn::life_to(Life next) {
    GRIPD_ASSERT(can_transition(life_, next));
    life_ = next;
}

void TcpConn::start_reading() {
    if (reading_ != Reading::Stopped || life_ == Life::Closed) return;
    if (uv_read_start(stream(), &TcpConn::on_alloc, &TcpConn::on_read) == 0) reading_ = Reading::Active;
}

void TcpConn::stop_reading() {
    if (reading_ == Reading::Stopped) return;
    if (reading_ == Reading::Active) uv_read_stop(stream());
    reading_ = Reading::Stopped;
}

void TcpConn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<TcpConn*>(h->data);
    auto& rb = self->worker_.read_buffer();
    *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
}

void TcpConn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<TcpConn*>(s->data);
    if (n > 0) {
        if (self->life_ == Life::ShuttingDown) return; // draining the peer's leftovers before closing
        auto turn = static_cast<uint32_t>(uv_now(self->worker_.uv()));
        if (turn != self->read_turn_) {
            self->read_turn_ = turn;
            self->read_this_turn_ = 0;
        }
        self->read_this_turn_ += static_cast<uint32_t>(n);
        if (self->tls_)
            self->on_ciphertext(buf->base, static_cast<size_t>(n));
        else
            self->on_data(buf->base, static_cast<size_t>(n));
        if (self->read_this_turn_ >= kReadBytesPerTurn && self->reading_ == Reading::Active &&
            self->life_ != Life::Closed) {
            uv_read_stop(self->stream()); // is_reading() stays true: flush() starts it again
            self->reading_ = Reading::Yielded;
            if (!self->in_flush_list_) {
                self->in_flush_list_ = true;
                self->worker_.schedule_flush(*self);
            }
        }
    } else if (n < 0) {
        self->stop_reading();
        if (self->life_ == Life::ShuttingDown) {
            self->close();
            return;
        }
        self->on_read_end(static_cast<int>(n));
    }
}

bool TcpConn::write(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (life_ != Life::Open) return false;
    if (data.empty()) return true;
    if (tls_) return write_tls(data);
    if (keep && data.size() >= kShareMin) {
        segments_.push_back(Segment{data.data(), 0, data.size(), keep});
    } else if (!segments_.empty() && !segments_.back().keep) {
        segments_.back().len += data.size(); // extend the last owned segment
        gather_.append(data);
    } else {
        segments_.push_back(Segment{nullptr, gather_.size(), data.size(), {}});
        gather_.append(data);
    }
    gathered_bytes_ += data.size();
    schedule_flush();
    return true;
}

void TcpConn::schedule_flush() {
    if (in_flush_list_) return;
    in_flush_list_ = true;
    worker_.schedule_flush(*this);
}

void TcpConn::flush() {
    in_flush_list_ = false;
    if (reading_ == Reading::Yielded) {
        read_this_turn_ = 0;
        reading_ =
            life_ != Life::Closed && uv_read_start(stream(), &TcpConn::on_alloc, &TcpConn::on_read) == 0
                ? Reading::Active
                : Reading::Stopped;
    }
    send_gathered();
}

void TcpConn::send_gathered() {
    if (!tls_plain_.empty() && (life_ == Life::Closed || !seal_tls())) {
        std::string().swap(tls_plain_);
        if (life_ == Life::Closed)
            gathered_bytes_ = 0;
        else
            return; // failed: closing after its own flush
    }
    if (segments_.empty() || life_ == Life::Closed) {
        segments_.clear();
        gather_.clear();
        gathered_bytes_ = 0;
        return;
    }
    constexpr size_t kMaxIov = 256;
    uv_buf_t iov[kMaxIov];
    size_t seg = 0;
    while (seg < segments_.size() && life_ != Life::Closed) {
        size_t n = 0;
        size_t total = 0;
        for (size_t i = seg; i < segments_.size() && n < kMaxIov; ++i, ++n) {
            const Segment& sg = segments_[i];
            const char* p = sg.keep ? sg.data : gather_.data() + sg.offset;
            iov[n] = uv_buf_init(const_cast<char*>(p), static_cast<unsigned>(sg.len));
            total += sg.len;
        }
        size_t written = 0;
        if (pending_writes_ == 0) {
            int r = uv_try_write(stream(), iov, static_cast<unsigned>(n));
            if (r >= 0) {
                written = static_cast<size_t>(r);
            } else if (r != UV_EAGAIN) {
                fail_write(r);
                break;
            }
        }
        if (written < total && !queue_rest(iov, n, seg, written, total)) break;
        seg += n;
    }
    gathered_bytes_ = 0;
    // Give both buffers back: most connections sit idle between writes (held streams, WebSockets) and
    // an idle one should own no output memory. Allocating them again on the next busy iteration
    // costs far less than the writev it feeds.
    std::vector<Segment>().swap(segments_);
    std::string().swap(gather_);
    // Everything went straight to the kernel: producers paused on queued_bytes() may go on.
    if (life_ != Life::Closed && pending_writes_ == 0) on_write_drained();
}

// Queues in libuv what the kernel did not take of iov[0..n) (segments_[seg..seg+n), `written` of
// `total` bytes sent): owned bytes are copied into the request, shared ones referenced. False if the
// write failed (the connection is closed then).
bool TcpConn::queue_rest(const uv_buf_t* iov, size_t n, size_t seg, size_t written, size_t total) {
    auto req = std::make_unique<WriteReq>();
    req->conn = this;
    std::vector<uv_buf_t> bufs;
    size_t skip = written;
    for (size_t i = 0; i < n; ++i) {
        size_t len = iov[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        const Segment& sg = segments_[seg + i];
        const char* p = iov[i].base + skip;
        size_t rest = len - skip;
        skip = 0;
        if (sg.keep) {
            req->keeps.push_back(sg.keep);
            req->views.push_back({p, rest, true});
        } else {
            req->views.push_back({nullptr, req->owned.size(), false});
            req->views.back().len = rest;
            req->owned.append(p, rest);
        }
    }
    for (auto& v : req->views)
        bufs.push_back(uv_buf_init(const_cast<char*>(v.shared ? v.data : req->owned.data() + v.offset),
                                   static_cast<unsigned>(v.len)));
    req->len = total - written;
    req->req.data = req.get();
    int r = uv_write(&req->req, stream(), bufs.data(), static_cast<unsigned>(bufs.size()),
                     &TcpConn::on_write_done);
    if (r != 0) {
        fail_write(r);
        return false;
    }
    // Each pending request counts its own weight too: a slow reader that is sent many
    // small writes is cut off by the same byte caps as one sent a few large ones.
    req->cost = req->len + sizeof(WriteReq) + req->owned.capacity() - req->owned.size() +
                req->views.capacity() * sizeof(WriteReq::View) +
                req->keeps.capacity() * sizeof(std::shared_ptr<const void>);
    queued_bytes_ += req->cost;
    MemoryGuard::instance().account_queued(worker_.index(), static_cast<int64_t>(req->cost));
    ++pending_writes_;
    static_cast<void>(req.release()); // owned by libuv until on_write_done
    return true;
}

void TcpConn::on_write_done(uv_write_t* r, int status) {
    std::unique_ptr<WriteReq> req(static_cast<WriteReq*>(r->data));
    TcpConn* self = req->conn;
    self->queued_bytes_ -= req->cost;
    MemoryGuard::instance().account_queued(self->worker_.index(), -static_cast<int64_t>(req->cost));
    --self->pending_writes_;
    if (status == UV_ECANCELED || self->life_ == Life::Closed) return;
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
    close_with(false);
}

void TcpConn::reset() {
    close_with(true);
}

void TcpConn::close_with(bool reset) {
    if (life_ == Life::Closed) return;
    bool shutting_down = life_ == Life::ShuttingDown;
    life_to(Life::Closed);
    timer_.disarm();
    reading_ = Reading::Stopped;
    segments_.clear();
    std::string().swap(tls_plain_);
    gathered_bytes_ = 0;
    // uv_tcp_close_reset sets SO_LINGER 0 and closes; it refuses a handle that is shutting down.
    if (!reset || shutting_down || transport_ != Transport::Tcp ||
        uv_tcp_close_reset(&handle_.tcp, &TcpConn::on_closed) != 0)
        uv_close(reinterpret_cast<uv_handle_t*>(&handle_.stream), &TcpConn::on_closed);
    on_close(); // the handle is already closing: whatever this triggers sees it so
}

void TcpConn::close_after_flush() {
    if (life_ != Life::Open) return;
    if (tls_ && !tls_plain_.empty() && !seal_tls()) return; // closing already
    if (tls_ && tls_->established()) { // a clean TLS end, so clients can tell it from a truncation
        size_t from = gather_.size();
        tls_->close_notify(gather_);
        took_ciphertext(from);
    }
    flush(); // what this iteration gathered goes before the FIN
    if (life_ == Life::Closed) return;
    life_to(Life::ShuttingDown);
    auto req = std::make_unique<uv_shutdown_t>();
    req->data = this;
    if (uv_shutdown(req.get(), stream(), &TcpConn::on_shutdown_done) != 0) {
        close();
        return;
    }
    static_cast<void>(req.release()); // freed in on_shutdown_done
    timer_.arm(kLingerMs);
}

void TcpConn::on_shutdown_done(uv_shutdown_t* req, int status) {
    std::unique_ptr<uv_shutdown_t> owned(req);
    auto* self = static_cast<TcpConn*>(req->data);
    if (status == UV_ECANCELED || self->life_ == Life::Closed) return;
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
    if (self->life_ == Life::ShuttingDown) {
        self->close();
        return;
    }
    self->on_timeout();
}

void TcpConn::on_closed(uv_handle_t* h) {
    delete static_cast<TcpConn*>(h->data);
}

std::string TcpConn::peer_ip() const {
    if (transport_ != Transport::Tcp) return {};
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&handle_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET)
        uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), buf, sizeof(buf));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), buf, sizeof(buf));
    return buf;
}

} // namespace gripd::net
