#include "gripd/pubsub/message.hpp"
#include "gripd/pubsub/publish.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace gripd::pubsub;

namespace {

struct Case {
    const char* body;
    const char* error; // Pushpin 1.36's 400 body minus the trailing "\n"
};

// Every row was sent to Debian's pushpin 1.36.0 (POST /publish/ on the control port); the expected
// text is what it answered with status 400.
const Case kPushpinErrors[] = {
    {"", "Body is not valid JSON."},
    {" ", "Body is not valid JSON."},
    {"nope", "Body is not valid JSON."},
    {"\"str\"", "Body is not valid JSON."},
    {"1", "Body is not valid JSON."},
    {"null", "Body is not valid JSON."},
    {"true", "Body is not valid JSON."},
    {"{\"items\":[]", "Body is not valid JSON."},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x"}}}]} trailing)",
     "Body is not valid JSON."},
    {"[]", "Invalid format."},
    {"{}", "Invalid format: object does not contain 'items'"},
    {R"({"items":1})", "Invalid format: object contains 'items' with wrong type"},
    {R"({"items":{}})", "Invalid format: object contains 'items' with wrong type"},
    {R"({"items":null})", "Invalid format: object contains 'items' with wrong type"},
    {R"({"items":"x"})", "Invalid format: object contains 'items' with wrong type"},
    {R"({"items":[],"items":1})", "Invalid format: object contains 'items' with wrong type"},
    {R"({"items":[1]})", "Invalid format: publish item object is not an object"},
    {R"({"items":[null]})", "Invalid format: publish item object is not an object"},
    {R"({"items":[[]]})", "Invalid format: publish item object is not an object"},
    {R"({"items":[{}]})", "Invalid format: publish item object does not contain 'channel'"},
    {R"({"items":[{"channel":1}]})",
     "Invalid format: publish item object contains 'channel' with wrong type"},
    {R"({"items":[{"channel":null,"formats":{"http-stream":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'channel' with wrong type"},
    {R"({"items":[{"channel":"a"}]})", "Invalid format: no formats specified"},
    {R"({"items":[{"channel":"a","formats":{}}]})", "Invalid format: no formats specified"},
    {R"({"items":[{"channel":"a","formats":1}]})",
     "Invalid format: publish item object contains 'formats' with wrong type"},
    {R"({"items":[{"channel":"a","formats":null}]})",
     "Invalid format: publish item object contains 'formats' with wrong type"},
    {R"({"items":[{"channel":"a","id":1,"formats":{"http-stream":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'id' with wrong type"},
    {R"({"items":[{"channel":"a","id":null,"formats":{"http-stream":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'id' with wrong type"},
    {R"({"items":[{"channel":"a","prev-id":1,"formats":{"http-stream":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'prev-id' with wrong type"},
    // http-stream
    {R"({"items":[{"channel":"a","formats":{"http-stream":{}}}]})",
     "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":1}}]})",
     "Invalid format: 'http-stream' is not an object"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":null}}]})",
     "Invalid format: 'http-stream' is not an object"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":1}}}]})",
     "Invalid format: 'http-stream' contains 'content' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":null}}}]})",
     "Invalid format: 'http-stream' contains 'content' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content-bin":1}}}]})",
     "Invalid format: 'http-stream' contains 'content-bin' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"action":"bogus"}}}]})", "Invalid format: "},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"action":""}}}]})", "Invalid format: "},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"action":1}}}]})",
     "Invalid format: 'http-stream' contains 'action' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"action":null}}}]})",
     "Invalid format: 'http-stream' contains 'action' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x","content-filters":1}}}]})",
     "Invalid format: 'http-stream' contains 'content-filters' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x","content-filters":[1]}}}]})",
     "Invalid format: content-filters contains element with wrong type"},
    {R"({"items":[{"channel":"a","http-stream":{}}]})",
     "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'"},
    // http-response
    {R"({"items":[{"channel":"a","formats":{"http-response":{}}}]})",
     "Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":1}}}]})",
     "Invalid format: 'http-response' contains 'body' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":null}}}]})",
     "Invalid format: 'http-response' contains 'body' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":1000}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":-1}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":"1000"}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":1e10}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":null}}}]})",
     "Invalid format: 'http-response' contains 'code' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":[]}}}]})",
     "Invalid format: 'http-response' contains 'code' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":{}}}}]})",
     "Invalid format: 'http-response' contains 'code' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"code":1000, "body":1}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","reason":1}}}]})",
     "Invalid format: 'http-response' contains 'reason' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","reason":null}}}]})",
     "Invalid format: 'http-response' contains 'reason' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":1}}}]})",
     "Invalid format: 'http-response' contains 'headers' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":null}}}]})",
     "Invalid format: 'http-response' contains 'headers' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":[1]}}}]})",
     "Invalid format: headers contains element with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":[["a"]]}}}]})",
     "Invalid format: headers contains list with wrong number of elements"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":[[1,"a"]]}}}]})",
     "Invalid format: header contains name element with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":[["a",1]]}}}]})",
     "Invalid format: header contains value element with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":{"a":1}}}}]})",
     "Invalid format: headers contains 'a' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","headers":{"A":"1","A":2}}}}]})",
     "Invalid format: headers contains 'A' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body-bin":1}}}]})",
     "Invalid format: 'http-response' contains 'body-bin' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body-patch":1}}}]})",
     "Invalid format: 'http-response' contains 'body-patch' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","content-filters":"a"}}}]})",
     "Invalid format: 'http-response' contains 'content-filters' with wrong type"},
    // ws-message
    {R"({"items":[{"channel":"a","formats":{"ws-message":{}}}]})",
     "Invalid format: 'ws-message' does not contain 'content' or 'content-bin'"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"type":"text"}}}]})",
     "Invalid format: 'ws-message' does not contain 'content' or 'content-bin'"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"content":1}}}]})",
     "Invalid format: 'ws-message' contains 'content' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"content-bin":1}}}]})",
     "Invalid format: 'ws-message' contains 'content-bin' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"content":"x","type":"bogus"}}}]})",
     "Invalid format: 'ws-message' contains 'type' with unknown value"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"content":"x","type":1}}}]})",
     "Invalid format: 'ws-message' contains 'type' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"type":null,"content":"x"}}}]})",
     "Invalid format: 'ws-message' contains 'type' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"content":"x","content-filters":[1]}}}]})",
     "Invalid format: content-filters contains element with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"close","code":-1}}}]})",
     "Invalid format: 'ws-message' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"close","code":null}}}]})",
     "Invalid format: 'ws-message' contains 'code' with wrong type"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"close","reason":1}}}]})",
     "Invalid format: 'ws-message' contains 'reason' with wrong type"},
    // item fields after the formats
    {R"({"items":[{"channel":"a","meta":1,"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'meta' with wrong type"},
    {R"({"items":[{"channel":"a","meta":null,"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'meta' with wrong type"},
    {R"({"items":[{"channel":"a","meta":[],"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'meta' with wrong type"},
    {R"({"items":[{"channel":"a","meta":{"k":1},"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: 'meta' contains 'k' with wrong type"},
    {R"({"items":[{"channel":"a","size":-1,"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'size' with invalid value"},
    {R"({"items":[{"channel":"a","size":"-3","formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'size' with invalid value"},
    {R"({"items":[{"channel":"a","size":null,"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'size' with wrong type"},
    {R"({"items":[{"channel":"a","size":[],"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'size' with wrong type"},
    {R"({"items":[{"channel":"a","no-seq":1,"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'no-seq' with wrong type"},
    {R"({"items":[{"channel":"a","no-seq":null,"formats":{"ws-message":{"content":"x"}}}]})",
     "Invalid format: publish item object contains 'no-seq' with wrong type"},
    // check order: formats in fixed order, id before formats before meta
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x"},"ws-message":{}}}]})",
     "Invalid format: 'ws-message' does not contain 'content' or 'content-bin'"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{}, "http-stream":{}}}]})",
     "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'"},
    {R"({"items":[{"channel":"a","formats":{"ws-message":{"content":1}}, "meta":1, "id":1}]})",
     "Invalid format: publish item object contains 'id' with wrong type"},
    // one bad item rejects the whole body
    {R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x"}}},{"channel":2}]})",
     "Invalid format: publish item object contains 'channel' with wrong type"},
};

// Deliberate differences: pushpin 1.36 accepts these (a code read as 0..99) and then sends a status
// line that is no status line ("HTTP/1.1 0 ..."); gripd rejects them as it rejects codes over 999.
const Case kGripdRejects[] = {
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":"x"}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":true}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
    {R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":99}}}]})",
     "Invalid format: 'http-response' contains 'code' with invalid value"},
};

// Bodies pushpin 1.36 answered "200 Published" to.
const char* const kPushpinAccepted[] = {
    R"({"items":[]})",
    R"(  {"items":[]}  )",
    R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x"}}}], "extra":1})",
    R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":200.5}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-response":{"body":"x","code":"200"}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-response":{"action":"hint"}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-response":{"action":"close"}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-response":{"body-patch":[1]}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-stream":{"action":"close"}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-stream":{"action":"hint"}}}]})",
    R"({"items":[{"channel":"a","formats":{"http-stream":{"content-bin":"!!!"}}}]})",
    R"({"items":[{"channel":"a","formats":{"ws-message":{"type":"ping"}}}]})",
    R"({"items":[{"channel":"a","formats":{"ws-message":{"type":"pong"}}}]})",
    R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"hint"}}}]})",
    R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"close","code":"abc"}}}]})",
    R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"close","code":70000}}}]})",
    R"({"items":[{"channel":"a","size":"x","formats":{"ws-message":{"content":"x"}}}]})",
    R"({"items":[{"channel":"a","size":true,"formats":{"ws-message":{"content":"x"}}}]})",
    R"({"items":[{"channel":"a","size":"5","formats":{"http-stream":{"content":"x"}}}]})",
    R"({"items":[{"channel":"a","size":5.5,"formats":{"http-stream":{"content":"x"}}}]})",
    R"({"items":[{"channel":"a","http-stream":{"content":"x"}}]})",
    R"({"items":[{"channel":"a","formats":{"bogus":{"content":"x"}}}]})",
    R"({"items":[{"channel":"","formats":{"http-stream":{"content":"x"}}}]})",
    R"({"items":[{"channel":"a\u0000b","formats":{"http-stream":{"content":"x"}}}]})",
};

