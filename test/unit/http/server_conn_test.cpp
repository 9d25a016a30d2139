// ServerConn on a real loop, in the manner of libuv's own tests: a worker thread runs one
// connection over a loopback TCP pair, the test thread is the client (blocking calls, each bounded);
// the exchanges count their callbacks and note the connection's dump() as they go. After the loop
// has ended the test checks that every handle was closed, every exchange deleted and the gauges
// are back to zero. The transition table is tested directly (a refused move asserts in debug builds).
#include "gripd/http/listener.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/worker.hpp"
#include "loop_pair.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace gripd;
using State = http::ServerConn::State;

namespace {

// What the exchanges saw (written on the worker thread, read after join()).
struct Recorder {
    int heads = 0, starts = 0, ends = 0, gone = 0, deleted = 0;
    std::string body;
    std::vector<std::string> targets;
    std::vector<std::string> dumps; // "<event> <dump>"
    bool chunked_answer = false;    // answer with an unknown length (chunked for HTTP/1.1)
    size_t big_answer = 0;          // answer /big with this many bytes
};

class TestExchange final : public http::Exchange {
  public:
    TestExchange(http::ServerConn& conn, Recorder& rec, std::string target)
        : conn_(conn), rec_(rec), target_(std::move(target)) {}
    ~TestExchange() override { ++rec_.deleted; }

    void on_start() override {
        ++rec_.starts;
        rec_.dumps.push_back("start " + conn_.dump());
    }
    void on_request_body(std::string_view data) override {
        rec_.body.append(data);
        rec_.dumps.push_back("body " + conn_.dump());
    }
    void on_request_end() override {
        ++rec_.ends;
        rec_.dumps.push_back("end " + conn_.dump());
        if (rec_.chunked_answer) {
            conn_.send_head(200, {}, {}, -1);
            conn_.send_body("ok");
            conn_.end_response(); // deletes this exchange after the callback
            return;
        }
        if (target_ == "/big" && rec_.big_answer > 0) {
            conn_.respond_text(200, std::string(rec_.big_answer, 'x'));
            return;
        }
        conn_.respond_text(200, target_);
    }
    void on_client_gone() override { ++rec_.gone; }

  private:
    http::ServerConn& conn_;
    Recorder& rec_;
    std::string target_;
};

class TestService final : public http::Service {
  public:
    explicit TestService(Recorder& rec) : rec_(rec) {}
    std::unique_ptr<http::Exchange> start_exchange(http::ClientStream& conn_in,
                                                   http::RequestHead& head) override {
        ++rec_.heads;
        rec_.targets.push_back(head.target);
        return std::make_unique<TestExchange>(static_cast<http::ServerConn&>(conn_in), rec_, head.target);
    }
    size_t max_header_bytes() const override { return 8192; }
    uint64_t idle_timeout_ms() const override { return 10000; }
    uint64_t header_timeout_ms() const override { return 10000; }
    uint64_t send_timeout_ms() const override { return send_timeout; }
    uint64_t send_timeout = 0;

  private:
    Recorder& rec_;
};

// One ServerConn on a worker's loop; run() plays `client` on the test thread, then stops the
// worker (closing the connection if the client left it open) and waits for its loop to end.
struct Harness {
    Recorder rec;
    TestService service{rec};
    loop::Worker worker{0, 1};
    http::ConnSet conns;
    test::LoopPair pair;
    bool opened = false;

    void run(const std::function<void(test::LoopPair&)>& client) {
        worker.on_start([this](loop::Worker& w) {
            auto* conn = new http::ServerConn(w, service); // frees itself in its close callback
            opened = uv_tcp_open(conn->tcp(), pair.server) == 0;
            w.on_client_opened();
            conns.add(*conn);
            conn->start();
        });
        worker.on_close_all([this](loop::Worker&) { conns.close_all(); });
        worker.start();
        client(pair);
        worker.request_stop(0);
        worker.join();
    }

    // Nothing left: the loop can close, the connection and every exchange are gone.
    void check_clean() {
        CHECK(opened);
        CHECK(worker.open_handles_for_test() == 0);
        CHECK(conns.size() == 0);
        CHECK(service.connections.get() == 0);
        CHECK(worker.client_connections() == 0);
        CHECK(rec.deleted == rec.heads);
    }
};

std::string response(std::string_view body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + std::string(body);
}

} // namespace

