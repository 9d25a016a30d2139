#include "gripd/sockjs/sockjs.hpp"

#include <catch2/catch.hpp>

using namespace gripd;

namespace {

http::RequestHead head_for(std::string target) {
    http::RequestHead h;
    h.method = "GET";
    h.target = std::move(target);
    return h;
}

std::string frame_text(std::string_view payload) {
    std::string out;
    ws::append_frame(out, ws::WsOpcode::Text, payload);
    return out;
}

} // namespace

TEST_CASE("sockjs: which requests are SockJS, and where WebSockets go", "[sockjs]") {
    config::Route route;
    route.sockjs_path = "/sock";
    using K = sockjs::Request::Kind;
    CHECK(sockjs::classify(route, head_for("/other"), false).kind == K::None);
    CHECK(sockjs::classify(route, head_for("/sock/info"), false).kind == K::Http);
    // without an upgrade, `/<server>/<session>/<transport>` is an HTTP transport (404 for websocket)
    CHECK(sockjs::classify(route, head_for("/sock/1/2/websocket"), false).kind == K::HttpTransport);
    CHECK(sockjs::classify(route, head_for("/sock/1/2/xhr"), false).kind == K::HttpTransport);
    CHECK(sockjs::classify(route, head_for("/sock/1/2/jsonp?c=f"), false).kind == K::HttpTransport);
    CHECK(sockjs::classify(route, head_for("/sock/1/xhr"), false).kind == K::Http);
    CHECK(sockjs::classify(route, head_for("/sock/iframe.html"), false).kind == K::Http);
    auto r = sockjs::classify(route, head_for("/sock/websocket?a=b"), true);
    CHECK(r.kind == K::RawWebSocket);
    CHECK(r.upstream_target == "/sock/websocket?a=b");
    r = sockjs::classify(route, head_for("/sock/1/2/websocket"), true);
    CHECK(r.kind == K::FramedWebSocket);
    CHECK(r.upstream_target == "/sock/websocket");
    CHECK(sockjs::classify(route, head_for("/sock/1/websocket"), true).kind == K::Http); // answered 404
    CHECK(sockjs::classify(route, head_for("/sock/1/2/3/websocket"), true).kind == K::Http);
    route.sockjs_as_path = "/ws";
    CHECK(sockjs::classify(route, head_for("/sock/1/2/websocket?q"), true).upstream_target == "/ws?q");
    config::Route plain;
    CHECK(sockjs::classify(plain, head_for("/sock/info"), false).kind == K::None);
}

TEST_CASE("sockjs: JSON strings and client payloads", "[sockjs]") {
    std::string out;
    sockjs::append_json_string(out, std::string_view("a\"\\\n\x01\xc3\xa9", 7));
    CHECK(out == "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");
    out.clear();
    sockjs::append_json_string(out, std::string_view("x\xff\xc3", 3)); // not UTF-8: U+FFFD each
    CHECK(out == "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
    out.clear();
    sockjs::append_json_string(out, "\xed\xa0\x80"); // a surrogate is not UTF-8 either
    CHECK(out == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    std::vector<std::string> m;
    CHECK(sockjs::decode_messages(R"(["a","b\u00e9"])", m));
    CHECK(m == std::vector<std::string>{"a", "b\xc3\xa9"});
    m.clear();
    CHECK(sockjs::decode_messages("[]", m));
    CHECK(m.empty());
    CHECK_FALSE(sockjs::decode_messages("\"a\"", m));
    CHECK_FALSE(sockjs::decode_messages("[1]", m));
    CHECK_FALSE(sockjs::decode_messages("{}", m));
    CHECK_FALSE(sockjs::decode_messages("", m));
}

TEST_CASE("sockjs: the framed codec", "[sockjs]") {
    auto codec = sockjs::make_framed_codec();
    CHECK(codec->opening() == frame_text("o"));
    CHECK(codec->heartbeat() == frame_text("h"));
    CHECK(codec->heartbeat_ms() == sockjs::kHeartbeatMs);
    // a message in two fragments becomes one a[...] frame once complete; pings are dropped
    std::string in, out;
    ws::append_frame(in, ws::WsOpcode::Text, "he", false);
    ws::append_frame(in, ws::WsOpcode::Ping, "p");
    REQUIRE(codec->encode(in, out));
    CHECK(out.empty());
    in.clear();
    ws::append_frame(in, ws::WsOpcode::Continuation, "llo", true);
    ws::append_frame(in, ws::WsOpcode::Binary, "b");
    REQUIRE(codec->encode(in, out));
    CHECK(out == frame_text("a[\"hello\"]") + frame_text("a[\"b\"]"));
    // too large to re-frame
    out.clear();
    in.clear();
    ws::append_message(in, ws::WsOpcode::Binary, std::string(sockjs::kMaxMessage + 1, 'x'), 16384);
    CHECK_FALSE(codec->encode(in, out));
    // client side: fragments are joined, then decoded
    auto c2 = sockjs::make_framed_codec();
    std::vector<std::string> msgs;
    ws::Frame f1{ws::WsOpcode::Text, ws::WsOpcode::Text, false, true, "[\"x\","};
    ws::Frame f2{ws::WsOpcode::Continuation, ws::WsOpcode::Text, true, false, "\"y\"]"};
    CHECK(c2->decode(f1, msgs));
    CHECK(msgs.empty());
    CHECK(c2->decode(f2, msgs));
    CHECK(msgs == std::vector<std::string>{"x", "y"});
    ws::Frame bad{ws::WsOpcode::Text, ws::WsOpcode::Text, true, true, "nope"};
    CHECK_FALSE(c2->decode(bad, msgs));
}