template <size_t N> void check_rejected(const Case (&cases)[N]) {
    for (const Case& c : cases) {
        INFO("body: " << c.body);
        auto r = parse_publish_body(c.body);
        CHECK_FALSE(r.ok);
        CHECK(r.error == c.error);
        CHECK(r.items.empty());
    }
}

} // namespace

TEST_CASE("publish: error texts match pushpin 1.36", "[pubsub][publish]") {
    check_rejected(kPushpinErrors);
}

TEST_CASE("publish: status codes that make no status line are rejected", "[pubsub][publish]") {
    check_rejected(kGripdRejects);
}

TEST_CASE("publish: bodies pushpin 1.36 accepts", "[pubsub][publish]") {
    for (const char* body : kPushpinAccepted) {
        INFO("body: " << body);
        auto r = parse_publish_body(body);
        CHECK(r.ok);
        CHECK(r.error.empty());
    }
}

TEST_CASE("publish: invalid UTF-8 is not valid JSON", "[pubsub][publish]") {
    std::string body =
        "{\"items\":[{\"channel\":\"a\xff\",\"formats\":{\"http-stream\":{\"content\":\"x\"}}}]}";
    auto r = parse_publish_body(body);
    CHECK_FALSE(r.ok);
    CHECK(r.error == "Body is not valid JSON.");
}

