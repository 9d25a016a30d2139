// The Redis bus's bounds (test/LIMITS.md), driven past on a real loop: publishes waiting for Redis's
// replies (100,000 publishes or 64 MiB per worker, single server and cluster) and a cluster
// subscriber connection's unwritten SSUBSCRIBEs (16 MiB). The "Redis" is a listening socket that
// never accepts: the TCP handshake completes in the kernel, so hiredis connects and writes, and
// nothing is ever answered (as with a redis-server stopped by SIGSTOP); the cluster node answers
// CLUSTER SLOTS (every slot its own) once, then reads nothing more. Upstream queues (the publish queue's 8
// requests per worker, the ZeroMQ input's 512 items or 16 MiB) keep the HTTP and ZeroMQ paths far
// below this bound, so only a direct test reaches it.
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/redis_bus.hpp"

#include "loopback_listener.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace gripd;

namespace {

// A loopback TCP port that takes connections into its backlog and never reads them.
using SilentServer = test::LoopbackListener;

// A one-node Redis Cluster that answers the first CLUSTER SLOTS (all slots: itself) and then reads
// nothing on any connection; counts the connections made to it.
struct SilentClusterNode {
    SilentServer server;
    std::atomic<bool> stop{false};
    std::atomic<bool> answered{false};
    std::atomic<int> accepted{0};
    std::atomic<size_t> received{0}; // bytes read after CLUSTER SLOTS was answered
    bool keeps_reading = false;      // after CLUSTER SLOTS: reads (and drops) what comes, answers nothing
    std::thread thread;
    explicit SilentClusterNode(bool reads = false) : keeps_reading(reads), thread([this] { run(); }) {}
    ~SilentClusterNode() {
        stop = true;
        thread.join();
    }
    SilentClusterNode(const SilentClusterNode&) = delete;
    SilentClusterNode& operator=(const SilentClusterNode&) = delete;

