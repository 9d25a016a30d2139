// Debug knobs: environment variables that let a test drive gripd down a path a healthy run never
// takes (a worker that does not come up at startup), so that path is tested instead of trusted.
// They are not configuration: no config key or option sets them, the config reference leaves them
// out, and gripd logs one WARN naming each knob that is set, so a production log shows it.
//
//   GRIPD_DEBUG_START_TIMEOUT_MS=N        the startup latch waits N ms (default 10 s) for every
//                                         worker before gripd gives up (exit 1, no READY)
//   GRIPD_DEBUG_HOLD_WORKER=INDEX:MS      worker INDEX sleeps MS ms before it sets up its services
//                                         and counts in on the latch
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace gripd::config {

struct DebugKnobs {
    std::optional<std::chrono::milliseconds> start_timeout; // GRIPD_DEBUG_START_TIMEOUT_MS
    int hold_worker = -1;                                   // GRIPD_DEBUG_HOLD_WORKER index; -1 = none
    std::chrono::milliseconds hold_for{0};                  // GRIPD_DEBUG_HOLD_WORKER duration
};

struct DebugKnobsResult {
    DebugKnobs knobs;
    std::vector<std::string> in_use; // "NAME=VALUE" of each knob set, for the startup WARN
    std::string error;               // "NAME: message" for a malformed value; empty when fine
    bool ok() const { return error.empty(); }
};

// Parses the knobs' values (nullptr or "" = not set). Pure, for tests.
DebugKnobsResult parse_debug_knobs(const char* start_timeout_ms, const char* hold_worker);

// parse_debug_knobs() on this process's environment.
DebugKnobsResult debug_knobs_from_env();

} // namespace gripd::config
