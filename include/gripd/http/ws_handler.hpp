// WsHandler: where the proxy hands a WebSocket upgrade request once its route is known. The ws
// module implements it (passthrough to a WebSocket backend, or WebSocket-over-HTTP).
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/http/server_conn.hpp"

#include <memory>

namespace gripd::ws {
class ClientCodec;
}

namespace gripd::http {

class WsHandler {
  public:
    virtual ~WsHandler() = default;
    // Returns the exchange that serves this WebSocket (it answers the handshake and then calls
    // client.enter_raw_mode()), or answers an error itself and returns nullptr. `codec` (may be
    // null) re-frames the client's side (SockJS).
    virtual std::unique_ptr<http::Exchange> start_websocket(http::ClientStream& client,
                                                            const config::Route& route,
                                                            std::shared_ptr<const config::RouteTable> routes,
                                                            http::RequestHead& head, bool trusted,
                                                            std::unique_ptr<ws::ClientCodec> codec) = 0;
};

} // namespace gripd::http
