// The WebSocket opening handshake (RFC 6455 §4): checking a client's upgrade request, the
// Sec-WebSocket-Accept value, a client key for requests we make, and Sec-WebSocket-Extensions
// parsing (for the `grip` extension, PROTOCOL.md §5.1). Pure functions.
#pragma once

#include "gripd/http/headers.hpp"
#include "gripd/http/request_parser.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::ws {

struct UpgradeCheck {
    int status = 0;      // 0 = acceptable; else 400, or 426 for an unsupported version
    std::string message; // response body when refused
    bool ok() const { return status == 0; }
};

// Checks a WebSocket upgrade request: GET, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`,
// a Sec-WebSocket-Key of 16 base64 bytes, Sec-WebSocket-Version 13 (426 otherwise; the answer must
// then carry `Sec-WebSocket-Version: 13`).
UpgradeCheck check_upgrade(const http::RequestHead& head);

// base64(SHA-1(key + the RFC 6455 GUID)).
std::string accept_key(std::string_view client_key);

// A fresh Sec-WebSocket-Key (16 random bytes, base64).
std::string make_client_key();

struct Extension {
    std::string name;
    std::vector<std::pair<std::string, std::string>> params; // value "" when given without one
    const std::string* param(std::string_view name) const;
};

// Finds the extension `name` among every Sec-WebSocket-Extensions value (a comma-separated list of
// `name; param=value; param="quoted"`). nullopt when absent or malformed.
std::optional<Extension> find_extension(const http::Headers& headers, std::string_view name);

} // namespace gripd::ws
