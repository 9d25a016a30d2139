// The route options table: every option of Pushpin's routes file (condition and target), and what gripd
// does with it. Private to the config module: routes.cpp checks options and warns with it,
// config_reference.cpp renders README's route option reference from it (a unit test keeps them equal).
#pragma once

#include <span>
#include <string_view>

namespace gripd::config::route_options {

enum class Where { Condition, Target };

enum class Status {
    Works,   // as in Pushpin
    Warn,    // accepted; a route line that uses it logs one WARN (file:line) naming what will not happen
    Partial, // works in part; a route line that uses it logs one WARN naming what does not
    WsOnly,  // works for WebSocket sessions; a route that also takes HTTP requests warns (text: for HTTP)
    Inert,   // no effect in gripd, nor any a user could see: it only tunes something that already warns
};

struct Option {
    std::string_view name;
    Where where;
    Status status;
    std::string_view text;       // Works: what it does; Warn/WsOnly: what will not happen; Inert: why
    std::string_view group = {}; // options warned about together, once per line (e.g. "jsonp_*")
};

std::span<const Option> options();
const Option* find(Where where, std::string_view name);

} // namespace gripd::config::route_options
