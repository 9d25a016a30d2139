#include "gripd/ws/ws_service.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/ws/handshake.hpp"
#include "passthrough_session.hpp"
#include "session.hpp"
#include "test_session.hpp"
#include "woh_session.hpp"

namespace gripd::ws {

WsService::WsService(loop::Worker& worker, const config::Settings& settings, pubsub::Broker& broker,
                     http::BackendPool& backends)
    : worker_(worker), settings_(settings), broker_(broker), backends_(backends) {}

WsService::~WsService() {
    // The loop has ended and every connection is closed: sessions' leases and handles are empty, so
    // destroying what is left touches no connection.
    sessions_.clear();
}

std::unique_ptr<http::Exchange> WsService::start_websocket(http::ClientStream& client,
                                                           const config::Route& route,
                                                           std::shared_ptr<const config::RouteTable> routes,
                                                           http::RequestHead& head, bool trusted,
                                                           std::unique_ptr<ClientCodec> codec) {
    UpgradeCheck check = check_upgrade(head);
    if (!check.ok()) {
        LOG_DEBUG("ws", "refused WebSocket handshake from %s: %d", client.peer().c_str(), check.status);
        http::Headers h;
        h.add("Content-Type", "text/plain");
        if (check.status == 426) h.add("Sec-WebSocket-Version", "13");
        client.respond(check.status, {}, h, check.message);
        if (!client.is_closing()) client.close_after_flush();
        return nullptr;
    }
    size_t index = 0;
    while (index < route.targets.size() && route.targets[index].type != config::TargetType::Default &&
           route.targets[index].type != config::TargetType::Test)
        ++index;
    if (index == route.targets.size()) {
        http::Headers h;
        h.add("Content-Type", "text/plain");
        client.respond(502, {}, h, "Error while proxying to origin.\n");
        if (!client.is_closing()) client.close_after_flush();
        return nullptr;
    }
    std::unique_ptr<Session> session;
    if (route.targets[index].type == config::TargetType::Test) {
        session = std::make_unique<TestSession>(*this, client, std::move(routes), route, head);
    } else if (route.targets[index].over_http) {
        session = std::make_unique<WohSession>(*this, client, std::move(routes), route, trusted, head, index);
    } else {
        session = std::make_unique<PassthroughSession>(*this, client, std::move(routes), route, trusted, head,
                                                       index);
    }
    if (codec) session->set_codec(std::move(codec));
    auto link = std::make_unique<ClientLink>(session.get());
    session->set_link(link.get());
    sessions_.push_back(std::move(session));
    return link;
}

void WsService::release(Session& session) {
    worker_.defer_delete(sessions_.take(session)); // no-op when released already
}

// A scan of this worker's sessions: `refresh {cid}` is a rare command, and an index by id would cost
// every idle WebSocket a hash node or two (the 2 KiB budget, test_idle_websockets_are_small).
bool WsService::refresh_connection(std::string_view id) {
    Session* found = nullptr;
    sessions_.for_each([&](SessionNode& n) {
        auto& s = static_cast<Session&>(n);
        if (!found && !id.empty() && (s.backend_connection_id() == id || s.stats_conn_id() == id)) found = &s;
    });
    if (!found) return false;
    found->refresh();
    return true;
}

void WsService::stop_all() {
    sessions_.for_each([](SessionNode& n) { static_cast<Session&>(n).stop(); });
}

} // namespace gripd::ws
