#include "gripd/proxy/proxy_service.hpp"

#include "gripd/core/jwt.hpp"
#include "gripd/core/log.hpp"

#include "gripd/http/forwarding.hpp"
#include "gripd/http/jsonp_request.hpp"
#include "gripd/http/jsonp_response.hpp"
#include "gripd/http/ws_handler.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/sockjs/http_transport.hpp"
#include "gripd/sockjs/sockjs.hpp"
#include "proxy_session.hpp"
#include "request_share.hpp"
#include <ctime>

namespace gripd::proxy {

ProxyService::ProxyService(loop::Worker& worker, const config::Settings& settings,
                           std::shared_ptr<const config::RouteTable> routes)
    : worker_(worker), settings_(settings), routes_(std::move(routes)), backends_(worker) {
    backends_.set_limits(static_cast<uint64_t>(settings.connect_timeout) * 1000,
                         static_cast<uint64_t>(settings.idle_timeout) * 1000, 256);
    backends_.set_response_timeout(static_cast<uint64_t>(settings.response_timeout) * 1000);
    backends_.set_max_per_target(static_cast<size_t>(settings.max_backend_conns_per_target));
    shares_ = std::make_unique<RequestShare>(*this);
    stats_events = true; // client requests are Pushpin's `conn` and `activity` stats events
}

ProxyService::~ProxyService() = default;

sockjs::HttpTransports& ProxyService::sockjs() {
    if (!sockjs_) sockjs_ = std::make_unique<sockjs::HttpTransports>(worker_, ws_, workers_);
    return *sockjs_;
}

std::unique_ptr<http::Exchange> ProxyService::start_exchange(http::ClientStream& conn,
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
    if (!route) route = routes_->match(h, head.target, conn.is_tls(), websocket);
    if (!route) {
        respond_no_route(conn, head, h);
        return nullptr;
    }
    // A client that proves an upstream Grip-Sig is another GRIP proxy: GRIP passes through untouched.
    bool trusted = false;
    if (settings_.upstream_key)
        if (const std::string* sig = head.headers.get("Grip-Sig"))
            trusted = core::cached_jwt_verify(*sig, settings_.upstream_key,
                                              static_cast<int64_t>(std::time(nullptr)));
    // SockJS (route option sockjs=) before anything else, as Pushpin.
    std::unique_ptr<ws::ClientCodec> codec;
    if (!route->sockjs_path.empty()) {
        sockjs::Request sj = sockjs::classify(*route, head, websocket && ws_);
        if (sj.kind == sockjs::Request::Kind::HttpTransport) {
            return sockjs().start(conn, routes_, *route, head, trusted);
        }
        if (sj.kind == sockjs::Request::Kind::Http) {
            sockjs::answer_http(conn, *route, head, settings_.sockjs_url);
            return nullptr;
        }
        if (sj.kind != sockjs::Request::Kind::None) head.target = std::move(sj.upstream_target);
        if (sj.kind == sockjs::Request::Kind::FramedWebSocket) codec = sockjs::make_framed_codec();
    }
    if (websocket) {
        if (!ws_) {
            conn.respond_text(501, "WebSocket not supported\n");
            return nullptr;
        }
        return ws_->start_websocket(conn, *route, routes_, head, trusted, std::move(codec));
    }
    // Other upgrades (h2c, ...) are proxied as plain HTTP without the upgrade; the connection ends
    // after the response.
    if (!settings_.auto_cross_origin && !route->aco) {
        if (settings_.share_all && !trusted && http::grip_enabled(*route)) {
            std::string key = RequestShare::key(*route, head, conn.is_tls());
            if (!key.empty()) {
                if (auto waiter = shares_->join(key, conn, routes_, *route, head)) return waiter;
                auto leader = std::make_unique<ProxySession>(*this, conn, routes_, *route, head, trusted);
                leader->set_share(shares_->lead(key));
                return leader;
            }
        }
        return std::make_unique<ProxySession>(*this, conn, routes_, *route, head, trusted);
    }
    return start_cross_origin(conn, *route, head, trusted);
}

// No route for the request's host: 502 with Pushpin's text (in JSON-P too, with CORS on).
void ProxyService::respond_no_route(http::ClientStream& conn, http::RequestHead& head, std::string_view h) {
    LOG_INFO("proxy", "%s %s -> no route for host %.*s", head.method.c_str(), head.target.c_str(),
             static_cast<int>(h.size()), h.data());
    std::string text = "No route for host: " + std::string(h) + "\n";
    std::shared_ptr<const http::CrossOrigin> co;
    if (settings_.auto_cross_origin) {
        // As Pushpin: the JSON-P parameters are read with a route's defaults (a bad one is a 400).
        static const config::Route kNoRoute;
        co = cross_origin(conn, kNoRoute, head);
        if (!co) return; // answered 400
    }
    int code = 502;
    std::string reason;
    http::Headers headers;
    headers.add("Content-Type", "text/plain");
    headers.add("Content-Length", std::to_string(text.size())); // as Pushpin: in a JSON-P header map
    http::finish_cross_origin(co.get(), http::JsonpStyle::Relayed, code, reason, headers, text);
    conn.respond(code, reason, headers, text);
}

// CORS is on: a JSON-P call is rewritten (or refused, 400) before it is proxied.
std::unique_ptr<http::Exchange> ProxyService::start_cross_origin(http::ClientStream& conn,
                                                                 const config::Route& route,
                                                                 http::RequestHead& head, bool trusted) {
    std::string jsonp_body;
    auto co = cross_origin(conn, route, head, &jsonp_body);
    if (!co) return nullptr;
    return std::make_unique<ProxySession>(*this, conn, routes_, route, head, trusted, std::move(co),
                                          std::move(jsonp_body));
}

std::shared_ptr<const http::CrossOrigin> ProxyService::cross_origin(http::ClientStream& conn,
                                                                    const config::Route& route,
                                                                    http::RequestHead& head,
                                                                    std::string* body) {
    http::JsonpCall call = http::rewrite_jsonp_request(head, route);
    auto co = std::make_shared<http::CrossOrigin>(http::cross_origin_of(head.headers));
    if (call.kind == http::JsonpCall::Kind::Invalid) {
        LOG_INFO("proxy", "%s %s -> 400 %s", head.method.c_str(), head.target.c_str(), call.error.c_str());
        int code = 400;
        std::string reason, text = call.error + "\n";
        http::Headers headers;
        headers.add("Content-Type", "text/plain");
        http::finish_cross_origin(co.get(), http::JsonpStyle::Relayed, code, reason, headers, text);
        conn.respond(code, reason, headers, text);
        return nullptr;
    }
    if (call.kind == http::JsonpCall::Kind::Call) {
        co->jsonp_callback = std::move(call.callback);
        co->jsonp_extended = call.extended;
        if (body) *body = std::move(call.body);
    }
    return co;
}

void ProxyService::retry(http::ClientStream& client, std::shared_ptr<const config::RouteTable> routes,
                         const config::Route& route, grip::SavedRequest&& request) {
    if (!request.head.chunked && request.head.content_length >= 0 &&
        request.body.size() != static_cast<size_t>(request.head.content_length)) {
        // The body kept is what goes again: its framing must say so (a hold that started before
        // the client's whole body arrived keeps only part of it).
        LOG_DEBUG("proxy", "retrying with the %zu body bytes kept (Content-Length was %lld)",
                  request.body.size(), static_cast<long long>(request.head.content_length));
        request.head.content_length = static_cast<int64_t>(request.body.size());
    }
    auto session = std::make_unique<ProxySession>(*this, client, std::move(routes), route, request.head,
                                                  false, std::move(request.cross_origin));
    ProxySession* s = session.get();
    s->set_grip_last(std::move(request.grip_last));
    s->mark_retry();
    client.set_exchange(std::move(session));
    s->on_start();
    if (!request.body.empty()) s->on_request_body(request.body);
    s->on_request_end();
}

void ProxyService::on_request_rejected(http::ClientStream& conn, int status) {
    LOG_INFO("proxy", "rejected request from %s: %d", conn.peer().c_str(), status);
}

} // namespace gripd::proxy
