#include "link_fetch.hpp"

#include "gripd/core/log.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/proxy/proxy_service.hpp"

#include <ctime>

namespace gripd::proxy {

namespace {
// A next-link answer is appended to the client's stream whole; this bounds what one may add.
constexpr size_t kMaxLinkBody = 1000000;
} // namespace

LinkFetchRequest::LinkFetchRequest(ProxyService& service, std::shared_ptr<const config::RouteTable> routes,
                                   const config::Route& route, http::RequestHead head, std::string peer,
                                   std::vector<std::string> grip_last, grip::LinkUser& user)
    : service_(service), routes_(std::move(routes)), route_(route), head_(std::move(head)),
      peer_(std::move(peer)), grip_last_(std::move(grip_last)), user_(user) {}

LinkFetchRequest::~LinkFetchRequest() = default; // the lease abandons a connection still held

void LinkFetchRequest::start() {
    connect_next_target();
}

void LinkFetchRequest::connect_next_target() {
    const auto& targets = route_.targets;
    while (target_index_ < targets.size() && targets[target_index_].type != config::TargetType::Default)
        ++target_index_; // test and ZeroMQ targets cannot answer a next link
    if (target_index_ >= targets.size()) {
        fail("no reachable target");
        return;
    }
    connect();
}

void LinkFetchRequest::connect() {
    service_.backends().acquire(http::backend_target(route_, route_.targets[target_index_], head_.headers),
                                *this, backend_);
}

void LinkFetchRequest::on_backend_connect_failed(int uv_status) {
    LOG_DEBUG("grip", "next link %s: connect to %s failed: %s", head_.target.c_str(),
              route_.targets[target_index_].to_string().c_str(), uv_strerror(uv_status));
    ++target_index_;
    connect_next_target();
}

void LinkFetchRequest::on_backend_connected() {
    const config::Target& target = route_.targets[target_index_];
    http::ForwardContext ctx{
        service_.settings(), route_, target, peer_, false, false, static_cast<int64_t>(std::time(nullptr))};
    http::Headers headers = http::upstream_headers(head_, ctx);
    for (const auto& v : grip_last_)
        headers.add("Grip-Last", v);
    if (head_.method != "GET") headers.add("Content-Length", "0"); // a gone link's POST: no body
    std::string out;
    http::serialize_request_head(head_.method, http::upstream_target(route_, head_.target), headers, out);
    backend_->send(out);
}

void LinkFetchRequest::on_backend_head(http::ResponseHead& head) {
    response_ = std::move(head);
}

void LinkFetchRequest::on_backend_body(std::string_view data) {
    if (done_) return;
    if (body_.size() + data.size() > kMaxLinkBody) {
        backend_.abandon();
        fail("response body too large");
        return;
    }
    body_.append(data);
}

void LinkFetchRequest::on_backend_complete() {
    backend_.release();
    if (done_) return;
    done_ = true;
    user_.on_link_response(response_, body_); // may destroy this
}

void LinkFetchRequest::on_backend_error(int uv_status, bool retryable) {
    if (done_) return;
    if (retryable && !retried_) {
        // A pooled connection the backend had closed: once more on a fresh one.
        retried_ = true;
        body_.clear();
        connect();
        return;
    }
    LOG_DEBUG("grip", "next link %s: backend failed: %s", head_.target.c_str(), uv_strerror(uv_status));
    fail("backend connection failed");
}

void LinkFetchRequest::fail(const char* why) {
    if (done_) return;
    done_ = true;
    user_.on_link_failed(why); // may destroy this
}

} // namespace gripd::proxy
