#include "request_share.hpp"

#include "gripd/core/log.hpp"
#include "gripd/grip/hold.hpp"
#include "gripd/proxy/grip_handler.hpp"
#include "gripd/proxy/proxy_service.hpp"
#include "proxy_session.hpp"

namespace gripd::proxy {

// A client waiting for another client's identical request. The connection owns it (its exchange).
struct RequestShare::Waiter final : http::Exchange {
    core::ListHook hook;
    http::ClientStream* client;
    std::shared_ptr<const config::RouteTable> routes; // keeps `route` alive
    const config::Route& route;
    http::RequestHead head;
    bool request_ended = false;

    Waiter(http::ClientStream& c, std::shared_ptr<const config::RouteTable> r, const config::Route& rt,
           http::RequestHead h)
        : client(&c), routes(std::move(r)), route(rt), head(std::move(h)) {}
    ~Waiter() override { hook.unlink(); }
    void on_request_body(std::string_view) override {} // a shared request has no body
    void on_request_end() override { request_ended = true; }
    void on_client_gone() override {
        hook.unlink();
        client = nullptr;
    }
};

struct RequestShare::Group {
    std::string key;
    core::IntrusiveList<Waiter, &Waiter::hook> waiters;
};

RequestShare::RequestShare(ProxyService& service) : service_(service) {}

RequestShare::~RequestShare() {
    for (auto& [k, g] : groups_)
        g->waiters.for_each([](Waiter& w) { w.hook.unlink(); });
}

std::string RequestShare::key(const config::Route& route, const http::RequestHead& head, bool tls) {
    if (head.method != "GET" || head.chunked || head.content_length > 0 || head.upgrade) return {};
    const std::string* host = head.headers.get("Host");
    std::string k = std::to_string(reinterpret_cast<uintptr_t>(&route));
    k += tls ? "|https://" : "|http://";
    if (host)
        for (char c : *host)
            k += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    k += head.target;
    return k;
}

std::unique_ptr<http::Exchange> RequestShare::join(const std::string& key, http::ClientStream& client,
                                                   std::shared_ptr<const config::RouteTable> routes,
                                                   const config::Route& route,
                                                   const http::RequestHead& head) {
    auto it = groups_.find(key);
    if (it == groups_.end()) return nullptr;
    auto w = std::make_unique<Waiter>(client, std::move(routes), route, head);
    it->second->waiters.push_back(*w);
    LOG_DEBUG("proxy", "%s %s from %s: waiting for the identical request already out (share_all)",
              head.method.c_str(), head.target.c_str(), client.peer().c_str());
    return w;
}

RequestShare::Group* RequestShare::lead(const std::string& key) {
    auto g = std::make_unique<Group>();
    g->key = key;
    Group* p = g.get();
    groups_[key] = std::move(g);
    return p;
}

std::unique_ptr<RequestShare::Group> RequestShare::detach(Group* group) {
    auto it = groups_.find(group->key);
    if (it == groups_.end() || it->second.get() != group) return nullptr;
    std::unique_ptr<Group> g = std::move(it->second);
    groups_.erase(it);
    return g;
}

void RequestShare::grip_answer(Group* group, const std::vector<std::string>& implicit_channels,
                               const http::ResponseHead& head, const std::string& body) {
    std::unique_ptr<Group> g = detach(group);
    if (!g) return;
    while (Waiter* w = g->waiters.front()) {
        w->hook.unlink();
        if (!w->client) continue;
        ++shared_;
        grip::SavedRequest saved;
        saved.head = w->head; // a hint asks the backend again for this client
        http::ResponseHead h = head;
        std::string b = body;
        // Takes the client over (its exchange, this waiter, is freed after this turn).
        service_.grip_handler()->on_grip_response(*w->client, w->route, implicit_channels, w->routes,
                                                  std::move(saved), std::move(h), std::move(b));
        w->client = nullptr;
    }
}

void RequestShare::release(Group* group) {
    std::unique_ptr<Group> g = detach(group);
    if (!g) return;
    while (Waiter* w = g->waiters.front()) {
        w->hook.unlink();
        if (!w->client) continue;
        http::ClientStream& c = *w->client;
        w->client = nullptr;
        auto session = std::make_unique<ProxySession>(service_, c, w->routes, w->route, w->head, false);
        ProxySession* s = session.get();
        bool ended = w->request_ended;
        c.set_exchange(std::move(session)); // the waiter is freed after this turn
        s->on_start();
        if (ended) s->on_request_end();
    }
}

} // namespace gripd::proxy
