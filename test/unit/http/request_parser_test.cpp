#include "gripd/http/request_parser.hpp"

#include "parser_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace gripd::http;
using gripd::http::test::drive;
using gripd::http::test::pieces_of;
using gripd::http::test::RequestRecorder;
using State = RequestParser::State;

namespace {

struct Parsed {
    RequestRecorder rec;
    RequestParser parser{rec, RequestParser::Limits{}};
    std::string rest;
};

// Parses the whole input in one feed per piece; returns the parser for inspection.
std::unique_ptr<Parsed> parse(std::string_view input, size_t step = 0) {
    auto p = std::make_unique<Parsed>();
    p->rest = step == 0 ? drive(p->parser, input) : drive(p->parser, pieces_of(input, step));
    return p;
}

int error_of(std::string_view input) {
    auto p = parse(input);
    INFO(std::string(input));
    REQUIRE(p->parser.state() == State::Error);
    // Byte by byte must give the same verdict.
    auto q = parse(input, 1);
    REQUIRE(q->parser.state() == State::Error);
    CHECK(q->parser.error_status() == p->parser.error_status());
    CHECK(p->rec.completes == 0);
    return p->parser.error_status();
}

} // namespace

TEST_CASE("request: simple GET", "[http]") {
    RequestRecorder rec;
    RequestParser parser(rec, {});
    std::string in =
        "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Padded:   v a l  \t\r\nAccept: */*\r\n\r\n";
    CHECK(parser.feed(in.data(), in.size()) == in.size());
    CHECK(parser.state() == State::Paused);
    REQUIRE(rec.heads.size() == 1);
    const auto& h = rec.heads[0];
    CHECK(h.method == "GET");
    CHECK(h.target == "/path?q=1");
    CHECK(h.version_major == 1);
    CHECK(h.version_minor == 1);
    CHECK(h.content_length == -1);
    CHECK_FALSE(h.chunked);
    CHECK(h.keep_alive);
    CHECK_FALSE(h.expect_continue);
    CHECK_FALSE(h.upgrade);
    REQUIRE(h.headers.size() == 3);
    CHECK(h.headers.items()[0].name == "Host");
    CHECK(h.headers.items()[0].value == "example.com");
    CHECK(*h.headers.get("x-padded") == "v a l");
    CHECK(rec.completes == 1);
    CHECK(rec.bodies[0].empty());
    CHECK_FALSE(parser.in_message());
    CHECK(parser.finish());
    // Nothing more to read: resume() and feed() nothing.
    parser.resume();
    CHECK(parser.feed(nullptr, 0) == 0);
    CHECK(parser.state() == State::Ok);
}

