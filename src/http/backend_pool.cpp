#include "gripd/http/backend_pool.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"

#include <cstring>

namespace gripd::http {

// An address lookup in flight. The connection may close before the answer comes; then `conn` is
// cleared and the query frees itself when libuv calls back.
struct DnsQuery {
    uv_getaddrinfo_t req{};
    BackendConn* conn = nullptr;
};

BackendConn::BackendConn(loop::Worker& worker, BackendPool& pool, std::string key)
    : TcpConn(worker), pool_(pool), key_(std::move(key)), parser_(*this, ResponseParser::Limits{}) {}

void BackendConn::attach(BackendUser& user, bool reused) {
    user_ = &user;
    reused_ = reused;
    got_bytes_ = false;
    complete_ = false;
    keep_alive_ = true;
    state_ = State::Busy;
    timer().disarm();
    parser_.reset();
    parser_.expect_no_body(false);
    start_reading();
}

void BackendConn::connect(const BackendTarget& target, uint64_t timeout_ms) {
    timer().arm(timeout_ms);
    sockaddr_storage ss{};
    if (uv_ip4_addr(target.host.c_str(), target.port, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
        uv_ip6_addr(target.host.c_str(), target.port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
        connect_addr(reinterpret_cast<sockaddr*>(&ss));
        return;
    }
    auto q = std::make_unique<DnsQuery>();
    q->conn = this;
    q->req.data = q.get();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    std::string port = std::to_string(target.port);
    int r = uv_getaddrinfo(
        worker_.uv(), &q->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
            std::unique_ptr<DnsQuery> q(static_cast<DnsQuery*>(req->data));
            BackendConn* conn = q->conn;
            if (conn) conn->dns_ = nullptr;
            if (!conn || conn->is_closing()) {
                uv_freeaddrinfo(res);
                return;
            }
            if (status != 0 || !res) {
                uv_freeaddrinfo(res);
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
            uv_freeaddrinfo(res);
        },
        target.host.c_str(), port.c_str(), &hints);
    if (r != 0) {
        fail_connect(r);
        return;
    }
    dns_ = q.release(); // freed by the callback
}

void BackendConn::connect_addr(const sockaddr* addr) {
    connect_req_.data = this;
    int r = uv_tcp_connect(&connect_req_, tcp(), addr, &BackendConn::on_connected);
    if (r != 0) fail_connect(r);
}

void BackendConn::on_connected(uv_connect_t* req, int status) {
    auto* self = static_cast<BackendConn*>(req->data);
    if (status == UV_ECANCELED || self->is_closing()) return;
    if (status != 0) {
        self->fail_connect(status);
        return;
    }
    uv_tcp_nodelay(self->tcp(), 1);
    self->timer().disarm();
    BackendUser* user = self->user_;
    self->attach(*user, false);
    user->on_backend_connected(*self);
}

void BackendConn::fail_connect(int status) {
    BackendUser* user = user_;
    user_ = nullptr;
    state_ = State::Done;
    close();
    if (user) user->on_backend_connect_failed(status);
}

void BackendConn::on_timeout() {
    if (state_ == State::Connecting) {
        fail_connect(UV_ETIMEDOUT);
        return;
    }
    close(); // idle too long in the pool
}

void BackendConn::on_data(const char* data, size_t len) {
    if (state_ != State::Busy || !user_) {
        close(); // an idle connection must not speak; the backend is closing or confused
        return;
    }
    got_bytes_ = true;
    in_feed_ = true;
    size_t used = parser_.feed(data, len);
    in_feed_ = false;
    if (is_closing()) return;
    if (parser_.state() == ResponseParser::State::Error) {
        LOG_DEBUG("backend", "bad response from %s: %.*s", key_.c_str(),
                  static_cast<int>(parser_.error_message().size()), parser_.error_message().data());
        BackendUser* user = user_;
        user_ = nullptr;
        close();
        if (user) user->on_backend_error(UV_EPROTO, false);
        return;
    }
    if (complete_ && used < len) keep_alive_ = false; // bytes after the response: do not reuse
    if (release_pending_) {
        release_pending_ = false;
        release();
    }
}

void BackendConn::on_read_end(int status) {
    if (state_ == State::Busy && user_ && !complete_) {
        in_feed_ = true;
        bool ended = status == UV_EOF && parser_.finish(); // a close-delimited body ends here
        in_feed_ = false;
        if (ended && complete_) {
            keep_alive_ = false;
            if (release_pending_) {
                release_pending_ = false;
                release();
            }
            return;
        }
        BackendUser* user = user_;
        user_ = nullptr;
        bool retryable = reused_ && !got_bytes_;
        close();
        if (user) user->on_backend_error(status, retryable);
        return;
    }
    close();
}

void BackendConn::on_write_drained() {
    if (user_) user_->on_backend_writable();
}

void BackendConn::on_close() {
    if (idle_link.is_linked()) pool_.unpark(*this);
    if (dns_) {
        dns_->conn = nullptr;
        dns_ = nullptr;
    }
    user_ = nullptr;
    state_ = State::Done;
}

void BackendConn::on_response_head(ResponseHead& head) {
    if (!head.keep_alive) keep_alive_ = false;
    if (user_) user_->on_backend_head(head);
}

void BackendConn::on_response_body(std::string_view data) {
    if (user_) user_->on_backend_body(data);
}

void BackendConn::on_response_complete() {
    complete_ = true;
    if (user_) user_->on_backend_complete();
}

void BackendConn::release() {
    if (is_closing()) return;
    if (in_feed_) {
        release_pending_ = true; // finish the parser call first
        return;
    }
    user_ = nullptr;
    if (!complete_ || !keep_alive_ || state_ != State::Busy || worker_.is_stopping() ||
        parser_.state() == ResponseParser::State::Upgrade) {
        close();
        return;
    }
    pool_.park(*this);
}

void BackendConn::abandon() {
    user_ = nullptr;
    release_pending_ = false;
    close();
}

// ---- pool ----

BackendConn* BackendPool::acquire(const BackendTarget& target, BackendUser& user) {
    std::string key = target.key();
    auto it = idle_.find(key);
    if (it != idle_.end()) {
        if (BackendConn* c = it->second->list.front()) {
            unpark(*c);
            c->attach(user, true);
            user.on_backend_connected(*c);
            return c;
        }
    }
    auto* conn = new BackendConn(worker_, *this, std::move(key)); // frees itself in its close callback
    conn->user_ = &user;
    conn->state_ = BackendConn::State::Connecting;
    conn->connect(target, connect_timeout_ms_);
    return conn->state_ == BackendConn::State::Connecting ? conn : nullptr;
}

void BackendPool::park(BackendConn& conn) {
    auto& slot = idle_[conn.key_];
    if (!slot) slot = std::make_unique<IdleList>();
    if (slot->count >= max_idle_per_target_) {
        conn.close();
        return;
    }
    conn.state_ = BackendConn::State::Idle;
    conn.parser_.reset();
    slot->list.push_back(conn);
    ++slot->count;
    conn.start_reading(); // notice when the backend closes it
    conn.timer().arm(idle_timeout_ms_);
}

void BackendPool::unpark(BackendConn& conn) {
    conn.idle_link.unlink();
    auto it = idle_.find(conn.key_);
    if (it != idle_.end() && it->second->count > 0) --it->second->count;
}

void BackendPool::close_idle() {
    for (auto& [key, slot] : idle_) {
        slot->list.for_each([](BackendConn& c) { c.close(); });
    }
}

size_t BackendPool::idle_count() const {
    size_t n = 0;
    for (const auto& [key, slot] : idle_) n += slot->count;
    return n;
}

} // namespace gripd::http
