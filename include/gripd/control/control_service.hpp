// ControlService: the control API (Pushpin's handler HTTP input, default 127.0.0.1:5561) served by
// every worker: GET / ("Pushpin API"), POST /publish[/], POST /recover, with Pushpin 1.36's status
// codes and texts (PROTOCOL.md §4.1). Publishing goes through the worker's PublishQueue
// (src/control/publish_queue.hpp: in arrival order, in slices of a bounded number of items per loop
// turn) to its Broker; the reply is sent once every item has been accepted by its channel's shard
// owner, so publishes answered in order are delivered in that order.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/http/server_conn.hpp"

#include <memory>
#include <uv.h>

namespace gripd::pubsub {
class Broker;
}

namespace gripd::control {

struct ControlStats;

class PublishQueue;

class ControlService final : public http::Service {
  public:
    // `loop` is the worker's: publishes are sliced over its turns.
    ControlService(const config::Settings& settings, pubsub::Broker& broker, uv_loop_t* loop);
    ~ControlService() override;

    std::unique_ptr<http::Exchange> start_exchange(http::ClientStream& conn,
                                                   http::RequestHead& head) override;
    size_t max_header_bytes() const override {
        return static_cast<size_t>(settings_.push_in_http_max_headers_size);
    }
    uint64_t idle_timeout_ms() const override { return static_cast<uint64_t>(settings_.idle_timeout) * 1000; }
    uint64_t header_timeout_ms() const override {
        return static_cast<uint64_t>(settings_.header_timeout) * 1000;
    }
    uint64_t body_timeout_ms() const override { return static_cast<uint64_t>(settings_.body_timeout) * 1000; }
    uint64_t send_timeout_ms() const override { return static_cast<uint64_t>(settings_.send_timeout) * 1000; }
    const char* log_target() const override { return "control"; }
    void rejection(int* status, std::string* message) const override;

    http::ConnSet& conns() { return conns_; }
    pubsub::Broker& broker() { return broker_; }
    PublishQueue& publishes() { return *publishes_; }
    const config::Settings& settings() const { return settings_; }

  private:
    const config::Settings& settings_;
    pubsub::Broker& broker_;
    std::unique_ptr<PublishQueue> publishes_;
    http::ConnSet conns_;
};

} // namespace gripd::control
