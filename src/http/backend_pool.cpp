#include "gripd/http/backend_pool.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"

#include <algorithm>
#include <cstring>

namespace gripd::http {

BackendConn::BackendConn(loop::Worker& worker, BackendPool& pool, std::string key)
    : OutboundConn(worker), pool_(pool), key_(std::move(key)), parser_(*this, ResponseParser::Limits{}) {}

const char* BackendConn::state_name(State s) {
    switch (s) {
    case State::Connecting:
        return "Connecting";
    case State::Sending:
        return "Sending";
    case State::ReadingHead:
        return "ReadingHead";
    case State::Receiving:
        return "Receiving";
    case State::Complete:
        return "Complete";
    case State::Idle:
        return "Idle";
    case State::Done:
        return "Done";
    }
    return "?";
}

bool BackendConn::can_transition(State from, State to) {
    switch (to) {
    case State::Connecting:
        return false;
    case State::Sending:
        return from == State::Connecting || from == State::Idle;
    case State::ReadingHead:
        return from == State::Sending;
    case State::Receiving:
        return from == State::ReadingHead;
    case State::Complete:
        return from == State::Receiving;
    case State::Idle:
        return from == State::Complete;
    case State::Done:
        return true;
    }
    return false;
}

bool BackendConn::to(State next) {
    if (GRIPD_CHECK(can_transition(state_, next))) {
        state_ = next;
        return true;
    }
    LOG_ERROR("backend", "connection to %s: no move %s -> %s: closing it", key_.c_str(), state_name(state_),
              state_name(next));
    GRIPD_ASSERT(!"impossible BackendConn transition");
    close(); // on_close: Done
    return false;
}

std::string BackendConn::dump() const {
    auto b = [](bool v) { return v ? "1" : "0"; };
    return std::string("BackendConn{state=") + state_name(state_) + " reused=" + b(facts_.reused) +
           " keep_alive=" + b(facts_.keep_alive) + " in_feed=" + b(in_feed_) +
           " release_pending=" + b(release_pending_) + " user=" + b(user_ != nullptr) + "}";
}

bool BackendConn::attach(BackendUser& user, bool reused) {
    if (!to(State::Sending)) return false;
    user_ = &user;
    facts_ = Facts{};
    facts_.reused = reused;
    arm_response_timeout();
    parser_.reset();
    parser_.expect_no_body(false);
    start_reading();
    return true;
}

BackendUser* BackendConn::end_use() {
    BackendUser* user = user_;
    user_ = nullptr;
    cut_tether();
    return user;
}

void BackendConn::on_connected() {
    BackendUser* user = user_;
    GRIPD_ASSERT(user && is_tethered());
    if (!attach(*user, false)) {
        if (user) user->on_backend_connect_failed(UV_EPROTO); // closed: the lease is empty
        return;
    }
    user->on_backend_connected();
}

void BackendConn::on_connect_failed(int status) {
    BackendUser* user = end_use();
    to(State::Done);
    close();
    if (user) user->on_backend_connect_failed(status);
}

void BackendConn::arm_response_timeout() {
    if (pool_.response_timeout_ms_ > 0)
        timer().arm(pool_.response_timeout_ms_);
    else
        timer().disarm();
}

bool BackendConn::send(std::string_view data) {
    if (awaiting_head()) arm_response_timeout();
    return transmit(data);
}

void BackendConn::on_timer_after_connect() {
    if (queued_) {
        // Waited the connect timeout for room under max_backend_conns_per_target.
        LOG_DEBUG("backend", "no connection to %s free within %llu ms (max_backend_conns_per_target)",
                  key_.c_str(), static_cast<unsigned long long>(pool_.connect_timeout_ms_));
        BackendUser* user = end_use();
        close(); // on_close leaves the queue
        if (user) user->on_backend_connect_failed(UV_ETIMEDOUT);
        return;
    }
    if (awaiting_head() && user_) {
        // The backend never answered: the user answers 504 (Pushpin 1.36 waits forever).
        LOG_DEBUG("backend", "no response from %s within %llu ms", key_.c_str(),
                  static_cast<unsigned long long>(pool_.response_timeout_ms_));
        BackendUser* user = end_use();
        close();
        if (user) user->on_backend_error(UV_ETIMEDOUT, false);
        return;
    }
    close(); // idle too long in the pool
}

void BackendConn::on_received(const char* data, size_t len) {
    if (!busy() || !user_) {
        close(); // an idle connection must not speak; the backend is closing or confused
        return;
    }
    if (state_ == State::Sending && !to(State::ReadingHead)) return;
    in_feed_ = true;
    size_t used = parser_.feed(data, len);
    in_feed_ = false;
    if (is_closing()) return;
    if (parser_.state() == ResponseParser::State::Error) {
        LOG_DEBUG("backend", "bad response from %s: %.*s", key_.c_str(),
                  static_cast<int>(parser_.error_message().size()), parser_.error_message().data());
        BackendUser* user = end_use();
        close();
        if (user) user->on_backend_error(UV_EPROTO, false);
        return;
    }
    if (state_ == State::Complete && used < len)
        facts_.keep_alive = false; // bytes after the response: do not reuse
    if (release_pending_) {
        release_pending_ = false;
        release();
    }
}

void BackendConn::on_received_end(int status) {
    if (busy() && user_ && state_ != State::Complete) {
        in_feed_ = true;
        bool ended = status == UV_EOF && parser_.finish(); // a close-delimited body ends here
        in_feed_ = false;
        if (ended && state_ == State::Complete) {
            facts_.keep_alive = false;
            if (release_pending_) {
                release_pending_ = false;
                release();
            }
            return;
        }
        BackendUser* user = end_use();
        bool retryable = facts_.reused && state_ == State::Sending; // no response byte seen
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
    pool_link.unlink();
    if (wait_link.is_linked()) {
        wait_link.unlink();
        --pool_.slot(key_).waiting_count;
    }
    if (counted_) {
        counted_ = false;
        auto& s = pool_.slot(key_);
        --s.open;
        if (s.waiting_count > 0) pool_.wake(key_);
    }
    end_use(); // closed under its user (shutdown): the lease must not point here any more
    to(State::Done);
}

void BackendConn::on_response_head(ResponseHead& head) {
    timer().disarm();
    if (!to(State::Receiving)) return;
    if (!head.keep_alive) facts_.keep_alive = false;
    if (user_) user_->on_backend_head(head);
}

void BackendConn::on_response_body(std::string_view data) {
    if (user_) user_->on_backend_body(data);
}

void BackendConn::on_response_complete() {
    if (!to(State::Complete)) return;
    if (user_) user_->on_backend_complete();
}

void BackendConn::release() {
    GRIPD_ASSERT(!is_tethered());
    if (is_closing()) return;
    if (in_feed_) {
        release_pending_ = true; // finish the parser call first
        return;
    }
    user_ = nullptr;
    if (state_ != State::Complete || !facts_.keep_alive || worker_.is_stopping() ||
        parser_.state() == ResponseParser::State::Upgrade) {
        close();
        return;
    }
    pool_.park(*this);
}

void BackendConn::abandon() {
    GRIPD_ASSERT(!is_tethered());
    user_ = nullptr;
    release_pending_ = false;
    close();
}

// ---- lease ----

BackendLease& BackendLease::operator=(BackendLease&& other) noexcept {
    if (this != &other) {
        abandon();
        conn_ = std::move(other.conn_);
    }
    return *this;
}

bool BackendLease::ready() const {
    return conn_ && conn_->busy();
}

void BackendLease::release() {
    if (BackendConn* c = conn_.untie()) c->release();
}

void BackendLease::abandon() {
    if (BackendConn* c = conn_.untie()) c->abandon();
}

// ---- pool ----

BackendPool::~BackendPool() {
    if (wake_init_) uv_idle_stop(&wake_);
}

BackendPool::IdleList& BackendPool::slot(const std::string& key) {
    auto& s = idle_[key];
    if (!s) s = std::make_unique<IdleList>();
    return *s;
}

void BackendPool::acquire(const BackendTarget& target, BackendUser& user, BackendLease& lease) {
    lease.abandon();
    std::string key = target.key();
    IdleList& s = slot(key);
    if (s.waiting_count == 0) { // else the queue goes first
        if (BackendConn* c = s.list.front()) {
            unpark(*c);
            if (c->attach(user, true)) {
                lease.conn_.tie(*c);
                user.on_backend_connected();
                return;
            } // refused (closed): connect afresh
        }
    }
    if (max_per_target_ > 0 && s.open >= max_per_target_) {
        size_t max_waiting = std::max(kMinWaiting, kMaxWaitingFactor * max_per_target_);
        if (s.waiting_count >= max_waiting) {
            LOG_DEBUG("backend", "%s: %zu connections open and %zu requests waiting: refused", key.c_str(),
                      s.open, s.waiting_count);
            user.on_backend_connect_failed(UV_EBUSY);
            return;
        }
        auto* conn = new BackendConn(worker_, *this, std::move(key)); // frees itself in its close callback
        conn->user_ = &user;                                          // state Connecting, not started
        conn->queued_ = std::make_unique<BackendTarget>(target);
        all_.push_back(*conn);
        s.waiting.push_back(*conn);
        ++s.waiting_count;
        lease.conn_.tie(*conn);
        conn->timer().arm(connect_timeout_ms_);
        return;
    }
    auto* conn = new BackendConn(worker_, *this, std::move(key)); // frees itself in its close callback
    conn->user_ = &user;                                          // state Connecting
    all_.push_back(*conn);
    lease.conn_.tie(*conn);
    start(*conn, target);
}

void BackendPool::start(BackendConn& conn, const BackendTarget& target) {
    conn.counted_ = true;
    ++slot(conn.key_).open;
    conn.set_deny_internal(target.deny_internal);
    conn.connect(target.host, target.port, connect_timeout_ms_, target.tls ? &*target.tls : nullptr);
}

void BackendPool::wake(const std::string& key) {
    if (std::find(to_serve_.begin(), to_serve_.end(), key) == to_serve_.end()) to_serve_.push_back(key);
    if (!wake_init_) {
        // Closed with the worker's other embedded handles when its loop ends (Worker::close_all).
        uv_idle_init(worker_.uv(), &wake_);
        wake_.data = this;
        wake_init_ = true;
    }
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&wake_))) uv_idle_start(&wake_, &BackendPool::on_wake);
}

