#include "gripd/proxy/proxy_service.hpp"

#include "gripd/core/jwt.hpp"
#include "gripd/core/log.hpp"

#include "gripd/http/forwarding.hpp"
#include "gripd/http/ws_handler.hpp"
#include "gripd/loop/worker.hpp"
#include "proxy_session.hpp"
#include <ctime>

namespace gripd::proxy {

ProxyService::ProxyService(loop::Worker& worker, const config::Settings& settings,
                           std::shared_ptr<const config::RouteTable> routes)
    : worker_(worker), settings_(settings), routes_(std::move(routes)), backends_(worker) {
    backends_.set_limits(static_cast<uint64_t>(settings.connect_timeout) * 1000,
                         static_cast<uint64_t>(settings.idle_timeout) * 1000, 256);
    backends_.set_response_timeout(static_cast<uint64_t>(settings.response_timeout) * 1000);
}

std::unique_ptr<http::Exchange> ProxyService::start_exchange(http::ServerConn& conn,
                                                             http::RequestHead& head) {
    if (head.headers.has("Pushpin-Check")) {
        // Pushpin answers this itself (a liveness probe through load balancers); so do we.
        conn.respond_text(200, "gripd " GRIPD_VERSION ": a Pushpin-compatible GRIP proxy\n");
        return nullptr;
    }
    const std::string* host = head.headers.get("Host");
    std::string_view h = host ? http::host_without_port(*host) : std::string_view();
    bool websocket = head.upgrade && head.headers.has_token("Upgrade", "websocket");
    const config::Route* route = nullptr;
    if (settings_.accept_pushpin_route)
        if (const std::string* id = head.headers.get("Pushpin-Route")) route = routes_->find_by_id(*id);
    if (!route) route = routes_->match(h, head.target, false, websocket);
    if (!route) {
        LOG_INFO("proxy", "%s %s -> no route for host %.*s", head.method.c_str(), head.target.c_str(),
                 static_cast<int>(h.size()), h.data());
        conn.respond_text(502, "No route for host: " + std::string(h) + "\n");
        return nullptr;
    }
    // A client that proves an upstream Grip-Sig is another GRIP proxy: GRIP passes through untouched.
    bool trusted = false;
    if (!settings_.upstream_key.empty())
        if (const std::string* sig = head.headers.get("Grip-Sig"))
            trusted = core::jwt_verify_hs256(*sig, settings_.upstream_key,
                                             static_cast<int64_t>(std::time(nullptr)), nullptr);
    if (websocket) {
        if (!ws_) {
            conn.respond_text(501, "WebSocket not supported\n");
            return nullptr;
        }
        return ws_->start_websocket(conn, *route, routes_, head, trusted);
    }
    // Other upgrades (h2c, ...) are proxied as plain HTTP without the upgrade; the connection ends
    // after the response.
    return std::make_unique<ProxySession>(*this, conn, routes_, *route, head, trusted);
}

void ProxyService::retry(http::ServerConn& client, std::shared_ptr<const config::RouteTable> routes,
                         const config::Route& route, grip::SavedRequest&& request) {
    auto session =
        std::make_unique<ProxySession>(*this, client, std::move(routes), route, request.head, false);
    ProxySession* s = session.get();
    s->set_grip_last(std::move(request.grip_last));
    s->mark_retry();
    client.set_exchange(std::move(session));
    s->on_start();
    if (!request.body.empty()) s->on_request_body(request.body);
    s->on_request_end();
}

void ProxyService::on_request_rejected(http::ServerConn& conn, int status) {
    LOG_INFO("proxy", "rejected request from %s: %d", conn.peer().c_str(), status);
}

} // namespace gripd::proxy
