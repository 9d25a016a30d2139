#include "gripd/ws/handshake.hpp"

#include <catch2/catch.hpp>

using namespace gripd;
using namespace gripd::ws;

namespace {
http::RequestHead upgrade_head() {
    http::RequestHead h;
    h.method = "GET";
    h.target = "/ws";
    h.headers.add("Host", "example.com");
    h.headers.add("Upgrade", "websocket");
    h.headers.add("Connection", "keep-alive, Upgrade");
    h.headers.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    h.headers.add("Sec-WebSocket-Version", "13");
    h.upgrade = true;
    return h;
}
} // namespace

TEST_CASE("handshake: RFC 6455 example accept key", "[ws][handshake]") {
    CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("handshake: checks", "[ws][handshake]") {
    CHECK(check_upgrade(upgrade_head()).ok());
    {
        auto h = upgrade_head();
        h.method = "POST";
        CHECK(check_upgrade(h).status == 400);
    }
    {
        auto h = upgrade_head();
        h.headers.remove("Sec-WebSocket-Key");
        CHECK(check_upgrade(h).status == 400);
    }
    {
        auto h = upgrade_head();
        h.headers.set("Sec-WebSocket-Key", "c2hvcnQ=");
        CHECK(check_upgrade(h).status == 400);
    }
    {
        auto h = upgrade_head();
        h.headers.set("Sec-WebSocket-Version", "8");
        CHECK(check_upgrade(h).status == 426);
    }
    {
        auto h = upgrade_head();
        h.headers.remove("Sec-WebSocket-Version");
        CHECK(check_upgrade(h).status == 426);
    }
    {
        auto h = upgrade_head();
        h.version_minor = 0;
        CHECK(check_upgrade(h).status == 400);
    }
}

TEST_CASE("handshake: client key is 16 bytes of base64", "[ws][handshake]") {
    std::string k = make_client_key();
    CHECK(k.size() == 24);
    CHECK(k != make_client_key());
}

TEST_CASE("handshake: extension parsing", "[ws][handshake]") {
    http::Headers h;
    h.add("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits");
    h.add("Sec-WebSocket-Extensions", "grip; message-prefix=\"\"; other=\"a;b\"");
    auto grip = find_extension(h, "grip");
    REQUIRE(grip);
    REQUIRE(grip->param("message-prefix"));
    CHECK(grip->param("message-prefix")->empty());
    CHECK(*grip->param("other") == "a;b");
    CHECK_FALSE(find_extension(h, "nope"));
    http::Headers h2;
    h2.add("Sec-WebSocket-Extensions", "grip");
    auto g2 = find_extension(h2, "grip");
    REQUIRE(g2);
    CHECK_FALSE(g2->param("message-prefix"));
    http::Headers h3;
    h3.add("Sec-WebSocket-Extensions", "x, grip; message-prefix=_");
    REQUIRE(find_extension(h3, "grip"));
    CHECK(*find_extension(h3, "grip")->param("message-prefix") == "_");
}
