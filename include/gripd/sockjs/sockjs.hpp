// SockJS (route option `sockjs=PATH`, PROTOCOL.md §6.11), as Pushpin 1.36 serves it
// (src/proxy/sockjsmanager.cpp, sockjssession.cpp): requests under a route's sockjs path are
// answered here (`/info`, `/iframe*.html`, OPTIONS) or become WebSocket sessions toward the route's
// backend (WebSocket-over-HTTP or passthrough, as the route says): `/websocket` unchanged and
// `/<server>/<session>/websocket` with SockJS's framing (a ws::ClientCodec); the HTTP transports
// (xhr, jsonp polling and their sends) through HttpTransports (http_transport.hpp).
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/client_stream.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/ws/client_codec.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::sockjs {

// Heartbeat of a framed WebSocket session ("h"), as Pushpin's KEEPALIVE_TIMEOUT.
constexpr uint64_t kHeartbeatMs = 25000;
// The largest backend message re-framed for a client (Pushpin: twice its 200,000-byte buffer).
constexpr size_t kMaxMessage = 400000;

struct Request {
    enum class Kind : uint8_t {
        None,           // not under the route's sockjs path: proxied as usual
        Http,           // answered by answer_http()
        HttpTransport,  // `/<server>/<session>/<transport>` over HTTP: HttpTransports (http_transport.hpp)
        RawWebSocket,   // `/websocket`: proxied as a plain WebSocket to `upstream_target`
        FramedWebSocket // `/<server>/<session>/websocket`: SockJS framing, to `upstream_target`
    };
    Kind kind = Kind::None;
    std::string upstream_target; // WebSocket kinds: the path (and query) the backend gets
};

// What `head` is for `route` (websocket: an upgrade request). A WebSocket request under the path
// that is neither transport gets Kind::Http (answer_http() answers it 404, as Pushpin).
Request classify(const config::Route& route, const http::RequestHead& head, bool websocket);

// The headers Pushpin adds to every SockJS answer (after the answer's own): no caching, and CORS
// for the request's Origin (or `*`) with credentials.
void add_common_headers(http::Headers& h, const http::RequestHead& head);

// Answers a SockJS request that is not a WebSocket (or a WebSocket to no transport): OPTIONS 204,
// GET `/info`, GET `/iframe*.html` (the page loads `sockjs_url`; ETag, 304), else 404.
void answer_http(http::ClientStream& conn, const config::Route& route, const http::RequestHead& head,
                 const std::string& sockjs_url);

// The framing of SockJS's WebSocket transport: "o" on open, "h" heartbeats, each backend message
// as `a["..."]`, each client text message a JSON array of strings (one message each).
std::unique_ptr<ws::ClientCodec> make_framed_codec();

// `s` as a JSON string (quoted; bytes that are not UTF-8 become U+FFFD, as Qt's fromUtf8).
void append_json_string(std::string& out, std::string_view s);
// A client payload: a JSON array of strings. False if it is anything else.
bool decode_messages(std::string_view json, std::vector<std::string>& out);

} // namespace gripd::sockjs
