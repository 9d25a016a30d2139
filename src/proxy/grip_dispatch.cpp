#include "gripd/proxy/grip_dispatch.hpp"

#include "gone_notifier.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/core/url_query.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/jsonp_response.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/proxy/proxy_service.hpp"
#include "link_fetch.hpp"
#include "link_share.hpp"

namespace gripd::proxy {

namespace {
// A stream client further behind than this is cut off (it would otherwise grow without bound).
// Published bytes are shared between subscribers (a queue holds references, not copies), so the
// cap bounds how far behind a client may fall more than the memory it costs.
constexpr size_t kMaxQueuedPerClient = 8 * 1024 * 1024;
} // namespace

GripDispatch::GripDispatch(ProxyService& proxy, pubsub::Broker& broker, const config::Settings& settings)
    : proxy_(proxy), broker_(broker), settings_(settings),
      gone_(std::make_unique<GoneNotifier>(proxy.worker(), gone_stats_, gone_requests_through(proxy))),
      links_(std::make_unique<LinkShare>()) {
    // Registered before the server's own hooks, so these run first: a stop sends what is queued
    // without more retries; closing drops what is left before the connections are torn down.
    proxy_.worker().on_stop([this](loop::Worker&) { gone_->stop(); });
    proxy_.worker().on_close_all([this](loop::Worker&) { gone_->close(); });
    recover_timer_.init(&proxy_.worker().timers(), this, &GripDispatch::on_recover_tick);
    broker_.set_recover_hook([this] { recover_holds(); });
}

GripDispatch::~GripDispatch() {
    broker_.set_recover_hook({});
}

void GripDispatch::recover_holds() {
    holds_.for_each([this](grip::Hold& h) {
        h.dispatch_link.unlink();
        recovering_.push_back(h);
    });
    // On the next tick, not here: the recover request's handler is still on the stack.
    if (!recover_timer_.is_armed()) recover_timer_.arm(0);
}

void GripDispatch::on_recover_tick(void* p) {
    auto* self = static_cast<GripDispatch*>(p);
    for (size_t n = 0; n < kRecoverBatch && !self->recovering_.empty(); ++n) {
        grip::Hold* h = self->recovering_.front();
        h->dispatch_link.unlink();
        self->holds_.push_back(*h);
        h->recover(); // may end (and free) h: nothing after it
    }
    if (!self->recovering_.empty()) self->recover_timer_.arm(kRecoverIntervalMs);
}

grip::HoldEnv GripDispatch::env() {
    return grip::HoldEnv{proxy_.worker(), broker_, stats_, kMaxQueuedPerClient};
}

bool GripDispatch::is_grip(const http::ResponseHead& head) const {
    return grip::is_grip_response(head.headers);
}

GripOutcome GripDispatch::on_grip_response(http::ClientStream& client, const config::Route& route,
                                           const std::vector<std::string>& implicit_channels,
                                           std::shared_ptr<const config::RouteTable> routes,
                                           grip::SavedRequest&& request, http::ResponseHead&& head,
                                           std::string&& body) {
    grip::InstructResult r = grip::parse_instruct(head.status, head.reason, head.headers, body);
    if (!r.ok) {
        LOG_WARN("grip", "%s %s: bad GRIP instructions from backend: %s", request.head.method.c_str(),
                 request.head.target.c_str(), r.error.c_str());
        std::string text = settings_.debug || route.debug ? grip::grip_error_text(r.error)
                                                          : std::string("Error while proxying to origin.\n");
        http::Headers h;
        h.add("Content-Type", "text/plain");
        h.add("Content-Length", std::to_string(text.size())); // as Pushpin: in a JSON-P header map
        auto n = static_cast<int64_t>(text.size());
        respond(client, request.cross_origin.get(), 502, {}, std::move(h), std::move(text));
        return GripOutcome{false, 502, n};
    }
    grip::Instruct& in = r.instruct;
    in.implicit_channels = implicit_channels;
    if (in.hold == grip::HoldMode::None && !in.next_link) {
        in.response.headers.remove("Content-Length"); // recomputed (and not part of a JSON-P header map)
        GripOutcome out{false, in.response.code, static_cast<int64_t>(in.response.body.size())};
        respond(client, request.cross_origin.get(), in.response.code, std::move(in.response.reason),
                std::move(in.response.headers), std::move(in.response.body));
        return out;
    }
    start_hold(client, route, std::move(routes), std::move(request), std::move(in));
    return GripOutcome{true};
}

void GripDispatch::start_hold(http::ClientStream& client, const config::Route& route,
                              std::shared_ptr<const config::RouteTable> routes, grip::SavedRequest&& request,
                              grip::Instruct&& instruct) {
    size_t max_channels = static_cast<size_t>(settings_.connection_subscription_max);
    // As Pushpin: a stream gets CORS headers (never a JSON-P wrapper); a long-poll gets either when
    // it is answered.
    if (request.cross_origin && instruct.hold != grip::HoldMode::Response)
        http::apply_cors_headers(*request.cross_origin, instruct.response.headers);
    std::function<void()> gone;
    if (instruct.gone_link) gone = gone_sender(client, routes, request.head, instruct.gone_link->url);
    // History (README "History and resume"): on when the route or [gripd] keeps some.
    std::optional<grip::HoldResume> resume;
    int history_size = route.history_size >= 0 ? route.history_size : settings_.history_size;
    if (history_size > 0) {
        resume.emplace();
        if (route.history_size >= 0 || route.history_ttl >= 0)
            resume->bounds = pubsub::HistoryBounds{
                static_cast<uint32_t>(history_size), static_cast<uint64_t>(settings_.history_channel_bytes),
                static_cast<uint64_t>(route.history_ttl >= 0 ? route.history_ttl : settings_.history_ttl) *
                    1000};
        if (const std::string* v = request.head.headers.get("Last-Event-ID"))
            resume->last_event_id = *v;
        else if (auto q = core::query_param(request.head.target, "lastEventID"))
            resume->last_event_id = std::move(*q);
    }
    std::string connection_id = std::move(request.connection_id);
    bool response_sent = request.response_sent;
    std::unique_ptr<grip::Hold> hold;
    if (instruct.hold == grip::HoldMode::None) {
        // No hold but a next link: the response is streamed, and goes on with what the link answers.
        instruct.channels.clear();
        grip::FetchLinkFn fetch = link_fetcher(client, std::move(routes), request.head);
        auto s = std::make_unique<grip::StreamHold>(env(), client, std::move(instruct), max_channels,
                                                    route.prefix, std::move(fetch));
        if (response_sent) s->mark_response_sent();
        hold = std::move(s);
    } else if (instruct.hold == grip::HoldMode::Stream) {
        grip::FetchLinkFn fetch;
        if (instruct.next_link) fetch = link_fetcher(client, std::move(routes), request.head);
        auto s = std::make_unique<grip::StreamHold>(env(), client, std::move(instruct), max_channels,
                                                    route.prefix, std::move(fetch));
        if (response_sent) s->mark_response_sent();
        hold = std::move(s);
    } else {
        ProxyService* proxy = &proxy_;
        const config::Route* rp = &route;
        grip::RetryFn retry;
        if (!request.head.method.empty())
            retry = [proxy, rp, routes = std::move(routes)](http::ClientStream& c, grip::SavedRequest&& req) {
                proxy->retry(c, routes, *rp, std::move(req));
            };
        hold = std::make_unique<grip::ResponseHold>(env(), client, std::move(instruct), max_channels,
                                                    route.prefix, std::move(request), std::move(retry));
    }
    if (resume) hold->set_resume(std::move(*resume));
    grip::Hold* h = hold.get();
    if (gone) h->set_gone(std::move(gone));
    h->set_connection_id(connection_id);
    holds_.push_back(*h);
    client.set_exchange(std::move(hold));
    h->on_start();
}

void GripDispatch::respond(http::ClientStream& client, const http::CrossOrigin* co, int code,
                           std::string reason, http::Headers headers, std::string body) {
    http::finish_cross_origin(co, http::JsonpStyle::Relayed, code, reason, headers, body);
    client.respond(code, reason, headers, body);
}

std::function<void()> GripDispatch::gone_sender(http::ClientStream& client,
                                                const std::shared_ptr<const config::RouteTable>& routes,
                                                const http::RequestHead& request, const std::string& url) {
    const std::string* host = request.headers.get("Host");
    // As Pushpin 1.41: resolved against the client's request, once, when the hold starts.
    std::optional<grip::LinkTarget> t = grip::resolve_link(url, host ? *host : std::string(), request.target);
    const config::Route* route =
        t ? routes->match(http::host_without_port(t->host), t->target, false, false) : nullptr;
    if (!route) {
        LOG_INFO("grip", "%s %s: gone link %s cannot be followed (another host, or no route)",
                 request.method.c_str(), request.target.c_str(), url.c_str());
        return {};
    }
    GoneNotifier* notifier = gone_.get();
    return [notifier, notice = GoneNotice{routes, route, std::move(t->host), std::move(t->target),
                                          client.peer()}]() mutable { notifier->notify(std::move(notice)); };
}

grip::FetchLinkFn GripDispatch::link_fetcher(http::ClientStream& client,
                                             std::shared_ptr<const config::RouteTable> routes,
                                             const http::RequestHead& request) {
    const std::string* host = request.headers.get("Host");
    ProxyService* proxy = &proxy_;
    LinkShare* shared = links_.get();
    return [proxy, shared, routes = std::move(routes), host = host ? *host : std::string(),
            target = request.target,
            peer = client.peer()](std::string_view url, const std::vector<std::string>& grip_last,
                                  grip::LinkUser& user) mutable -> std::unique_ptr<grip::LinkFetch> {
        std::optional<grip::LinkTarget> t = grip::resolve_link(url, host, target);
        if (!t) return nullptr;
        // As Pushpin: each link is resolved against the one before it (the first against the request).
        host = t->host;
        target = t->target;
        // The link is requested as a client request for that URL would be: routed afresh.
        const config::Route* route = routes->match(http::host_without_port(t->host), t->target, false, false);
        if (!route) return nullptr;
        // Identical next links are one backend request (collapsing, link_share.hpp). A hint that
        // follows the link again comes through here as well, so it is shared the same way.
        std::string key = LinkShare::key(route, t->host, t->target, grip_last);
        http::RequestHead head;
        head.method = "GET";
        head.target = std::move(t->target);
        head.headers.add("Host", t->host);
        auto make = [proxy, routes, route, head = std::move(head), peer,
                     grip_last = std::vector<std::string>(grip_last)](
                        grip::LinkUser& u) mutable -> std::unique_ptr<grip::LinkFetch> {
            return std::make_unique<LinkFetchRequest>(*proxy, std::move(routes), *route, std::move(head),
                                                      std::move(peer), std::move(grip_last), u);
        };
        return shared->join(std::move(key), std::move(make), user);
    };
}

void GripDispatch::stop_holds() {
    recover_timer_.disarm();
    for (auto* list : {&holds_, &recovering_})
        list->for_each([](grip::Hold& h) {
            h.dispatch_link.unlink();
            h.stop();
        });
}

// Pushpin's built-in test handler: "/" answers text, "/response" long-polls and "/stream" streams on
// the channel given by ?channel= (default "test").
GripOutcome GripDispatch::serve_test(http::ClientStream& client, const config::Route& route,
                                     const http::RequestHead& head,
                                     std::shared_ptr<const http::CrossOrigin> cross_origin) {
    std::string_view target = head.target;
    std::string_view path = target.substr(0, target.find('?'));
    std::string channel = core::query_param(target, "channel").value_or("");
    if (channel.empty()) channel = "test";
    grip::Instruct in;
    in.channels.push_back(grip::Channel{channel, std::nullopt, {}});
    in.response.headers.add("Content-Type", "text/plain");
    if (path == "/response") {
        in.hold = grip::HoldMode::Response;
        in.response.body = "timeout\n";
    } else if (path == "/stream") {
        in.hold = grip::HoldMode::Stream;
        in.response.body = "[stream opened]\n";
    } else {
        // Pushpin's texts, so checks written against its test handler keep passing.
        bool root = path == "/" || path.empty();
        std::string_view body = root ? "Hello from the Pushpin test handler!\n" : "no such test resource\n";
        respond(client, cross_origin.get(), root ? 200 : 404, {}, std::move(in.response.headers),
                std::string(body));
        return GripOutcome{false, root ? 200 : 404, static_cast<int64_t>(body.size())};
    }
    LOG_INFO("grip", "%s %s -> test handler, channel=%s", head.method.c_str(), head.target.c_str(),
             channel.c_str());
    grip::SavedRequest none; // nothing to ask again
    none.cross_origin = std::move(cross_origin);
    start_hold(client, route, proxy_.routes(), std::move(none), std::move(in));
    return GripOutcome{true};
}

} // namespace gripd::proxy
