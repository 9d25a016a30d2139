#include "gripd/http/headers.hpp"

#include "gripd/core/strings.hpp"

#include <algorithm>

namespace gripd::http {

using core::iequals;

void Headers::set(std::string_view name, std::string_view value) {
    remove(name);
    add(name, value);
}

size_t Headers::remove(std::string_view name) {
    auto it =
        std::remove_if(items_.begin(), items_.end(), [&](const Header& h) { return iequals(h.name, name); });
    size_t n = static_cast<size_t>(items_.end() - it);
    items_.erase(it, items_.end());
    return n;
}

size_t Headers::remove_prefix(std::string_view prefix) {
    auto it = std::remove_if(items_.begin(), items_.end(),
                             [&](const Header& h) { return core::istarts_with(h.name, prefix); });
    size_t n = static_cast<size_t>(items_.end() - it);
    items_.erase(it, items_.end());
    return n;
}

const std::string* Headers::get(std::string_view name) const {
    for (const auto& h : items_)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& h : items_)
        if (iequals(h.name, name)) out.push_back(h.value);
    return out;
}

std::vector<std::string_view> Headers::get_list(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& h : items_)
        if (iequals(h.name, name))
            for (auto part : core::split_trimmed(h.value, ','))
                out.push_back(part);
    return out;
}

bool Headers::has_token(std::string_view name, std::string_view token) const {
    for (auto v : get_list(name))
        if (iequals(v, token)) return true;
    return false;
}

bool is_hop_by_hop(std::string_view name) {
    static constexpr std::string_view kHop[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "content-length",
        "accept-encoding",
        "content-encoding",
        "expect",
    };
    for (auto h : kHop)
        if (iequals(name, h)) return true;
    return false;
}

bool is_framing_header(std::string_view name) {
    static constexpr std::string_view kNames[] = {"content-length",   "transfer-encoding",
                                                  "connection",       "keep-alive",
                                                  "proxy-connection", "te",
                                                  "trailer",          "upgrade"};
    for (auto n : kNames)
        if (iequals(name, n)) return true;
    return false;
}

std::string_view reason_phrase(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

} // namespace gripd::http
