// SockJS's HTTP transports across workers (relay.hpp): a request relayed to its session's owner,
// the answer relayed back, and a client that leaves in between.
#include "gripd/sockjs/relay.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/messages.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/sockjs/http_transport.hpp"

namespace gripd::sockjs {

int owner_of(std::string_view sid, int workers) {
    if (workers <= 1) return 0;
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : sid) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return static_cast<int>(h % static_cast<uint64_t>(workers));
}

namespace {

uint32_t cost_of(const http::RequestHead& head, size_t body) {
    size_t bytes = sizeof(RelayedRequest) + head.target.size() + body;
    for (const auto& [name, value] : head.headers)
        bytes += name.size() + value.size();
    return static_cast<uint32_t>(bytes);
}

} // namespace

void HttpTransports::relay(TransportRequest& req, int owner) {
    if (relayed_.size() >= kMaxRelayed) {
        LOG_INFO("sockjs", "request of session %s from %s not relayed: %zu requests out at other workers",
                 req.sid_.c_str(), req.peer_.c_str(), relayed_.size());
        req.respond(503, "text/plain", "Too many SockJS requests.\n");
        return;
    }
    auto r = std::make_shared<RelayedRequest>();
    r->token = ++next_token_;
    r->routes = req.routes_;
    r->route = &req.route_;
    r->head = req.head_;
    r->body = std::move(req.body_);
    req.body_ = std::string();
    r->too_large = req.too_large_;
    r->trusted = req.trusted_;
    r->tls = req.tls_;
    r->peer = req.peer_;
    uint64_t token = r->token;
    loop::InboxMessage m{loop::SockjsRelay{std::move(r)}};
    m.cost = cost_of(req.head_, std::get<loop::SockjsRelay>(m.body).request->body.size());
    loop::Inbox::Pushed pushed =
        workers_[static_cast<size_t>(owner)]->post_bounded(worker_.index(), std::move(m));
    if (pushed != loop::Inbox::Pushed::Queued) {
        LOG_INFO("sockjs", "request of session %s not relayed to worker %d: its inbox is %s",
                 req.sid_.c_str(), owner, pushed == loop::Inbox::Pushed::Full ? "full" : "closed");
        req.respond(503, "text/plain", "Service Unavailable\n");
        return;
    }
    req.relay_token_ = token;
    relayed_.emplace(token, &req);
}

void HttpTransports::cancel_relay(TransportRequest& req) {
    uint64_t token = req.relay_token_;
    req.relay_token_ = 0;
    if (relayed_.erase(token) == 0) return;
    int owner = owner_of(req.sid_, static_cast<int>(workers_.size()));
    // A control message (always queued while the owner runs): the owner must drop its side.
    workers_[static_cast<size_t>(owner)]->post(worker_.index(), loop::InboxMessage{loop::SockjsGone{token}});
}

void HttpTransports::on_answer(const std::shared_ptr<RelayedAnswer>& answer) {
    auto it = relayed_.find(answer->token);
    if (it == relayed_.end()) return; // its client went away meanwhile
    TransportRequest& req = *it->second;
    relayed_.erase(it);
    req.relay_token_ = 0;
    req.answer(answer->status, answer->headers, answer->body);
}

void HttpTransports::on_relay(int from, std::shared_ptr<RelayedRequest> request) {
    uint64_t key = remote_key(from, request->token);
    auto req = std::make_unique<TransportRequest>(*this, from, std::move(*request));
    request.reset();
    TransportRequest* r = req.get();
    remote_[key] = std::move(req);
    // As a local request's end: a body past the bound is refused, the rest served here.
    r->on_request_end();
}

void HttpTransports::send_answer(TransportRequest& req, int status, const http::Headers& headers,
                                 std::string_view body) {
    auto a = std::make_shared<RelayedAnswer>();
    a->token = req.origin_token_;
    a->status = status;
    a->headers = headers;
    a->body = std::string(body);
    loop::InboxMessage m{loop::SockjsAnswer{std::move(a)}};
    m.cost = static_cast<uint32_t>(sizeof(RelayedAnswer) + body.size());
    // A control message: one per relayed request, which the origin bounds (kMaxRelayed). A closed
    // inbox (the origin is stopping) drops it: its client is being closed anyway.
    workers_[static_cast<size_t>(req.origin_)]->post(worker_.index(), std::move(m));
    auto it = remote_.find(remote_key(req.origin_, req.origin_token_));
    if (it == remote_.end()) return;
    // The session may be deep in a callback that still holds `req`: freed after this turn.
    worker_.defer_delete(std::move(it->second));
    remote_.erase(it);
}

void HttpTransports::on_gone(int from, uint64_t token) {
    auto it = remote_.find(remote_key(from, token));
    if (it == remote_.end()) return; // answered already (the answer is on its way back)
    std::unique_ptr<TransportRequest> req = std::move(it->second);
    remote_.erase(it);
    req->answered_ = true; // nothing goes back any more
    req->on_client_gone();
    worker_.defer_delete(std::move(req));
}

} // namespace gripd::sockjs