void BackendPool::on_wake(uv_idle_t* h) {
    auto* self = static_cast<BackendPool*>(h->data);
    uv_idle_stop(h);
    std::vector<std::string> keys;
    keys.swap(self->to_serve_);
    for (const auto& key : keys)
        self->serve(key);
}

void BackendPool::serve(const std::string& key) {
    // Looked up again on every step: a user called here may acquire or release on this pool.
    for (;;) {
        IdleList& s = slot(key);
        BackendConn* waiter = s.waiting.front();
        if (!waiter) return;
        BackendConn* idle = s.list.front();
        if (!idle && s.open >= max_per_target_ && max_per_target_ > 0) return;
        waiter->wait_link.unlink();
        --s.waiting_count;
        std::unique_ptr<BackendTarget> target = std::move(waiter->queued_);
        if (!idle) {
            waiter->timer().disarm();
            start(*waiter, *target); // the stand-in connects: its own connect timeout starts now
            continue;
        }
        // A pooled connection is back: the waiting request takes it, and the stand-in goes.
        unpark(*idle);
        BackendUser* user = waiter->user_;
        if (!user) {
            waiter->close();
            continue;
        }
        if (!idle->attach(*user, true)) { // refused (closed it): this request fails like a connect
            user = waiter->end_use();
            waiter->close();
            if (user) user->on_backend_connect_failed(UV_EPROTO);
            continue;
        }
        waiter->user_ = nullptr;
        waiter->pass_tether(*idle);
        waiter->close();
        user->on_backend_connected();
    }
}

void BackendPool::park(BackendConn& conn) {
    IdleList& s = slot(conn.key_);
    if (s.count >= max_idle_per_target_) {
        conn.close();
        return;
    }
    if (!conn.to(BackendConn::State::Idle)) return;
    conn.parser_.reset();
    s.list.push_back(conn);
    ++s.count;
    conn.start_reading(); // notice when the backend closes it
    conn.timer().arm(idle_timeout_ms_);
    if (s.waiting_count > 0) wake(conn.key_);
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

void BackendPool::close_all() {
    // Each close unlinks that connection (on_close), and may end others: take the front until empty.
    while (BackendConn* c = all_.front())
        c->close();
}

size_t BackendPool::open_count(const BackendTarget& target) const {
    auto it = idle_.find(target.key());
    return it == idle_.end() ? 0 : it->second->open;
}

size_t BackendPool::waiting_count(const BackendTarget& target) const {
    auto it = idle_.find(target.key());
    return it == idle_.end() ? 0 : it->second->waiting_count;
}

size_t BackendPool::idle_count() const {
    size_t n = 0;
    for (const auto& [key, slot] : idle_)
        n += slot->count;
    return n;
}

} // namespace gripd::http
