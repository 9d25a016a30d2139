#include "gripd/zmq/spec.hpp"

#include <catch2/catch.hpp>

using gripd::zmq::apply_port_offset;
using gripd::zmq::split_specs;

TEST_CASE("port_offset moves the port of tcp specs only, as Pushpin's resolveVars", "[zmq]") {
    CHECK(apply_port_offset("tcp://127.0.0.1:5560", 10) == "tcp://127.0.0.1:5570");
    CHECK(apply_port_offset("tcp://127.0.0.1:5560", 0) == "tcp://127.0.0.1:5560");
    CHECK(apply_port_offset("tcp://*:5563", 20) == "tcp://*:5583");
    CHECK(apply_port_offset("tcp://[::1]:5560", 1) == "tcp://[::1]:5561");
    CHECK(apply_port_offset("ipc://run/pushpin-stats", 10) == "ipc://run/pushpin-stats");
    CHECK(apply_port_offset("tcp://host:*", 10) == "tcp://host:*");
}

TEST_CASE("spec lists split on commas, trimmed", "[zmq]") {
    auto v = split_specs(" tcp://a:1 , ipc://b,,");
    REQUIRE(v.size() == 2);
    CHECK(v[0] == "tcp://a:1");
    CHECK(v[1] == "ipc://b");
}
