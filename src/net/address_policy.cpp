#include "gripd/net/address_policy.hpp"

#include "gripd/core/strings.hpp"

#include <cstdint>
#include <cstring>
#include <netinet/in.h>

namespace gripd::net {

namespace {

bool internal_v4(uint32_t a) { // host byte order
    auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
    return in(0x7f000000u, 8) ||  // 127.0.0.0/8 loopback
           in(0x0a000000u, 8) ||  // 10.0.0.0/8
           in(0xac100000u, 12) || // 172.16.0.0/12
           in(0xc0a80000u, 16) || // 192.168.0.0/16
           in(0xa9fe0000u, 16) || // 169.254.0.0/16 link-local
           in(0x00000000u, 8);    // 0.0.0.0/8: connects to this host on Linux
}

} // namespace

bool is_internal_address(const sockaddr* addr) {
    if (addr->sa_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
        return internal_v4(ntohl(v4->sin_addr.s_addr));
    }
    if (addr->sa_family != AF_INET6) return true; // nothing else is a backend
    const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) {
        uint32_t a = (uint32_t(b[12]) << 24) | (uint32_t(b[13]) << 16) | (uint32_t(b[14]) << 8) | b[15];
        return internal_v4(a);
    }
    bool zero_prefix = true; // :: and ::1
    for (int i = 0; i < 15; ++i)
        zero_prefix = zero_prefix && b[i] == 0;
    if (zero_prefix && (b[15] == 0 || b[15] == 1)) return true;
    if ((b[0] & 0xfe) == 0xfc) return true;                 // fc00::/7 unique local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true; // fe80::/10 link-local
    return false;
}

bool is_internal_name(std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    std::string_view suffix = ".local";
    return host.size() >= suffix.size() && core::iequals(host.substr(host.size() - suffix.size()), suffix);
}

} // namespace gripd::net
