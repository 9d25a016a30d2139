// The rules that turn a client request into the request a backend sees (PROTOCOL.md §3.4, §6.5):
// hop-by-hop removal, Host, route header= rules, X-Forwarded-For/-Proto, Grip-Sig and Grip-Feature.
// Pure functions, so every rule is unit tested without sockets.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/headers.hpp"
#include "gripd/http/request_parser.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::http {

// The GRIP features gripd offers backends, announced in Grip-Feature.
extern const char* const kGripFeatures;

struct ForwardContext {
    const config::Settings& settings;
    const config::Route& route;
    const config::Target& target;
    std::string_view peer_ip;
    bool is_tls = false;
    bool trusted = false; // the client proved an upstream Grip-Sig (GRIP passes through)
    int64_t now_unix = 0;
};

// A Host header value without its port ("example.com:8080" -> "example.com", "[::1]:80" -> "::1").
std::string_view host_without_port(std::string_view host);

// Whether GRIP is interpreted on this route (not no_grip).
bool grip_enabled(const config::Route& route);

// The headers to send upstream, without framing headers (the caller adds Content-Length or
// Transfer-Encoding for the body it forwards).
http::Headers upstream_headers(const http::RequestHead& head, const ForwardContext& ctx);

// The whole request head a backend gets: the request line with upstream_target(), upstream_headers(),
// `grip_last` values as Grip-Last, and the framing of the client's body (Transfer-Encoding: chunked
// or Content-Length). The proxy session and the end-to-end fuzz target share it.
// `connection_id`, when not empty, goes as Grip-Connection-Id (the id a publisher's targeted
// close names; gripd's own header, sent where Grip-Sig is).
std::string upstream_request_head(const http::RequestHead& head, const ForwardContext& ctx,
                                  const std::vector<std::string>& grip_last,
                                  std::string_view connection_id = {});

// X-Forwarded-For after applying a rule (truncate:N, append) to the client's value(s).
// Returns nullopt-like empty string with *remove = true when the header should be absent.
std::string apply_xff_rule(const http::Headers& in, const config::XffRule& rule, std::string_view peer_ip,
                           bool* present);

// The path (and query) to request upstream after the route's rewrites.
std::string upstream_target(const config::Route& route, std::string_view request_target);

// The host name in the Host header sent upstream (route as_host, target host=, a route headers=
// Host, else the client's), without a port; "" if there is none.
std::string upstream_host_name(const config::Route& route, const config::Target& target,
                               const http::Headers& client_headers);

// Where a Default target's connections go. An `ssl` target speaks TLS and, as Pushpin does, checks
// the certificate against the host of the Host header it sends (the connect host when there is
// none); `insecure` turns the check off.
http::BackendTarget backend_target(const config::Route& route, const config::Target& t,
                                   const http::Headers& client_headers);

} // namespace gripd::http
