// GRIP instructions: what a backend response asks the proxy to do (PROTOCOL.md §3.1-§3.3).
//
// parse_instruct() turns a buffered backend response (status, reason, headers, body) into an
// Instruct, from Grip-* headers and/or an application/grip-instruct JSON body, or into an error whose
// text is Pushpin's (checked against pushpin 1.36 in debug mode). Pure: no I/O.
#pragma once

#include "gripd/http/headers.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::grip {

enum class HoldMode : uint8_t { None, Response, Stream };
enum class KeepAliveMode : uint8_t { Idle, Interval };

constexpr int kDefaultResponseTimeout = 55; // seconds
constexpr int kMinimumResponseTimeout = 5;
constexpr int kDefaultKeepAliveTimeout = 55;
constexpr int kDefaultNextLinkTimeout = 120;
constexpr size_t kMaxFiltersPerChannel = 5;

struct Channel {
    std::string name;
    std::optional<std::string> prev_id;
    std::vector<std::string> filters;
};

struct KeepAlive {
    std::string data; // bytes to send (already decoded from raw/cstring/base64); never empty
    int timeout = kDefaultKeepAliveTimeout; // seconds, >= 1
    KeepAliveMode mode = KeepAliveMode::Idle;
};

struct Link {
    std::string url;  // as given (may be relative: resolve against the request URI)
    int timeout = -1; // next link: seconds between re-polls when quiet; gone link: unused
};

// The response the client gets: at once for stream holds and no-hold, on timeout for response holds.
// Grip-* headers are stripped, Grip-Expose-Headers applied, framing/hop-by-hop headers removed, and
// Grip-Status or the JSON "response" applied.
struct InstructResponse {
    int code = 200;
    std::string reason;
    http::Headers headers;
    std::string body;
};

struct Instruct {
    HoldMode hold = HoldMode::None;
    std::vector<Channel> channels;
    int timeout = kDefaultResponseTimeout; // response hold, seconds, >= 5
    std::optional<KeepAlive> keep_alive;
    std::vector<std::pair<std::string, std::string>> meta; // Grip-Set-Meta / hold.meta, unique names
    std::vector<std::string> expose_headers;               // Grip-Expose-Headers names, as given
    std::optional<Link> next_link;
    std::optional<Link> gone_link;
    InstructResponse response;
    // Not parsed: the proxy sets the target's `sub=` channels, which every hold also subscribes to
    // (full names: no route prefix, and not counted against connection_subscription_max, as Pushpin).
    std::vector<std::string> implicit_channels;
};

struct InstructResult {
    bool ok = false;
    Instruct instruct; // when ok
    std::string error; // when !ok: Pushpin's message, e.g. "failed to parse Grip-Timeout" (may be empty)
};

// Content-Type application/grip-instruct (parameters ignored): the instruct is the JSON body.
bool is_instruct_content_type(const http::Headers& headers);

// True if the proxy must treat this backend response as GRIP: Content-Type application/grip-instruct
// or any header whose name starts with "Grip-" (case-insensitive).
bool is_grip_response(const http::Headers& headers);

// Parses the instructions of a GRIP backend response.
InstructResult parse_instruct(int code, std::string_view reason, const http::Headers& headers,
                              std::string_view body);

// The text of the 502 body Pushpin sends in debug mode for an instruct error, newline included:
// "Failed to parse accept instructions: <error>\n".
std::string grip_error_text(std::string_view error);

// Header parameter syntax shared by Grip-* headers: "first; k=v; k2="quoted \" value"".
struct HeaderParam {
    std::string name;
    std::string value;
};
// Splits a header value on commas outside double quotes, trimming each part. Like Pushpin: empty
// middle parts are kept, and after an unterminated quote the rest is one part.
std::vector<std::string_view> split_header_list(std::string_view value);
// Parses "first; a=b; c="d"" into params. With `first_is_value` the text before the first ';' is the
// first param's name, verbatim (trimmed, quotes not processed). nullopt on an unterminated quote.
std::optional<std::vector<HeaderParam>> parse_header_params(std::string_view value,
                                                            bool first_is_value = true);
// The value of the first param at index >= `from` named `name` (case-insensitive), or nullptr.
const std::string* find_param(const std::vector<HeaderParam>& params, std::string_view name, size_t from = 1);

// Grip-Keep-Alive "cstring" unescaping: \\ \r \n \t \xHH; other escaped characters are dropped (as
// Pushpin does). nullopt on a dangling backslash or a bad \x escape.
std::optional<std::string> unescape_cstring(std::string_view in);

} // namespace gripd::grip
