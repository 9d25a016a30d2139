// ZmqService: Pushpin's ZeroMQ inputs of the handler, on one worker's loop (worker 0):
//  - PULL on `push_in_spec`: one-part messages, one publish item each (TNetString, optional
//    leading `T`, or `J` + JSON);
//  - SUB on `push_in_sub_specs` (bound, or connected with `push_in_sub_connect`): two-part
//    `[channel, item]` messages; subscribed to the topics of the channels this instance has
//    subscribers on (Broker::set_interest_worker: each shard owner tells this worker);
//  - ROUTER on `command_spec`: ZRPC requests (publish, recover, refresh, conncheck, get-zmq-uris).
//    `refresh {cid}` asks every worker through the inboxes (the sessions live on their loops) and
//    answers once all did: success if one had the session, else `item-not-found` (as Pushpin);
//    at most kMaxRefreshing such requests wait for their answers (beyond: `service-unavailable`).
// Items enter the same publish path as HTTP publishes (control/publish_queue.hpp: validation,
// order, sequencing, the bus): each message is one publish body `{"items":[...]}`, submitted in
// arrival order to this service's PublishQueue.
//
// Bounds and bad input (PROTOCOL.md §4.3; README "ZeroMQ"):
//  - a message over `push_in_http_max_body_size` bytes is dropped (as HTTP answers 400); libzmq
//    itself cuts a peer that sends one over kHardMaxFactor times that (ZMQ_MAXMSGSIZE);
//  - ZMQ_RCVHWM kRcvHwm messages per peer; reading pauses while kMaxInFlight messages (or
//    kMaxInFlightBytes) wait in the publish path, or while a worker's inbox is congested, so a
//    flood waits in libzmq's bounded queues (and a PUSH sender blocks) instead of in gripd;
//  - malformed messages, wrong part counts and invalid items are counted and logged at most once
//    per kWarnIntervalMs per kind, with the number skipped since the last line.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/core/counter.hpp"
#include "gripd/stats/zmq_stats.hpp"
#include "gripd/zmq/socket.hpp"

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <uv.h>
#include <vector>

namespace gripd::pubsub {
class Broker;
}
namespace gripd::control {
class PublishQueue;
}

namespace gripd::zmq {

namespace tnet {
struct Value;
} // namespace tnet

class StatsService;

using ZmqStats = stats::ZmqStats;

class ZmqService final : public Socket::Handler {
  public:
    static constexpr int kRcvHwm = 1000;
    static constexpr int64_t kHardMaxFactor = 4;
    static constexpr size_t kMaxInFlight = 512;
    static constexpr size_t kMaxInFlightBytes = 16u << 20;
    static constexpr uint64_t kWarnIntervalMs = 10 * 1000;
    static constexpr uint64_t kCongestionPollMs = 5;
    static constexpr size_t kMaxRefreshing = 256;

    // Whether `settings` asks for any ZeroMQ socket this service opens.
    static bool wanted(const config::Settings& settings);

    ZmqService(const config::Settings& settings, pubsub::Broker& broker, uv_loop_t* loop);
    ZmqService(const ZmqService&) = delete;
    ZmqService& operator=(const ZmqService&) = delete;
    ~ZmqService();

    // Binds every configured socket; false with a message naming the key on failure.
    bool start(std::string* error);
    // This process replaces a running gripd (SIGUSR2): a TCP endpoint the old one still holds is
    // bound as soon as it lets go (it unbinds when it stops) instead of failing the start. Before start().
    void set_taking_over(bool on) { taking_over_ = on; }
    static constexpr uint64_t kRebindEveryMs = 100;
    static constexpr int kRebindTries = 600; // a minute
    // Stops reading and closes the sockets (the worker is stopping).
    void stop();

    const ZmqStats& stats() const { return stats_; }
    // The stats socket's connection registry, for `conncheck` (with stats_spec; else not-supported).
    void set_connections(const StatsService* conns) { conns_ = conns; }
    // `refresh {cid}`: hands (token, id) to every worker's WsService; returns how many were asked
    // (each answers on_conn_refresh_reply once).
    using ConnRefresher = std::function<size_t(uint64_t token, const std::string& id)>;
    void set_conn_refresher(ConnRefresher f) { refresher_ = std::move(f); }
    void on_conn_refresh_reply(uint64_t token, bool found);

  private:
    enum class Warn { Parts, Format, Item, Size, Dropped, Command, kCount };
    struct Pending;

    bool on_message(Socket& s, const std::vector<std::string_view>& parts, size_t bytes,
                    bool truncated) override;
    void on_pull(const std::vector<std::string_view>& parts, size_t bytes, bool truncated);
    // Who asked a command and how its answer finds them: the ROUTER envelope and the request's id.
    struct Caller {
        std::vector<std::string> envelope;
        std::string rid;
        bool has_id = false;
    };
    void on_command(const std::vector<std::string_view>& parts, bool truncated);
    void command_get_zmq_uris(const Caller& c);
    void command_publish(Caller c, const tnet::Value& args);
    void command_refresh(Caller c, const tnet::Value& args);
    void command_conncheck(const Caller& c, const tnet::Value& args);
    // Publishes `body` (the items as JSON) as an HTTP publish would, and answers `c` with the outcome.
    void submit_command(Caller c, std::string body);
    void refresh_connection(Caller c, const std::string& cid);
    void on_sub(const std::vector<std::string_view>& parts, size_t bytes, bool truncated);
    bool start_sub(int64_t hard_max, std::string* error);
    // Submits one publish body; `reply` (may be empty) gets the outcome.
    void submit(std::string body, std::string_view input,
                std::function<void(int status, std::string_view message)> reply);
    void on_done();
    bool saturated() const;
    void pause_inputs();
    void resume_inputs();
    void warn(Warn kind, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
    void reply(const Caller& c, bool success, std::string_view value_tnet, std::string_view condition);
    static void on_congestion_timer(uv_timer_t* t);
    // Binds `spec`, or (taking over, address in use) queues it for the rebind timer.
    bool bind_or_wait(Socket& s, const std::string& spec, const char* key, std::string* error);
    static void on_rebind_timer(uv_timer_t* t);

    const config::Settings& settings_;
    pubsub::Broker& broker_;
    uv_loop_t* loop_;
    void* ctx_ = nullptr;
    std::string pull_spec_, command_spec_; // resolved (port_offset applied)
    std::vector<std::string> sub_specs_;
    std::unique_ptr<Socket> pull_, command_, sub_;
    size_t in_flight_ = 0;
    size_t in_flight_bytes_ = 0;
    bool paused_ = false;
    uv_timer_t congestion_timer_{};
    bool taking_over_ = false;
    struct Rebind {
        Socket* socket;
        std::string spec;
        const char* key;
    };
    std::vector<Rebind> rebinds_; // at most one per bound socket
    int rebind_tries_ = 0;
    uv_timer_t rebind_timer_{};
    struct WarnState {
        uint64_t last_ms = 0;
        uint64_t skipped = 0;
        bool logged = false;
    };
    std::array<WarnState, static_cast<size_t>(Warn::kCount)> warns_{};
    ZmqStats stats_;
    const StatsService* conns_ = nullptr;
    // `refresh {cid}` requests waiting for the workers' answers, by token.
    struct Refreshing {
        Caller caller;
        size_t waiting = 0; // answers still to come
        bool found = false;
    };
    ConnRefresher refresher_;
    std::unordered_map<uint64_t, Refreshing> refreshing_;
    uint64_t next_refresh_token_ = 0;
    std::unique_ptr<control::PublishQueue> queue_; // last: destroyed first (its callbacks use this)
};

} // namespace gripd::zmq
