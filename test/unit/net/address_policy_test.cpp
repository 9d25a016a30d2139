#include "gripd/net/address_policy.hpp"

#include <catch2/catch.hpp>

#include <uv.h>

using gripd::net::is_internal_address;
using gripd::net::is_internal_name;

namespace {
bool internal(const char* ip) {
    sockaddr_storage ss{};
    if (uv_ip4_addr(ip, 80, reinterpret_cast<sockaddr_in*>(&ss)) != 0)
        REQUIRE(uv_ip6_addr(ip, 80, reinterpret_cast<sockaddr_in6*>(&ss)) == 0);
    return is_internal_address(reinterpret_cast<const sockaddr*>(&ss));
}
} // namespace

TEST_CASE("address policy: internal addresses an untrusted target may not reach", "[net][policy]") {
    for (const char* ip : {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                           "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1", "::", "fc00::1", "fd12::5",
                           "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
        INFO(ip);
        CHECK(internal(ip));
    }
    for (const char* ip : {"8.8.8.8", "172.15.255.255", "172.32.0.1", "192.169.0.1", "11.0.0.1",
                           "2001:db8::1", "::ffff:8.8.8.8", "fec0::1"}) {
        INFO(ip);
        CHECK_FALSE(internal(ip));
    }
}

TEST_CASE("address policy: names ending in .local", "[net][policy]") {
    CHECK(is_internal_name("printer.local"));
    CHECK(is_internal_name("A.LOCAL."));
    CHECK_FALSE(is_internal_name("local"));
    CHECK_FALSE(is_internal_name("example.com"));
    CHECK_FALSE(is_internal_name("notlocal"));
}
