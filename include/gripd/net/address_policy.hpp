// The outbound access policy of an `untrusted` target (routes file): such a target may not reach
// internal addresses. Pushpin 1.36 applies zurl's shipped policy (deny 127.*, 10.*, 192.168.*,
// *.local, checked against the name and the address it resolves to); gripd denies the private
// subnets of Pushpin's later connmgr `--deny-out-internal` (a superset: 127.0.0.0/8, 10.0.0.0/8,
// 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, ::1, fc00::/7, fe80::/10), plus what reaches this
// host anyway (0.0.0.0/8, ::, IPv4-mapped IPv6 of any of these) and names ending in `.local`.
#pragma once

#include <string_view>
#include <sys/socket.h>

namespace gripd::net {

// Whether an untrusted target may not connect to this address.
bool is_internal_address(const sockaddr* addr);
// Whether an untrusted target may not be looked up under this name (`*.local`, as zurl).
bool is_internal_name(std::string_view host);

} // namespace gripd::net
