#include "link_share.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"

#include <algorithm>

namespace gripd::proxy {

// What a hold holds: its place in an entry's waiters.
struct LinkShare::Handle final : grip::LinkFetch {
    core::ListHook hook;
    LinkShare* share;
    std::string key;
    MakeFn make;
    grip::LinkUser& user;
    Entry* entry = nullptr;

    Handle(LinkShare& s, std::string k, MakeFn m, grip::LinkUser& u)
        : share(&s), key(std::move(k)), make(std::move(m)), user(u) {}
    ~Handle() override;
    // May report (and so destroy this) before it returns: nothing of this is touched after attach.
    void start() override { share->attach(*this); }
};

// One request out, and the holds waiting for it.
struct LinkShare::Entry final : grip::LinkUser {
    LinkShare* share; // null once detached (answered): waiters then leave without touching the map
    std::string key;
    std::unique_ptr<grip::LinkFetch> request;
    core::IntrusiveList<Handle, &Handle::hook> waiters;

    void on_link_response(http::ResponseHead& head, std::string& body) override;
    void on_link_failed(const char* why) override;
    // Leaves the map; the caller owns the entry until every waiter is told.
    std::unique_ptr<Entry> detach();
};

LinkShare::Handle::~Handle() {
    if (!entry) return;
    hook.unlink();
    if (entry->share) entry->share->leave(*entry);
}

LinkShare::LinkShare() = default;

LinkShare::~LinkShare() {
    // Holds outlive nothing of ours at shutdown, but be safe: orphan any waiters left.
    for (auto& [k, e] : entries_) {
        e->share = nullptr;
        e->waiters.for_each([](Handle& h) {
            h.hook.unlink();
            h.entry = nullptr;
        });
    }
}

std::string LinkShare::key(const void* route, std::string_view host, std::string_view target,
                           std::vector<std::string> grip_last) {
    std::sort(grip_last.begin(), grip_last.end());
    std::string k = std::to_string(reinterpret_cast<uintptr_t>(route));
    k += '|';
    for (char c : host)
        k += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    k += '|';
    k.append(target.substr(0, target.find('?')));
    for (const auto& g : grip_last) {
        k += '|';
        k += g;
    }
    return k;
}

std::unique_ptr<grip::LinkFetch> LinkShare::join(std::string key, MakeFn make, grip::LinkUser& user) {
    return std::make_unique<Handle>(*this, std::move(key), std::move(make), user);
}

void LinkShare::attach(Handle& h) {
    auto it = entries_.find(h.key);
    if (it != entries_.end()) {
        ++joined_;
        h.entry = it->second.get();
        h.entry->waiters.push_back(h);
        h.make = nullptr;
        LOG_DEBUG("grip", "next link %s: joining the request already out", h.key.c_str());
        return;
    }
    auto e = std::make_unique<Entry>();
    Entry* ep = e.get();
    e->share = this;
    e->key = h.key;
    e->request = h.make(*e);
    h.make = nullptr;
    if (!e->request) {
        h.user.on_link_failed("the link cannot be followed"); // may destroy h
        return;
    }
    h.entry = ep;
    ep->waiters.push_back(h);
    entries_.emplace(ep->key, std::move(e));
    ++requests_;
    ep->request->start(); // may answer (and free the entry and h) before it returns: last
}

void LinkShare::leave(Entry& e) {
    if (!e.waiters.empty()) return;
    // Nobody waits any more: abandon the request (its lease abandons the backend connection).
    entries_.erase(e.key);
}

std::unique_ptr<LinkShare::Entry> LinkShare::Entry::detach() {
    auto it = share->entries_.find(key);
    GRIPD_ASSERT(it != share->entries_.end() && it->second.get() == this);
    std::unique_ptr<Entry> self = std::move(it->second);
    share->entries_.erase(it);
    share = nullptr;
    return self;
}

void LinkShare::Entry::on_link_response(http::ResponseHead& head, std::string& body) {
    // The request's head and body are its own members: take copies before anything is freed.
    http::ResponseHead h0 = std::move(head);
    std::string b0 = std::move(body);
    std::unique_ptr<Entry> self = detach(); // freed (with the request) on return
    while (Handle* w = waiters.front()) {
        w->hook.unlink();
        w->entry = nullptr;
        http::ResponseHead h = h0;
        std::string b = b0;
        w->user.on_link_response(h, b); // may free w
    }
}

void LinkShare::Entry::on_link_failed(const char* why) {
    std::string reason = why;
    std::unique_ptr<Entry> self = detach();
    while (Handle* w = waiters.front()) {
        w->hook.unlink();
        w->entry = nullptr;
        w->user.on_link_failed(reason.c_str()); // may free w
    }
}

} // namespace gripd::proxy
