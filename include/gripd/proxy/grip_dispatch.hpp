// GripDispatch: the worker's GripHandler. Parses a GRIP backend response and either relays it
// (no hold), answers 502 (bad instructions), or hands the client to a Response/StreamHold. It also
// re-runs a held request against the backend when a hint publish asks for it, and serves the
// built-in `test` target.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/grip/hold.hpp"
#include "gripd/proxy/grip_handler.hpp"
#include "gripd/stats/gone_stats.hpp"

#include <memory>

namespace gripd::proxy {

class ProxyService;
class LinkShare;
class GoneNotifier;

class GripDispatch final : public GripHandler {
  public:
    GripDispatch(ProxyService& proxy, pubsub::Broker& broker, const config::Settings& settings);
    ~GripDispatch() override;

    bool is_grip(const http::ResponseHead& head) const override;
    GripOutcome on_grip_response(http::ClientStream& client, const config::Route& route,
                                 const std::vector<std::string>& implicit_channels,
                                 std::shared_ptr<const config::RouteTable> routes,
                                 grip::SavedRequest&& request, http::ResponseHead&& head,
                                 std::string&& body) override;
    GripOutcome serve_test(http::ClientStream& client, const config::Route& route,
                           const http::RequestHead& head,
                           std::shared_ptr<const http::CrossOrigin> cross_origin) override;

    grip::HoldStats& stats() { return stats_; }
    const stats::GoneStats& gone_stats() const { return gone_stats_; }
    // Server stop: every hold answers now (long-polls their timeout response, streams end cleanly).
    void stop_holds();
    // POST /recover (through the broker's hook): every live hold asks the backend again, paced as
    // Pushpin paces its low-priority updates (kRecoverBatch holds per kRecoverIntervalMs per
    // worker), so a recover does not send every held request to the backend at once.
    void recover_holds();
    static constexpr size_t kRecoverBatch = 100;
    static constexpr uint64_t kRecoverIntervalMs = 100;

  private:
    void start_hold(http::ClientStream& client, const config::Route& route,
                    std::shared_ptr<const config::RouteTable> routes, grip::SavedRequest&& request,
                    grip::Instruct&& instruct);
    grip::HoldEnv env();
    // A whole answer that is not held, CORS or JSON-P (as Pushpin's proxy writes it) applied.
    static void respond(http::ClientStream& client, const http::CrossOrigin* co, int code, std::string reason,
                        http::Headers headers, std::string body);
    // How a hold of this client follows next links: resolved against `request`, routed by `routes`.
    // What a hold of this client runs when it ends, for the instructions' gone link (empty when the
    // link cannot be followed: another host, or no route).
    std::function<void()> gone_sender(http::ClientStream& client,
                                      const std::shared_ptr<const config::RouteTable>& routes,
                                      const http::RequestHead& request, const std::string& url);
    grip::FetchLinkFn link_fetcher(http::ClientStream& client,
                                   std::shared_ptr<const config::RouteTable> routes,
                                   const http::RequestHead& request);

    ProxyService& proxy_;
    pubsub::Broker& broker_;
    const config::Settings& settings_;
    grip::HoldStats stats_;
    stats::GoneStats gone_stats_;
    std::unique_ptr<GoneNotifier> gone_; // gone-link requests (gone_notifier.hpp)
    std::unique_ptr<LinkShare> links_;   // next-link request collapsing (link_share.hpp)
    static void on_recover_tick(void* self);
    core::IntrusiveList<grip::Hold, &grip::Hold::dispatch_link> holds_;
    // Holds a recover has yet to ask again (moved here from holds_, back when their turn comes).
    core::IntrusiveList<grip::Hold, &grip::Hold::dispatch_link> recovering_;
    loop::TimerEntry recover_timer_;
};

} // namespace gripd::proxy
