// MetricsService: Prometheus text exposition on prometheus_port (any path), with Pushpin's metric
// names (PROTOCOL.md §6.8) plus gripd's own. Each worker's counters have a single writer (that
// worker); a scrape on any worker reads them all without locks.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/core/counter.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/turn_stats.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/stats/events.hpp"
#include "gripd/stats/gone_stats.hpp"
#include "gripd/stats/hold_stats.hpp"
#include "gripd/stats/ws_stats.hpp"
#include "gripd/stats/zmq_stats.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::control {

// The per-worker statistics a scrape reads.
struct WorkerStatsView {
    const core::Counter* requests_received = nullptr;
    const core::Counter* connections = nullptr;
    const core::Counter* connection_minutes = nullptr;
    const stats::HoldStats* holds = nullptr;
    const pubsub::BrokerStats* broker = nullptr;
    const stats::WsStats* ws = nullptr;
    const loop::TurnStats* turns = nullptr;
    const stats::ZmqStats* zmq = nullptr;              // worker 0, with ZeroMQ inputs
    const stats::EmitterStats* stats_events = nullptr; // with stats_spec
    const stats::StatsOutStats* stats_out = nullptr;   // worker 0, with stats_spec
    const stats::GoneStats* gone = nullptr;            // gone-link requests
};

// Renders the exposition text for the given workers.
std::string render_metrics(const std::vector<WorkerStatsView>& workers, const std::string& prefix);
// `gripd_instance_info{instance="...",version="..."} 1`: which instance a scrape came from (a label to
// join on in dashboards when several instances sit behind one load balancer).
std::string render_instance_info(const std::string& prefix, std::string_view instance,
                                 std::string_view version);

class MetricsService final : public http::Service {
  public:
    MetricsService(const config::Settings& settings, std::string prefix,
                   std::function<std::vector<WorkerStatsView>()> views)
        : settings_(settings), prefix_(std::move(prefix)), views_(std::move(views)) {}

    std::unique_ptr<http::Exchange> start_exchange(http::ClientStream& conn,
                                                   http::RequestHead& head) override;
    size_t max_header_bytes() const override { return 8192; }
    uint64_t idle_timeout_ms() const override { return static_cast<uint64_t>(settings_.idle_timeout) * 1000; }
    uint64_t header_timeout_ms() const override {
        return static_cast<uint64_t>(settings_.header_timeout) * 1000;
    }
    uint64_t body_timeout_ms() const override { return static_cast<uint64_t>(settings_.body_timeout) * 1000; }
    uint64_t send_timeout_ms() const override { return static_cast<uint64_t>(settings_.send_timeout) * 1000; }
    const char* log_target() const override { return "metrics"; }
    http::ConnSet& conns() { return conns_; }

  private:
    const config::Settings& settings_;
    std::string prefix_;
    std::function<std::vector<WorkerStatsView>()> views_;
    http::ConnSet conns_;
};

} // namespace gripd::control
