#include "gripd/config/debug_knobs.hpp"

#include <catch2/catch.hpp>

using namespace gripd::config;
using std::chrono::milliseconds;

TEST_CASE("debug knobs: unset means none", "[config]") {
    auto r = parse_debug_knobs(nullptr, "");
    REQUIRE(r.ok());
    CHECK(!r.knobs.start_timeout);
    CHECK(r.knobs.hold_worker == -1);
    CHECK(r.in_use.empty());
}

TEST_CASE("debug knobs: start timeout and a held worker", "[config]") {
    auto r = parse_debug_knobs("300", "1:60000");
    REQUIRE(r.ok());
    CHECK(r.knobs.start_timeout == milliseconds(300));
    CHECK(r.knobs.hold_worker == 1);
    CHECK(r.knobs.hold_for == milliseconds(60000));
    CHECK(r.in_use ==
          std::vector<std::string>{"GRIPD_DEBUG_START_TIMEOUT_MS=300", "GRIPD_DEBUG_HOLD_WORKER=1:60000"});
}

TEST_CASE("debug knobs: a malformed value is an error naming the knob", "[config]") {
    for (const char* bad : {"0", "-5", "x", "3600001"})
        CHECK(parse_debug_knobs(bad, nullptr).error.rfind("GRIPD_DEBUG_START_TIMEOUT_MS: ", 0) == 0);
    for (const char* bad : {"1", "1:", ":5", "-1:5", "a:5", "1:x", "1:-5"})
        CHECK(parse_debug_knobs(nullptr, bad).error.rfind("GRIPD_DEBUG_HOLD_WORKER: ", 0) == 0);
}
