#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/core/jwt.hpp"
#include "gripd/http/forwarding.hpp"

#include <catch2/catch.hpp>

using namespace gripd;

namespace {
http::RequestHead make_head() {
    http::RequestHead h;
    h.method = "GET";
    h.target = "/api/x?y=1";
    h.headers.add("Host", "example.com");
    h.headers.add("Connection", "keep-alive, X-Hop");
    h.headers.add("X-Hop", "1");
    h.headers.add("Keep-Alive", "timeout=5");
    h.headers.add("TE", "trailers");
    h.headers.add("Grip-Sig", "forged");
    h.headers.add("Grip-Feature", "forged");
    h.headers.add("X-Forwarded-For", "1.1.1.1, 2.2.2.2");
    h.headers.add("Accept", "*/*");
    return h;
}

const config::Route& first_route(const config::RoutesResult& r) {
    return r.table->routes().front();
}
} // namespace

TEST_CASE("upstream headers drop hop-by-hop and client GRIP headers", "[proxy]") {
    config::Settings s = config::default_settings();
    s.sig_key = core::JwtKey::from_secret("secret");
    s.sig_iss = "pushpin";
    auto routes = config::parse_routes("* 127.0.0.1:8080\n", "routes");
    const auto& route = first_route(routes);
    http::ForwardContext ctx{s, route, route.targets.front(), "10.0.0.9", false, false, 1000};
    auto out = http::upstream_headers(make_head(), ctx);
    REQUIRE_FALSE(out.has("Connection"));
    REQUIRE_FALSE(out.has("X-Hop"));
    REQUIRE_FALSE(out.has("Keep-Alive"));
    REQUIRE_FALSE(out.has("TE"));
    REQUIRE(out.get("Host"));
    REQUIRE(*out.get("Host") == "example.com");
    REQUIRE(*out.get("Accept") == "*/*");
    // Our own Grip-Sig replaces the client's, and verifies with the key.
    REQUIRE(out.get_all("Grip-Sig").size() == 1);
    std::string claims;
    REQUIRE(core::jwt_verify_hs256(*out.get("Grip-Sig"), "secret", 1000, &claims));
    REQUIRE(claims.find("\"iss\":\"pushpin\"") != std::string::npos);
    REQUIRE(claims.find("\"exp\":4600") != std::string::npos);
    REQUIRE(*out.get("Grip-Feature") == http::kGripFeatures);
    // No rule configured: X-Forwarded-For passes unchanged.
    REQUIRE(*out.get("X-Forwarded-For") == "1.1.1.1, 2.2.2.2");
}

TEST_CASE("no_grip routes are not signed, and client GRIP headers are still dropped", "[proxy]") {
    config::Settings s = config::default_settings();
    s.sig_key = core::JwtKey::from_secret("secret");
    auto routes = config::parse_routes("*,no_grip 127.0.0.1:8080\n", "routes");
    const auto& route = first_route(routes);
    http::ForwardContext ctx{s, route, route.targets.front(), "10.0.0.9", false, false, 1000};
    auto out = http::upstream_headers(make_head(), ctx);
    REQUIRE_FALSE(out.has("Grip-Sig"));
    REQUIRE_FALSE(out.has("Grip-Feature"));
}

TEST_CASE("per-route sig_key and sig_iss override the config", "[proxy]") {
    config::Settings s = config::default_settings();
    s.sig_key = core::JwtKey::from_secret("global");
    auto routes = config::parse_routes("*,sig_key=routekey,sig_iss=me 127.0.0.1:8080\n", "routes");
    const auto& route = first_route(routes);
    http::ForwardContext ctx{s, route, route.targets.front(), "10.0.0.9", false, false, 1000};
    auto out = http::upstream_headers(make_head(), ctx);
    std::string claims;
    REQUIRE_FALSE(core::jwt_verify_hs256(*out.get("Grip-Sig"), "global", 1000, &claims));
    REQUIRE(core::jwt_verify_hs256(*out.get("Grip-Sig"), "routekey", 1000, &claims));
    REQUIRE(claims.find("\"iss\":\"me\"") != std::string::npos);
}

