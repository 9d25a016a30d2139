// Small string helpers shared by every module (ASCII only: HTTP tokens and config keys).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::core {

char ascii_lower(char c);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string to_lower(std::string_view s);
std::string_view trim(std::string_view s);
// Splits on `sep`, trimming each part; empty parts are dropped.
std::vector<std::string_view> split_trimmed(std::string_view s, char sep);
// Parses a whole decimal integer (optional leading '-'); nullopt on anything else or overflow.
std::optional<int64_t> parse_int(std::string_view s);
std::optional<bool> parse_bool(std::string_view s); // true/false/yes/no/on/off/1/0
// parse_int() of `s` with blanks around it trimmed, in [lo, hi]; nullopt otherwise.
std::optional<int> parse_int_in(std::string_view s, int lo, int hi);
// A file mode of 1 to 4 octal digits ("660", "0755"); nullopt on anything else.
std::optional<int> parse_file_mode(std::string_view s);

// The value of one hex digit (either case), or -1.
int hex_digit(char c);
// Parses a whole hex number of 1 to `max_digits` digits (either case); nullopt on anything else.
std::optional<uint64_t> parse_hex(std::string_view s, size_t max_digits = 15);

std::string base64_encode(std::string_view data, bool url_safe = false, bool pad = true);
// Strict: standard and URL-safe alphabets, with or without padding; nullopt on any other character
// or an impossible length (keys, handshake values, `content-bin` in control messages).
std::optional<std::string> base64_decode(std::string_view text);
// Lenient, as Qt's QByteArray::fromBase64 that Pushpin uses for published and instructed `*-bin`
// fields: characters outside both alphabets are skipped and decoding stops at the first '='.
std::string base64_decode_lenient(std::string_view text);

} // namespace gripd::core