TEST_CASE("server conn: two pipelined requests are answered in order on one connection", "[http][loop]") {
    Harness h;
    std::string got;
    h.run([&](test::LoopPair& p) {
        p.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        got = p.read_at_least(response("/a").size() + response("/b").size());
        p.shutdown_write(); // the server reads EOF between requests and closes
        bool timed_out = false;
        got += p.read_to_eof(&timed_out);
        CHECK_FALSE(timed_out);
    });
    CHECK(got == response("/a") + response("/b"));
    CHECK(h.rec.targets == std::vector<std::string>{"/a", "/b"});
    CHECK(h.rec.heads == 2);
    CHECK(h.rec.starts == 2);
    CHECK(h.rec.ends == 2);
    CHECK(h.rec.gone == 0);
    CHECK(h.service.requests.get() == 2);
    REQUIRE(h.rec.dumps.size() == 4);
    // Each exchange starts with its head parsed and is told the end once the request is read.
    CHECK(h.rec.dumps[0].rfind("start ServerConn{state=ReadingBody ", 0) == 0);
    CHECK(h.rec.dumps[1].rfind("end ServerConn{state=Handling ", 0) == 0);
    CHECK(h.rec.dumps[2].rfind("start ServerConn{state=ReadingBody ", 0) == 0);
    CHECK(h.rec.dumps[3].rfind("end ServerConn{state=Handling ", 0) == 0);
    h.check_clean();
}

TEST_CASE("server conn: a request body reaches the exchange; dump() names the state and the facts",
          "[http][loop]") {
    Harness h;
    std::string got;
    h.run([&](test::LoopPair& p) {
        p.send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        got = p.read_at_least(response("/p").size());
    });
    CHECK(got == response("/p"));
    CHECK(h.rec.body == "hello");
    CHECK(h.rec.ends == 1);
    REQUIRE(h.rec.dumps.size() >= 3);
    CHECK(h.rec.dumps.front() == "start ServerConn{state=ReadingBody wait=None keep_alive=1 head=0 http10=0 "
                                 "has_body=1 chunked=0 no_body=0 body_paused=0 exchange=1 pending=0}");
    CHECK(h.rec.dumps.back() == "end ServerConn{state=Handling wait=None keep_alive=1 head=0 http10=0 "
                                "has_body=1 chunked=0 no_body=0 body_paused=0 exchange=1 pending=0}");
    for (size_t i = 1; i + 1 < h.rec.dumps.size(); ++i)
        CHECK(h.rec.dumps[i].rfind("body ServerConn{state=ReadingBody ", 0) == 0);
    h.check_clean(); // the client never closed: the stop closed the connection
}

TEST_CASE("server conn: a client EOF in the middle of a head closes the connection, no exchange made",
          "[http][loop]") {
    Harness h;
    std::string got;
    bool timed_out = false;
    h.run([&](test::LoopPair& p) {
        p.send("GET /half HTTP/1.1\r\nHo");
        p.shutdown_write();
        got = p.read_to_eof(&timed_out);
    });
    CHECK_FALSE(timed_out);
    CHECK(got.empty());
    CHECK(h.rec.heads == 0);
    CHECK(h.service.requests.get() == 0);
    h.check_clean();
}

TEST_CASE("server conn: an error answer after a chunked response is framed by its own length",
          "[http][loop]") {
    // The facts of a cycle (here: the chunked framing of the first response) are reset when the
    // next cycle begins, so a 400 for a malformed second request is not chunk-framed.
    Harness h;
    h.rec.chunked_answer = true;
    std::string got;
    h.run([&](test::LoopPair& p) {
        p.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        std::string first = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        got = p.read_at_least(first.size());
        CHECK(got == first);
        p.send("GET /b HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n");
        got = p.read_to_eof();
    });
    REQUIRE(got.rfind("HTTP/1.1 400 ", 0) == 0);
    size_t cl = got.find("Content-Length: ");
    size_t end = got.find("\r\n\r\n");
    REQUIRE(cl != std::string::npos);
    REQUIRE(end != std::string::npos);
    size_t length = std::stoul(got.substr(cl + 16));
    CHECK(got.size() - (end + 4) == length); // exactly the announced body, nothing chunk-framed
    CHECK(got.find("Transfer-Encoding") == std::string::npos);
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    h.check_clean();
}

