#include "gripd/grip/next_link.hpp"

#include <catch2/catch.hpp>

using gripd::grip::resolve_link;

namespace {
std::string target_of(std::string_view url, std::string_view host = "example.com",
                      std::string_view request = "/dir/page?x=1") {
    auto t = resolve_link(url, host, request);
    REQUIRE(t);
    return t->target;
}
} // namespace

TEST_CASE("next link: references resolve against the client's request", "[grip]") {
    CHECK(target_of("/b?x=1") == "/b?x=1");
    CHECK(target_of("b") == "/dir/b");
    CHECK(target_of("./b") == "/dir/b");
    CHECK(target_of("../b") == "/b");
    CHECK(target_of("../../../b") == "/b");
    CHECK(target_of("?y=2") == "/dir/page?y=2");
    CHECK(target_of("/a/./b/../c/") == "/a/c/");
    CHECK(target_of("/a/b/..") == "/a/");
    CHECK(target_of("/b#frag") == "/b");
    CHECK(target_of("b", "example.com", "/") == "/b");
    auto t = resolve_link("/b", "example.com:8080", "/a");
    REQUIRE(t);
    CHECK(t->host == "example.com:8080");
}

TEST_CASE("next link: absolute URLs must stay on the request's host", "[grip]") {
    auto t = resolve_link("http://example.com/b?q", "example.com", "/a");
    REQUIRE(t);
    CHECK(t->host == "example.com");
    CHECK(t->target == "/b?q");
    CHECK(target_of("HTTPS://EXAMPLE.com:8443/x") == "/x");
    CHECK(target_of("//example.com") == "/");
    CHECK(target_of("http://example.com?z") == "/?z");
    CHECK(resolve_link("http://example.com:81/b", "example.com:80", "/a")->host == "example.com:81");
    CHECK(target_of("http://[::1]:8/v", "[::1]:7") == "/v");

    CHECK_FALSE(resolve_link("http://other.example/b", "example.com", "/a"));
    CHECK_FALSE(resolve_link("//other.example/b", "example.com", "/a"));
    CHECK_FALSE(resolve_link("http://example.com.evil/b", "example.com", "/a"));
    CHECK_FALSE(resolve_link("http:///b", "example.com", "/a"));
}

TEST_CASE("next link: other schemes and malformed links are refused", "[grip]") {
    CHECK_FALSE(resolve_link("", "example.com", "/a"));
    CHECK_FALSE(resolve_link("   ", "example.com", "/a"));
    CHECK_FALSE(resolve_link("ftp://example.com/b", "example.com", "/a"));
    CHECK_FALSE(resolve_link("javascript:alert(1)", "example.com", "/a"));
    CHECK_FALSE(resolve_link("/b c", "example.com", "/a"));
    CHECK_FALSE(resolve_link("/b\r\nX-Injected: 1", "example.com", "/a"));
    CHECK_FALSE(resolve_link("a:b/c", "example.com", "/a")); // scheme "a" (RFC 3986)
    CHECK(target_of("./a:b") == "/dir/a:b");                 // a path segment with a colon
}
