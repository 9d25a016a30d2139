#include "gripd/config/listen_addr.hpp"

#include "gripd/core/strings.hpp"

#include <arpa/inet.h>

namespace gripd::config {

std::string ListenAddr::to_string() const {
    if (is_ipv6()) return "[" + addr + "]:" + std::to_string(port);
    return addr + ":" + std::to_string(port);
}

namespace {

bool is_numeric_ip(const std::string& addr) {
    unsigned char buf[16];
    if (addr.find(':') != std::string::npos) return inet_pton(AF_INET6, addr.c_str(), buf) == 1;
    return inet_pton(AF_INET, addr.c_str(), buf) == 1;
}

} // namespace

bool parse_listen_addr(std::string_view text, ListenAddr* out, std::string* error) {
    text = core::trim(text);
    std::string_view host;
    std::string_view port_text = text;
    bool bracketed = false;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            *error = "bad address '" + std::string(text) + "': expected [addr]:port";
            return false;
        }
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
        bracketed = true;
    } else if (size_t colon = text.rfind(':'); colon != std::string_view::npos) {
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            *error = "bad address '" + std::string(text) + "': put IPv6 addresses in brackets, [addr]:port";
            return false;
        }
    }
    auto port = core::parse_int(port_text);
    if (!port || *port < 0 || *port > 65535) {
        *error = "bad port '" + std::string(port_text) + "': expected 0-65535";
        return false;
    }
    ListenAddr result;
    result.port = static_cast<int>(*port);
    if (host.empty() || host == "*") {
        result.addr = bracketed ? "::" : "0.0.0.0";
    } else if (core::iequals(host, "localhost")) {
        result.addr = "127.0.0.1";
    } else {
        result.addr = std::string(host);
        if (bracketed != result.is_ipv6() || !is_numeric_ip(result.addr)) {
            *error = "bad address '" + result.addr + "': expected a numeric IPv4 or [IPv6] address";
            return false;
        }
    }
    *out = std::move(result);
    return true;
}

} // namespace gripd::config