TEST_CASE("request: keep-alive rules", "[http]") {
    auto ka = [](std::string_view in) {
        auto p = parse(in);
        REQUIRE(p->rec.heads.size() == 1);
        return p->rec.heads[0].keep_alive;
    };
    CHECK(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.0\r\n\r\n"));
    CHECK(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
    auto p = parse("GET / HTTP/1.0\r\n\r\n");
    CHECK(p->rec.heads[0].version_minor == 0);
}

TEST_CASE("request: pipelined requests at every split", "[http]") {
    const std::string in = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                           "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                           "\r\n" // a stray empty line between requests is allowed
                           "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
                           "PUT /d HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
                           "DELETE /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    auto check = [&](const RequestRecorder& rec, const RequestParser& parser) {
        REQUIRE(parser.state() == State::Paused);
        REQUIRE(rec.heads.size() == 5);
        CHECK(rec.completes == 5);
        CHECK(rec.empty_body_calls == 0);
        CHECK(rec.heads[0].target == "/a");
        CHECK(rec.heads[1].method == "POST");
        CHECK(rec.heads[1].content_length == 5);
        CHECK(rec.bodies[1] == "hello");
        CHECK(rec.heads[2].chunked);
        CHECK(rec.bodies[2] == "abc0123456789");
        CHECK(rec.heads[2].headers.size() == 2); // trailers are not headers
        CHECK(rec.heads[3].method == "PUT");
        CHECK(rec.bodies[3].empty());
        CHECK(rec.heads[4].method == "DELETE");
        CHECK_FALSE(rec.heads[4].keep_alive);
    };
    SECTION("one piece") {
        auto p = parse(in);
        check(p->rec, p->parser);
        CHECK(p->rest.empty());
    }
    SECTION("byte by byte") {
        auto p = parse(in, 1);
        check(p->rec, p->parser);
    }
    SECTION("every two-piece split") {
        for (size_t k = 0; k <= in.size(); ++k) {
            INFO("split at " << k);
            RequestRecorder rec;
            RequestParser parser(rec, {});
            auto rest = drive(parser, {std::string_view(in).substr(0, k), std::string_view(in).substr(k)});
            check(rec, parser);
            CHECK(rest.empty());
        }
    }
    SECTION("every three-piece split") {
        for (size_t a = 0; a < in.size(); a += 7)
            for (size_t b = a; b <= in.size(); b += 5) {
                RequestRecorder rec;
                RequestParser parser(rec, {});
                std::string_view v(in);
                drive(parser, {v.substr(0, a), v.substr(a, b - a), v.substr(b)});
                check(rec, parser);
            }
    }
}

TEST_CASE("request: stops after each request until resume", "[http]") {
    RequestRecorder rec;
    RequestParser parser(rec, {});
    std::string in = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t n = parser.feed(in.data(), in.size());
    CHECK(n == in.size() / 2);
    CHECK(rec.completes == 1);
    CHECK(parser.feed(in.data() + n, in.size() - n) == 0); // still paused
    parser.resume();
    CHECK(parser.feed(in.data() + n, in.size() - n) == in.size() - n);
    CHECK(rec.completes == 2);
    CHECK(rec.heads[1].target == "/2");
}

TEST_CASE("request: chunked bodies with extensions, streamed", "[http]") {
    std::string in = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5;name=\"v\";quoted=\"a b\";flag\r\nhello\r\n"
                     "1;x\r\n \r\n"
                     "00005\r\nworld\r\n"
                     "0;last=1\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n";
    for (size_t step : {size_t(0), size_t(1), size_t(3)}) {
        auto p = parse(in, step);
        REQUIRE(p->parser.state() == State::Paused);
        CHECK(p->rec.bodies[0] == "hello world");
        CHECK(p->rec.heads[0].chunked);
        CHECK(p->rec.heads[0].content_length == -1);
        CHECK(p->rec.completes == 1);
    }
    // Body bytes arrive as they come, not buffered to the end of a chunk.
    RequestRecorder rec;
    RequestParser parser(rec, {});
    std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabcd";
    CHECK(parser.feed(head.data(), head.size()) == head.size());
    CHECK(rec.bodies[0] == "abcd");
    CHECK(parser.in_message());
    CHECK_FALSE(parser.finish()); // peer closed mid-body
}

TEST_CASE("request: a Connection trailer does not change keep-alive", "[http]") {
    auto p =
        parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\n"
              "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(p->rec.completes == 2);
    CHECK(p->rec.heads[0].keep_alive);
}

TEST_CASE("request: zero-length bodies", "[http]") {
    auto p = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    CHECK(p->rec.completes == 1);
    CHECK(p->rec.heads[0].content_length == 0);
    CHECK(p->rec.bodies[0].empty());
    auto q = parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    CHECK(q->rec.completes == 1);
    CHECK(q->rec.bodies[0].empty());
    CHECK(q->rec.empty_body_calls == 0);
}

TEST_CASE("request: Content-Length body in pieces", "[http]") {
    std::string body(10000, 'x');
    std::string in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n" + body;
    auto p = parse(in, 1000);
    CHECK(p->rec.bodies[0] == body);
    CHECK(p->rec.completes == 1);
}

TEST_CASE("request: smuggling and malformed framing are 400", "[http]") {
    const char* cases[] = {
        // Content-Length and Transfer-Encoding together, in either order.
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        // Repeated Content-Length, even equal; list form; non-numeric.
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        // Transfer-Encoding whose last coding is not chunked, or chunked twice.
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
        // Invalid chunk sizes and framing.
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: x\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: x\r\n folded\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : x\r\n\r\n",
        // Bare LF / bare CR line endings.
        "GET / HTTP/1.1\nHost: h\n\n",
        "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\n",
        "GET / HTTP/1.1\rHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        // obs-fold, also before the first header and to hide a Content-Length.
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\n Content-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nX: y\r\n Content-Length: 5\r\n\r\nhello",
        // Invalid header names and values.
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello",
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nBad(Name): v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
        // Malformed request lines.
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / RTSP/1.0\r\nHost: h\r\n\r\n",
        "GET / ICE/1.0\r\nHost: h\r\n\r\n",
        "GET / HTTP/a.1\r\nHost: h\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                       // missing Host
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", // two Hosts
        "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
    };
    for (const char* c : cases) {
        std::string in(c);
        INFO(in);
        CHECK(error_of(in) == 400);
    }
    // A NUL inside a header value.
    std::string nul = std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a") + '\0' + "b\r\n\r\n";
    CHECK(error_of(nul) == 400);
    // Data after a Connection: close request is refused if the caller keeps going.
    auto p = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(p->rec.completes == 1);
    CHECK(p->parser.state() == State::Error);
    CHECK(p->parser.error_status() == 400);
    CHECK_FALSE(p->parser.error_message().empty());
}

TEST_CASE("request: chunk extensions are bounded", "[http]") {
    std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                     std::string(5000, 'a') + "\r\nx\r\n0\r\n\r\n";
    CHECK(error_of(in) == 400);
}

TEST_CASE("request: unsupported methods, codings and versions", "[http]") {
    CHECK(error_of("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n") == 501);
    CHECK(error_of("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n") == 501);
    CHECK(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == 501);
    CHECK(error_of("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 505);
    CHECK(error_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
    CHECK(error_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n") == 505);
    CHECK(error_of("GET / HTTP/3.0\r\nHost: h\r\n\r\n") == 505);
    CHECK(error_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505);
    auto p = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(p->rec.heads[0].target == "*");
    auto q = parse("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
    CHECK(q->rec.heads[0].target == "http://example.com/x?y");
}

TEST_CASE("request: header section limit", "[http]") {
    RequestParser::Limits limits;
    limits.max_header_bytes = 200;
    auto run = [&](const std::string& in, size_t step) {
        RequestRecorder rec;
        RequestParser parser(rec, limits);
        step == 0 ? drive(parser, in) : drive(parser, pieces_of(in, step));
        return std::make_pair(parser.state(), parser.error_status());
    };
    std::string big_header = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n";
    std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 30; ++i)
        many += "X-" + std::to_string(i) + ": v\r\n";
    many += "\r\n";
    std::string long_line = "GET /" + std::string(300, 'p') + " HTTP/1.1\r\nHost: h\r\n\r\n";
    for (size_t step : {size_t(0), size_t(1), size_t(64)}) {
        CHECK(run(big_header, step) == std::make_pair(State::Error, 431));
        CHECK(run(many, step) == std::make_pair(State::Error, 431));
        CHECK(run(long_line, step) == std::make_pair(State::Error, 414));
    }
    // Exactly at the limit is fine, one more byte is not.
    std::string base = "GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n";
    std::string exact = base.substr(0, base.size() - 4) + std::string(200 - base.size(), 'v') + "\r\n\r\n";
    REQUIRE(exact.size() == 200);
    CHECK(run(exact, 0).first == State::Paused);
    std::string over = exact.substr(0, exact.size() - 4) + "v\r\n\r\n";
    CHECK(run(over, 0) == std::make_pair(State::Error, 431));
    // The limit is per request, and the body does not count.
    std::string two =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 500\r\n\r\n" + std::string(500, 'b') + exact;
    RequestRecorder rec;
    RequestParser parser(rec, limits);
    drive(parser, two);
    CHECK(rec.completes == 2);
    // Trailers have their own limit.
    std::string trailers =
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(300, 't') +
        "\r\n\r\n";
    CHECK(run(trailers, 0) == std::make_pair(State::Error, 431));
}

TEST_CASE("request: upgrade stops after the head", "[http]") {
    std::string head =
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    std::string frames = "\x81\x05hello";
    std::string in = head + frames;
    SECTION("one piece") {
        RequestRecorder rec;
        RequestParser parser(rec, {});
        CHECK(parser.feed(in.data(), in.size()) == head.size());
        CHECK(parser.state() == State::Upgrade);
        REQUIRE(rec.heads.size() == 1);
        CHECK(rec.heads[0].upgrade);
        CHECK(rec.completes == 0);
        CHECK(parser.feed(in.data() + head.size(), frames.size()) == 0);
        CHECK_FALSE(parser.in_message());
    }
    SECTION("byte by byte") {
        RequestRecorder rec;
        RequestParser parser(rec, {});
        auto rest = drive(parser, pieces_of(in, 1));
        CHECK(parser.state() == State::Upgrade);
        CHECK(rest == frames);
    }
    SECTION("declined: parsed on as HTTP/1.1") {
        std::string h2c =
            "POST /x HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 4\r\n\r\nbody"
            "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        RequestRecorder rec;
        RequestParser parser(rec, {});
        size_t n = parser.feed(h2c.data(), h2c.size());
        REQUIRE(parser.state() == State::Upgrade);
        CHECK(rec.heads[0].content_length == 4);
        parser.resume(); // decline
        CHECK(parser.in_message());
        n += parser.feed(h2c.data() + n, h2c.size() - n);
        CHECK(rec.bodies[0] == "body");
        CHECK(rec.completes == 1);
        CHECK(parser.state() == State::Paused);
        parser.resume();
        n += parser.feed(h2c.data() + n, h2c.size() - n);
        CHECK(n == h2c.size());
        CHECK(rec.completes == 2);
        CHECK(rec.heads[1].target == "/next");
        CHECK_FALSE(rec.heads[1].upgrade);
    }
    SECTION("Upgrade header without Connection: upgrade is a plain request") {
        auto p = parse("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
        CHECK(p->parser.state() == State::Paused);
        CHECK_FALSE(p->rec.heads[0].upgrade);
        CHECK(p->rec.completes == 1);
    }
}

TEST_CASE("request: Expect: 100-continue", "[http]") {
    std::string head = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    RequestRecorder rec;
    RequestParser parser(rec, {});
    rec.pause_on_head = &parser; // a server answers "100 Continue" before reading on
    std::string in = head + "abc";
    size_t n = parser.feed(in.data(), in.size());
    CHECK(n == head.size());
    CHECK(parser.state() == State::Paused);
    REQUIRE(rec.heads.size() == 1);
    CHECK(rec.heads[0].expect_continue);
    CHECK(rec.bodies[0].empty());
    CHECK(parser.in_message());
    rec.pause_on_head = nullptr;
    parser.resume();
    CHECK(parser.feed(in.data() + n, in.size() - n) == 3);
    CHECK(rec.bodies[0] == "abc");
    CHECK(rec.completes == 1);

    auto p10 = parse("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
    CHECK_FALSE(p10->rec.heads[0].expect_continue);
}

TEST_CASE("request: pause inside callbacks", "[http]") {
    SECTION("head without body: the message completes on the next feed") {
        RequestRecorder rec;
        RequestParser parser(rec, {});
        rec.pause_on_head = &parser;
        std::string in = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        CHECK(parser.feed(in.data(), in.size()) == in.size());
        CHECK(parser.state() == State::Paused);
        CHECK(rec.completes == 0);
        rec.pause_on_head = nullptr;
        parser.resume();
        CHECK(parser.feed(nullptr, 0) == 0);
        CHECK(rec.completes == 1);
        CHECK(parser.state() == State::Paused);
    }
    SECTION("body: one callback per feed") {
        RequestRecorder rec;
        RequestParser parser(rec, {});
        std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
        rec.pause_on_body = &parser;
        size_t n = parser.feed(in.data(), in.size());
        CHECK(rec.bodies[0] == "ab");
        CHECK(parser.state() == State::Paused);
        parser.resume();
        n += parser.feed(in.data() + n, in.size() - n);
        CHECK(rec.bodies[0] == "abcd");
        CHECK(rec.completes == 0);
        parser.resume();
        n += parser.feed(in.data() + n, in.size() - n);
        CHECK(rec.completes == 1);
        CHECK(n == in.size());
    }
    SECTION("pause outside a callback") {
        RequestRecorder rec;
        RequestParser parser(rec, {});
        parser.pause();
        std::string in = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        CHECK(parser.feed(in.data(), in.size()) == 0);
        CHECK(parser.state() == State::Paused);
        parser.resume();
        CHECK(parser.feed(in.data(), in.size()) == in.size());
        CHECK(rec.completes == 1);
    }
}

TEST_CASE("request: finish and reset", "[http]") {
    RequestRecorder rec;
    RequestParser parser(rec, {});
    CHECK(parser.finish());
    std::string part = "GET / HTTP/1.1\r\nHo";
    parser.feed(part.data(), part.size());
    CHECK(parser.in_message());
    CHECK_FALSE(parser.finish());
    parser.reset();
    CHECK_FALSE(parser.in_message());
    CHECK(parser.state() == State::Ok);
    std::string bad = "GET / HTTP/1.1\nHost: h\n\n";
    parser.feed(bad.data(), bad.size());
    CHECK(parser.state() == State::Error);
    CHECK_FALSE(parser.finish());
    CHECK(parser.feed(bad.data(), bad.size()) == 0);
    parser.reset();
    std::string good = "\r\nGET /ok HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(parser.feed(good.data(), good.size()) == good.size());
    CHECK(rec.heads.back().target == "/ok");
    CHECK(parser.finish());
}

TEST_CASE("request: Host rules can be relaxed", "[http]") {
    RequestRecorder rec;
    RequestParser::Limits limits;
    limits.require_host = false;
    RequestParser parser(rec, limits);
    std::string in = "GET / HTTP/1.1\r\n\r\n";
    CHECK(parser.feed(in.data(), in.size()) == in.size());
    CHECK(rec.completes == 1);
}

TEST_CASE("request: target forms", "[http]") {
    CHECK(parse("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")->parser.state() == State::Paused);
    CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")->parser.state() == State::Paused);
    // RFC 9112 §3.2.2: the authority of an absolute-form target is the Host; equal ones are fine.
    auto p = parse("GET HTTP://X.example:80/p?q HTTP/1.1\r\nHost: x.example:80\r\n\r\n");
    CHECK(p->parser.state() == State::Paused);
    CHECK(p->rec.heads.at(0).target == "HTTP://X.example:80/p?q");
    CHECK(parse("GET https://x HTTP/1.1\r\nHost: x\r\n\r\n")->parser.state() == State::Paused);
    CHECK(error_of("GET http://evil/p HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
    CHECK(error_of("GET http://x:81/p HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
    CHECK(error_of("GET http://u@x/p HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
    CHECK(error_of("GET http:///p HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
    CHECK(error_of("GET ftp://x/p HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
    CHECK(error_of("GET a/b HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
    CHECK(error_of("GET * HTTP/1.1\r\nHost: x\r\n\r\n") == 400);
}

TEST_CASE("request: Transfer-Encoding in HTTP/1.0 is faulty framing", "[http]") {
    CHECK(error_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400);
    CHECK(error_of("POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == 400);
}

TEST_CASE("request: header field count limit", "[http]") {
    auto head = [](int n) {
        std::string s = "GET / HTTP/1.1\r\nHost: x\r\n";
        for (int i = 1; i < n; ++i)
            s += "a" + std::to_string(i) + ":\r\n";
        return s + "\r\n";
    };
    CHECK(parse(head(100))->parser.state() == State::Paused);
    CHECK(error_of(head(101)) == 431);
    RequestRecorder rec;
    RequestParser strict(rec, RequestParser::Limits{8192, true, 3});
    std::string in = head(4);
    strict.feed(in.data(), in.size());
    CHECK(strict.state() == State::Error);
    CHECK(strict.error_status() == 431);
}

TEST_CASE("request: any token is a method, passed on as sent", "[http]") {
    // llhttp's own list, tokens it does not know, lowercase, every tchar, PRI on HTTP/1.1.
    for (const std::string& m :
         std::vector<std::string>{"GET", "HEAD", "OPTIONS", "PATCH", "PURGE", "PROPFIND", "FOO", "M-SEARCH",
                                  "get", "GETX", "PRI", "A!#$%&'*+.^_`|~9z", std::string(200, 'X')}) {
        for (size_t step : {0, 1, 3}) {
            auto p = parse(m + " /x HTTP/1.1\r\nHost: h\r\n\r\n", step);
            INFO(m << " step " << step);
            REQUIRE(p->rec.heads.size() == 1);
            CHECK(p->rec.heads[0].method == m);
            CHECK(p->rec.heads[0].target == "/x");
            CHECK(p->rec.completes == 1);
        }
    }
    // Pipelined, after leading empty lines, with a body: each method is its own.
    auto p = parse("\r\n\r\nFOO /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                   "M-SEARCH /b HTTP/1.1\r\nHost: h\r\n\r\nBAR /c HTTP/1.1\r\nHost: h\r\n\r\n",
                   2);
    REQUIRE(p->rec.heads.size() == 3);
    CHECK(p->rec.heads[0].method == "FOO");
    CHECK(p->rec.bodies[0] == "abc");
    CHECK(p->rec.heads[1].method == "M-SEARCH");
    CHECK(p->rec.heads[2].method == "BAR");
    // The asterisk form stays OPTIONS-only, whatever llhttp was told.
    CHECK(error_of("FOO * HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
    CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")->rec.heads.size() == 1);
}

TEST_CASE("request: a method that is not a token is 400", "[http]") {
    for (const std::string& in :
         std::vector<std::string>{"G(T / HTTP/1.1\r\n", "G:T / HTTP/1.1\r\n", "G\x80T / HTTP/1.1\r\n",
                                  "G\"T / HTTP/1.1\r\n", "G/T / HTTP/1.1\r\n", "G\x01T / HTTP/1.1\r\n",
                                  " GET / HTTP/1.1\r\n", "GET\t/ HTTP/1.1\r\n", "GE\rT / HTTP/1.1\r\n"})
        CHECK(error_of(in + "Host: h\r\n\r\n") == 400);
    // A method alone, too long for the head: 414 as for a long target.
    RequestParser::Limits limits;
    limits.max_header_bytes = 100;
    RequestRecorder rec;
    RequestParser parser(rec, limits);
    std::string in(200, 'A');
    drive(parser, in);
    CHECK(parser.state() == State::Error);
    CHECK(parser.error_status() == 414);
}

TEST_CASE("request: a method cut by the peer's close is an unfinished message", "[http]") {
    RequestRecorder rec;
    RequestParser parser(rec, {});
    std::string in = "\r\nFO";
    CHECK(parser.feed(in.data(), in.size()) == in.size());
    CHECK(parser.in_message());
    CHECK_FALSE(parser.finish());
    RequestParser idle(rec, {});
    std::string crlf = "\r\n";
    CHECK(idle.feed(crlf.data(), crlf.size()) == crlf.size());
    CHECK(idle.finish());
}
