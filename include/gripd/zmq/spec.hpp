// ZeroMQ socket specs as Pushpin reads them from pushpin.conf (PROTOCOL.md §1.2, §1.3).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gripd::zmq {

// Adds `offset` to the port of a `tcp://host:port` spec, as Pushpin's Settings::resolveVars does for
// `port_offset` and `--id N` (offset N*10); other specs (ipc://, inproc://) come back unchanged.
std::string apply_port_offset(std::string_view spec, int offset);

// A comma list of specs (`push_in_sub_specs`), trimmed, empty entries dropped.
std::vector<std::string> split_specs(std::string_view list);

} // namespace gripd::zmq
