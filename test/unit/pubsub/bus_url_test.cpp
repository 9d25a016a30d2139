#include "gripd/pubsub/redis_bus.hpp"

#include <catch2/catch.hpp>

using gripd::pubsub::BusAddress;
using gripd::pubsub::parse_bus_url;

TEST_CASE("bus url: host, port and defaults", "[pubsub][bus]") {
    BusAddress a;
    std::string err;
    REQUIRE(parse_bus_url("redis://127.0.0.1:6380", &a, &err));
    CHECK((a.host == "127.0.0.1" && a.port == 6380));
    REQUIRE(parse_bus_url("redis://cache.internal/", &a, &err));
    CHECK((a.host == "cache.internal" && a.port == 6379));
    REQUIRE(parse_bus_url("redis://[::1]:7000", &a, &err));
    CHECK((a.host == "::1" && a.port == 7000));
    REQUIRE(parse_bus_url("redis://[::1]", &a, &err));
    CHECK((a.host == "::1" && a.port == 6379));
}

TEST_CASE("bus url: what is refused says why", "[pubsub][bus]") {
    BusAddress a;
    for (const char* bad : {"http://h:1", "redis://", "redis://h:0", "redis://h:65536", "redis://h:x",
                            "redis://:pw@h:1", "redis://h:1/2", "redis://[::1", "redis://[::1]x"}) {
        std::string err;
        CHECK_FALSE(parse_bus_url(bad, &a, &err));
        CHECK_FALSE(err.empty());
    }
}
