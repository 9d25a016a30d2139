#include "gripd/grip/instruct.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>
#include <utility>

using namespace gripd;
using namespace gripd::grip;

namespace {

http::Headers hdrs(std::initializer_list<std::pair<const char*, const char*>> list) {
    http::Headers h;
    for (auto& [n, v] : list)
        h.add(n, v);
    return h;
}

InstructResult parse(const http::Headers& h, std::string_view body = {}, int code = 200,
                     const char* reason = "OK") {
    return parse_instruct(code, reason, h, body);
}

http::Headers json_ct() {
    return hdrs({{"Content-Type", "application/grip-instruct"}});
}

struct ErrorCase {
    http::Headers headers;
    const char* body;
    int code;
    const char* error; // Pushpin 1.36 debug text after "Failed to parse accept instructions: "
};

} // namespace

TEST_CASE("instruct: GRIP detection", "[grip][instruct]") {
    CHECK(is_grip_response(hdrs({{"grip-hold", "response"}})));
    CHECK(is_grip_response(hdrs({{"Grip-Whatever", "x"}})));
    CHECK(is_grip_response(hdrs({{"Content-Type", "application/grip-instruct; charset=utf-8"}})));
    CHECK_FALSE(is_grip_response(hdrs({{"Content-Type", "text/plain"}, {"X-Grip-Hold", "response"}})));
    CHECK_FALSE(is_grip_response({}));
}

TEST_CASE("instruct: response hold from headers", "[grip][instruct]") {
    auto r = parse(hdrs({{"Grip-Hold", "response"},
                         {"Grip-Channel", "a, b; prev-id=3"},
                         {"Grip-Channel", "c; filter=skip-self; filter=\"var-subst\""},
                         {"Grip-Timeout", "20"},
                         {"Content-Type", "text/plain"},
                         {"Content-Length", "7"},
                         {"Connection", "keep-alive"},
                         {"X-Other", "1"}}),
                   "waiting");
    REQUIRE(r.ok);
    const Instruct& in = r.instruct;
    CHECK(in.hold == HoldMode::Response);
    REQUIRE(in.channels.size() == 3);
    CHECK(in.channels[0].name == "a");
    CHECK_FALSE(in.channels[0].prev_id);
    CHECK(in.channels[1].name == "b");
    CHECK(in.channels[1].prev_id == "3");
    CHECK(in.channels[2].filters == std::vector<std::string>{"skip-self", "var-subst"});
    CHECK(in.timeout == 20);
    CHECK_FALSE(in.keep_alive);
    CHECK(in.response.code == 200);
    CHECK(in.response.reason == "OK");
    CHECK(in.response.body == "waiting");
    // Grip-* and framing headers stripped, the rest kept in order
    REQUIRE(in.response.headers.size() == 2);
    CHECK(in.response.headers.items()[0].name == "Content-Type");
    CHECK(in.response.headers.items()[1].name == "X-Other");
}

TEST_CASE("instruct: timeout defaults and minimum", "[grip][instruct]") {
    CHECK(parse(hdrs({{"Grip-Hold", "response"}, {"Grip-Channel", "a"}})).instruct.timeout == 55);
    CHECK(parse(hdrs({{"Grip-Hold", "response"}, {"Grip-Channel", "a"}, {"Grip-Timeout", "1"}}))
              .instruct.timeout == 5);
    CHECK(parse(hdrs({{"Grip-Hold", "response"}, {"Grip-Channel", "a"}, {"Grip-Timeout", " 0 "}}))
              .instruct.timeout == 5);
}