TEST_CASE("publish: error names the failing item index for logs", "[pubsub][publish]") {
    auto r = parse_publish_body(
        R"({"items":[{"channel":"a","http-stream":{"content":"x"}},{"channel":"b","http-stream":{"content":"y"}},{"channel":"c"}]})");
    CHECK_FALSE(r.ok);
    CHECK(r.error_item == 2);
    CHECK(r.error == "Invalid format: no formats specified");
}

TEST_CASE("publish: full item with all formats", "[pubsub][publish]") {
    auto r = parse_publish_body(R"({"items":[{
        "channel":"room", "id":"2", "prev-id":"1", "meta":{"sender":"u1","k":"v"}, "size":7, "no-seq":true,
        "formats":{
          "http-response":{"code":404,"headers":{"X-A":"1","Content-Type":"text/plain"},"body":"gone\n",
                           "content-filters":["var-subst"]},
          "http-stream":{"content-bin":"aGVsbG8K"},
          "ws-message":{"content":"hi","content-filters":[]}
        }}]})");
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 1);
    const PublishItem& it = r.items[0];
    CHECK(it.channel == "room");
    CHECK(it.id == "2");
    CHECK(it.prev_id == "1");
    REQUIRE(it.meta.size() == 2);
    CHECK(it.meta[0] == std::pair<std::string, std::string>{"sender", "u1"});
    CHECK(it.size == 7);
    CHECK(it.no_seq);
    REQUIRE(it.http_response);
    CHECK(it.http_response->action == Action::Send);
    CHECK(it.http_response->code == 404);
    CHECK(it.http_response->reason.empty()); // the status line gets the standard phrase
    REQUIRE(it.http_response->headers.size() == 2);
    CHECK(*find_header(it.http_response->headers, "x-a") == "1");
    CHECK(it.http_response->body == "gone\n");
    REQUIRE(it.http_response->content_filters);
    CHECK(*it.http_response->content_filters == std::vector<std::string>{"var-subst"});
    REQUIRE(it.http_stream);
    CHECK(it.http_stream->content == "hello\n");
    CHECK_FALSE(it.http_stream->content_filters);
    REQUIRE(it.ws_message);
    CHECK(it.ws_message->type == WsType::Text);
    CHECK(it.ws_message->content == "hi");
    REQUIRE(it.ws_message->content_filters);
    CHECK(it.ws_message->content_filters->empty());
}

