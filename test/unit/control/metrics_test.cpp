#include "gripd/control/metrics_service.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace gripd;

namespace {
bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}
} // namespace

TEST_CASE("metrics: WebSocket statistics are summed over workers", "[control][metrics]") {
    stats::WsStats a, b;
    a.connections_of(stats::WsMode::OverHttp).add(3);
    b.connections_of(stats::WsMode::OverHttp).add(2);
    b.connections_of(stats::WsMode::Passthrough).add(1);
    a.messages_in.add(5);
    b.messages_out.add(7);
    a.deliveries.add(4);
    b.deliveries.add(1);
    a.backend_failures.add();
    b.slow_clients_cut.add(2);
    control::WorkerStatsView wa, wb;
    wa.ws = &a;
    wb.ws = &b;
    std::string text = control::render_metrics({wa, wb}, "p_");
    const char* expected[] = {
        "# TYPE p_gripd_websocket_connections gauge",
        "p_gripd_websocket_connections{mode=\"passthrough\"} 1",
        "p_gripd_websocket_connections{mode=\"over_http\"} 5",
        "p_gripd_websocket_connections{mode=\"test\"} 0",
        "# TYPE p_gripd_websocket_messages_received_total counter",
        "p_gripd_websocket_messages_received_total 5",
        "p_gripd_websocket_messages_sent_total 7",
        "p_gripd_websocket_deliveries_total 5",
        "p_gripd_websocket_backend_failures_total 1",
        "p_gripd_websocket_slow_clients_cut_total 2",
        // The held-connection series keep their shape.
        "p_gripd_held_connections{mode=\"response\"} 0",
        "p_gripd_held_connections{mode=\"stream\"} 0",
    };
    for (const char* line : expected) {
        INFO(line);
        CHECK(has_line(text, line));
    }
}

TEST_CASE("metrics: gripd_instance_info names the instance, label value escaped", "[control][metrics]") {
    std::string text = control::render_instance_info("p_", "web1:7999", "1.2");
    CHECK(has_line(text, "# TYPE p_gripd_instance_info gauge"));
    CHECK(has_line(text, "p_gripd_instance_info{instance_id=\"web1:7999\",version=\"1.2\"} 1"));
    text = control::render_instance_info("", "a\"b\\c\nd", "v");
    CHECK(has_line(text, "gripd_instance_info{instance_id=\"a\\\"b\\\\c\\nd\",version=\"v\"} 1"));
}