TEST_CASE("X-Forwarded-For rules truncate and append", "[proxy]") {
    http::Headers in;
    in.add("X-Forwarded-For", "1.1.1.1, 2.2.2.2");
    in.add("X-Forwarded-For", "3.3.3.3");
    bool present = false;
    REQUIRE(http::apply_xff_rule(in, config::XffRule{1, true}, "9.9.9.9", &present) == "3.3.3.3, 9.9.9.9");
    REQUIRE(http::apply_xff_rule(in, config::XffRule{0, true}, "9.9.9.9", &present) == "9.9.9.9");
    REQUIRE(http::apply_xff_rule(in, config::XffRule{0, false}, "9.9.9.9", &present).empty());
    REQUIRE_FALSE(present);
    REQUIRE(http::apply_xff_rule(in, config::XffRule{-1, true}, "9.9.9.9", &present) ==
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 9.9.9.9");
}

TEST_CASE("route header rules, as_host and target host=", "[proxy]") {
    config::Settings s = config::default_settings();
    auto routes = config::parse_routes(
        "*,header=X-Added:yes,header=Accept:,as_host=internal.example 127.0.0.1:8080,host=ignored.example\n",
        "routes");
    const auto& route = first_route(routes);
    http::ForwardContext ctx{s, route, route.targets.front(), "10.0.0.9", false, false, 1000};
    auto out = http::upstream_headers(make_head(), ctx);
    REQUIRE(*out.get("X-Added") == "yes");
    REQUIRE_FALSE(out.has("Accept"));
    REQUIRE(*out.get("Host") == "internal.example");
}

TEST_CASE("upstream target strips absolute form and applies rewrites", "[proxy]") {
    auto routes = config::parse_routes("*,path_beg=/api/,replace_beg=/v2/ 127.0.0.1:8080\n", "routes");
    const auto& route = first_route(routes);
    REQUIRE(http::upstream_target(route, "/api/x?y=1") == "/v2/x?y=1");
    REQUIRE(http::upstream_target(route, "http://example.com/api/z") == "/v2/z");
}

TEST_CASE("backend targets: TLS checks the host of the Host header sent upstream", "[proxy]") {
    config::Settings s = config::default_settings();
    auto host_of = [&](const std::string& line, const char* client_host) {
        auto routes = config::parse_routes(line + "\n", "routes");
        REQUIRE(routes.errors.empty());
        const auto& route = first_route(routes);
        http::Headers client;
        if (client_host) client.add("Host", client_host);
        http::BackendTarget b = http::backend_target(route, route.targets.front(), client);
        REQUIRE(b.tls);
        // The name checked is the one the backend is told in Host (without its port).
        http::RequestHead head;
        head.headers = client;
        http::ForwardContext ctx{s, route, route.targets.front(), "10.0.0.9", false, false, 1000};
        auto out = http::upstream_headers(head, ctx);
        if (const std::string* sent = out.get("Host")) {
            std::string_view name = *sent;
            if (name.front() == '[') name.remove_prefix(1);
            CHECK(name.substr(0, b.tls->server_name.size()) == b.tls->server_name);
        }
        return b;
    };
    CHECK(host_of("* 10.0.0.5:443,ssl", "api.example.com:8443").tls->server_name == "api.example.com");
    CHECK(host_of("* 10.0.0.5:443,ssl", "api.example.com").tls->verify);
    CHECK(host_of("* 10.0.0.5:443,ssl", "[::1]:7999").tls->server_name == "::1");
    CHECK(host_of("* 10.0.0.5:443,ssl", nullptr).tls->server_name == "10.0.0.5");
    CHECK(host_of("* 10.0.0.5:443,ssl,host=internal.example", "api.example.com").tls->server_name ==
          "internal.example");
    CHECK(host_of("*,as_host=front.example 10.0.0.5:443,ssl,host=internal.example", "a.example")
              .tls->server_name == "front.example");
    CHECK(host_of("*,header=Host:hdr.example 10.0.0.5:443,ssl", "a.example").tls->server_name ==
          "hdr.example");
    CHECK_FALSE(host_of("* 10.0.0.5:443,ssl,insecure", "a.example").tls->verify);

    // Pools keep plain, verified and unverified connections apart.
    auto routes = config::parse_routes("* 10.0.0.5:443\n", "routes");
    const auto& route = first_route(routes);
    http::Headers client;
    client.add("Host", "a.example");
    http::BackendTarget plain = http::backend_target(route, route.targets.front(), client);
    CHECK_FALSE(plain.tls);
    CHECK(plain.key() != host_of("* 10.0.0.5:443,ssl", "a.example").key());
    CHECK(host_of("* 10.0.0.5:443,ssl", "a.example").key() !=
          host_of("* 10.0.0.5:443,ssl,insecure", "a.example").key());
    CHECK(host_of("* 10.0.0.5:443,ssl", "a.example").key() !=
          host_of("* 10.0.0.5:443,ssl", "b.example").key());
}
