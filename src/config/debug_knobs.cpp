#include "gripd/config/debug_knobs.hpp"

#include "gripd/core/strings.hpp"

#include <cstdlib>

namespace gripd::config {

namespace {

constexpr const char* kStartTimeout = "GRIPD_DEBUG_START_TIMEOUT_MS";
constexpr const char* kHoldWorker = "GRIPD_DEBUG_HOLD_WORKER";
constexpr int kMaxMs = 3600 * 1000;

bool is_set(const char* value) {
    return value && *value;
}

} // namespace

DebugKnobsResult parse_debug_knobs(const char* start_timeout_ms, const char* hold_worker) {
    DebugKnobsResult r;
    if (is_set(start_timeout_ms)) {
        auto ms = core::parse_int_in(start_timeout_ms, 1, kMaxMs);
        if (!ms) {
            r.error =
                std::string(kStartTimeout) + ": expected milliseconds from 1 to " + std::to_string(kMaxMs);
            return r;
        }
        r.knobs.start_timeout = std::chrono::milliseconds(*ms);
        r.in_use.push_back(std::string(kStartTimeout) + "=" + start_timeout_ms);
    }
    if (is_set(hold_worker)) {
        std::string_view text = hold_worker;
        size_t colon = text.find(':');
        auto index = core::parse_int_in(text.substr(0, colon), 0, 4095);
        auto ms = colon == std::string_view::npos ? std::nullopt
                                                  : core::parse_int_in(text.substr(colon + 1), 0, kMaxMs);
        if (!index || !ms) {
            r.error = std::string(kHoldWorker) + ": expected INDEX:MILLISECONDS, e.g. 1:60000";
            return r;
        }
        r.knobs.hold_worker = *index;
        r.knobs.hold_for = std::chrono::milliseconds(*ms);
        r.in_use.push_back(std::string(kHoldWorker) + "=" + hold_worker);
    }
    return r;
}

DebugKnobsResult debug_knobs_from_env() {
    return parse_debug_knobs(std::getenv(kStartTimeout), std::getenv(kHoldWorker));
}

} // namespace gripd::config
