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

TEST_CASE("integers in a range and file modes", "[core]") {
    CHECK(parse_int_in(" 42 ", 0, 100) == 42);
    CHECK(parse_int_in("0", 0, 100) == 0);
    CHECK(parse_int_in("100", 0, 100) == 100);
    CHECK(parse_int_in("101", 0, 100) == std::nullopt);
    CHECK(parse_int_in("-1", 0, 100) == std::nullopt);
    CHECK(parse_int_in("", 0, 100) == std::nullopt);
    CHECK(parse_int_in("4x", 0, 100) == std::nullopt);
    CHECK(parse_int_in("99999999999", 0, 100) == std::nullopt);

    CHECK(parse_file_mode("660") == 0660);
    CHECK(parse_file_mode("0755") == 0755);
    CHECK(parse_file_mode("7") == 07);
    CHECK(parse_file_mode("") == std::nullopt);
    CHECK(parse_file_mode("07777") == std::nullopt); // more than 4 digits
    CHECK(parse_file_mode("680") == std::nullopt);
    CHECK(parse_file_mode("-66") == std::nullopt);
}