TEST_CASE("instruct: stream hold with keep-alive forms", "[grip][instruct]") {
    auto r = parse(hdrs({{"Grip-Hold", "stream"},
                         {"Grip-Channel", "a"},
                         {"Grip-Keep-Alive", ":\\n\\n; format=cstring; timeout=20"}}));
    REQUIRE(r.ok);
    CHECK(r.instruct.hold == HoldMode::Stream);
    REQUIRE(r.instruct.keep_alive);
    CHECK(r.instruct.keep_alive->data == ":\n\n");
    CHECK(r.instruct.keep_alive->timeout == 20);
    CHECK(r.instruct.keep_alive->mode == KeepAliveMode::Idle);

    // Observed on pushpin 1.36: unknown escapes are dropped, \x works, raw keeps quotes, 0 => 1.
    r = parse(hdrs({{"Grip-Hold", "stream"},
                    {"Grip-Channel", "a"},
                    {"Grip-Keep-Alive", "a\\qb\\x41\\\\; format=cstring"}}));
    REQUIRE(r.ok);
    CHECK(r.instruct.keep_alive->data == "abA\\");
    CHECK(r.instruct.keep_alive->timeout == 55);
    r = parse(
        hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "\"quoted\"; timeout=0"}}));
    REQUIRE(r.ok);
    CHECK(r.instruct.keep_alive->data == "\"quoted\"");
    CHECK(r.instruct.keep_alive->timeout == 1);
    r = parse(hdrs({{"Grip-Hold", "stream"},
                    {"Grip-Channel", "a"},
                    {"Grip-Keep-Alive", "YQ==; format=base64; timeout=1; mode=interval"}}));
    REQUIRE(r.ok);
    CHECK(r.instruct.keep_alive->data == "a");
    CHECK(r.instruct.keep_alive->mode == KeepAliveMode::Interval);
    // \t: tab (the brief's list; pushpin 1.36 drops the 't')
    CHECK(unescape_cstring("a\\tb") == "a\tb");
    CHECK_FALSE(unescape_cstring("x\\"));
    CHECK_FALSE(unescape_cstring("\\x4"));
    CHECK_FALSE(unescape_cstring("\\xZZ"));
}

TEST_CASE("instruct: status, meta, expose headers, links", "[grip][instruct]") {
    auto r = parse(hdrs({{"Grip-Channel", "a"},
                         {"Grip-Status", "404 Nope Nope"},
                         {"Grip-Set-Meta", "user=alice, id_format=\"x;y\""},
                         {"Grip-Set-Meta", "user=bob"},
                         {"Grip-Link", "</next?x=1>; rel=next; timeout=30, </gone>; rel=gone"},
                         {"Grip-Expose-Headers", "x-b, Content-Type"},
                         {"X-A", "1"},
                         {"X-B", "2"},
                         {"Content-Type", "text/x"}}),
                   "b");
    REQUIRE(r.ok);
    const Instruct& in = r.instruct;
    CHECK(in.hold == HoldMode::None);
    CHECK(in.response.code == 404);
    CHECK(in.response.reason == "Nope Nope");
    REQUIRE(in.meta.size() == 2);
    CHECK(in.meta[0] == std::pair<std::string, std::string>{"user", "bob"});
    CHECK(in.meta[1] == std::pair<std::string, std::string>{"id_format", "x;y"});
    REQUIRE(in.next_link);
    CHECK(in.next_link->url == "/next?x=1");
    CHECK(in.next_link->timeout == 30);
    REQUIRE(in.gone_link);
    CHECK(in.gone_link->url == "/gone");
    REQUIRE(in.response.headers.size() == 2);
    CHECK(*in.response.headers.get("x-b") == "2");
    CHECK(*in.response.headers.get("content-type") == "text/x");

    r = parse(hdrs({{"Grip-Channel", "a"}, {"Grip-Status", "201"}, {"Grip-Link", "</n>; rel=next"}}));
    REQUIRE(r.ok);
    CHECK(r.instruct.response.code == 201);
    CHECK(r.instruct.response.reason == "Created");
    CHECK(r.instruct.next_link->timeout == 120);
    // a link without params is ignored
    r = parse(hdrs({{"Grip-Channel", "a"}, {"Grip-Link", "</n>"}}));
    REQUIRE(r.ok);
    CHECK_FALSE(r.instruct.next_link);
}

