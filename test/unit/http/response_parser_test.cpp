#include "gripd/http/response_parser.hpp"

#include "parser_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace gripd::http;
using gripd::http::test::drive;
using gripd::http::test::pieces_of;
using gripd::http::test::ResponseRecorder;
using State = ResponseParser::State;

namespace {

struct Parsed {
    ResponseRecorder rec;
    ResponseParser parser{rec, ResponseParser::Limits{}};
    std::string rest;
};

std::unique_ptr<Parsed> parse(std::string_view input, size_t step = 0, bool head_request = false) {
    auto p = std::make_unique<Parsed>();
    p->parser.expect_no_body(head_request);
    p->rest = step == 0 ? drive(p->parser, input) : drive(p->parser, pieces_of(input, step));
    return p;
}

void expect_error(std::string_view input) {
    INFO(std::string(input));
    for (size_t step : {size_t(0), size_t(1)}) {
        auto p = parse(input, step);
        CHECK(p->parser.state() == State::Error);
        CHECK(p->rec.completes == 0);
        CHECK_FALSE(p->parser.error_message().empty());
        CHECK_FALSE(p->parser.finish());
    }
}

} // namespace

TEST_CASE("response: Content-Length body", "[http]") {
    std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";
    for (size_t step : {size_t(0), size_t(1), size_t(4)}) {
        auto p = parse(in, step);
        REQUIRE(p->rec.heads.size() == 1);
        const auto& h = p->rec.heads[0];
        CHECK(h.status == 200);
        CHECK(h.reason == "OK");
        CHECK(h.version_minor == 1);
        CHECK(h.content_length == 11);
        CHECK_FALSE(h.chunked);
        CHECK(h.keep_alive);
        CHECK_FALSE(h.no_body);
        CHECK(*h.headers.get("content-type") == "text/plain");
        CHECK(p->rec.bodies[0] == "hello world");
        CHECK(p->rec.completes == 1);
        CHECK(p->parser.state() == State::Paused);
        CHECK(p->parser.finish());
    }
}

TEST_CASE("response: chunked body and keep-alive reuse", "[http]") {
    std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6;x=y\r\nhello \r\n5\r\nworld\r\n0\r\nTrailer: z\r\n\r\n"
                     "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"
                     "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (size_t k = 0; k <= in.size(); ++k) {
        INFO("split at " << k);
        ResponseRecorder rec;
        ResponseParser parser(rec, {});
        std::string_view v(in);
        drive(parser, {v.substr(0, k), v.substr(k)});
        REQUIRE(rec.heads.size() == 3);
        CHECK(rec.heads[0].chunked);
        CHECK(rec.bodies[0] == "hello world");
        CHECK(rec.heads[0].headers.size() == 1);
        CHECK(rec.heads[1].status == 404);
        CHECK(rec.heads[1].reason == "Not Found");
        CHECK(rec.bodies[1] == "no");
        CHECK(rec.bodies[2].empty());
        CHECK(rec.completes == 3);
        CHECK(rec.empty_body_calls == 0);
    }
}

TEST_CASE("response: framing trailers do not affect the next response", "[http]") {
    std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1\r\na\r\n0\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"
                     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb";
    for (size_t step : {size_t(0), size_t(1)}) {
        auto p = parse(in, step);
        REQUIRE(p->rec.heads.size() == 2);
        CHECK(p->rec.heads[0].keep_alive);
        CHECK(p->rec.bodies[0] == "a");
        CHECK(p->rec.bodies[1] == "b");
        CHECK(p->rec.completes == 2);
    }
}

TEST_CASE("response: close-delimited body completes on finish", "[http]") {
    std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n";
    for (size_t step : {size_t(0), size_t(1), size_t(7)}) {
        auto p = parse(in, step);
        REQUIRE(p->rec.heads.size() == 1);
        CHECK_FALSE(p->rec.heads[0].keep_alive);
        CHECK(p->rec.heads[0].content_length == -1);
        CHECK(p->rec.bodies[0] == "data: 1\n\ndata: 2\n\n");
        CHECK(p->rec.completes == 0);
        CHECK(p->parser.in_message());
        CHECK(p->parser.finish());
        CHECK(p->rec.completes == 1);
        CHECK_FALSE(p->parser.in_message());
    }
    auto p10 = parse("HTTP/1.0 200 OK\r\n\r\nabc");
    CHECK(p10->rec.heads[0].version_minor == 0);
    CHECK_FALSE(p10->rec.heads[0].keep_alive);
    CHECK(p10->parser.finish());
    CHECK(p10->rec.bodies[0] == "abc");
    // An empty close-delimited body.
    auto e = parse("HTTP/1.1 200 OK\r\n\r\n");
    CHECK(e->parser.finish());
    CHECK(e->rec.completes == 1);
}

