#include "gripd/zmq/spec.hpp"

#include "gripd/core/strings.hpp"

namespace gripd::zmq {

std::string apply_port_offset(std::string_view spec, int offset) {
    std::string out(spec);
    if (offset == 0 || !spec.starts_with("tcp://")) return out;
    size_t colon = out.rfind(':');
    if (colon == std::string::npos || colon < 6) return out;
    size_t end = colon + 1;
    while (end < out.size() && out[end] >= '0' && out[end] <= '9')
        ++end;
    if (end == colon + 1) return out; // "*" or a name: no number to move
    auto port = core::parse_int(std::string_view(out).substr(colon + 1, end - colon - 1));
    if (!port) return out;
    out.replace(colon + 1, end - colon - 1, std::to_string(*port + offset));
    return out;
}

std::vector<std::string> split_specs(std::string_view list) {
    std::vector<std::string> out;
    for (auto s : core::split_trimmed(list, ','))
        out.emplace_back(s);
    return out;
}

} // namespace gripd::zmq
