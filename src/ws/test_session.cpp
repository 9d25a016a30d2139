#include "test_session.hpp"

#include "gripd/core/url_query.hpp"

namespace gripd::ws {

TestSession::TestSession(WsService& service, http::ClientStream& client,
                         std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                         const http::RequestHead& head)
    : Session(service, client, std::move(routes), route, false), key_(client_key(head)),
      path_(test_path(route, head.target)), channel_(channel_param(head.target)) {}

std::string TestSession::test_path(const config::Route& route, std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    if (!route.path_beg.empty()) {
        size_t remove = route.path_beg.size();
        if (route.path_beg.back() == '/') --remove;
        if (remove > 0 && path.size() >= remove) path.remove_prefix(remove);
    }
    return std::string(path);
}

std::string TestSession::channel_param(std::string_view target) {
    std::string channel = core::query_param(target, "channel").value_or("");
    return channel.empty() ? "test" : channel;
}

void TestSession::start() {
    if (path_ != "/ws") {
        http::Headers h;
        h.add("Content-Type", "text/plain");
        reject_client(404, {}, h, "no such test resource\n");
        finish();
        return;
    }
    config::Target implicit;
    implicit.subscriptions.push_back(route_.prefix + channel_);
    subscribe_implicit(implicit);
    accept_client(http::Headers{}, key_);
}

void TestSession::on_client_frame(const Frame& f) {
    switch (f.opcode) {
    case WsOpcode::Ping:
        send_message(WsOpcode::Pong, f.payload);
        return;
    case WsOpcode::Pong:
        return;
    default:
        break;
    }
    if (f.first) {
        message_type_ = f.message_type;
        message_.clear();
    }
    if (f.fin) service_.mutable_stats().messages_in.add();
    if (f.fin && f.first) {
        send_message(message_type_, f.payload);
        return;
    }
    message_.append(f.payload);
    if (!f.fin) return;
    send_message(message_type_, message_);
    std::string().swap(message_);
}

void TestSession::on_client_close(int code, std::string_view reason) {
    close_client(code == kCloseNoStatus ? -1 : code, reason);
}

void TestSession::on_client_ended(bool) {
    finish();
}

} // namespace gripd::ws
