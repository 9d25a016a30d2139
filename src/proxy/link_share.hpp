// LinkShare: request collapsing for next links (PROTOCOL.md §6.3; Pushpin's "auto-share"). Holds on
// this worker that follow the same next link with the same Grip-Last values while a request for it
// is out join that request: the backend sees one GET, and every waiting hold gets the answer (a
// copy each: a hold may change what it is given). Pushpin keys a shared next link by its URI
// without the query (the query may differ per client; Grip-Last says where each one is) plus the
// sorted Grip-Last headers; the first joiner's query, peer and headers are what is sent. A request
// is shared only while it is out: once answered (or failed) the next fetch of that link is a new
// request, as Pushpin stops adding sessions once the whole response is in.
// Sharing is per worker (each owns its backend connections): with W workers a link is requested at
// most W times at once.
#pragma once

#include "gripd/core/intrusive_list.hpp"
#include "gripd/grip/next_link.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace gripd::proxy {

class LinkShare {
  public:
    // Makes the real request; it reports to `user` (the share's entry for its key).
    using MakeFn = std::function<std::unique_ptr<grip::LinkFetch>(grip::LinkUser& user)>;

    LinkShare();
    LinkShare(const LinkShare&) = delete;
    LinkShare& operator=(const LinkShare&) = delete;
    ~LinkShare();

    // The sharing key of a next-link GET: the route it goes to (by identity: each routes snapshot
    // has its own), the host, the path without its query, and the Grip-Last values sorted.
    static std::string key(const void* route, std::string_view host, std::string_view target,
                           std::vector<std::string> grip_last);

    // A handle for `user`: its start() joins the request out for `key`, or starts one made by
    // `make`. Destroying the handle leaves the request (the last one to leave abandons it).
    std::unique_ptr<grip::LinkFetch> join(std::string key, MakeFn make, grip::LinkUser& user);

    size_t in_flight() const { return entries_.size(); }
    uint64_t requests() const { return requests_; } // backend requests started
    uint64_t joined() const { return joined_; }     // fetches answered by a request already out

  private:
    struct Entry;
    struct Handle;
    void attach(Handle& h);
    void leave(Entry& e); // a waiter left: the last one abandons the request

    std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
    uint64_t requests_ = 0;
    uint64_t joined_ = 0;
};

} // namespace gripd::proxy