TEST_CASE("server conn: the transition table refuses impossible moves", "[http][states]") {
    using http::ServerConn;
    // The lifecycle of a keep-alive request, and of one answered before its body was read.
    CHECK(ServerConn::can_transition(State::New, State::Idle));
    CHECK(ServerConn::can_transition(State::Idle, State::ReadingHead));
    CHECK(ServerConn::can_transition(State::ReadingHead, State::ReadingBody));
    CHECK(ServerConn::can_transition(State::Idle, State::ReadingBody)); // a pipelined head
    CHECK(ServerConn::can_transition(State::ReadingBody, State::Handling));
    CHECK(ServerConn::can_transition(State::Handling, State::Responding));
    CHECK(ServerConn::can_transition(State::Responding, State::Finished));
    CHECK(ServerConn::can_transition(State::Finished, State::Idle));
    CHECK(ServerConn::can_transition(State::Finished, State::WaitingDrain));
    CHECK(ServerConn::can_transition(State::WaitingDrain, State::Idle));
    CHECK(ServerConn::can_transition(State::ReadingBody, State::ReadingBodyResponding));
    CHECK(ServerConn::can_transition(State::ReadingBodyResponding, State::Responding));
    CHECK(ServerConn::can_transition(State::ReadingBodyResponding, State::AnsweredEarly));
    CHECK(ServerConn::can_transition(State::AnsweredEarly, State::Finished));
    CHECK(ServerConn::can_transition(State::ReadingBody, State::Raw));
    CHECK(ServerConn::can_transition(State::New, State::Refused));

    // Impossible: a request's end before its head, a second response head, a new request while one
    // is live, leaving the terminal states, skipping start().
    CHECK_FALSE(ServerConn::can_transition(State::Idle, State::Handling));
    CHECK_FALSE(ServerConn::can_transition(State::ReadingHead, State::Finished));
    CHECK_FALSE(ServerConn::can_transition(State::Responding, State::Responding));
    CHECK_FALSE(ServerConn::can_transition(State::ReadingBodyResponding, State::ReadingBodyResponding));
    CHECK_FALSE(ServerConn::can_transition(State::Responding, State::Idle));
    CHECK_FALSE(ServerConn::can_transition(State::Handling, State::ReadingBody));
    CHECK_FALSE(ServerConn::can_transition(State::Raw, State::Idle));
    CHECK_FALSE(ServerConn::can_transition(State::Closing, State::Idle));
    CHECK_FALSE(ServerConn::can_transition(State::Refused, State::Closing));
    CHECK_FALSE(ServerConn::can_transition(State::New, State::ReadingHead));
    CHECK_FALSE(ServerConn::can_transition(State::Idle, State::Refused));

    // Every state can close except those that never served; nothing returns to New.
    const State all[] = {State::New,
                         State::Idle,
                         State::ReadingHead,
                         State::ReadingBody,
                         State::ReadingBodyResponding,
                         State::Handling,
                         State::Responding,
                         State::AnsweredEarly,
                         State::Finished,
                         State::WaitingDrain,
                         State::Raw,
                         State::Closing,
                         State::Refused};
    for (State s : all) {
        INFO(ServerConn::state_name(s));
        CHECK(ServerConn::can_transition(s, State::Closing) == (s != State::New && s != State::Refused));
        CHECK_FALSE(ServerConn::can_transition(s, State::New));
        CHECK(std::string(ServerConn::state_name(s)) != "?");
    }
}

TEST_CASE("server conn: a client that reads none of a big answer is cut off before its next request",
          "[http][loop]") {
    Harness h;
    h.rec.big_answer = size_t{32} << 20; // far more than the kernel buffers on loopback
    h.service.send_timeout = 200;
    std::string got;
    h.run([&](test::LoopPair& p) {
        // Pipelined: the second request waits (WaitingDrain) while the first answer is queued.
        p.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        std::this_thread::sleep_for(std::chrono::milliseconds(1500)); // reads nothing meanwhile
        got = p.read_to_eof();
    });
    CHECK(got.size() < h.rec.big_answer);                     // cut off (a reset), not the whole answer
    CHECK(h.rec.targets == std::vector<std::string>{"/big"}); // the second request never started
    h.check_clean();
}
