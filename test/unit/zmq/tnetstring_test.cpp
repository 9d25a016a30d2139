#include "gripd/zmq/tnetstring.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace std::literals;

namespace tnet = gripd::zmq::tnet;

namespace {
std::string json_of(std::string_view in, std::string_view channel = {}) {
    tnet::Value v;
    std::string err;
    REQUIRE(tnet::parse(in, v, &err));
    std::string out;
    if (!tnet::item_to_json(v, channel, out, &err)) return "ERR " + err;
    return out;
}
bool bad(std::string_view in) {
    tnet::Value v;
    std::string err;
    bool ok = tnet::parse(in, v, &err);
    if (!ok) CHECK(!err.empty());
    return !ok;
}
} // namespace

TEST_CASE("tnetstring parses every type and re-encodes the same bytes", "[zmq]") {
    std::string in = "69:1:s,3:abc,1:i,2:-5#1:f,3:1.5^1:t,4:true!1:n,0:~1:l,8:1:a,1:1#]1:e,0:,}";
    tnet::Value v;
    std::string err;
    REQUIRE(tnet::parse(in, v, &err));
    REQUIRE(v.type == tnet::Type::Dict);
    CHECK(v.find("s")->text == "abc");
    CHECK(v.find("i")->text == "-5");
    CHECK(v.find("t")->boolean);
    CHECK(v.find("n")->type == tnet::Type::Null);
    CHECK(v.find("l")->list.size() == 2);
    CHECK(v.find("e")->text.empty());
    std::string out;
    tnet::put_value(out, v);
    CHECK(out == in);
}

TEST_CASE("tnetstring refuses malformed input with a reason", "[zmq]") {
    CHECK(bad(""));
    CHECK(bad("garbage"));
    CHECK(bad("99:short,"));     // length past the end
    CHECK(bad("3:abc"));         // no type
    CHECK(bad("3:abcX"));        // unknown type
    CHECK(bad("1234567890:x,")); // more than 9 length digits
    CHECK(bad("-1:x,"));
    CHECK(bad("3:abc,extra")); // data after the value
    CHECK(bad("4:true~"));     // null with a payload
    CHECK(bad("3:yes!"));
    CHECK(bad("2:1a#"));
    CHECK(bad("4:1:a,}"));     // key without value
    CHECK(bad("8:1:1#1:a,}")); // non-string key
    std::string deep;
    for (int i = 0; i <= tnet::kMaxDepth + 1; ++i)
        deep = std::to_string(deep.size()) + ":" + deep + "]";
    CHECK(bad(deep));
}

TEST_CASE("tnetstring items become the JSON the HTTP publish path reads", "[zmq]") {
    CHECK(json_of("35:7:channel,1:c,1:n,2:12#2:ok,4:true!}") == R"({"channel":"c","n":12,"ok":true})");
    // content bytes that are not UTF-8 go as content-bin; content-bin always base64
    CHECK(json_of("16:7:content,3:\xff\x00\x01,}"sv) == R"({"content-bin":"/wAB"})");
    CHECK(json_of("20:11:content-bin,2:hi,}") == R"({"content-bin":"aGk="})");
    CHECK(json_of("16:4:body,6:a\"b\\\n\x01,}") == R"({"body":"a\"b\\\u000a\u0001"})");
    // any other string must be UTF-8
    CHECK(json_of("15:7:channel,2:\xff\xfe,}").rfind("ERR", 0) == 0);
    // a list is not an item
    CHECK(json_of("0:]").rfind("ERR", 0) == 0);
    // the SUB input's channel replaces the item's
    CHECK(json_of("14:7:channel,1:x,}", "y") == R"({"channel":"y"})");
}
