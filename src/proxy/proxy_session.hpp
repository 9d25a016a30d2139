// ProxySession: one client request forwarded to a backend and its response relayed back, read top
// to bottom as stages: start -> connect (with failover) -> send head and body -> relay response.
// A GRIP response is buffered and handed to the GripHandler instead of being relayed.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/server_conn.hpp"

#include <memory>
#include <string>
#include <vector>

namespace gripd::proxy {

class ProxyService;

class ProxySession final : public http::Exchange, public http::BackendUser {
  public:
    ProxySession(ProxyService& service, http::ServerConn& client,
                 std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                 http::RequestHead& head, bool trusted);
    ~ProxySession() override;

    void on_start() override;
    // Grip-Last values for the request sent upstream (a held request asked again, behind).
    void set_grip_last(std::vector<std::string> values) { grip_last_ = std::move(values); }

    // http::Exchange
    void on_request_body(std::string_view data) override;
    void on_request_end() override;
    void on_client_gone() override;
    void on_client_writable() override;
    bool keep_on_client_eof() const override { return !grip_buffering_; }

    // http::BackendUser
    void on_backend_connected(http::BackendConn& conn) override;
    void on_backend_connect_failed(int uv_status) override;
    void on_backend_head(http::ResponseHead& head) override;
    void on_backend_body(std::string_view data) override;
    void on_backend_complete() override;
    void on_backend_error(int uv_status, bool retryable) override;
    void on_backend_writable() override;

  private:
    bool connected() const { return backend_ && !connecting_; }
    void connect_next_target();
    std::string build_upstream_head(const config::Target& target) const;
    void send_upstream(std::string_view bytes);
    void send_body_chunk(std::string_view data);
    void fail(int status, std::string_view message);
    void finish_grip();
    void log_access(int code);

    ProxyService& service_;
    http::ServerConn* client_;
    std::shared_ptr<const config::RouteTable> routes_; // keeps route_ alive across reloads
    const config::Route& route_;
    // What we need of the request after its head was parsed.
    std::string method_;
    std::string uri_;        // as the client sent it (for the access log)
    http::RequestHead head_; // kept until the response starts (retries and failover rebuild from it)
    bool is_head_ = false;
    bool chunked_upstream_ = false;
    bool request_done_ = false;
    // Request bytes sent or waiting to be sent upstream, kept while small so a stale pooled
    // connection can be retried on a fresh one.
    std::string replay_;
    bool replayable_ = true;
    std::string pending_; // request body waiting for the backend connection
    size_t target_index_ = 0;
    http::BackendConn* backend_ = nullptr;
    bool connecting_ = false;
    bool retried_ = false;
    bool response_started_ = false;
    int status_ = 0;
    int64_t bytes_out_ = 0;
    // GRIP: the whole backend response is kept until complete (bounded) and interpreted.
    bool trusted_ = false; // GRIP passes through (an upstream GRIP proxy signed the request)
    std::vector<std::string> grip_last_;
    std::string saved_body_; // the request body, kept (bounded) so a hold can re-send the request
    bool body_saved_ = true; // false once the body outgrew what is kept
    bool grip_buffering_ = false;
    http::ResponseHead grip_head_;
    std::string grip_body_;
};

} // namespace gripd::proxy
