#include "gripd/control/metrics_service.hpp"
#include "gripd/control/publish_gate.hpp"

#include "gripd/core/log.hpp"
#include "gripd/net/memory_guard.hpp"

#include <array>
#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace gripd::control {

namespace {
void metric(std::string& out, const std::string& prefix, const char* name, const char* type, const char* help,
            int64_t value, const char* labels = nullptr) {
    char line[512];
    std::snprintf(line, sizeof(line), "# HELP %s%s %s\n# TYPE %s%s %s\n", prefix.c_str(), name, help,
                  prefix.c_str(), name, type);
    out += line;
    std::snprintf(line, sizeof(line), "%s%s%s %" PRId64 "\n", prefix.c_str(), name, labels ? labels : "",
                  value);
    out += line;
}

// One metric with a series per value of `label` (e.g. mode="stream").
void metric_by(std::string& out, const std::string& prefix, const char* name, const char* type,
               const char* help, const char* label,
               std::initializer_list<std::pair<std::string_view, int64_t>> series) {
    out += "# HELP " + prefix + name + " " + help + "\n";
    out += "# TYPE " + prefix + name + " " + type + "\n";
    for (const auto& [value, n] : series) {
        out += prefix + name + "{" + label + "=\"";
        out += value;
        out += "\"} " + std::to_string(n) + "\n";
    }
}

// Loop turn times: one histogram summed over the workers, and each worker's recent longest turn.
void render_turns(std::string& out, const std::string& prefix, const std::vector<WorkerStatsView>& workers) {
    using loop::TurnStats;
    std::array<int64_t, TurnStats::kBoundsUs.size() + 1> buckets{};
    int64_t count = 0, sum_us = 0;
    for (const auto& w : workers) {
        if (!w.turns) continue;
        for (size_t i = 0; i < buckets.size(); ++i)
            buckets[i] += w.turns->bucket(i);
        count += w.turns->count();
        sum_us += w.turns->sum_us();
    }
    const std::string name = prefix + "gripd_loop_turn_seconds";
    out += "# HELP " + name + " Busy time of one event-loop turn (poll wait excluded), all workers\n";
    out += "# TYPE " + name + " histogram\n";
    char line[256];
    int64_t cumulative = 0;
    for (size_t i = 0; i < buckets.size(); ++i) {
        cumulative += buckets[i];
        if (i < TurnStats::kBoundsUs.size())
            std::snprintf(line, sizeof(line), "%s_bucket{le=\"%g\"} %" PRId64 "\n", name.c_str(),
                          static_cast<double>(TurnStats::kBoundsUs[i]) / 1e6, cumulative);
        else
            std::snprintf(line, sizeof(line), "%s_bucket{le=\"+Inf\"} %" PRId64 "\n", name.c_str(),
                          cumulative);
        out += line;
    }
    std::snprintf(line, sizeof(line), "%s_sum %.6f\n%s_count %" PRId64 "\n", name.c_str(),
                  static_cast<double>(sum_us) / 1e6, name.c_str(), count);
    out += line;
    const std::string max = prefix + "gripd_loop_turn_max_seconds";
    out += "# HELP " + max + " The longest event-loop turn of each worker in the last 10 to 20 seconds\n";
    out += "# TYPE " + max + " gauge\n";
    for (size_t i = 0; i < workers.size(); ++i) {
        if (!workers[i].turns) continue;
        std::snprintf(line, sizeof(line), "%s{worker=\"%zu\"} %.6f\n", max.c_str(), i,
                      static_cast<double>(workers[i].turns->recent_max_us()) / 1e6);
        out += line;
    }
}

// The WebSocket module's statistics summed over the workers.
struct WsTotals {
    int64_t connections[stats::kWsModes] = {};
    int64_t sessions = 0, subscriptions = 0, messages_in = 0, messages_out = 0, deliveries = 0,
            woh_requests = 0, backend_failures = 0, slow_clients_cut = 0, protocol_errors = 0;

