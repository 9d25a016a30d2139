// ProxyService: the client-facing HTTP service of one worker. It routes each request with the
// current routes snapshot and runs a ProxySession for it. Also owns the worker's backend pool.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/grip/hold.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/http/server_conn.hpp"

#include <memory>
#include <vector>

namespace gripd::http {
class WsHandler;
}

namespace gripd::sockjs {
class HttpTransports;
}

namespace gripd::proxy {

class GripHandler;
class RequestShare;

class ProxyService final : public http::Service {
  public:
    ProxyService(loop::Worker& worker, const config::Settings& settings,
                 std::shared_ptr<const config::RouteTable> routes);
    ~ProxyService() override;

    // http::Service
    std::unique_ptr<http::Exchange> start_exchange(http::ClientStream& conn,
                                                   http::RequestHead& head) override;
    size_t max_header_bytes() const override { return static_cast<size_t>(settings_.client_buffer_size); }
    uint64_t idle_timeout_ms() const override { return static_cast<uint64_t>(settings_.idle_timeout) * 1000; }
    uint64_t header_timeout_ms() const override {
        return static_cast<uint64_t>(settings_.header_timeout) * 1000;
    }
    uint64_t body_timeout_ms() const override { return static_cast<uint64_t>(settings_.body_timeout) * 1000; }
    uint64_t send_timeout_ms() const override { return static_cast<uint64_t>(settings_.send_timeout) * 1000; }
    const char* log_target() const override { return "proxy"; }
    void on_request_rejected(http::ClientStream& conn, int status) override;

    // Swaps in a new routes snapshot; sessions already running keep the one they started with.
    void set_routes(std::shared_ptr<const config::RouteTable> routes) { routes_ = std::move(routes); }
    const std::shared_ptr<const config::RouteTable>& routes() const { return routes_; }

    // Sends a held request to the backend again (a hint publish) as a new session for `client`.
    void retry(http::ClientStream& client, std::shared_ptr<const config::RouteTable> routes,
               const config::Route& route, grip::SavedRequest&& request);

    // Where GRIP responses go (set by the wiring once the GRIP engine exists on this worker).
    void set_grip_handler(GripHandler* h) { grip_ = h; }
    GripHandler* grip_handler() const { return grip_; }
    // Where WebSocket upgrades go (set by the wiring once the ws module exists on this worker).
    void set_ws_handler(http::WsHandler* h) { ws_ = h; }

    // Every worker, for SockJS sessions whose requests land on other workers (sockjs/relay.hpp).
    void set_workers(std::vector<loop::Worker*> workers) { workers_ = std::move(workers); }
    // SockJS's HTTP-transport sessions of this worker (created on first use).
    sockjs::HttpTransports& sockjs();

    loop::Worker& worker() { return worker_; }
    const config::Settings& settings() const { return settings_; }
    http::BackendPool& backends() { return backends_; }
    http::ConnSet& conns() { return conns_; }
    // share_all's groups of identical requests (request_share.hpp).
    RequestShare& shares() { return *shares_; }

  private:
    void respond_no_route(http::ClientStream& conn, http::RequestHead& head, std::string_view host);
    std::unique_ptr<http::Exchange> start_cross_origin(http::ClientStream& conn, const config::Route& route,
                                                       http::RequestHead& head, bool trusted);
    // The request's CORS facts, with a JSON-P call rewritten (its body to `body`); null when the
    // call is bad: the client has had its 400 then.
    std::shared_ptr<const http::CrossOrigin> cross_origin(http::ClientStream& conn,
                                                          const config::Route& route, http::RequestHead& head,
                                                          std::string* body = nullptr);

    loop::Worker& worker_;
    const config::Settings& settings_;
    std::shared_ptr<const config::RouteTable> routes_;
    // Before the connections: a session freed with them may still release its share group.
    std::unique_ptr<RequestShare> shares_;
    http::BackendPool backends_;
    // SockJS's HTTP-transport sessions (created on first use); freed after the connections, whose
    // waiting polls point at them.
    std::unique_ptr<sockjs::HttpTransports> sockjs_;
    std::vector<loop::Worker*> workers_;
    http::ConnSet conns_;
    GripHandler* grip_ = nullptr;
    http::WsHandler* ws_ = nullptr;
};

} // namespace gripd::proxy
