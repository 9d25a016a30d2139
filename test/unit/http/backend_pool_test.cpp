// BackendPool and BackendLease on a real loop (in the manner of libuv's own tests): a worker thread
// runs the scenario against a tiny HTTP server on 127.0.0.1, the test counts the user's callbacks
// and, after the loop has ended, checks that nothing was left open.
#include "gripd/http/backend_pool.hpp"
#include "gripd/loop/worker.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace gripd;

namespace {

// Accepts connections and answers every read with one fixed response (keep-alive).
class TinyServer {
  public:
    explicit TinyServer(uv_loop_t* loop) {
        uv_tcp_init(loop, &listener_);
        listener_.data = this;
        sockaddr_in addr{};
        uv_ip4_addr("127.0.0.1", 0, &addr);
        REQUIRE(uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
        REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, &TinyServer::on_connection) == 0);
        sockaddr_in bound{};
        int len = sizeof(bound);
        uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
        port = ntohs(bound.sin_port);
    }
    void close() {
        uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
        for (auto& c : clients_)
            if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)))
                uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), &TinyServer::on_client_closed);
    }

    int port = 0;
    int accepted = 0;
    int requests = 0;
    int peer_closed = 0;

  private:
    struct Client {
        uv_tcp_t tcp{};
        TinyServer* server = nullptr;
        char buf[4096];
    };
    static void on_connection(uv_stream_t* s, int status) {
        auto* self = static_cast<TinyServer*>(s->data);
        if (status < 0) return;
        auto c = std::make_unique<Client>();
        c->server = self;
        uv_tcp_init(s->loop, &c->tcp);
        c->tcp.data = c.get();
        if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) return;
        ++self->accepted;
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(&c->tcp),
            [](uv_handle_t* h, size_t, uv_buf_t* b) {
                auto* cl = static_cast<Client*>(h->data);
                *b = uv_buf_init(cl->buf, sizeof(cl->buf));
            },
            &TinyServer::on_read);
        self->clients_.push_back(std::move(c));
    }
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        auto* c = static_cast<Client*>(s->data);
        if (n < 0) {
            ++c->server->peer_closed;
            uv_read_stop(s);
            return;
        }
        if (n == 0) return;
        ++c->server->requests;
        static const char kAnswer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        uv_buf_t b = uv_buf_init(const_cast<char*>(kAnswer), sizeof(kAnswer) - 1);
        uv_try_write(s, &b, 1);
    }
    static void on_client_closed(uv_handle_t*) {}

    uv_tcp_t listener_{};
    std::vector<std::unique_ptr<Client>> clients_;
};

// Records what the pool tells it; `next` (if set) runs after each event.
struct User : http::BackendUser {
    int connected = 0, failed = 0, heads = 0, completes = 0, errors = 0;
    std::string body;
    std::function<void()> next;
    void on_backend_connected() override {
        ++connected;
        if (next) next();
    }
    void on_backend_connect_failed(int) override {
        ++failed;
        if (next) next();
    }
    void on_backend_head(http::ResponseHead&) override { ++heads; }
    void on_backend_body(std::string_view data) override { body.append(data); }
    void on_backend_complete() override {
        ++completes;
        if (next) next();
    }
    void on_backend_error(int, bool) override {
        ++errors;
        if (next) next();
    }
};

// Runs `scenario` on a worker's loop with a TinyServer and a BackendPool, until the scenario calls
// done() (or a 5 s safety stop); then stops the worker and waits for its loop to end.
struct Harness {
    loop::Worker worker{0, 1};
    std::unique_ptr<TinyServer> server;
    std::unique_ptr<http::BackendPool> pool;
    loop::TimerEntry safety;
    loop::TimerEntry later; // for scenario steps that must wait a loop turn
    std::function<void()> again;
    bool finished = false;

    void run(const std::function<void(Harness&)>& scenario) {
        worker.on_start([&](loop::Worker& w) {
            server = std::make_unique<TinyServer>(w.uv());
            pool = std::make_unique<http::BackendPool>(w);
            safety.init(&w.timers(), this, [](void* p) { static_cast<Harness*>(p)->done(); });
            safety.arm(5000);
            scenario(*this);
        });
        worker.on_close_all([&](loop::Worker&) {
            pool->close_all();
            server->close();
        });
        worker.start();
        worker.join();
    }
    void done() {
        if (finished) return;
        finished = true;
        safety.disarm();
        later.disarm();
        worker.request_stop(0);
    }
    http::BackendTarget target() const { return {"127.0.0.1", server->port, std::nullopt}; }
};