    void add(const stats::WsStats& s) {
        for (size_t m = 0; m < stats::kWsModes; ++m)
            connections[m] += s.connections[m].get();
        sessions += s.sessions.get();
        subscriptions += s.subscriptions.get();
        messages_in += s.messages_in.get();
        messages_out += s.messages_out.get();
        deliveries += s.deliveries.get();
        woh_requests += s.woh_requests.get();
        backend_failures += s.backend_failures.get();
        slow_clients_cut += s.slow_clients_cut.get();
        protocol_errors += s.protocol_errors.get();
    }
    int64_t open(stats::WsMode m) const { return connections[static_cast<size_t>(m)]; }
};

void render_ws(std::string& out, const std::string& prefix, const WsTotals& t) {
    using stats::WsMode;
    metric_by(out, prefix, "gripd_websocket_connections", "gauge", "Client WebSockets open, by backend mode",
              "mode",
              {{stats::mode_name(WsMode::Passthrough), t.open(WsMode::Passthrough)},
               {stats::mode_name(WsMode::OverHttp), t.open(WsMode::OverHttp)},
               {stats::mode_name(WsMode::Test), t.open(WsMode::Test)}});
    struct Row {
        const char* name;
        const char* type;
        const char* help;
        int64_t value;
    };
    const Row rows[] = {
        {"gripd_websocket_sessions", "gauge",
         "WebSocket sessions alive (client or backend side still active)", t.sessions},
        {"gripd_websocket_subscriptions", "gauge", "Channel subscriptions of WebSocket sessions",
         t.subscriptions},
        {"gripd_websocket_messages_received_total", "counter", "WebSocket messages received from clients",
         t.messages_in},
        {"gripd_websocket_messages_sent_total", "counter",
         "WebSocket messages sent to clients (relayed, published, keep-alives)", t.messages_out},
        {"gripd_websocket_deliveries_total", "counter", "ws-message publishes sent to clients", t.deliveries},
        {"gripd_websocket_over_http_requests_total", "counter",
         "WebSocket-over-HTTP requests sent to backends", t.woh_requests},
        {"gripd_websocket_backend_failures_total", "counter",
         "WebSockets closed with 1011 because their backend failed", t.backend_failures},
        {"gripd_websocket_slow_clients_cut_total", "counter",
         "WebSocket clients disconnected for not reading", t.slow_clients_cut},
        {"gripd_websocket_protocol_errors_total", "counter", "WebSocket clients closed for breaking RFC 6455",
         t.protocol_errors},
    };
    for (const Row& r : rows)
        metric(out, prefix, r.name, r.type, r.help, r.value);
}
} // namespace

// The ZeroMQ inputs' counters (worker 0) and the stats socket's (every worker queues, worker 0 writes).
static void render_zmq(std::string& out, const std::string& prefix,
                       const std::vector<WorkerStatsView>& workers) {
    int64_t z[6] = {0, 0, 0, 0, 0, 0}, ev_queued = 0, ev_dropped = 0, out_sent = 0, out_dropped = 0;
    for (const auto& w : workers) {
        if (w.zmq) {
            z[0] += w.zmq->received.get();
            z[1] += w.zmq->published.get();
            z[2] += w.zmq->rejected.get();
            z[3] += w.zmq->dropped.get();
            z[4] += w.zmq->commands.get();
            z[5] += w.zmq->paused.get();
        }
        if (w.stats_events) {
            ev_queued += w.stats_events->queued.get();
            ev_dropped += w.stats_events->dropped.get();
        }
        if (w.stats_out) {
            out_sent += w.stats_out->sent.get();
            out_dropped += w.stats_out->dropped.get();
        }
    }
    metric(out, prefix, "gripd_zmq_messages_received_total", "counter",
           "ZeroMQ messages read (PULL, SUB, command socket)", z[0]);
    metric(out, prefix, "gripd_zmq_items_published_total", "counter",
           "Items from ZeroMQ accepted by the publish path", z[1]);
    metric(out, prefix, "gripd_zmq_messages_bad_total", "counter",
           "ZeroMQ messages or items skipped as malformed, oversized or invalid", z[2]);
    metric(out, prefix, "gripd_zmq_items_dropped_total", "counter",
           "Valid items from ZeroMQ that the publish path refused (workers congested, bus down)", z[3]);
    metric(out, prefix, "gripd_zmq_commands_total", "counter", "ZRPC requests answered on command_spec",
           z[4]);
    metric(out, prefix, "gripd_zmq_paused_total", "counter",
           "Times reading the ZeroMQ inputs paused for the publish path's back-pressure", z[5]);
    metric(out, prefix, "gripd_stats_events_total", "counter", "Stats events queued by the workers",
           ev_queued);
    metric(out, prefix, "gripd_stats_events_dropped_total", "counter",
           "Stats events dropped: a worker's queue or worker 0's inbox was full", ev_dropped);
    metric(out, prefix, "gripd_stats_sent_total", "counter", "Stats events written to stats_spec", out_sent);
    metric(out, prefix, "gripd_stats_send_dropped_total", "counter",
           "Stats events the stats socket refused (its send queue full)", out_dropped);
}

