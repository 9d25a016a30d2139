#include "gripd/http/cors.hpp"

#include "gripd/core/strings.hpp"

namespace gripd::http {

namespace {

// The CORS-safelisted response headers: a script may read them without being told.
bool is_simple_header(std::string_view name) {
    for (std::string_view s : {"Cache-Control", "Content-Language", "Content-Length", "Content-Type",
                               "Expires", "Last-Modified", "Pragma"})
        if (core::iequals(name, s)) return true;
    return false;
}

void join_into(std::string& out, std::string_view item) {
    if (!out.empty()) out += ", ";
    out += item;
}

} // namespace

CrossOrigin cross_origin_of(const Headers& request) {
    CrossOrigin co;
    if (const std::string* v = request.get("Origin")) co.origin = *v;
    if (const std::string* v = request.get("Access-Control-Request-Method")) co.request_method = *v;
    for (std::string_view h : request.get_list("Access-Control-Request-Headers"))
        if (!h.empty()) join_into(co.request_headers, h);
    return co;
}

bool is_response_header(std::string_view name) {
    return core::iequals(name, "Content-Length") || !is_framing_header(name);
}

void apply_cors_headers(const CrossOrigin& co, Headers& response) {
    if (!response.has("Access-Control-Allow-Methods"))
        response.add("Access-Control-Allow-Methods",
                     co.request_method.empty() ? "OPTIONS, HEAD, GET, POST, PUT, DELETE" : co.request_method);
    if (!response.has("Access-Control-Allow-Headers") && !co.request_headers.empty())
        response.add("Access-Control-Allow-Headers", co.request_headers);
    if (!response.has("Access-Control-Expose-Headers")) {
        std::string expose;
        const auto& items = response.items();
        for (size_t i = 0; i < items.size(); ++i) {
            std::string_view n = items[i].name;
            if (is_simple_header(n) || !is_response_header(n) || core::istarts_with(n, "Access-Control-") ||
                core::istarts_with(n, "Grip-"))
                continue;
            bool seen = false; // named once, as first spelled
            for (size_t j = 0; j < i && !seen; ++j)
                seen = core::iequals(items[j].name, n);
            if (!seen) join_into(expose, n);
        }
        if (!expose.empty()) response.add("Access-Control-Expose-Headers", expose);
    }
    if (!response.has("Access-Control-Allow-Credentials"))
        response.add("Access-Control-Allow-Credentials", "true");
    if (!response.has("Access-Control-Allow-Origin"))
        response.add("Access-Control-Allow-Origin", co.origin.empty() ? "*" : co.origin);
    if (!response.has("Access-Control-Max-Age")) response.add("Access-Control-Max-Age", "3600");
}

} // namespace gripd::http
