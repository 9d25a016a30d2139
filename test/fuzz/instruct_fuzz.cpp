// libFuzzer target: GRIP instruction parsing of a backend response. The input is a response head
// ("<code> <reason>", then "Name: value" lines, a blank line) and a body, e.g. an
// application/grip-instruct JSON document. Checks: parsing never fails without a result, an accepted
// instruct has a sane hold (timeout within Pushpin's bounds, filters capped, the origin's Grip-* stripped),
// and the header-parameter helpers never loop or overrun on any value.
#include "gripd/grip/instruct.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <strings.h>

using namespace gripd;

namespace {

void split_head(std::string_view in, int& code, std::string_view& reason, http::Headers& headers,
                std::string_view& body) {
    size_t end = in.find("\n\n");
    std::string_view head = end == std::string_view::npos ? in : in.substr(0, end);
    body = end == std::string_view::npos ? std::string_view{} : in.substr(end + 2);
    size_t nl = head.find('\n');
    std::string_view first = head.substr(0, nl);
    code = std::atoi(std::string(first.substr(0, 3)).c_str());
    reason = first.size() > 4 ? first.substr(4) : std::string_view{};
    while (nl != std::string_view::npos) {
        head.remove_prefix(nl + 1);
        nl = head.find('\n');
        std::string_view line = head.substr(0, nl);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
        headers.add(std::string(line.substr(0, colon)), std::string(value));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    int code = 0;
    std::string_view reason, body;
    http::Headers headers;
    split_head(in, code, reason, headers, body);
    if (code < 100 || code > 999) code = 200;

    for (const auto& h : headers) {
        for (std::string_view part : grip::split_header_list(h.value))
            if (part.size() > h.value.size()) abort();
        if (auto params = grip::parse_header_params(h.value))
            for (const auto& p : *params)
                if (p.name.size() > h.value.size()) abort();
        (void)grip::unescape_cstring(h.value);
    }
    if (!grip::is_grip_response(headers)) return 0;
    grip::InstructResult res = grip::parse_instruct(code, reason, headers, body);
    if (!res.ok) {
        (void)grip::grip_error_text(res.error); // an error text may be empty (Pushpin has some without one)
        return 0;
    }
    const grip::Instruct& ins = res.instruct;
    // A header hold without any Grip-Channel is accepted (pushpin 1.36 holds it until the timeout).
    for (const auto& c : ins.channels)
        if (c.filters.size() > grip::kMaxFiltersPerChannel) abort();
    if (ins.hold == grip::HoldMode::Response && ins.timeout < grip::kMinimumResponseTimeout) abort();
    if (ins.keep_alive && (ins.keep_alive->data.empty() || ins.keep_alive->timeout < 1)) abort();
    if (ins.response.code < 100 || ins.response.code > 999) abort();
    // The origin's own Grip-* headers are stripped. An instruct body's response.headers are sent as
    // given, Grip-* names included, as pushpin 1.36 does (the backend chose them explicitly).
    if (!grip::is_instruct_content_type(headers))
        for (const auto& h : ins.response.headers)
            if (h.name.size() >= 5 && strncasecmp(h.name.c_str(), "Grip-", 5) == 0) abort();
    return 0;
}
