#include "gripd/core/url_query.hpp"

#include <catch2/catch.hpp>

using gripd::core::query_decode;
using gripd::core::query_param;

// Every expectation below was observed on pushpin 1.36 (its test handler's ?channel=).
TEST_CASE("query_decode decodes what Qt's pretty decoding decodes", "[core]") {
    CHECK(query_decode("a%20b") == "a b");
    CHECK(query_decode("a%26b") == "a&b");
    CHECK(query_decode("a%3Db") == "a=b");
    CHECK(query_decode("a%23b") == "a#b");
    CHECK(query_decode("a%41") == "aA");
    CHECK(query_decode("a%61b") == "aab");
    CHECK(query_decode("a%7Eb") == "a~b");
    CHECK(query_decode("a%7Bb") == "a{b");
    CHECK(query_decode("a%7Db") == "a}b");
    CHECK(query_decode("a%22b") == "a\"b");
    CHECK(query_decode("a%3Cb%3E") == "a<b>");
    CHECK(query_decode("a%5Cb%5E%60%7C") == "a\\b^`|");
    CHECK(query_decode("a%2D%2E%5F%30") == "a-._0");
    CHECK(query_decode("a%C3%A9") == "a\xc3\xa9");
    CHECK(query_decode("a%c3%a9") == "a\xc3\xa9");
}

TEST_CASE("query_decode keeps delimiters, controls and invalid UTF-8 escaped, in upper case", "[core]") {
    for (const char* kept : {"%25", "%2F", "%3F", "%5B", "%5D", "%2B", "%3A", "%40", "%21", "%24", "%27",
                             "%28", "%29", "%2A", "%3B", "%2C", "%0A", "%09", "%7F", "%FF", "%E9"})
        CHECK(query_decode(std::string("a") + kept + "b") == std::string("a") + kept + "b");
    CHECK(query_decode("a%2cb") == "a%2Cb");
    CHECK(query_decode("a%e9b") == "a%E9b");
    CHECK(query_decode("a+b") == "a+b");
}

TEST_CASE("query_decode escapes a percent sign that starts no escape", "[core]") {
    CHECK(query_decode("a%zzb") == "a%25zzb");
    CHECK(query_decode("a%4") == "a%254");
    CHECK(query_decode("%") == "%25");
}

TEST_CASE("query_decode checks UTF-8 sequences byte by byte", "[core]") {
    CHECK(query_decode("%E2%82%AC") == "\xe2\x82\xac");        // euro sign
    CHECK(query_decode("%F0%9F%98%80") == "\xf0\x9f\x98\x80"); // emoji
    CHECK(query_decode("%C0%AF") == "%C0%AF");                 // overlong '/'
    CHECK(query_decode("%ED%A0%80") == "%ED%A0%80");           // surrogate
    CHECK(query_decode("%E2%82") == "%E2%82");                 // cut short
    CHECK(query_decode("%C3%A9%C3") == "\xc3\xa9%C3");
}

TEST_CASE("query_param finds the first item of a name", "[core]") {
    CHECK(query_param("/stream?channel=a%20b", "channel") == "a b");
    CHECK(query_param("/stream?x=1&channel=c&channel=d", "channel") == "c");
    CHECK(query_param("/stream?channel", "channel") == "");
    CHECK(query_param("/stream?channel=", "channel") == "");
    CHECK(query_param("/stream?chan%6Eel=z", "channel") == "z");
    CHECK(query_param("/stream?channelx=1", "channel") == std::nullopt);
    CHECK(query_param("/stream", "channel") == std::nullopt);
    CHECK(query_param("/stream?a=1&&channel=q", "channel") == "q");
    CHECK(query_param("/stream?channel=a=b", "channel") == "a=b");
}
