// TestSession: Pushpin's built-in `test` target for WebSockets: `/ws` (after the route's path_beg)
// echoes every message, answers pings, and subscribes to the channel named by `?channel=` (default
// "test", route prefix applied); other paths get 404 "no such test resource".
#pragma once

#include "session.hpp"

#include <string>

namespace gripd::ws {

class TestSession final : public Session {
  public:
    TestSession(WsService& service, http::ClientStream& client,
                std::shared_ptr<const config::RouteTable> routes, const config::Route& route,
                const http::RequestHead& head);

    void start() override;
    WsMode mode() const override { return WsMode::Test; }

    // The path the test target sees (path_beg removed, as Pushpin does) and the channel to use.
    static std::string test_path(const config::Route& route, std::string_view target);
    static std::string channel_param(std::string_view target);

  private:
    void on_client_frame(const Frame& frame) override;
    void on_client_close(int code, std::string_view reason) override;
    void on_client_ended(bool clean) override;
    void on_detach() override {}
    void on_publish_close() override {}
    FrameParser::Limits frame_limits() const override {
        return {service_.limits().max_frame, service_.limits().max_frame};
    }

    std::string key_; // Sec-WebSocket-Key, answered in start()
    std::string path_;
    std::string channel_;
    std::string message_; // a fragmented message in progress
    WsOpcode message_type_ = WsOpcode::Text;
};

} // namespace gripd::ws
