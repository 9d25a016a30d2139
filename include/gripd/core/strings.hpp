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

std::string base64_encode(std::string_view data, bool url_safe = false, bool pad = true);
// Accepts standard and URL-safe alphabets, with or without padding.
std::optional<std::string> base64_decode(std::string_view text);

} // namespace gripd::core
