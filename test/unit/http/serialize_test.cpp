#include "gripd/http/serialize.hpp"

#include "gripd/http/request_parser.hpp"
#include "gripd/http/response_parser.hpp"
#include "parser_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace gripd::http;
using gripd::http::test::drive;
using gripd::http::test::pieces_of;
using gripd::http::test::RequestRecorder;
using gripd::http::test::ResponseRecorder;

TEST_CASE("serialize: request head", "[http]") {
    Headers h;
    h.add("Host", "example.com");
    h.add("X-Multi", "a");
    h.add("X-Multi", "b");
    std::string out = "prefix:";
    serialize_request_head("POST", "/p?q=1", h, out);
    CHECK(out == "prefix:POST /p?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n");
}

TEST_CASE("serialize: response head", "[http]") {
    Headers h;
    h.add("Content-Length", "0");
    std::string out;
    serialize_response_head(404, "", h, out);
    CHECK(out == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    out.clear();
    serialize_response_head(200, "Fine", {}, out);
    CHECK(out == "HTTP/1.1 200 Fine\r\n\r\n");
    out.clear();
    serialize_response_head(299, "", {}, out);
    CHECK(out == "HTTP/1.1 299 \r\n\r\n");
}

TEST_CASE("serialize: untrusted strings cannot split messages", "[http]") {
    Headers h;
    h.add("X-Evil", "a\r\nInjected: 1");
    h.add("Bad Name", "v");
    h.add("", "v");
    h.add("Ok", "v\0w");
    std::string out;
    serialize_response_head(200, "OK\r\nX: y", h, out);
    CHECK(out == std::string("HTTP/1.1 200 OK  X: y\r\nX-Evil: a  Injected: 1\r\nOk: v\r\n\r\n"));
    out.clear();
    serialize_request_head("GET", "/a b\r\n", {}, out);
    CHECK(out == "GET /a%20b%0D%0A HTTP/1.1\r\n\r\n");
}

TEST_CASE("serialize: status lines and single header lines", "[http]") {
    std::string out;
    append_status_line(64, "Low", out); // not three digits: no status line can carry it
    CHECK(out == "HTTP/1.1 500 Internal Server Error\r\n");
    out.clear();
    append_status_line(1000, "X", out);
    CHECK(out == "HTTP/1.1 500 Internal Server Error\r\n");
    out.clear();
    append_status_line(203, "A\r\nX-Inj: 1", out);
    CHECK(out == "HTTP/1.1 203 A  X-Inj: 1\r\n");
    out.clear();
    append_header_line("=bad", "1", out);
    append_header_line("X-V", "a\nb", out);
    CHECK(out == "X-V: a b\r\n");
}

TEST_CASE("serialize: chunks", "[http]") {
    std::string out;
    append_chunk(out, "");
    CHECK(out.empty());
    append_chunk(out, "hello");
    append_chunk(out, std::string(26, 'z'));
    append_last_chunk(out);
    CHECK(out == "5\r\nhello\r\n1a\r\n" + std::string(26, 'z') + "\r\n0\r\n\r\n");
    CHECK(chunk_overhead(0) == 0);
    CHECK(chunk_overhead(5) == 5);
    CHECK(chunk_overhead(15) == 5);
    CHECK(chunk_overhead(16) == 6);
    CHECK(chunk_overhead(4096) == 8);
    for (size_t len : {size_t(1), size_t(15), size_t(16), size_t(255), size_t(256), size_t(70000)}) {
        std::string s;
        append_chunk(s, std::string(len, 'a'));
        CHECK(s.size() == len + chunk_overhead(len));
    }
}

TEST_CASE("serialize: round trips through the parsers", "[http]") {
    SECTION("request with a chunked body") {
        Headers h;
        h.add("Host", "backend:8080");
        h.add("Transfer-Encoding", "chunked");
        h.add("X-Value", "with spaces inside");
        std::string wire;
        serialize_request_head("PUT", "/items/1?x=%20", h, wire);
        std::string body;
        for (int i = 0; i < 50; ++i) {
            std::string piece(static_cast<size_t>(i * 7 % 40), static_cast<char>('a' + i % 26));
            body += piece;
            append_chunk(wire, piece);
        }
        append_last_chunk(wire);
        for (size_t step : {wire.size(), size_t(1), size_t(13)}) {
            RequestRecorder rec;
            RequestParser parser(rec, {});
            auto rest = drive(parser, pieces_of(wire, step));
            REQUIRE(parser.state() == RequestParser::State::Paused);
            CHECK(rest.empty());
            REQUIRE(rec.heads.size() == 1);
            CHECK(rec.heads[0].method == "PUT");
            CHECK(rec.heads[0].target == "/items/1?x=%20");
            CHECK(rec.heads[0].chunked);
            CHECK(*rec.heads[0].headers.get("x-value") == "with spaces inside");
            CHECK(rec.bodies[0] == body);
        }
    }
    SECTION("response with Content-Length, then chunked") {
        Headers h1;
        h1.add("Content-Length", "5");
        std::string wire;
        serialize_response_head(200, "", h1, wire);
        wire += "hello";
        Headers h2;
        h2.add("Transfer-Encoding", "chunked");
        serialize_response_head(503, "", h2, wire);
        append_chunk(wire, "busy");
        append_last_chunk(wire);
        ResponseRecorder rec;
        ResponseParser parser(rec, {});
        auto rest = drive(parser, pieces_of(wire, 3));
        CHECK(rest.empty());
        REQUIRE(rec.heads.size() == 2);
        CHECK(rec.heads[0].reason == "OK");
        CHECK(rec.bodies[0] == "hello");
        CHECK(rec.heads[1].status == 503);
        CHECK(rec.heads[1].reason == "Service Unavailable");
        CHECK(rec.bodies[1] == "busy");
    }
}
