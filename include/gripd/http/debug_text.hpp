// Pushpin's detailed error texts, sent instead of the generic ones under [proxy] debug or a route's
// `debug` option (PROTOCOL.md 6.7). Shared by the proxy (HTTP) and the WebSocket sessions.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"

#include <string>

namespace gripd::http {

// Whether `route` answers errors with the detailed texts.
inline bool debug_enabled(const config::Settings& settings, const config::Route& route) {
    return settings.debug || route.debug;
}

// "Unable to connect to any targets. Tried: A, B\n": every target of the route, in order.
std::string unable_to_connect_text(const config::Route& route);

} // namespace gripd::http