TEST_CASE("instruct: JSON body form", "[grip][instruct]") {
    auto h = json_ct();
    h.add("X-Drop", "1");
    auto r = parse(h, R"({
        "hold": {"mode": "stream", "channels": [{"name": "a", "prev-id": "1", "filters": ["skip-self"]}, {"name": "b"}],
                 "timeout": 3, "keep-alive": {"content": "ka\n", "timeout": 0}, "meta": {"user": "u"}},
        "response": {"code": 202, "headers": {"X-A": "1", "Content-Length": "5"}, "body": "hello"}})");
    REQUIRE(r.ok);
    const Instruct& in = r.instruct;
    CHECK(in.hold == HoldMode::Stream);
    REQUIRE(in.channels.size() == 2);
    CHECK(in.channels[0].prev_id == "1");
    CHECK(in.channels[0].filters == std::vector<std::string>{"skip-self"});
    CHECK(in.timeout == 5);
    REQUIRE(in.keep_alive);
    CHECK(in.keep_alive->data == "ka\n");
    CHECK(in.keep_alive->timeout == 1);
    CHECK(in.keep_alive->mode == KeepAliveMode::Interval);
    CHECK(in.meta == std::vector<std::pair<std::string, std::string>>{{"user", "u"}});
    CHECK(in.response.code == 202);
    CHECK(in.response.reason == "Accepted");
    REQUIRE(in.response.headers.size() == 1); // backend headers dropped, framing headers too
    CHECK(*in.response.headers.get("X-A") == "1");
    CHECK(in.response.body == "hello");

    r = parse(json_ct(), R"({"hold": {"channels": [{"name": "a"}]}, "response": {"body-bin": "aGk=",
                              "headers": [["A", "1"], ["A", "2"]]}})");
    REQUIRE(r.ok);
    CHECK(r.instruct.hold == HoldMode::Response);
    CHECK(r.instruct.response.body == "hi");
    CHECK(r.instruct.response.code == 200);
    CHECK(r.instruct.response.headers.size() == 2);

    // the origin's Grip-* headers go, but response.headers are sent as given (pushpin 1.36 too)
    auto hg = json_ct();
    hg.add("Grip-Foo", "origin");
    r = parse(hg, R"({"response": {"headers": {"Grip-Set-Meta": "x=1"}}})");
    REQUIRE(r.ok);
    REQUIRE(r.instruct.response.headers.size() == 1);
    CHECK(*r.instruct.response.headers.get("Grip-Set-Meta") == "x=1");
    CHECK(is_instruct_content_type(hdrs({{"content-type", "Application/Grip-Instruct; charset=utf-8"}})));
    CHECK_FALSE(is_instruct_content_type(hdrs({{"Content-Type", "application/grip-instructx"}})));

    // header channels and JSON channels add up
    auto h2 = json_ct();
    h2.add("Grip-Channel", "x");
    r = parse(h2, R"({"hold": {"channels": [{"name": "y"}]}})");
    REQUIRE(r.ok);
    REQUIRE(r.instruct.channels.size() == 2);
    CHECK(r.instruct.channels[0].name == "x");
    CHECK(r.instruct.response.body.empty());
}