// Gone-link requests (proxy/gone_notifier.hpp), summed over the workers.
static void render_gone(std::string& out, const std::string& prefix,
                        const std::vector<WorkerStatsView>& workers) {
    int64_t delivered = 0, failed = 0, dropped = 0, retries = 0, queued = 0;
    for (const auto& w : workers)
        if (w.gone) {
            delivered += w.gone->delivered.get();
            failed += w.gone->failed.get();
            dropped += w.gone->dropped.get();
            retries += w.gone->retries.get();
            queued += w.gone->queued.get();
        }
    metric_by(out, prefix, "gripd_gone_requests_total", "counter",
              "Gone-link notices by outcome: the backend answered, still failing after the last retry, or "
              "never sent (queue full, server stopped)",
              "result", {{"delivered", delivered}, {"failed", failed}, {"dropped", dropped}});
    metric(out, prefix, "gripd_gone_retries_total", "counter",
           "Gone-link requests sent again after a failure", retries);
    metric(out, prefix, "gripd_gone_queued", "gauge", "Gone-link notices waiting, out, or between attempts",
           queued);
}

std::string render_metrics(const std::vector<WorkerStatsView>& workers, const std::string& prefix) {
    int64_t requests = 0, connections = 0, minutes = 0, received = 0, sent = 0, response_holds = 0,
            stream_holds = 0, subs = 0, channels = 0, slow = 0, skipped = 0, timeouts = 0, refused = 0,
            dropped = 0;
    int64_t h_channels = 0, h_items = 0, h_bytes = 0, h_replays = 0, h_misses = 0;
    WsTotals ws_totals;
    for (const auto& w : workers) {
        if (w.ws) ws_totals.add(*w.ws);
        if (w.requests_received) requests += w.requests_received->get();
        if (w.connections) connections += w.connections->get();
        if (w.connection_minutes) minutes += w.connection_minutes->get();
        if (w.broker) {
            received += w.broker->messages_published.get();
            sent += w.broker->messages_delivered.get();
            skipped += w.broker->deliveries_skipped.get();
            channels += w.broker->channels.get();
            refused += w.broker->publishes_refused.get();
            dropped += w.broker->deliveries_dropped.get();
            h_channels += w.broker->history_channels.get();
            h_items += w.broker->history_items.get();
            h_bytes += w.broker->history_bytes.get();
            h_replays += w.broker->history_replays.get();
            h_misses += w.broker->history_misses.get();
        }
        if (w.holds) {
            response_holds += w.holds->response_holds.get();
            stream_holds += w.holds->stream_holds.get();
            subs += w.holds->subscriptions.get();
            slow += w.holds->slow_clients_cut.get();
            timeouts += w.holds->timeouts.get();
        }
    }
    std::string out;
    // Pushpin's names.
    metric(out, prefix, "request_received", "counter", "Number of requests received", requests);
    metric(out, prefix, "connection_connected", "gauge", "Number of client connections", connections);
    metric(out, prefix, "connection_minute", "counter",
           "Connection-minutes (connections open, sampled each minute)", minutes);
    metric(out, prefix, "message_received", "counter", "Number of messages received by the publish API",
           received);
    metric(out, prefix, "message_sent", "counter", "Number of messages sent to clients", sent);
    // gripd's own.
    metric_by(out, prefix, "gripd_held_connections", "gauge", "Held HTTP requests by GRIP mode", "mode",
              {{"response", response_holds}, {"stream", stream_holds}});
    metric(out, prefix, "gripd_subscriptions", "gauge", "Channel subscriptions of held connections", subs);
    metric(out, prefix, "gripd_channels", "gauge", "Channels with local subscribers, summed over workers",
           channels);
    metric(out, prefix, "gripd_messages_published_total", "counter", "Items accepted by the publish API",
           received);
    metric(out, prefix, "gripd_messages_delivered_total", "counter", "Messages handed to subscriptions",
           sent);
    metric(out, prefix, "gripd_deliveries_filtered_total", "counter", "Messages skipped by content filters",
           skipped);
    metric(out, prefix, "gripd_slow_clients_cut_total", "counter", "Clients disconnected for not reading",
           slow);
    metric(out, prefix, "gripd_hold_timeouts_total", "counter", "Long-polls answered by their timeout",
           timeouts);
    metric(out, prefix, "gripd_publishes_refused_total", "counter",
           "Publish requests answered 503 because a worker's inbox was far behind", refused);
    metric(out, prefix, "gripd_deliveries_dropped_total", "counter",
           "Deliveries dropped because the receiving worker's inbox was at its bound", dropped);
    metric(out, prefix, "gripd_history_channels", "gauge", "Channels with items kept in history", h_channels);
    metric(out, prefix, "gripd_history_items", "gauge", "Items kept in history", h_items);
    metric(out, prefix, "gripd_history_bytes", "gauge", "Bytes of the items kept in history", h_bytes);
    metric(out, prefix, "gripd_history_replays_total", "counter", "Resumes that history covered", h_replays);
    metric(out, prefix, "gripd_history_misses_total", "counter",
           "Resumes that history could not cover (a gap, or nothing kept)", h_misses);
    render_gone(out, prefix, workers);
    const auto& gate = PublishGate::instance();
    metric(out, prefix, "gripd_messages_dropped_total", "counter",
           "Published items dropped because message_hwm items were already waiting for message_rate",
           static_cast<int64_t>(gate.dropped()));
    metric(out, prefix, "gripd_messages_waiting", "gauge", "Published items waiting for message_rate",
           gate.waiting());
    metric(out, prefix, "gripd_log_lines_dropped_total", "counter",
           "Log lines dropped because the log output did not keep up",
           static_cast<int64_t>(core::log_dropped_lines()));
    render_ws(out, prefix, ws_totals);
    render_turns(out, prefix, workers);
    render_zmq(out, prefix, workers);
    const auto& mem = net::MemoryGuard::instance();
    metric(out, prefix, "gripd_memory_limit_bytes", "gauge",
           "The memory ceiling ([gripd] memory_limit; 0 = off)", static_cast<int64_t>(mem.limit()));
    metric(out, prefix, "gripd_memory_rss_bytes", "gauge", "Resident set size at the last sample (0 = off)",
           static_cast<int64_t>(mem.rss()));
    metric(out, prefix, "gripd_output_queued_bytes", "gauge", "Output waiting in user space for slow peers",
           mem.queued_total());
    metric(out, prefix, "gripd_memory_refused_total", "counter",
           "Client connections refused with 503 near the memory limit", static_cast<int64_t>(mem.refused()));
    metric(out, prefix, "gripd_memory_cut_total", "counter",
           "Slow clients cut to get back under the memory limit", static_cast<int64_t>(mem.shed()));
    return out;
}

std::string render_instance_info(const std::string& prefix, std::string_view instance,
                                 std::string_view version) {
    // Label values escape backslash, double quote and newline (the exposition format's rules).
    auto label = [](std::string_view v) {
        std::string out;
        for (char c : v) {
            if (c == '\\' || c == '"')
                out += '\\', out += c;
            else if (c == '\n')
                out += "\\n";
            else
                out += c;
        }
        return out;
    };
    std::string name = prefix + "gripd_instance_info";
    return "# HELP " + name + " This instance ([gripd] instance_id) and its version; always 1\n# TYPE " +
           name + " gauge\n" + name + "{instance_id=\"" + label(instance) + "\",version=\"" + label(version) +
           "\"} 1\n";
}

std::unique_ptr<http::Exchange> MetricsService::start_exchange(http::ClientStream& conn, http::RequestHead&) {
    http::Headers h;
    h.add("Content-Type", "text/plain; version=0.0.4");
    conn.respond(200, {}, h,
                 render_metrics(views_(), prefix_) +
                     render_instance_info(prefix_, settings_.instance_id, GRIPD_VERSION));
    return nullptr;
}

} // namespace gripd::control
