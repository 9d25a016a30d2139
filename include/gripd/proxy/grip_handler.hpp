// GripHandler: where a ProxySession hands a backend response that carries GRIP instructions. The
// GRIP engine implements it (holds, publishes); the proxy only detects and buffers.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/grip/hold.hpp"
#include "gripd/http/response_parser.hpp"
#include "gripd/http/server_conn.hpp"

#include <memory>
#include <string>

namespace gripd::proxy {

// What the handler did with a GRIP response (for the access line).
struct GripOutcome {
    bool held = false;      // the client is held (a hold took it over)
    int code = 0;           // else: the status it was answered with
    int64_t body_bytes = 0; // and the body's size
};

class GripHandler {
  public:
    virtual ~GripHandler() = default;
    // True if this response is GRIP (instruct content type or any Grip-* header).
    virtual bool is_grip(const http::ResponseHead& head) const = 0;
    // Takes over the client: answers it (relay, error) or holds it (client.set_exchange(hold)).
    // `request` is the original request (body included when it was small enough to keep) so that a
    // hold can ask the backend again. `implicit_channels`: the answering target's `sub=` channels.
    virtual GripOutcome on_grip_response(http::ClientStream& client, const config::Route& route,
                                         const std::vector<std::string>& implicit_channels,
                                         std::shared_ptr<const config::RouteTable> routes,
                                         grip::SavedRequest&& request, http::ResponseHead&& head,
                                         std::string&& body) = 0;
    // Serves a request for a built-in `test` target (Pushpin's test handler); `cross_origin` as for
    // any other answer (null: CORS off). Says what it did.
    virtual GripOutcome serve_test(http::ClientStream& client, const config::Route& route,
                                   const http::RequestHead& head,
                                   std::shared_ptr<const http::CrossOrigin> cross_origin) = 0;
};

} // namespace gripd::proxy