// A loopback port nobody listens on: one the kernel just gave out and was closed again.
int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

} // namespace

TEST_CASE("a lease destroyed while connecting cancels the connect: no callback follows", "[http][loop]") {
    Harness h;
    User user;
    h.run([&](Harness& h) {
        {
            http::BackendLease lease;
            h.pool->acquire(h.target(), user, lease);
            CHECK(static_cast<bool>(lease));
            CHECK_FALSE(lease.ready());
        }
        h.done();
    });
    CHECK(user.connected == 0);
    CHECK(user.failed == 0);
    CHECK(h.pool->idle_count() == 0);
}

TEST_CASE("a released connection is reused by the next acquire, at once", "[http][loop]") {
    Harness h;
    User user;
    http::BackendLease lease;
    int step = 0;
    bool reused_second = false;
    h.run([&](Harness& h) {
        user.next = [&] {
            if (step == 0 && user.connected == 1) {
                step = 1;
                CHECK(lease.ready());
                lease->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            } else if (step == 1 && user.completes == 1) {
                step = 2;
                // Released inside the completion callback: the connection goes back to the pool
                // once the response parser has returned, so the next acquire waits a turn.
                lease.release();
                CHECK_FALSE(lease);
                h.later.init(&h.worker.timers(), &h, [](void* p) {
                    auto* hp = static_cast<Harness*>(p);
                    CHECK(hp->pool->idle_count() == 1);
                    hp->again();
                });
                h.later.arm(0);
            } else if (step == 2 && user.connected == 2) {
                step = 3;
                reused_second = lease->was_reused();
                lease->send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
            } else if (step == 3 && user.completes == 2) {
                lease.release();
                h.done();
            }
        };
        h.again = [&] { h.pool->acquire(h.target(), user, lease); }; // on_backend_connected before it returns
        h.pool->acquire(h.target(), user, lease);
    });
    CHECK(step == 3);
    CHECK(reused_second);
    CHECK(user.body == "okok");
    CHECK(h.server->accepted == 1);
    CHECK(h.server->requests == 2);
    CHECK(user.errors == 0);
}

TEST_CASE("a failed connect empties the lease before the user hears of it", "[http][loop]") {
    Harness h;
    User user;
    http::BackendLease lease;
    bool empty_in_callback = false;
    h.run([&](Harness& h) {
        user.next = [&] {
            empty_in_callback = !lease;
            h.done();
        };
        h.pool->acquire(http::BackendTarget{"127.0.0.1", closed_port(), std::nullopt}, user, lease);
    });
    CHECK(user.failed == 1);
    CHECK(empty_in_callback);
    CHECK_FALSE(lease);
}

TEST_CASE("an abandoned connection is closed, not pooled; moving a lease moves the claim", "[http][loop]") {
    Harness h;
    User user;
    http::BackendLease first;
    http::BackendLease moved;
    h.run([&](Harness& h) {
        user.next = [&] {
            if (user.connected == 1 && user.completes == 0 && !moved) {
                moved = std::move(first);
                CHECK_FALSE(first);
                CHECK(moved.ready());
                moved->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            } else if (user.completes == 1) {
                moved.abandon();
                CHECK(h.pool->idle_count() == 0);
                h.done();
            }
        };
        h.pool->acquire(h.target(), user, first);
    });
    CHECK(user.completes == 1);
    CHECK(h.pool->idle_count() == 0);
    CHECK(h.server->peer_closed == 1);
}

TEST_CASE("close_all closes leased connections too and empties their leases", "[http][loop]") {
    Harness h;
    User user;
    http::BackendLease lease;
    bool empty_after = false;
    h.run([&](Harness& h) {
        user.next = [&] {
            if (user.connected != 1) return;
            h.pool->close_all(); // the end of a stop, with the connection leased and its request unsent
            empty_after = !lease;
            h.done();
        };
        h.pool->acquire(h.target(), user, lease);
    });
    CHECK(user.connected == 1);
    CHECK(empty_after);
    CHECK(user.errors == 0); // its user is not called again
    CHECK(user.failed == 0);
}

