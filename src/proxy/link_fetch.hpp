// LinkFetchRequest: one next-link GET (grip/next_link.hpp) sent the way a client request to that URL
// would be: routed by the routes snapshot the hold started with, rewritten and signed by the
// forwarding rules, with failover across the route's targets. The whole answer is buffered (bounded)
// and handed to the LinkUser.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/grip/next_link.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/request_parser.hpp"

#include <memory>
#include <string>
#include <vector>

namespace gripd::proxy {

class ProxyService;

class LinkFetchRequest final : public grip::LinkFetch, public http::BackendUser {
  public:
    // `head` is the GET to send (its Host); `grip_last` are the Grip-Last values, added after the
    // forwarding rules (which drop inbound Grip-* headers). `routes` keeps `route` alive.
    LinkFetchRequest(ProxyService& service, std::shared_ptr<const config::RouteTable> routes,
                     const config::Route& route, http::RequestHead head, std::string peer,
                     std::vector<std::string> grip_last, grip::LinkUser& user);
    ~LinkFetchRequest() override;
    void start() override;

    // http::BackendUser
    void on_backend_connected() override;
    void on_backend_connect_failed(int uv_status) override;
    void on_backend_head(http::ResponseHead& head) override;
    void on_backend_body(std::string_view data) override;
    void on_backend_complete() override;
    void on_backend_error(int uv_status, bool retryable) override;

  private:
    void connect_next_target();
    void connect(); // to targets[target_index_]
    void fail(const char* why);

    ProxyService& service_;
    std::shared_ptr<const config::RouteTable> routes_;
    const config::Route& route_;
    http::RequestHead head_;
    std::string peer_;
    std::vector<std::string> grip_last_;
    grip::LinkUser& user_;
    size_t target_index_ = 0;
    http::BackendLease backend_;
    bool retried_ = false;
    bool done_ = false;
    http::ResponseHead response_;
    std::string body_;
};

} // namespace gripd::proxy
