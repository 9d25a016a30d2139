#include "gripd/core/assert.hpp"

#include <catch2/catch.hpp>

using namespace gripd;

TEST_CASE("GRIPD_CHECK passes true through and counts a failure without aborting", "[core]") {
    uint64_t before = core::check_failures();
    int evaluated = 0;
    CHECK(GRIPD_CHECK(++evaluated == 1));
    CHECK(core::check_failures() == before);
    CHECK_FALSE(GRIPD_CHECK(++evaluated == 1));
    CHECK(evaluated == 2);
    CHECK(core::check_failures() == before + 1);
}

TEST_CASE("GRIPD_ASSERT is silent when its condition holds", "[core]") {
    int x = 1;
    GRIPD_ASSERT(x == 1);
    CHECK(x == 1);
}