TEST_CASE("publish: defaults, legacy format keys, Qt-style numbers", "[pubsub][publish]") {
    auto r = parse_publish_body(R"({"items":[
        {"channel":"a","http-response":{"body":"x"}},
        {"channel":"b","formats":{"http-response":{"body":"x","code":200.5,"reason":"Yes"}}},
        {"channel":"c","formats":{"http-response":{"body":"x","code":"404"}}},
        {"channel":"d","formats":{"ws-message":{"content-bin":"AAEC"}}},
        {"channel":"e","formats":{"ws-message":{"content-bin":"AAEC","type":"text"}}},
        {"channel":"f","formats":{"ws-message":{"action":"close","code":4001,"reason":"bye"}}},
        {"channel":"g","formats":{"http-response":{"headers":[["A","1"],["a","2"]],"body-patch":[{"op":"add","path":"/x","value":1}]}}},
        {"channel":"h","formats":{"http-stream":{"content":"x"}},"http-response":{"body":1}}
    ]})");
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 8);
    CHECK(r.items[0].http_response->code == 200);
    CHECK(r.items[0].http_response->reason.empty());
    CHECK(r.items[0].id == std::nullopt);
    CHECK(r.items[0].size == -1);
    CHECK_FALSE(r.items[0].no_seq);
    CHECK(r.items[1].http_response->code == 201); // Qt rounds doubles
    CHECK(r.items[1].http_response->reason == "Yes");
    CHECK(r.items[2].http_response->code == 404); // Qt: numeric strings are numbers
    CHECK(r.items[3].ws_message->type == WsType::Binary);
    CHECK(r.items[3].ws_message->content == std::string("\0\1\2", 3));
    CHECK(r.items[4].ws_message->type == WsType::Text);
    CHECK(r.items[5].ws_message->action == Action::Close);
    CHECK(r.items[5].ws_message->close_code == 4001);
    CHECK(r.items[5].ws_message->close_reason == "bye");
    REQUIRE(r.items[6].http_response->headers.size() == 2); // list form keeps duplicates
    REQUIRE(r.items[6].http_response->body_patch);
    CHECK(*r.items[6].http_response->body_patch == R"([{"op":"add","path":"/x","value":1}])");
    // "formats" present: legacy keys on the item are ignored
    CHECK(r.items[7].http_stream);
    CHECK_FALSE(r.items[7].http_response);
}