TEST_CASE("backend conn: the transition table follows one use at a time", "[http][states]") {
    using S = http::BackendConn::State;
    using http::BackendConn;
    CHECK(BackendConn::can_transition(S::Connecting, S::Sending));
    CHECK(BackendConn::can_transition(S::Sending, S::ReadingHead));
    CHECK(BackendConn::can_transition(S::ReadingHead, S::Receiving));
    CHECK(BackendConn::can_transition(S::Receiving, S::Complete));
    CHECK(BackendConn::can_transition(S::Complete, S::Idle));
    CHECK(BackendConn::can_transition(S::Idle, S::Sending));
    // A response before its request, parking a connection mid-response, reusing a closed one.
    CHECK_FALSE(BackendConn::can_transition(S::Connecting, S::Receiving));
    CHECK_FALSE(BackendConn::can_transition(S::Receiving, S::Idle));
    CHECK_FALSE(BackendConn::can_transition(S::Sending, S::Idle));
    CHECK_FALSE(BackendConn::can_transition(S::Done, S::Sending));
    CHECK_FALSE(BackendConn::can_transition(S::Complete, S::Sending));
    for (S s : {S::Connecting, S::Sending, S::ReadingHead, S::Receiving, S::Complete, S::Idle, S::Done}) {
        CHECK(BackendConn::can_transition(s, S::Done));
        CHECK_FALSE(BackendConn::can_transition(s, S::Connecting));
        CHECK(std::string(BackendConn::state_name(s)) != "?");
    }
}

TEST_CASE("backend conn: dump() follows a request through its states", "[http][loop]") {
    Harness h;
    User user;
    http::BackendLease lease;
    std::vector<std::string> dumps;
    h.run([&](Harness& h) {
        user.next = [&] {
            if (user.connected == 1 && user.completes == 0) {
                dumps.push_back(lease->dump());
                lease->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            } else if (user.completes == 1) {
                dumps.push_back(lease->dump());
                lease.release();
                h.done();
            }
        };
        h.pool->acquire(h.target(), user, lease);
    });
    REQUIRE(dumps.size() == 2);
    CHECK(dumps[0] == "BackendConn{state=Sending reused=0 keep_alive=1 in_feed=0 release_pending=0 user=1}");
    CHECK(dumps[1] == "BackendConn{state=Complete reused=0 keep_alive=1 in_feed=1 release_pending=0 user=1}");
}

TEST_CASE("max per target: a request beyond the cap waits and gets the connection given back",
          "[http][loop][cap]") {
    Harness h;
    User a, b;
    http::BackendLease la, lb;
    bool b_reused = false;
    h.run([&](Harness& h) {
        h.pool->set_max_per_target(1);
        a.next = [&] {
            if (a.connected == 1 && a.completes == 0) {
                // B asked meanwhile and waits: one connection open, one request queued.
                CHECK(static_cast<bool>(lb));
                CHECK_FALSE(lb.ready());
                CHECK(h.pool->open_count(h.target()) == 1);
                CHECK(h.pool->waiting_count(h.target()) == 1);
                la->send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
            } else if (a.completes == 1) {
                la.release(); // B gets it on a later turn, not inside this callback
                CHECK(b.connected == 0);
            }
        };
        b.next = [&] {
            if (b.connected == 1 && b.completes == 0) {
                b_reused = lb->was_reused();
                lb->send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
            } else if (b.completes == 1) {
                lb.release();
                h.done();
            }
        };
        h.pool->acquire(h.target(), a, la);
        h.pool->acquire(h.target(), b, lb);
    });
    CHECK(a.body == "ok");
    CHECK(b.body == "ok");
    CHECK(b_reused);
    CHECK(h.server->accepted == 1);
    CHECK(a.failed + b.failed == 0);
}

TEST_CASE("max per target: a waiting request fails after the connect timeout; a full queue at once",
          "[http][loop][cap]") {
    Harness h;
    User a, waiter;
    std::vector<User> extra(http::BackendPool::kMinWaiting);
    http::BackendLease la, lw;
    std::vector<http::BackendLease> leases(extra.size());
    User refused;
    http::BackendLease lr;
    h.run([&](Harness& h) {
        h.pool->set_limits(100, 60000, 256);
        h.pool->set_max_per_target(1);
        h.pool->acquire(h.target(), a, la); // holds the only connection, never releases it
        h.pool->acquire(h.target(), waiter, lw);
        for (size_t i = 0; i + 1 < extra.size(); ++i)
            h.pool->acquire(h.target(), extra[i], leases[i]);
        CHECK(h.pool->waiting_count(h.target()) == http::BackendPool::kMinWaiting);
        h.pool->acquire(h.target(), refused, lr); // the queue is full: refused before this returns
        CHECK(refused.failed == 1);
        CHECK_FALSE(lr);
        waiter.next = [&] { h.done(); };
    });
    CHECK(a.connected == 1);
    CHECK(waiter.failed == 1);
    CHECK(waiter.connected == 0);
    CHECK_FALSE(lw);
    CHECK(h.server->accepted == 1);
}
