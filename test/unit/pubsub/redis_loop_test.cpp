// gripd's hiredis loop adapter (src/pubsub/redis_loop.cpp) against a loopback "Redis" that answers
// every PING with +PONG: commands queued while connecting go out once connected (the adapter waits
// for writability then), commands queued on a connected context go out at the end of the loop
// iteration (no writability wait), every one is answered in order, and a context freed while its
// write is queued for the end of the iteration leaves nothing behind (ASan in CI).
#include "../../../src/pubsub/redis_loop.hpp"

#include "gripd/loop/timer_wheel.hpp"
#include "gripd/loop/worker.hpp"

#include "loopback_listener.hpp"

#include <catch2/catch.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace gripd;

namespace {

// Answers "+PONG" for each "PING" command it reads (RESP arrays, as hiredis sends them).
struct PongServer {
    test::LoopbackListener listener;
    int& fd = listener.fd;
    int port = listener.port;
    std::atomic<bool> stop{false};
    std::atomic<int> pings{0};
    std::thread thread;
    PongServer() : thread([this] { run(); }) {}
    ~PongServer() {
        stop = true;
        thread.join();
    }
    PongServer(const PongServer&) = delete;
    PongServer& operator=(const PongServer&) = delete;

    void run() {
        std::vector<int> conns;
        std::vector<std::string> seen;
        while (!stop) {
            std::vector<pollfd> fds{{fd, POLLIN, 0}};
            for (int c : conns)
                fds.push_back({c, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
            if (fds[0].revents & POLLIN) {
                int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (c >= 0) {
                    conns.push_back(c);
                    seen.emplace_back();
                }
            }
            for (size_t i = 1; i < fds.size(); ++i) {
                if (!(fds[i].revents & POLLIN)) continue;
                char b[65536];
                ssize_t n = ::read(fds[i].fd, b, sizeof b);
                if (n <= 0) continue;
                std::string& s = seen[i - 1];
                s.append(b, static_cast<size_t>(n));
                std::string out;
                for (size_t at; (at = s.find("PING\r\n")) != std::string::npos;) {
                    s.erase(0, at + 6);
                    out += "+PONG\r\n";
                    ++pings;
                }
                for (size_t done = 0; done < out.size();) {
                    ssize_t w = ::write(fds[i].fd, out.data() + done, out.size() - done);
                    if (w <= 0) break;
                    done += static_cast<size_t>(w);
                }
            }
        }
        for (int c : conns)
            ::close(c);
    }
};

struct Run {
    redisAsyncContext* ac = nullptr;
    int attached = -1; // attach_redis_to_loop's answer
    int attached_again = -1;
    int answered = 0;        // PONGs, in order
    int out_of_order = 0;    // a reply whose privdata was not the next expected index
    int burst = 0;           // commands queued in the third reply's callback (connected by then)
    bool free_early = false; // after the first reply: queue a PING, then free the context at once
    bool disconnected = false;
    std::atomic<bool> finished{false};
};

void on_pong(redisAsyncContext* ac, void* r, void* privdata) {
    auto* run = static_cast<Run*>(ac->data);
    auto* reply = static_cast<redisReply*>(r);
    if (!run || !reply || reply->type != REDIS_REPLY_STATUS) return;
    if (reinterpret_cast<intptr_t>(privdata) != run->answered) ++run->out_of_order;
    ++run->answered;
    if (run->free_early) {
        // Connected: this PING's write waits for the end of the iteration; the context goes first
        // (hiredis frees it once this callback returns).
        redisAsyncCommand(ac, nullptr, nullptr, "PING");
        run->free_early = false;
        ac->data = nullptr;
        run->ac = nullptr;
        redisAsyncFree(ac);
        run->finished = true;
        return;
    }
    if (run->answered == 3)
        for (int i = 0; i < run->burst; ++i)
            redisAsyncCommand(ac, &on_pong, reinterpret_cast<void*>(static_cast<intptr_t>(3 + i)), "PING");
    if (run->answered == 3 + run->burst) redisAsyncDisconnect(ac);
}

// Connects to `port` on a worker, queues 3 PINGs at once (while connecting), and lets on_pong go
// on until `run.finished` (at most 10 s).
void drive(Run& run, int port) {
    loop::Worker worker{0, 1};
    worker.on_start([&](loop::Worker& w) {
        run.ac = redisAsyncConnect("127.0.0.1", port);
        if (!run.ac || run.ac->err) {
            run.finished = true;
            return;
        }
        run.ac->data = &run;
        run.attached = pubsub::attach_redis_to_loop(run.ac, w);
        run.attached_again = pubsub::attach_redis_to_loop(run.ac, w);
        redisAsyncSetDisconnectCallback(run.ac, [](const redisAsyncContext* ac, int) {
            if (auto* r = static_cast<Run*>(ac->data)) {
                r->disconnected = true;
                r->ac = nullptr;
                r->finished = true;
            }
        });
        for (intptr_t i = 0; i < 3; ++i)
            redisAsyncCommand(run.ac, &on_pong, reinterpret_cast<void*>(i), "PING");
    });
    worker.on_close_all([&](loop::Worker&) {
        if (run.ac) {
            run.ac->data = nullptr;
            redisAsyncFree(run.ac);
            run.ac = nullptr;
        }
    });
    worker.start();
    for (int i = 0; i < 1000 && !run.finished.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    worker.request_stop(0);
    worker.join();
}

} // namespace

TEST_CASE("redis loop adapter: commands before and after the connection completes are all sent and "
          "answered in order",
          "[redis][bus]") {
    PongServer server;
    Run run;
    run.burst = 5000;
    drive(run, server.port);
    CHECK(run.attached == REDIS_OK);
    CHECK(run.attached_again == REDIS_ERR); // attached once only
    CHECK(run.answered == 3 + run.burst);
    CHECK(run.out_of_order == 0);
    CHECK(run.disconnected);
    CHECK(server.pings == 3 + run.burst);
}

TEST_CASE("redis loop adapter: a context freed while its write waits for the end of the iteration",
          "[redis][bus]") {
    PongServer server;
    Run run;
    run.free_early = true;
    drive(run, server.port);
    CHECK(run.attached == REDIS_OK);
    CHECK(run.answered == 1);
    CHECK(run.finished);
    CHECK_FALSE(run.disconnected); // freed, not disconnected by the server
}