TEST_CASE("instruct: error texts match pushpin 1.36", "[grip][instruct]") {
    const ErrorCase cases[] = {
        {hdrs({{"Grip-Hold", "foo"}, {"Grip-Channel", "a"}}), "", 200,
         "Grip-Hold must be set to either 'response' or 'stream'"},
        {hdrs({{"Grip-Hold", "Response"}, {"Grip-Channel", "a"}}), "", 200,
         "Grip-Hold must be set to either 'response' or 'stream'"},
        {hdrs({{"Grip-Hold", "response"}, {"Grip-Channel", "a"}, {"Grip-Timeout", "x"}}), "", 200,
         "failed to parse Grip-Timeout"},
        {hdrs({{"Grip-Hold", "response"}, {"Grip-Channel", "a"}, {"Grip-Timeout", "-1"}}), "", 200,
         "Grip-Timeout has invalid value"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "; format=raw"}}), "", 200,
         "Grip-Keep-Alive cannot be empty"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "x; mode=bogus"}}), "",
         200, "no such Grip-Keep-Alive mode 'bogus'"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "x; timeout=abc"}}), "",
         200, "failed to parse Grip-Keep-Alive timeout value"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "x; timeout=-2"}}), "",
         200, "Grip-Keep-Alive timeout has invalid value"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "x\\; format=cstring"}}),
         "", 200, "failed to parse Grip-Keep-Alive cstring format"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Keep-Alive", "x; format=hex"}}), "",
         200, "no such Grip-Keep-Alive format 'hex'"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Set-Meta", "a=1,,b=2"}}), "", 200,
         "Grip-Set-Meta cannot be empty"},
        {hdrs({{"Grip-Channel", "a"}, {"Grip-Status", "abc"}}), "", 200,
         "Grip-Status contains invalid status code"},
        {hdrs({{"Grip-Channel", "a"}, {"Grip-Status", "1000 X"}}), "", 200,
         "Grip-Status contains invalid status code"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Link", "foo; rel=next"}}), "", 200,
         "failed to parse Grip-Link value"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Link", "</n>; rel=next; timeout=x"}}),
         "", 200, "failed to parse Grip-Link timeout value"},
        {hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a"}, {"Grip-Link", "</n>; rel=next; timeout=-1"}}),
         "", 200, "Grip-Link timeout has invalid value"},
        {json_ct(), "{}", 201, "response code for application/grip-instruct content must be 200"},
        {json_ct(), "nope", 200, "failed to parse application/grip-instruct content as JSON"},
        {json_ct(), "[]", 200, "instruct must be an object"},
        {json_ct(), R"({"hold":1})", 200, "instruct contains 'hold' with wrong type"},
        {json_ct(), R"({"hold":{}})", 200, "hold does not contain 'channels'"},
        {json_ct(), R"({"hold":{"mode":1,"channels":[]}})", 200, "hold contains 'mode' with wrong type"},
        {json_ct(), R"({"hold":{"mode":"x","channels":[]}})", 200,
         "hold 'mode' must be set to either 'response' or 'stream'"},
        {json_ct(), R"({"hold":{"channels":1}})", 200, "hold contains 'channels' with wrong type"},
        {json_ct(), R"({"hold":{"channels":[1]}})", 200, "channel is not an object"},
        {json_ct(), R"({"hold":{"channels":[{}]}})", 200, "channel does not contain 'name'"},
        {json_ct(), R"({"hold":{"channels":[{"name":1}]}})", 200, "channel contains 'name' with wrong type"},
        {json_ct(), R"({"hold":{"channels":[{"name":"a","filters":[1]}]}})", 200,
         "filters contains value with wrong type"},
        {json_ct(), R"({"hold":{"channels":[{"name":"a"}],"timeout":[]}})", 200,
         "hold contains 'timeout' with wrong type"},
        {json_ct(), R"({"hold":{"channels":[{"name":"a"}],"timeout":-1}})", 200,
         "hold contains 'timeout' with invalid value"},
        {json_ct(), R"({"hold":{"channels":[{"name":"a"}],"keep-alive":1}})", 200,
         "hold contains 'keep-alive' with wrong type"},
        {json_ct(), R"({"hold":{"channels":[{"name":"a"}],"meta":{"k":1}}})", 200,
         "'meta' contains 'k' with wrong type"},
        {json_ct(), R"({"response":1})", 200, ""},
        {json_ct(), R"({"response":{"code":null}})", 200, "response contains 'code' with wrong type"},
        {json_ct(), R"({"response":{"headers":[[1,2]]}})", 200,
         "header contains name element with wrong type"},
        // newer Pushpin (not 1.36) limits filters per channel
        {hdrs({{"Grip-Hold", "stream"},
               {"Grip-Channel", "a; filter=a; filter=b; filter=c; filter=d; filter=e; filter=f"}}),
         "", 200, "too many filters for channel 'a'"},
    };
    for (const auto& c : cases) {
        INFO("body: " << c.body
                      << " first header: " << (c.headers.empty() ? "" : c.headers.items()[0].value));
        auto r = parse(c.headers, c.body, c.code);
        CHECK_FALSE(r.ok);
        CHECK(r.error == c.error);
    }
    CHECK(grip_error_text("failed to parse Grip-Timeout") ==
          "Failed to parse accept instructions: failed to parse Grip-Timeout\n");
}

TEST_CASE("instruct: header parameter syntax", "[grip][instruct]") {
    auto parts = split_header_list("a; x=\"1,2\", b ,, c");
    REQUIRE(parts.size() == 4);
    CHECK(parts[0] == "a; x=\"1,2\"");
    CHECK(parts[1] == "b");
    CHECK(parts[2] == "");
    CHECK(parts[3] == "c");
    CHECK(split_header_list("a, \"b, c").size() == 2); // unterminated quote: the rest is one part

    auto p = parse_header_params("chan ; prev-id=\"a\\\"b\" ;flag; k = v ");
    REQUIRE(p);
    REQUIRE(p->size() == 4);
    CHECK((*p)[0].name == "chan");
    CHECK((*p)[1].name == "prev-id");
    CHECK((*p)[1].value == "a\"b");
    CHECK((*p)[2].name == "flag");
    CHECK((*p)[2].value.empty());
    CHECK((*p)[3].value == "v");
    CHECK(*find_param(*p, "PREV-ID") == "a\"b");
    CHECK(find_param(*p, "chan") == nullptr); // the leading value is not a param
    CHECK_FALSE(parse_header_params("a; b=\"open"));
    auto all = parse_header_params("k=\"v\"", false);
    REQUIRE(all);
    CHECK((*all)[0].name == "k");
    CHECK((*all)[0].value == "v");

    // an unparsable channel entry is skipped, as Pushpin does
    auto r = parse(hdrs({{"Grip-Hold", "stream"}, {"Grip-Channel", "a; prev-id=\"x, b"}}));
    REQUIRE(r.ok);
    CHECK(r.instruct.channels.empty());
}
