#include "gripd/control/metrics_service.hpp"

#include <cinttypes>
#include <cstdio>

namespace gripd::control {

namespace {
void metric(std::string& out, const std::string& prefix, const char* name, const char* type, const char* help,
            int64_t value, const char* labels = nullptr) {
    char line[512];
    std::snprintf(line, sizeof(line), "# HELP %s%s %s\n# TYPE %s%s %s\n", prefix.c_str(), name, help, prefix.c_str(),
                  name, type);
    out += line;
    std::snprintf(line, sizeof(line), "%s%s%s %" PRId64 "\n", prefix.c_str(), name, labels ? labels : "", value);
    out += line;
}
} // namespace

std::string render_metrics(const std::vector<WorkerStatsView>& workers, const std::string& prefix) {
    int64_t requests = 0, connections = 0, minutes = 0, received = 0, sent = 0, response_holds = 0, stream_holds = 0, subs = 0,
            channels = 0, slow = 0, skipped = 0, timeouts = 0;
    for (const auto& w : workers) {
        if (w.requests_received) requests += w.requests_received->get();
        if (w.connections) connections += w.connections->get();
        if (w.connection_minutes) minutes += w.connection_minutes->get();
        if (w.broker) {
            received += w.broker->messages_published.get();
            sent += w.broker->messages_delivered.get();
            skipped += w.broker->deliveries_skipped.get();
            channels += w.broker->channels.get();
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
    metric(out, prefix, "connection_minute", "counter", "Connection-minutes (connections open, sampled each minute)",
           minutes);
    metric(out, prefix, "message_received", "counter", "Number of messages received by the publish API", received);
    metric(out, prefix, "message_sent", "counter", "Number of messages sent to clients", sent);
    // gripd's own.
    out += "# HELP " + prefix + "gripd_held_connections Held HTTP requests by GRIP mode\n";
    out += "# TYPE " + prefix + "gripd_held_connections gauge\n";
    out += prefix + "gripd_held_connections{mode=\"response\"} " + std::to_string(response_holds) + "\n";
    out += prefix + "gripd_held_connections{mode=\"stream\"} " + std::to_string(stream_holds) + "\n";
    metric(out, prefix, "gripd_subscriptions", "gauge", "Channel subscriptions of held connections", subs);
    metric(out, prefix, "gripd_channels", "gauge", "Channels with local subscribers, summed over workers", channels);
    metric(out, prefix, "gripd_messages_published_total", "counter", "Items accepted by the publish API", received);
    metric(out, prefix, "gripd_messages_delivered_total", "counter", "Messages handed to subscriptions", sent);
    metric(out, prefix, "gripd_deliveries_filtered_total", "counter", "Messages skipped by content filters", skipped);
    metric(out, prefix, "gripd_slow_clients_cut_total", "counter", "Clients disconnected for not reading", slow);
    metric(out, prefix, "gripd_hold_timeouts_total", "counter", "Long-polls answered by their timeout", timeouts);
    return out;
}

std::unique_ptr<http::Exchange> MetricsService::start_exchange(http::ServerConn& conn, http::RequestHead&) {
    http::Headers h;
    h.add("Content-Type", "text/plain; version=0.0.4");
    conn.respond(200, {}, h, render_metrics(views_(), prefix_));
    return nullptr;
}

} // namespace gripd::control
