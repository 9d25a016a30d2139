// StatsService: Pushpin's stats socket (`stats_spec`, PROTOCOL.md §6.9) on worker 0.
//
// The workers' events (stats/events.hpp) arrive here in batches through the inbox; this keeps what
// Pushpin's StatsManager keeps and writes what it writes, one PUB message per event,
// `<type> T<tnetstring>` or `<type> J<json>` (`stats_format`):
//  - `activity`: requests per route, summed over 100 ms;
//  - `message`: per delivered item and transport, the subscribers it went to (one event per worker
//    that has subscribers: gripd delivers on every worker);
//  - `conn`: a client request or WebSocket opened (again every 3/4 of `stats_connection_ttl` while
//    it lasts) and closed (`unavailable`);
//  - `sub`: a (mode, channel) got subscribers (again every 3/4 of `stats_subscription_ttl`, and soon
//    after the count changes) and lost its last (`unavailable`; after `subscription_linger` when the
//    last was a long-poll);
//  - `report`: every `stats_report_interval`, connections (peak), minutes, messages received/sent.
// The socket is an XPUB: the subscription messages it reads tell whether anyone wants `activity` or
// `message` events (stats::g_listening), which the workers then build; otherwise they cost nothing.
// Bounds: the PUB send queue is kSndHwm messages (libzmq drops beyond it, as Pushpin's PUB does);
// connections and subscriptions are as many as the instance has (bounded by client_maxconn and
// connection_subscription_max).
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/core/counter.hpp"
#include "gripd/stats/events.hpp"
#include "gripd/stats/zmq_stats.hpp"
#include "gripd/zmq/socket.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <uv.h>

namespace gripd::zmq {

// What a `report` adds up, read from the workers' counters (monotonic totals).
struct ReportTotals {
    int64_t received = 0;      // items published to this instance
    int64_t sent = 0;          // deliveries to subscribers
    int64_t response_sent = 0; // ... of them to long-polls
};

class StatsService final : public Socket::Handler {
  public:
    static constexpr int kSndHwm = 200000; // as Pushpin's OUT_HWM
    static constexpr uint64_t kActivityMs = 100;
    static constexpr uint64_t kRefreshMs = 1000;

    StatsService(const config::Settings& settings, uv_loop_t* loop, std::function<ReportTotals()> totals);
    StatsService(const StatsService&) = delete;
    StatsService& operator=(const StatsService&) = delete;
    ~StatsService();

    bool start(std::string* error);
    void stop();
    // A worker's events, in its order.
    void on_batch(const stats::EventBatch& batch);
    // Whether the connection `id` is open here (the command socket's `conncheck`).
    bool has_connection(const std::string& id) const { return conns_.count(id) != 0; }
    // Sends the connection's `conn` event again (the command socket's `refresh` by id).
    bool refresh_connection(const std::string& id);

    const stats::StatsOutStats& out_stats() const { return out_; }

  private:
    struct Conn {
        bool ws = false;
        bool ssl = false;
        std::string peer;
        std::string route;
        uint64_t due = 0;
        uint64_t last_minute = 0; // connection minutes counted up to here
    };
    struct Sub {
        uint8_t mode = 0;
        std::string channel;
        int count = 0;
        bool announced = false;
        bool linger = false;
        uint64_t due = 0; // next refresh, or the end of the linger
    };

    bool on_message(Socket& s, const std::vector<std::string_view>& parts, size_t bytes,
                    bool truncated) override;
    void on_event(const stats::Event& e, uint64_t now);
    void on_sub_event(const stats::Event& e, uint64_t now);
    void schedule_conn(const std::string& id, Conn& c, uint64_t due);
    void schedule_sub(const std::string& key, Sub& s, uint64_t due);
    void refresh(uint64_t now);
    void arm_refresh(uint64_t now);
    void flush_activity();
    void report(uint64_t now);
    void update_listening();

    // Writers: one event as a PUB message.
    struct Field;
    void write(const char* type, const std::vector<Field>& fields);
    void send_conn(const std::string& id, const Conn& c);
    void send_disconn(const std::string& id, const std::string& route);
    void send_sub(const Sub& s);
    void send_unsub(const Sub& s);

    static void on_activity_timer(uv_timer_t* t);
    static void on_refresh_timer(uv_timer_t* t);
    static void on_report_timer(uv_timer_t* t);

    stats::StatsOutStats out_;
    const config::Settings& settings_;
    uv_loop_t* loop_;
    std::function<ReportTotals()> totals_;
    void* ctx_ = nullptr;
    std::unique_ptr<Socket> pub_;
    std::string spec_;
    std::string from_;
    bool json_ = false;
    uint64_t conn_refresh_ms_ = 0; // 3/4 of the ttls, as Pushpin
    uint64_t sub_refresh_ms_ = 0;
    std::map<std::string, int> topics_; // what the XPUB's subscribers asked for
    std::unordered_map<std::string, Conn> conns_;
    std::set<std::pair<uint64_t, std::string>> conn_due_;
    std::unordered_map<std::string, Sub> subs_; // key: mode byte + channel
    std::set<std::pair<uint64_t, std::string>> sub_due_;
    std::map<std::string, int64_t> activity_; // per route, since the last flush
    // The report in progress.
    int64_t conns_peak_ = 0;
    int64_t conn_minutes_ = 0;
    uint64_t report_start_ = 0;
    ReportTotals last_totals_;
    bool reported_any_ = false;
    uv_timer_t activity_timer_{}, refresh_timer_{}, report_timer_{};
    uint64_t refresh_at_ = 0;   // when refresh_timer_ fires (0: not armed)
    uint64_t last_refresh_ = 0; // when it last ran
};

} // namespace gripd::zmq