TEST_CASE("publish: a close may name one connection (gripd)", "[pubsub][publish]") {
    auto r = parse_publish_body(R"({"items":[
        {"channel":"a","formats":{"http-stream":{"action":"close","connection-id":"c1"},
                                  "ws-message":{"action":"close","code":4000,"connection-id":"c2"}}},
        {"channel":"b","formats":{"http-stream":{"action":"close"},"ws-message":{"action":"close"}}}
    ]})");
    REQUIRE(r.ok);
    CHECK(r.items[0].http_stream->connection_id == "c1");
    CHECK(r.items[0].ws_message->connection_id == "c2");
    auto m = Message::create(std::move(r.items[0]));
    CHECK(m->http_stream()->connection_id == "c1");
    CHECK(m->ws_message()->connection_id == "c2");
    CHECK_FALSE(r.items[1].http_stream->connection_id);
    CHECK_FALSE(r.items[1].ws_message->connection_id);
    auto bad = parse_publish_body(
        R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"close","connection-id":1}}}]})");
    CHECK_FALSE(bad.ok);
}

TEST_CASE("publish: action refresh (1.38+) and hint carry no payload", "[pubsub][publish]") {
    auto r = parse_publish_body(
        R"({"items":[{"channel":"a","formats":{"ws-message":{"action":"refresh"},"http-stream":{"action":"hint"}}}]})");
    REQUIRE(r.ok);
    CHECK(r.items[0].ws_message->action == Action::Refresh);
    CHECK(r.items[0].http_stream->action == Action::Hint);
}

TEST_CASE("publish: single item (bus/ZMQ input) with channel override", "[pubsub][publish]") {
    auto r = parse_publish_item(R"({"formats":{"http-stream":{"content":"x"}}})", "chan");
    REQUIRE(r.ok);
    CHECK(r.item.channel == "chan");
    auto bad = parse_publish_item(R"({"formats":{"http-stream":{"content":"x"}}})");
    CHECK_FALSE(bad.ok);
    CHECK(bad.error == "publish item object does not contain 'channel'");
    CHECK_FALSE(parse_publish_item("{").ok);
}

TEST_CASE("publish: deep nesting does not overflow the stack", "[pubsub][publish]") {
    std::string body = "{\"items\":[{\"channel\":\"a\",\"http-stream\":{\"content\":\"x\"},\"deep\":";
    for (int i = 0; i < 200000; ++i)
        body += '[';
    auto r = parse_publish_body(body);
    CHECK_FALSE(r.ok);
    CHECK(r.error == "Body is not valid JSON.");
}

TEST_CASE("publish: kept item JSON parses back to the same item (what the bus carries)", "[pubsub][bus]") {
    auto r = parse_publish_body(
        R"({"items":[{"channel":"a","id":"1","prev-id":"0","meta":{"user":"x"},)"
        R"("formats":{"http-stream":{"content":"hi\n"},"ws-message":{"content-bin":"AAE="}}},)"
        R"({"channel":"b","formats":{"http-response":{"code":201,"body":"r"}}}]})",
        true);
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 2);
    for (const auto& item : r.items) {
        auto back = parse_publish_item(item.json, item.channel);
        REQUIRE(back.ok);
        CHECK(back.item.channel == item.channel);
        CHECK(back.item.id == item.id);
        CHECK(back.item.prev_id == item.prev_id);
        CHECK(back.item.meta == item.meta);
        CHECK(back.item.http_stream.has_value() == item.http_stream.has_value());
        CHECK(back.item.ws_message.has_value() == item.ws_message.has_value());
        CHECK(back.item.http_response.has_value() == item.http_response.has_value());
    }
    CHECK(parse_publish_body(R"({"items":[{"channel":"a","formats":{"http-stream":{"content":"x"}}}]})")
              .items[0]
              .json.empty()); // not kept unless asked
}
