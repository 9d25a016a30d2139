#include "gripd/grip/next_link.hpp"

#include "gripd/core/strings.hpp"

#include <vector>

namespace gripd::grip {

namespace {
std::string_view host_only(std::string_view authority) {
    if (!authority.empty() && authority.front() == '[') {
        size_t end = authority.find(']');
        return end == std::string_view::npos ? authority : authority.substr(0, end + 1);
    }
    return authority.substr(0, authority.rfind(':'));
}

// RFC 3986 §5.2.4 on an absolute path (no query).
std::string remove_dot_segments(std::string_view path) {
    std::vector<std::string_view> segs;
    bool dir = false; // the last segment was "." or "..": the result names a directory
    size_t i = !path.empty() && path.front() == '/' ? 1 : 0;
    while (true) {
        size_t slash = path.find('/', i);
        std::string_view seg =
            path.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i);
        dir = seg == "." || seg == "..";
        if (seg == "..") {
            if (!segs.empty()) segs.pop_back();
        } else if (!dir) {
            segs.push_back(seg);
        }
        if (slash == std::string_view::npos) break;
        i = slash + 1;
    }
    std::string out = "/";
    for (size_t k = 0; k < segs.size(); ++k) {
        if (k) out += '/';
        out.append(segs[k]);
    }
    if (dir && out.back() != '/') out += '/';
    return out;
}

std::string normalize(std::string_view target) {
    size_t q = target.find('?');
    std::string out = remove_dot_segments(target.substr(0, q));
    if (q != std::string_view::npos) out.append(target.substr(q));
    return out;
}
} // namespace

std::optional<LinkTarget> resolve_link(std::string_view url, std::string_view request_host,
                                       std::string_view request_target) {
    url = core::trim(url);
    if (url.empty()) return std::nullopt;
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
    url = url.substr(0, url.find('#'));

    std::string_view rest;
    if (core::istarts_with(url, "http://")) {
        rest = url.substr(5);
    } else if (core::istarts_with(url, "https://")) {
        rest = url.substr(6);
    } else if (url.substr(0, 2) == "//") {
        rest = url;
    }
    if (!rest.empty()) { // "//authority/path?query"
        rest.remove_prefix(2);
        size_t end = rest.find_first_of("/?");
        std::string_view authority = rest.substr(0, end);
        if (authority.empty() || !core::iequals(host_only(authority), host_only(request_host)))
            return std::nullopt;
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
        std::string target = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : normalize(rest);
        return LinkTarget{std::string(authority), std::move(target)};
    }

    size_t colon = url.find(':');
    if (colon != std::string_view::npos && url.find_first_of("/?") > colon)
        return std::nullopt; // other scheme
    std::string_view base_path = request_target.substr(0, request_target.find('?'));
    if (base_path.empty() || base_path.front() != '/') base_path = "/";
    std::string target;
    if (url.front() == '/') {
        target = normalize(url);
    } else if (url.front() == '?') {
        target = std::string(base_path) + std::string(url);
    } else {
        std::string merged(base_path.substr(0, base_path.rfind('/') + 1));
        merged.append(url);
        target = normalize(merged);
    }
    return LinkTarget{std::string(request_host), std::move(target)};
}

} // namespace gripd::grip
