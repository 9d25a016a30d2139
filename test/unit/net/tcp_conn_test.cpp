// TcpConn on a real loop, in the manner of libuv's own tests: a worker thread runs one connection
// over a loopback TCP pair, the test thread is the peer (blocking calls, each bounded). The
// connection counts its callbacks and notes its life as it goes; after the loop has ended the test
// checks that the connection was freed exactly once and that no handle was left open.
#include "../http/loop_pair.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/tcp_conn.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

using namespace gripd;
using Life = net::TcpConn::Life;

namespace {

struct Counts {
    int data = 0, read_ends = 0, drained = 0, closes = 0, freed = 0;
    int end_status = 0;
    std::string received;
    std::vector<std::string> notes; // life and reading state at interesting moments
    bool write_after_shutdown = true;
};

// Echoes what it reads; "BIG" makes it send `big` bytes and close after flushing.
class EchoConn final : public net::TcpConn {
  public:
    EchoConn(loop::Worker& w, Counts& c, size_t big, net::Transport t) : TcpConn(w, t), c_(c), big_(big) {}

  protected:
    ~EchoConn() override { ++c_.freed; }
    void on_data(const char* data, size_t len) override {
        ++c_.data;
        c_.received.append(data, len);
        if (c_.received.find("RST") != std::string::npos) {
            reset();
            return;
        }
        if (c_.received.find("BIG") != std::string::npos) {
            write(std::string(big_, 'x'));
            close_after_flush();
            note("after close_after_flush");
            c_.write_after_shutdown = write("late");
            return;
        }
        write(std::string_view(data, len));
    }
    void on_read_end(int status) override {
        ++c_.read_ends;
        c_.end_status = status;
        note("read end");
        close();
    }
    void on_write_drained() override { ++c_.drained; }
    void on_close() override {
        ++c_.closes;
        note("close");
    }

  private:
    void note(const char* what) {
        c_.notes.push_back(std::string(what) + ": " + life_name(life()) + "/" + reading_name(reading()));
    }
    Counts& c_;
    size_t big_;
};

struct Harness {
    explicit Harness(net::Transport t = net::Transport::Tcp)
        : transport(t), pair(t == net::Transport::Unix) {}
    net::Transport transport;
    Counts counts;
    loop::Worker worker{0, 1};
    test::LoopPair pair;
    EchoConn* conn = nullptr; // valid on the worker thread until its close callback
    bool opened = false;
    size_t big = 0;

    void run(const std::function<void(test::LoopPair&)>& peer) {
        worker.on_start([this](loop::Worker& w) {
            conn = new EchoConn(w, counts, big, transport); // frees itself in its close callback
            opened = (transport == net::Transport::Tcp ? uv_tcp_open(conn->tcp(), pair.server)
                                                       : uv_pipe_open(conn->pipe(), pair.server)) == 0;
            conn->start_reading();
        });
        worker.on_close_all([this](loop::Worker&) {
            if (counts.closes == 0) conn->close();
        });
        worker.start();
        peer(pair);
        worker.request_stop(0);
        worker.join();
        CHECK(opened);
        CHECK(counts.closes == 1); // on_close exactly once
        CHECK(counts.freed == 1);  // and the object freed in its close callback
        CHECK(worker.open_handles_for_test() == 0);
    }
};

} // namespace

TEST_CASE("tcp conn: echoes, then reads the peer's EOF once and closes", "[net][loop]") {
    auto transport = GENERATE(net::Transport::Tcp, net::Transport::Unix);
    Harness h(transport);
    std::string echoed;
    bool timed_out = false;
    h.run([&](test::LoopPair& p) {
        p.send("ping");
        echoed = p.read_at_least(4);
        p.shutdown_write();
        echoed += p.read_to_eof(&timed_out);
    });
    CHECK_FALSE(timed_out);
    CHECK(echoed == "ping");
    CHECK(h.counts.data >= 1);
    CHECK(h.counts.read_ends == 1);
    CHECK(h.counts.end_status == UV_EOF);
    CHECK(h.counts.drained >= 1); // the echo went straight to the kernel
    CHECK(h.counts.notes == std::vector<std::string>{"read end: Open/Stopped", "close: Closed/Stopped"});
}

TEST_CASE("tcp conn: close_after_flush sends everything, then the FIN; writes after it are refused",
          "[net][loop]") {
    auto transport = GENERATE(net::Transport::Tcp, net::Transport::Unix);
    Harness h(transport);
    h.big = 1 << 20; // more than the kernel takes at once: part of it waits in libuv
    std::string got;
    bool timed_out = false;
    h.run([&](test::LoopPair& p) {
        p.send("BIG");
        got = p.read_to_eof(&timed_out); // every byte, then EOF
        ::close(p.client);               // the server, draining, sees our FIN and closes
        p.client = -1;
    });
    CHECK_FALSE(timed_out);
    CHECK(got.size() == h.big);
    CHECK_FALSE(h.counts.write_after_shutdown);
    CHECK(h.counts.read_ends == 0); // EOF while shutting down closes without telling the subclass
    REQUIRE(h.counts.notes.size() == 2);
    CHECK(h.counts.notes[0] == "after close_after_flush: ShuttingDown/Active");
    CHECK(h.counts.notes[1] == "close: Closed/Stopped");
}

TEST_CASE("tcp conn: reset on a unix socket closes it (no TCP reset there)", "[net][loop]") {
    Harness h(net::Transport::Unix);
    std::string got;
    bool timed_out = false;
    h.run([&](test::LoopPair& p) {
        p.send("RST");
        got = p.read_to_eof(&timed_out);
    });
    CHECK_FALSE(timed_out);
    CHECK(got.empty());
    CHECK(h.counts.read_ends == 0);
}

TEST_CASE("tcp conn: a unix socket client has no peer address", "[net][loop]") {
    Harness h(net::Transport::Unix);
    std::string peer = "unset";
    h.worker.on_start([&](loop::Worker& w) {
        h.conn = new EchoConn(w, h.counts, 0, net::Transport::Unix); // frees itself in its close callback
        h.opened = uv_pipe_open(h.conn->pipe(), h.pair.server) == 0;
        peer = h.conn->peer_ip();
        h.conn->close();
    });
    h.worker.start();
    h.worker.request_stop(0);
    h.worker.join();
    CHECK(h.opened);
    CHECK(peer.empty());
    CHECK(h.counts.freed == 1);
}

TEST_CASE("tcp conn: the life moves one way only", "[net][states]") {
    using net::TcpConn;
    CHECK(TcpConn::can_transition(Life::Open, Life::ShuttingDown));
    CHECK(TcpConn::can_transition(Life::Open, Life::Closed));
    CHECK(TcpConn::can_transition(Life::ShuttingDown, Life::Closed));
    CHECK_FALSE(TcpConn::can_transition(Life::ShuttingDown, Life::Open));
    CHECK_FALSE(TcpConn::can_transition(Life::Closed, Life::Open));
    CHECK_FALSE(TcpConn::can_transition(Life::Closed, Life::ShuttingDown));
    CHECK_FALSE(TcpConn::can_transition(Life::Closed, Life::Closed));
    CHECK_FALSE(TcpConn::can_transition(Life::ShuttingDown, Life::ShuttingDown));
    CHECK(std::string(TcpConn::life_name(Life::ShuttingDown)) == "ShuttingDown");
    CHECK(std::string(TcpConn::reading_name(TcpConn::Reading::Yielded)) == "Yielded");
}
