#include "gripd/pubsub/cluster_bus.hpp"
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

TEST_CASE("bus url: sentinel and cluster forms", "[pubsub][bus]") {
    using gripd::pubsub::BusKind;
    BusAddress a;
    std::string err;
    REQUIRE(parse_bus_url("redis-sentinel://127.0.0.1:26379,[::1]:26380,s3/mymaster", &a, &err));
    CHECK(a.kind == BusKind::Sentinel);
    CHECK(a.master_name == "mymaster");
    REQUIRE(a.nodes.size() == 3);
    CHECK((a.nodes[1].host == "::1" && a.nodes[1].port == 26380 && a.nodes[2].port == 6379));
    REQUIRE(parse_bus_url("redis-cluster://127.0.0.1:7000,127.0.0.1:7001/", &a, &err));
    CHECK(a.kind == BusKind::Cluster);
    CHECK(a.nodes.size() == 2);
    for (const char* bad : {"redis-sentinel://h:1", "redis-sentinel://h:1/", "redis-sentinel://h:1,/m",
                            "redis-sentinel://h:1/a/b", "redis-cluster://", "redis-cluster://h:1,,h:2"}) {
        CHECK_FALSE(parse_bus_url(bad, &a, &err));
        CHECK_FALSE(err.empty());
    }
}

TEST_CASE("cluster key slot: CRC16 mod 16384 and hash tags", "[pubsub][bus]") {
    using gripd::pubsub::cluster_key_slot;
    CHECK(cluster_key_slot("123456789") == 12739); // CRC16/XMODEM check value 0x31C3
    CHECK(cluster_key_slot("foo") == 12182);
    CHECK(cluster_key_slot("{user1000}.following") == cluster_key_slot("user1000"));
    CHECK(cluster_key_slot("foo{}{bar}") == cluster_key_slot("foo{}{bar}")); // empty tag: whole key
    CHECK(cluster_key_slot("foo{}{bar}") != cluster_key_slot("bar"));
    using gripd::pubsub::ClusterBus;
    CHECK(cluster_key_slot(ClusterBus::channel_name("room")) ==
          cluster_key_slot(ClusterBus::stream_key("room")));
}
