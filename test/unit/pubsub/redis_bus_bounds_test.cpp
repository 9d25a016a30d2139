// The Redis bus's bound on publishes waiting for Redis's replies (test/LIMITS.md: 100,000 publishes
// or 64 MiB per worker), driven past on a real loop. The "Redis" is a listening socket that never
// accepts: the TCP handshake completes in the kernel, so hiredis connects and writes, and nothing is
// ever answered (as with a redis-server stopped by SIGSTOP). Upstream queues (the publish queue's 8
// requests per worker, the ZeroMQ input's 512 items or 16 MiB) keep the HTTP and ZeroMQ paths far
// below this bound, so only a direct test reaches it.
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/redis_bus.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace gripd;

namespace {

// A loopback TCP port that takes connections into its backlog and never reads them.
struct SilentServer {
    int fd = -1;
    int port = 0;
    SilentServer() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
        REQUIRE(::listen(fd, 16) == 0);
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
    ~SilentServer() { ::close(fd); }
    SilentServer(const SilentServer&) = delete;
    SilentServer& operator=(const SilentServer&) = delete;
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

// On a worker thread: connects a RedisBus to the silent server, then publishes `count` items of
// `payload_bytes` each on one channel, then stops the bus (which fails what still waits).
Outcome publish_to_a_silent_redis(size_t count, size_t payload_bytes) {
    SilentServer server;
    NoChannels handler;
    Outcome out;
    std::atomic<bool> finished{false};
    loop::Worker worker{0, 1};
    std::unique_ptr<pubsub::RedisBus> bus;
    loop::TimerEntry poll;
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
    };
    Ctx ctx{nullptr, &poll, &out, &finished, &payload, count, &polls};

    worker.on_start([&](loop::Worker& w) {
        pubsub::BusAddress address;
        address.host = "127.0.0.1";
        address.port = server.port;
        address.nodes.push_back({"127.0.0.1", server.port});
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
            c.bus->stop(); // what still waits is answered (false) from here
            c.finished->store(true);
        });
        poll.arm(10);
    });
    worker.on_close_all([&](loop::Worker&) {
        poll.disarm();
        bus.reset();
    });
    worker.start();
    for (int i = 0; i < 3000 && !finished.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    worker.request_stop(0);
    worker.join();
    CHECK(finished.load());
    return out;
}

} // namespace

TEST_CASE("redis bus: past 100,000 waiting publishes, a publish is refused at once",
          "[pubsub][bus][limits]") {
    Outcome o = publish_to_a_silent_redis(100'050, 1);
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
    Outcome o = publish_to_a_silent_redis(kFit + 5, kPayload);
    REQUIRE(o.connected);
    CHECK(o.accepted == kFit);
    CHECK(o.refused_now == 5);
    CHECK(o.answered_later == kFit);
    CHECK(o.answered_true == 0);
}
