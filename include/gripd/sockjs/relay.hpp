// SockJS's HTTP transports across workers. A session's state (HttpSession) lives on one worker, its
// owner, which is a pure function of the session id (owner_of), so every worker agrees without
// asking. Each listener is opened by every worker (SO_REUSEPORT), so the polls and sends of one
// session arrive on any of them: a request read in full on another worker is relayed to the owner
// (loop::SockjsRelay), which answers it as one of its own and sends the answer back
// (loop::SockjsAnswer); if the client goes away first, its worker tells the owner
// (loop::SockjsGone), which lets the session forget the request. Each side keeps only its own
// objects: the origin its TransportRequest (keyed by token), the owner a TransportRequest standing
// for the remote client. An answer or gone notice for a token the other side no longer knows is
// dropped.
//
// Bounds (test/LIMITS.md): a worker relays at most kMaxRelayed requests at once (503 beyond); a
// relayed request costs its head and body (<= kMaxRequestBody) in the owner's inbox, which refuses
// it past the inbox's data bound (503).
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/headers.hpp"
#include "gripd/http/request_parser.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gripd::sockjs {

constexpr size_t kMaxRelayed = 10000; // gripd: requests one worker has out at other workers

// The worker that owns session `sid` among `workers` (FNV-1a of the id: stable across workers and
// runs).
int owner_of(std::string_view sid, int workers);

// A request as the owner needs it (everything its TransportRequest reads from the client side).
struct RelayedRequest {
    uint64_t token = 0;
    std::shared_ptr<const config::RouteTable> routes; // keeps `route` alive
    const config::Route* route = nullptr;
    http::RequestHead head;
    std::string body;
    bool too_large = false;
    bool trusted = false;
    bool tls = false;
    std::string peer;
};

// The owner's answer to it.
struct RelayedAnswer {
    uint64_t token = 0;
    int status = 0;
    http::Headers headers;
    std::string body;
};

} // namespace gripd::sockjs
