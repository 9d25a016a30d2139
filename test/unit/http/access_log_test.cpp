// The access line in Pushpin's format (LogUtil::logRequest), field by field.
#include "gripd/http/access_log.hpp"

#include <catch2/catch.hpp>

using namespace gripd;
using Outcome = http::AccessLog::Outcome;

namespace {

http::RequestHead head(std::string method, std::string target) {
    http::RequestHead h;
    h.method = std::move(method);
    h.target = std::move(target);
    h.headers.add("Host", "API.Example.com:8080");
    return h;
}

} // namespace

TEST_CASE("access line: the bare line", "[http]") {
    config::Settings s;
    http::AccessLog log(head("GET", "/a?b=1"), "http", "10.0.0.1", s);
    CHECK(log.format("127.0.0.1:80", false, "", Outcome::Response, 200, 5) ==
          "GET http://api.example.com:8080/a?b=1 -> 127.0.0.1:80 code=200 5");
    CHECK(log.format("127.0.0.1:80", false, "", Outcome::Accept) ==
          "GET http://api.example.com:8080/a?b=1 -> 127.0.0.1:80 accept");
    CHECK(log.format("127.0.0.1:80", false, "", Outcome::Accept, 0, 0, true) ==
          "GET http://api.example.com:8080/a?b=1 -> 127.0.0.1:80 accept retry");
    CHECK(log.format("", false, "", Outcome::Error) == "GET http://api.example.com:8080/a?b=1 error");
}

TEST_CASE("access line: from=, ref=, route= and ua= in Pushpin's order", "[http]") {
    config::Settings s;
    s.log_from = true;
    s.log_user_agent = true;
    auto h = head("POST", "/x y");
    h.headers.add("Referer", "http://r.example/a b\"c");
    h.headers.add("User-Agent", "curl/8 \x1b[31mred");
    http::AccessLog log(h, "http", "10.0.0.1", s);
    CHECK(log.format("b:1", false, "myid", Outcome::Response, 502, 32) ==
          "POST http://api.example.com:8080/x%20y -> b:1 from=10.0.0.1 ref=http://r.example/a%20b%22c "
          "route=myid "
          "code=502 32 ua=curl/8 \\x1b[31mred");
}

TEST_CASE("access line: without log_from and log_user_agent, no from= and no ua=", "[http]") {
    config::Settings s;
    auto h = head("GET", "/");
    h.headers.add("User-Agent", "ua");
    http::AccessLog log(h, "http", "10.0.0.1", s);
    CHECK(log.format("b:1", false, "", Outcome::Response, 200, 0) ==
          "GET http://api.example.com:8080/ -> b:1 code=200 0");
}

TEST_CASE("access line: a WebSocket sent over HTTP is marked [http]", "[http]") {
    config::Settings s;
    http::AccessLog ws(head("GET", "/ws"), "ws", "", s);
    CHECK(ws.format("b:1", true, "", Outcome::Response, 101, 0) ==
          "GET ws://api.example.com:8080/ws -> b:1[http] code=101 0");
    CHECK(ws.format("b:1", false, "", Outcome::Response, 101, 0) ==
          "GET ws://api.example.com:8080/ws -> b:1 code=101 0");
    http::AccessLog plain(head("GET", "/"), "http", "", s);
    CHECK(plain.format("b:1", true, "", Outcome::Response, 200, 0) ==
          "GET http://api.example.com:8080/ -> b:1 code=200 0");
}