TEST_CASE("response: keep-alive rules", "[http]") {
    CHECK_FALSE(
        parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")->rec.heads[0].keep_alive);
    CHECK_FALSE(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")->rec.heads[0].keep_alive);
    CHECK(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
              ->rec.heads[0]
              .keep_alive);
}

TEST_CASE("response: HEAD responses have no body", "[http]") {
    std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    ResponseRecorder rec;
    ResponseParser parser(rec, {});
    parser.expect_no_body(true);
    size_t n = parser.feed(in.data(), in.size());
    REQUIRE(rec.heads.size() == 1);
    CHECK(rec.heads[0].no_body);
    CHECK(rec.heads[0].content_length == 10);
    CHECK(rec.heads[0].keep_alive);
    CHECK(rec.completes == 1);
    // Cleared after that response: the next one (a GET) has its body.
    parser.resume();
    n += parser.feed(in.data() + n, in.size() - n);
    CHECK(n == in.size());
    CHECK(rec.bodies[1] == "abc");
    CHECK_FALSE(rec.heads[1].no_body);
    // Chunked HEAD response.
    auto c = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, true);
    CHECK(c->rec.completes == 1);
    CHECK(c->rec.heads[0].chunked);
    CHECK(c->rec.heads[0].no_body);
    // Nothing after the head of a HEAD response is body, even with no framing headers.
    auto d = parse("HTTP/1.1 200 OK\r\n\r\n", 1, true);
    CHECK(d->rec.completes == 1);
    CHECK(d->rec.heads[0].keep_alive);
}

TEST_CASE("response: interim 1xx are skipped", "[http]") {
    std::string in = "HTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                     "HTTP/1.1 102 Processing\r\nContent-Length: 5\r\n\r\n"
                     "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    for (size_t step : {size_t(0), size_t(1), size_t(5)}) {
        auto p = parse(in, step);
        REQUIRE(p->rec.heads.size() == 1);
        CHECK(p->rec.heads[0].status == 201);
        CHECK(p->rec.heads[0].headers.size() == 1);
        CHECK(p->rec.bodies[0] == "ok");
        CHECK(p->rec.completes == 1);
        CHECK(p->rest.empty());
    }
    // An HTTP/1.0 interim response does not end the connection.
    auto v10 = parse("HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 1);
    REQUIRE(v10->rec.heads.size() == 1);
    CHECK(v10->rec.bodies[0] == "x");
    // Only an interim response before EOF: the response was cut short.
    auto q = parse("HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(q->rec.heads.empty());
    CHECK(q->parser.in_message());
    CHECK_FALSE(q->parser.finish());
}

TEST_CASE("response: 204 and 304 have no body", "[http]") {
    for (int status : {204, 304}) {
        std::string in = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 3\r\n\r\n" +
                         "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        auto p = parse(in);
        REQUIRE(p->rec.heads.size() == 2);
        CHECK(p->rec.heads[0].no_body);
        CHECK(p->rec.bodies[0].empty());
        CHECK(p->rec.bodies[1] == "abc");
        CHECK(p->rec.completes == 2);
    }
    auto p = parse("HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(p->rec.completes == 1);
    CHECK(p->rec.heads[0].keep_alive);
}

TEST_CASE("response: truncated messages", "[http]") {
    auto head = parse("HTTP/1.1 200 OK\r\nContent-Len");
    CHECK(head->parser.in_message());
    CHECK_FALSE(head->parser.finish());
    auto cl = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    CHECK(cl->rec.bodies[0] == "abc");
    CHECK_FALSE(cl->parser.finish());
    CHECK(cl->rec.completes == 0);
    auto ch = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    CHECK(ch->rec.bodies[0] == "abc");
    CHECK_FALSE(ch->parser.finish());
    auto trailer = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    CHECK_FALSE(trailer->parser.finish());
    ResponseRecorder rec;
    ResponseParser idle(rec, {});
    CHECK(idle.finish()); // nothing was in progress
}

TEST_CASE("response: 101 stops with Upgrade", "[http]") {
    std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    std::string in = head + "\x81\x02hi";
    ResponseRecorder rec;
    ResponseParser parser(rec, {});
    CHECK(parser.feed(in.data(), in.size()) == head.size());
    CHECK(parser.state() == State::Upgrade);
    REQUIRE(rec.heads.size() == 1);
    CHECK(rec.heads[0].status == 101);
    CHECK(rec.heads[0].no_body);
    CHECK(rec.completes == 0);
    parser.resume(); // no effect
    CHECK(parser.state() == State::Upgrade);
    CHECK(parser.feed(in.data() + head.size(), 4) == 0);
    auto p = parse(in, 1);
    CHECK(p->parser.state() == State::Upgrade);
    CHECK(p->rest == "\x81\x02hi");
    // A 200 announcing Upgrade is a plain response.
    auto q = parse("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 1\r\n\r\nx");
    CHECK(q->parser.state() == State::Paused);
    CHECK(q->rec.bodies[0] == "x");
}

TEST_CASE("response: invalid responses", "[http]") {
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nabc");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n");
    expect_error("HTTP/1.1 200 OK\nContent-Length: 0\n\n");
    expect_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n");
    expect_error("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    expect_error("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n");
    expect_error("HTTP/1.1 2000 OK\r\n\r\n");
    expect_error("HTTP/1.1 099 OK\r\n\r\n");
    expect_error("HTTP/1.1 abc OK\r\n\r\n");
    expect_error("ICY 200 OK\r\n\r\n");
    expect_error("HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n");
    // The header limit.
    ResponseRecorder rec;
    ResponseParser::Limits limits;
    limits.max_header_bytes = 100;
    ResponseParser parser(rec, limits);
    std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(200, 'x') + "\r\n\r\n";
    parser.feed(big.data(), big.size());
    CHECK(parser.state() == State::Error);
}

TEST_CASE("response: status line variants", "[http]") {
    auto p = parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
    CHECK(p->rec.heads[0].reason.empty());
    auto q = parse("HTTP/1.1 299 Custom\tReason \r\nContent-Length: 0\r\n\r\n");
    CHECK(q->rec.heads[0].status == 299);
    CHECK(q->rec.heads[0].reason == "Custom\tReason");
}

TEST_CASE("response: reset", "[http]") {
    ResponseRecorder rec;
    ResponseParser parser(rec, {});
    parser.expect_no_body(true);
    std::string bad = "garbage\r\n\r\n";
    parser.feed(bad.data(), bad.size());
    CHECK(parser.state() == State::Error);
    parser.reset();
    std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    CHECK(parser.feed(in.data(), in.size()) == in.size());
    CHECK(rec.bodies.back() == "x"); // expect_no_body was cleared by reset()
}
