// Next links (Grip-Link: <URL>; rel=next): the backend names a URL the proxy GETs to continue the
// client's response. Its body is appended, and its Grip-* headers say what comes after: another next
// link, a stream hold on (new) channels, or the end. The grip layer decides when to fetch; the
// proxy layer (which knows routes and backends) performs the request behind the LinkFetch handle.
#pragma once

#include "gripd/http/response_parser.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::grip {

// Receives the outcome of one next-link request. Either call may destroy the LinkFetch.
class LinkUser {
  public:
    virtual ~LinkUser() = default;
    virtual void on_link_response(http::ResponseHead& head, std::string& body) = 0;
    // No usable answer: no route, connect or transport failure, an oversized body.
    virtual void on_link_failed(const char* why) = 0;
};

// A next-link request; destroying it abandons the request (no callback follows).
class LinkFetch {
  public:
    virtual ~LinkFetch() = default;
    // Sends the request. The outcome may be reported (and the handle destroyed) before this returns,
    // so the caller keeps the handle first and touches nothing of it afterwards.
    virtual void start() = 0;
};

// Prepares a GET of `url` (as given by the backend, resolved against the client's request) with the
// Grip-Last values for the hold's channels ("name; last-id=ID", may be empty). Returns nullptr when
// the request cannot be made (the URL leaves the request's host, no route).
using FetchLinkFn = std::function<std::unique_ptr<LinkFetch>(
    std::string_view url, const std::vector<std::string>& grip_last, LinkUser& user)>;

struct LinkTarget {
    std::string host;   // Host header value (port kept when the client gave one)
    std::string target; // origin-form request target: path and query
};

// Resolves a link against the client's request (its Host header and request-target). Relative
// references follow RFC 3986 (absolute path, relative path, query only); absolute http(s) URLs and
// network-path references must name the request's own host, since a backend's link cannot send the
// proxy to another site. nullopt when the link is empty, malformed or leaves the host.
std::optional<LinkTarget> resolve_link(std::string_view url, std::string_view request_host,
                                       std::string_view request_target);

} // namespace gripd::grip
