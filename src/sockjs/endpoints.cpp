// SockJS requests that are not a framed or raw WebSocket: Pushpin 1.36's sockjsmanager.cpp answers.
#include "gripd/core/log.hpp"
#include "gripd/sockjs/sockjs.hpp"

#include <openssl/evp.h>

#include <random>

namespace gripd::sockjs {

namespace {

// The path of an origin-form target (no query); empty for any other form.
std::string_view path_of(std::string_view target) {
    if (target.empty() || target[0] != '/') return {};
    return target.substr(0, target.find('?'));
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (;;) {
        size_t at = s.find(sep, start);
        out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) return out;
        start = at + 1;
    }
}

void respond(http::ClientStream& conn, const http::RequestHead& head, int status, http::Headers h,
             std::string_view body) {
    add_common_headers(h, head);
    conn.respond(status, {}, h, body);
}

std::string iframe_page(const std::string& sockjs_url) {
    return "<!DOCTYPE html>\n<html>\n<head>\n"
           "  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n"
           "  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n"
           "  <script src=\"" +
           sockjs_url +
           "\"></script>\n"
           "  <script>\n    document.domain = document.domain;\n    SockJS.bootstrap_iframe();\n  </script>\n"
           "</head>\n<body>\n  <h2>Don't panic!</h2>\n"
           "  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n"
           "</body>\n</html>\n";
}

// `"<md5 hex>"`, as Pushpin's ETag of the page.
std::string etag_of(std::string_view body) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(body.data(), body.size(), md, &len, EVP_md5(), nullptr) != 1) return "\"0\"";
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
    return out + "\"";
}

uint32_t entropy() {
    thread_local std::mt19937 rng{std::random_device{}()};
    return static_cast<uint32_t>(rng());
}

} // namespace

void add_common_headers(http::Headers& h, const http::RequestHead& head) {
    h.add("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0");
    const std::string* origin = head.headers.get("Origin");
    h.add("Access-Control-Allow-Origin", origin ? *origin : std::string("*"));
    h.add("Access-Control-Allow-Credentials", "true");
}

Request classify(const config::Route& route, const http::RequestHead& head, bool websocket) {
    Request r;
    std::string_view path = path_of(head.target);
    if (route.sockjs_path.empty() || path.substr(0, route.sockjs_path.size()) != route.sockjs_path) return r;
    r.kind = Request::Kind::Http;
    std::string_view rest = path.substr(route.sockjs_path.size());
    if (!websocket) {
        // `/<server>/<session>/<transport>`: the HTTP transports (Pushpin reads these after OPTIONS,
        // `/info` and the iframe page, which have other shapes).
        if (head.method != "OPTIONS" && !rest.empty() && rest[0] == '/' &&
            split(rest.substr(1), '/').size() == 3)
            r.kind = Request::Kind::HttpTransport;
        return r;
    }
    std::string_view query = std::string_view(head.target).substr(path.size());
    bool raw = rest == "/websocket";
    bool framed = false;
    if (!raw && !rest.empty() && rest[0] == '/') {
        auto parts = split(rest.substr(1), '/');
        framed = parts.size() == 3;
    }
    if (!raw && !framed) return r; // answered 404
    r.kind = raw ? Request::Kind::RawWebSocket : Request::Kind::FramedWebSocket;
    r.upstream_target =
        route.sockjs_as_path.empty() ? route.sockjs_path + "/websocket" : route.sockjs_as_path;
    r.upstream_target += query;
    return r;
}

void answer_http(http::ClientStream& conn, const config::Route& route, const http::RequestHead& head,
                 const std::string& sockjs_url) {
    std::string_view rest = path_of(head.target).substr(route.sockjs_path.size());
    http::Headers h;
    if (head.method == "OPTIONS") {
        h.add("Content-Type", "text/plain"); // as Pushpin (a Firefox workaround in the SockJS spec)
        respond(conn, head, 204, std::move(h), {});
        return;
    }
    if (head.method == "GET" && rest == "/info") {
        h.add("Content-Type", "text/plain");
        respond(conn, head, 200, std::move(h),
                "{\"cookie_needed\":false,\"entropy\":" + std::to_string(entropy()) +
                    ",\"origins\":[\"*:*\"],\"websocket\":true}\n");
        return;
    }
    if (head.method == "GET" && rest.substr(0, 7) == "/iframe" && rest.size() >= 12 &&
        rest.substr(rest.size() - 5) == ".html") {
        std::string page = iframe_page(sockjs_url);
        std::string etag = etag_of(page);
        h.add("ETag", etag);
        const std::string* inm = head.headers.get("If-None-Match");
        if (inm && *inm == etag) {
            respond(conn, head, 304, std::move(h), {});
            return;
        }
        h.add("Content-Type", "text/html; charset=UTF-8");
        h.add("Cache-Control", "public, max-age=31536000");
        respond(conn, head, 200, std::move(h), page);
        return;
    }
    // Everything else (the HTTP transports come as Kind::HttpTransport).
    LOG_DEBUG("sockjs", "%s %s -> 404", head.method.c_str(), head.target.c_str());
    h.add("Content-Type", "text/plain");
    respond(conn, head, 404, std::move(h), "Not Found\n");
}

} // namespace gripd::sockjs
