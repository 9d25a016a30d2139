// RequestShare: `[handler] share_all` (PROTOCOL.md §6.3). Pushpin 1.36 gives a request the sharing
// key "METHOD|URI" when share_all is on (src/handler/engine.cpp InspectWorker), and the proxy adds
// every request with that key, while one is out, to the same backend request (src/proxy/engine.cpp
// doProxy): the backend sees one request and each client gets the answer; a GRIP answer holds each
// client on its own.
//
// gripd shares on each worker, and less than Pushpin, on purpose:
//  - GET requests without a body only (Pushpin also shares POSTs with the same URI whatever their
//    bodies, so one client's body would answer another's), and not with CORS/JSON-P (each client's
//    answer is wrapped its own way) or from a trusted upstream proxy;
//  - only a GRIP answer is shared: every waiting client gets the instructions as if the backend had
//    answered it (its own hold, long-poll or stream). A plain answer, an error, or a leader whose
//    client went away releases the waiting clients, each then sending its own request (Pushpin
//    streams a plain answer to all of them; gripd relays one response per client connection).
// A group is open to joiners from its first request until that request's answer is known.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/core/intrusive_list.hpp"
#include "gripd/http/client_stream.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/http/response_parser.hpp"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace gripd::proxy {

class ProxyService;

class RequestShare {
  public:
    struct Group;

    explicit RequestShare(ProxyService& service);
    RequestShare(const RequestShare&) = delete;
    RequestShare& operator=(const RequestShare&) = delete;
    ~RequestShare();

    // The sharing key of a request, or "" when it is not shared (see above).
    static std::string key(const config::Route& route, const http::RequestHead& head, bool tls);

    // A request with this key is out: an exchange that waits for its answer; else nullptr.
    std::unique_ptr<http::Exchange> join(const std::string& key, http::ClientStream& client,
                                         std::shared_ptr<const config::RouteTable> routes,
                                         const config::Route& route, const http::RequestHead& head);
    // The request that leads a new group for `key` (its session reports with the calls below).
    Group* lead(const std::string& key);

    // The leader's GRIP answer: each waiting client gets it as its own (a hold, or an answer).
    void grip_answer(Group* group, const std::vector<std::string>& implicit_channels,
                     const http::ResponseHead& head, const std::string& body);
    // No answer to share (plain response, error, the leader's client gone): each waiting client
    // sends its own request.
    void release(Group* group);

    uint64_t shared() const { return shared_; } // clients answered by another client's request

  private:
    struct Waiter;
    std::unique_ptr<Group> detach(Group* group);

    ProxyService& service_;
    std::unordered_map<std::string, std::unique_ptr<Group>> groups_;
    uint64_t shared_ = 0;
};

} // namespace gripd::proxy
