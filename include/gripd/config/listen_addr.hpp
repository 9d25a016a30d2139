// A listener address from pushpin.conf (`http_port`, `https_ports`, `prometheus_port`) or `--port`.
#pragma once

#include <string>
#include <string_view>

namespace gripd::config {

struct ListenAddr {
    std::string addr = "0.0.0.0"; // numeric IPv4 or IPv6 (no brackets)
    int port = 0;                 // 0 = let the kernel pick (tests)

    bool is_ipv6() const { return addr.find(':') != std::string::npos; }
    // "0.0.0.0:7999" or "[::1]:7999".
    std::string to_string() const;
    bool operator==(const ListenAddr&) const = default;
};

// Parses `[addr:]port`: "7999", "127.0.0.1:7999", "[::1]:7999", "*:7999" (any IPv4). "localhost" maps to
// 127.0.0.1; other host names are rejected (listeners bind numeric addresses). The port must be 0-65535.
// Returns false and sets *error on bad input.
bool parse_listen_addr(std::string_view text, ListenAddr* out, std::string* error);

} // namespace gripd::config