    void run() {
        std::vector<int> conns;
        std::string seen;
        const std::string slots =
            "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:" + std::to_string(server.port) + "\r\n";
        while (!stop) {
            std::vector<pollfd> fds{{server.fd, POLLIN, 0}};
            if (!answered || keeps_reading)
                for (int c : conns)
                    fds.push_back({c, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
            if (fds[0].revents & POLLIN) {
                int c = ::accept4(server.fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (c >= 0) {
                    conns.push_back(c);
                    ++accepted;
                }
            }
            for (size_t i = 1; i < fds.size(); ++i) {
                if (!(fds[i].revents & POLLIN)) continue;
                char b[65536];
                ssize_t n = ::read(fds[i].fd, b, sizeof b);
                if (n <= 0) continue;
                if (answered) {
                    received += static_cast<size_t>(n);
                    continue;
                }
                seen.append(b, static_cast<size_t>(n));
                if (seen.find("SLOTS") == std::string::npos) continue;
                // Not REQUIRE: Catch's assertions are not for other threads (connected stays false).
                if (::write(fds[i].fd, slots.data(), slots.size()) == static_cast<ssize_t>(slots.size()))
                    answered = true;
            }
        }
        for (int c : conns)
            ::close(c);
    }
};

struct NoChannels final : pubsub::RedisBus::Handler {
    void on_bus_message(std::string_view, std::string_view) override {}
    std::vector<std::string> bus_channels() const override { return {}; }
};

struct Outcome {
    bool connected = false;
    size_t accepted = 0;       // publish() took it (no answer yet)
    size_t refused_now = 0;    // answered false before publish() returned
    size_t answered_later = 0; // answered after publish() returned (all false: stop() fails them)
    size_t answered_true = 0;
};

// On a worker thread: connects a RedisBus to `address`, then publishes `count` items of
// `payload_bytes` each on one channel (or, with `subscribe_bytes`, subscribes to channels with
// 1,000-byte names until that many bytes of SSUBSCRIBE went out), lets the loop run until `until()`
// holds (polled every 100 ms; at most `linger_ms`),
// then stops the bus (which fails what still waits).
Outcome run_bus(const pubsub::BusAddress& address, size_t count, size_t payload_bytes,
                size_t subscribe_bytes = 0, uint64_t linger_ms = 0, std::function<bool()> until = {}) {
    NoChannels handler;
    Outcome out;
    std::atomic<bool> finished{false};
    loop::Worker worker{0, 1};
    std::unique_ptr<pubsub::RedisBus> bus;
    loop::TimerEntry poll;
    loop::TimerEntry linger;
    std::string payload(payload_bytes, 'x');
    int polls = 0;

    struct Ctx {
        pubsub::RedisBus* bus;
        loop::TimerEntry* poll;
        Outcome* out;
        std::atomic<bool>* finished;
        std::string* payload;
        size_t count;
        int* polls;
        size_t subscribe_bytes;
        uint64_t linger_ms;
        loop::TimerEntry* linger;
        std::function<bool()>* until;
    };
    Ctx ctx{nullptr, &poll,           &out,      &finished, &payload, count,
            &polls,  subscribe_bytes, linger_ms, &linger,   &until};

    worker.on_start([&](loop::Worker& w) {
        bus = std::make_unique<pubsub::RedisBus>(w, address, handler);
        ctx.bus = bus.get();
        bus->start();
        poll.init(&w.timers(), &ctx, [](void* p) {
            auto& c = *static_cast<Ctx*>(p);
            if (!c.bus->is_connected() && ++*c.polls < 500) { // 5 s at most
                c.poll->arm(10);
                return;
            }
            c.out->connected = c.bus->is_connected();
            for (size_t i = 0; i < c.count && c.out->connected; ++i) {
                auto returned = std::make_shared<bool>(false);
                size_t refused_before = c.out->refused_now;
                std::vector<pubsub::RedisBus::BusItem> items{{*c.payload, {}, {}}};
                Outcome* o = c.out;
                c.bus->publish("b", items,
                               [returned, o](bool ok) {
                                   if (ok) ++o->answered_true;
                                   if (*returned)
                                       ++o->answered_later;
                                   else
                                       ++o->refused_now;
                               },
                               {});
                *returned = true;
                if (c.out->refused_now == refused_before) ++c.out->accepted;
            }
            for (size_t sent = 0, i = 0; sent < c.subscribe_bytes && c.out->connected; ++i) {
                std::string channel = std::to_string(i) + std::string(1000, 'c');
                c.bus->subscribe(channel);
                sent += channel.size() + 30; // the SSUBSCRIBE command around the key "gripd:{...}"
            }
            c.linger->arm(0);
        });
        linger.init(&w.timers(), &ctx, [](void* p) {
            auto& c = *static_cast<Ctx*>(p);
            if (c.linger_ms >= 100 && !(*c.until && (*c.until)())) {
                c.linger_ms -= 100;
                c.linger->arm(100);
                return;
            }
            c.bus->stop(); // what still waits is answered (false) from here
            c.finished->store(true);
        });
        poll.arm(10);
    });
    worker.on_close_all([&](loop::Worker&) {
        poll.disarm();
        linger.disarm();
        bus.reset();
    });
    worker.start();
    for (int i = 0; i < 6000 && !finished.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    worker.request_stop(0);
    worker.join();
    CHECK(finished.load());
    return out;
}

pubsub::BusAddress single(int port) {
    pubsub::BusAddress a;
    a.host = "127.0.0.1";
    a.port = port;
    a.nodes.push_back({"127.0.0.1", port});
    return a;
}

pubsub::BusAddress cluster(int port) {
    pubsub::BusAddress a = single(port);
    a.kind = pubsub::BusKind::Cluster;
    return a;
}

} // namespace

TEST_CASE("redis bus: past 100,000 waiting publishes, a publish is refused at once",
          "[pubsub][bus][limits]") {
    SilentServer server;
    Outcome o = run_bus(single(server.port), 100'050, 1);
    REQUIRE(o.connected);
    CHECK(o.accepted == 100'000);
    CHECK(o.refused_now == 50);
    CHECK(o.answered_later == 100'000); // every waiting publish is answered once, when the bus stops
    CHECK(o.answered_true == 0);
}

TEST_CASE("redis bus: past 64 MiB of waiting publishes, a publish is refused at once",
          "[pubsub][bus][limits]") {
    // Each publish counts its Redis channel name ("gripd:b") and its payload.
    constexpr size_t kPayload = size_t{1} << 20;
    constexpr size_t kFit = (size_t{64} << 20) / (kPayload + 7); // 63
    SilentServer server;
    Outcome o = run_bus(single(server.port), kFit + 5, kPayload);
    REQUIRE(o.connected);
    CHECK(o.accepted == kFit);
    CHECK(o.refused_now == 5);
    CHECK(o.answered_later == kFit);
    CHECK(o.answered_true == 0);
}

TEST_CASE("redis cluster bus: past 100,000 waiting commands, a publish is refused at once",
          "[pubsub][bus][limits]") {
    SilentClusterNode node;
    Outcome o = run_bus(cluster(node.server.port), 100'050, 1);
    REQUIRE(o.connected);
    CHECK(o.accepted == 100'000);
    CHECK(o.refused_now == 50);
    CHECK(o.answered_later == 100'000);
    CHECK(o.answered_true == 0);
}

TEST_CASE("redis cluster bus: past 64 MiB of waiting publishes, a publish is refused at once",
          "[pubsub][bus][limits]") {
    constexpr size_t kPayload = size_t{1} << 20;
    constexpr size_t kFit = (size_t{64} << 20) / (kPayload + 1); // the channel "b" and the payload
    SilentClusterNode node;
    Outcome o = run_bus(cluster(node.server.port), kFit + 5, kPayload);
    REQUIRE(o.connected);
    CHECK(o.accepted == kFit);
    CHECK(o.refused_now == 5);
    CHECK(o.answered_later == kFit);
}

TEST_CASE("redis cluster bus: a subscriber connection that takes nothing of 16 MiB is dropped and made again",
          "[pubsub][bus][limits]") {
    SilentClusterNode node;
    // 20 MiB of SSUBSCRIBEs to a node that reads nothing: past 16 MiB unwritten the rest wait; after
    // 5 s without progress (kSubStallMs) the connection is dropped, and made again 0.5 s later.
    Outcome o = run_bus(cluster(node.server.port), 0, 0, size_t{20} << 20, 30000,
                        [&] { return node.accepted.load() >= 3; });
    REQUIRE(o.connected);
    CHECK(node.accepted.load() == 3); // the command connection, the subscriber, the subscriber again
}

TEST_CASE("redis cluster bus: a burst of subscriptions past 16 MiB to a node that reads is not dropped",
          "[pubsub][bus][limits]") {
    SilentClusterNode node(true);
    // As when a subscriber connection is made again with ~300,000 channels to subscribe to at once:
    // what waits past 16 MiB goes out as the node reads, and the connection stays.
    Outcome o = run_bus(cluster(node.server.port), 0, 0, size_t{20} << 20, 30000,
                        [&] { return node.received.load() >= (size_t{20} << 20); });
    REQUIRE(o.connected);
    CHECK(node.accepted.load() == 2);
    CHECK(node.received.load() >= (size_t{20} << 20)); // every SSUBSCRIBE was written
}
