// Statistics of the ZeroMQ sockets on worker 0 (zmq/zmq_service.hpp, zmq/stats_service.hpp), written
// there and read by the metrics (header-only, like the other counter structs of this module).
#pragma once

#include "gripd/core/counter.hpp"

namespace gripd::stats {

struct ZmqStats {
    core::Counter received;  // messages read (every input)
    core::Counter published; // items accepted by the publish path
    core::Counter rejected;  // bad messages and invalid items, skipped
    core::Counter dropped;   // valid items the publish path refused (workers congested, bus down)
    core::Counter commands;  // ZRPC requests answered
    core::Counter paused;    // times reading paused for the publish path's back-pressure
};

// The stats socket's output (stats_spec).
struct StatsOutStats {
    core::Counter sent;    // events written to the PUB socket
    core::Counter dropped; // events libzmq refused (its send queue full)
};

} // namespace gripd::stats
