// Per-worker WebSocket statistics. Each worker's WsService is the only writer of its WsStats; a
// metrics scrape on any worker reads (and sums) them all (core::Counter).
#pragma once

#include "gripd/core/counter.hpp"

#include <cstddef>
#include <cstdint>

namespace gripd::stats {

// What serves a client WebSocket: a WebSocket backend, WebSocket-over-HTTP, or the test target.
enum class WsMode : uint8_t { Passthrough, OverHttp, Test };
inline constexpr size_t kWsModes = 3;
// The metric label of a mode: "passthrough", "over_http", "test".
constexpr const char* mode_name(WsMode m) {
    return m == WsMode::Passthrough ? "passthrough" : m == WsMode::OverHttp ? "over_http" : "test";
}

struct WsStats {
    core::Counter connections[kWsModes]; // gauges: client WebSockets open (handshake done), by mode
    core::Counter sessions;              // gauge: sessions alive (client or backend side still active)
    core::Counter subscriptions;         // gauge
    core::Counter messages_in;           // client messages received (pings and pongs not counted)
    core::Counter messages_out;          // messages written to clients (relayed, published, keep-alives)
    core::Counter deliveries;            // ws-message publishes written to clients
    core::Counter woh_requests;          // WebSocket-over-HTTP requests sent
    core::Counter backend_failures;      // sessions ended by a backend error (client closed with 1011)
    core::Counter slow_clients_cut;      // clients over the output cap
    core::Counter protocol_errors;       // clients that broke RFC 6455

    core::Counter& connections_of(WsMode m) { return connections[static_cast<size_t>(m)]; }
};

} // namespace gripd::stats
