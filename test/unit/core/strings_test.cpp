#include "gripd/core/strings.hpp"

#include <catch2/catch.hpp>

using namespace gripd::core;

TEST_CASE("base64: strict refuses what lenient (Qt's) skips", "[core]") {
    CHECK(base64_decode("aGVsbG8=") == "hello");
    CHECK(base64_decode("aGVsbG8") == "hello");
    CHECK(base64_decode("_-8") == base64_decode("/+8"));
    CHECK(base64_decode("aGVs bG8") == std::nullopt);
    CHECK(base64_decode("a") == std::nullopt);

    CHECK(base64_decode_lenient("aGVsbG8=") == "hello");
    CHECK(base64_decode_lenient("aGVs bG8") == "hello");
    CHECK(base64_decode_lenient("aGVs\nbG8=trailing") == "hello"); // stops at '='
    CHECK(base64_decode_lenient("!!!") == "");
    CHECK(base64_decode_lenient("_-8") == base64_decode_lenient("/+8"));
    CHECK(base64_decode_lenient(base64_encode("\x01\xff\x80", true, false)) == "\x01\xff\x80");
}

TEST_CASE("hex digits and numbers", "[core]") {
    CHECK(hex_digit('0') == 0);
    CHECK(hex_digit('a') == 10);
    CHECK(hex_digit('F') == 15);
    CHECK(hex_digit('g') == -1);
    CHECK(parse_hex("ff") == 255u);
    CHECK(parse_hex("0") == 0u);
    CHECK(parse_hex("") == std::nullopt);
    CHECK(parse_hex("1x") == std::nullopt);
    CHECK(parse_hex("123456789abcdef") == 0x123456789abcdefu);
    CHECK(parse_hex("123456789abcdef0") == std::nullopt); // more than 15 digits
    CHECK(parse_hex("fff", 2) == std::nullopt);
}
