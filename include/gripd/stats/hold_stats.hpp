// Per-worker GRIP hold statistics. Each worker's holds are the only writers of its HoldStats (through
// grip::HoldEnv); a metrics scrape on any worker reads them all (core::Counter).
#pragma once

#include "gripd/core/counter.hpp"

namespace gripd::stats {

struct HoldStats {
    core::Counter response_holds; // gauge
    core::Counter stream_holds;   // gauge
    core::Counter subscriptions;  // gauge
    core::Counter slow_clients_cut;
    core::Counter timeouts;
};

} // namespace gripd::stats
