// WsService: the worker's WebSocket engine (implements http::WsHandler). For each client upgrade it
// checks the handshake (400/426), then runs a session on this worker:
//  - WebSocket-over-HTTP (over_http targets, PROTOCOL.md §5.2): client frames become batched events
//    POSTed on the worker's backend pool; the first response's headers go on the client's 101;
//  - passthrough (other targets, §5.1): frames relayed to a WebSocket backend connection.
// Both speak the `grip` extension (`c:` control messages, message prefix) and receive ws-message
// publishes through the broker.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/core/owning_list.hpp"
#include "gripd/http/backend_pool.hpp"
#include "gripd/http/ws_handler.hpp"
#include "gripd/loop/deletable.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/stats/ws_stats.hpp"
#include "gripd/ws/client_codec.hpp"

#include <cstddef>
#include <memory>
#include <string_view>

namespace gripd::loop {
class Worker;
}

namespace gripd::ws {

class Session;

// The WebSocket statistics and their modes live in the stats module, which the metrics read.
using stats::WsMode;
using stats::WsStats;

// What the service keeps per session: the list link (Session derives from it).
class SessionNode : public loop::Deletable {
  public:
    core::ListHook service_link;
};

struct WsLimits {
    // A client further behind than this when a publish or keep-alive is written is cut off (relayed
    // backend data is flow-controlled instead).
    size_t max_client_queue = 4 * 1024 * 1024;
    uint64_t max_frame = 1 << 20;     // passthrough: payload bytes of one client frame
    uint64_t max_message = 200000;    // over_http: bytes of one client message (Pushpin's buffer)
    uint64_t close_timeout_ms = 5000; // wait for the peer's close frame
};

class WsService final : public http::WsHandler {
  public:
    WsService(loop::Worker& worker, const config::Settings& settings, pubsub::Broker& broker,
              http::BackendPool& backends);
    ~WsService() override;
    WsService(const WsService&) = delete;
    WsService& operator=(const WsService&) = delete;

    std::unique_ptr<http::Exchange> start_websocket(http::ClientStream& client, const config::Route& route,
                                                    std::shared_ptr<const config::RouteTable> routes,
                                                    http::RequestHead& head, bool trusted,
                                                    std::unique_ptr<ClientCodec> codec) override;

    // Server stop: every client gets a 1001 close and backend sides are dropped.
    void stop_all();

    // The command socket's `refresh` by connection id (handed to every worker through the inbox):
    // the session with that id (its WebSocket-over-HTTP Connection-Id, or its `conn` stats id) is
    // refreshed as by a ws-message publish with action refresh. False: no session here has it.
    bool refresh_connection(std::string_view id);

    const WsStats& stats() const { return stats_; }
    size_t session_count() const { return sessions_.size(); }

    // --- used by sessions ---
    loop::Worker& worker() { return worker_; }
    const config::Settings& settings() const { return settings_; }
    pubsub::Broker& broker() { return broker_; }
    http::BackendPool& backends() { return backends_; }
    WsStats& mutable_stats() { return stats_; }
    const WsLimits& limits() const { return limits_; }
    void set_limits_for_test(const WsLimits& l) { limits_ = l; }
    // A session belongs to the service from its start; release() frees it after the current loop
    // iteration (it may be deep in its own callbacks when it ends).
    void release(Session& session);

  private:
    loop::Worker& worker_;
    const config::Settings& settings_;
    pubsub::Broker& broker_;
    http::BackendPool& backends_;
    WsStats stats_;
    WsLimits limits_;
    core::OwningList<SessionNode, &SessionNode::service_link> sessions_;
};

} // namespace gripd::ws
