#include "gripd/http/forwarding.hpp"

#include "gripd/core/jwt.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/http/serialize.hpp"

namespace gripd::http {

const char* const kGripFeatures =
    "status, session, link:next, link:gone, filter:skip-self, filter:skip-users, "
    "filter:require-sub, filter:build-id, filter:var-subst";

std::string_view host_without_port(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        size_t end = host.find(']');
        return end == std::string_view::npos ? host : host.substr(1, end - 1);
    }
    size_t colon = host.rfind(':');
    return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool grip_enabled(const config::Route& route) {
    return route.grip;
}

std::string apply_xff_rule(const http::Headers& in, const config::XffRule& rule, std::string_view peer_ip,
                           bool* present) {
    std::vector<std::string_view> values = in.get_list("X-Forwarded-For");
    if (rule.truncate >= 0 && values.size() > static_cast<size_t>(rule.truncate))
        values.erase(values.begin(), values.end() - rule.truncate);
    std::string out;
    for (auto v : values) {
        if (!out.empty()) out += ", ";
        out += v;
    }
    if (rule.append && !peer_ip.empty()) {
        if (!out.empty()) out += ", ";
        out += peer_ip;
    }
    *present = !out.empty();
    return out;
}

std::string upstream_target(const config::Route& route, std::string_view request_target) {
    // An absolute-form target ("http://host/path") is reduced to its path for the backend.
    if (core::istarts_with(request_target, "http://") || core::istarts_with(request_target, "https://")) {
        size_t scheme_end = request_target.find("//") + 2;
        size_t path = request_target.find_first_of("/?", scheme_end);
        request_target = path == std::string_view::npos ? std::string_view("/") : request_target.substr(path);
    }
    return config::rewrite_path(route, request_target);
}

namespace {

// The client's end-to-end headers: not hop-by-hop (nor named in Connection), no GRIP headers from an
// untrusted client, no Pushpin-Route when that is read, no X-Forwarded-For (rebuilt after).
http::Headers end_to_end_headers(const http::RequestHead& head, const ForwardContext& ctx) {
    const auto& s = ctx.settings;
    std::vector<std::string_view> connection_tokens = head.headers.get_list("Connection");
    http::Headers out;
    for (const auto& h : head.headers) {
        if (http::is_hop_by_hop(h.name)) continue;
        bool listed = false;
        for (auto t : connection_tokens)
            if (core::iequals(t, h.name)) listed = true;
        if (listed) continue;
        // A client's GRIP headers are never trusted (Pushpin strips them on no_grip routes too).
        if (!ctx.trusted && core::istarts_with(h.name, "Grip-")) continue;
        if (s.accept_pushpin_route && core::iequals(h.name, "Pushpin-Route")) continue;
        if (core::iequals(h.name, "X-Forwarded-For")) continue; // rebuilt below
        out.add(h.name, h.value);
    }
    return out;
}

// Host: route as_host, then target host=, else the client's; then the route's own header rules.
void apply_route_headers(http::Headers& out, const ForwardContext& ctx) {
    if (!ctx.route.as_host.empty())
        out.set("Host", ctx.route.as_host);
    else if (!ctx.target.host.empty())
        out.set("Host", ctx.target.host);
    for (const auto& rh : ctx.route.headers) {
        if (rh.value.empty())
            out.remove(rh.name);
        else
            out.set(rh.name, rh.value);
    }
}

void add_forwarded_for(http::Headers& out, const http::RequestHead& head, const ForwardContext& ctx) {
    const auto& s = ctx.settings;
    const config::XffRule& rule = ctx.trusted ? s.x_forwarded_for_trusted : s.x_forwarded_for;
    if (rule.truncate < 0 && !rule.append) {
        for (auto v : head.headers.get_all("X-Forwarded-For"))
            out.add("X-Forwarded-For", v);
        return;
    }
    bool present = false;
    std::string xff = apply_xff_rule(head.headers, rule, ctx.peer_ip, &present);
    if (present) out.add("X-Forwarded-For", xff);
}

void set_forwarded_protocol(http::Headers& out, const http::RequestHead& head, const ForwardContext& ctx) {
    const auto& s = ctx.settings;
    if (s.set_x_forwarded_protocol == config::XForwardedProtocol::Off && !s.accept_x_forwarded_protocol)
        return;
    // With accept_x_forwarded_protocol a TLS-terminating balancer in front can mark the request.
    bool tls = ctx.is_tls;
    if (s.accept_x_forwarded_protocol) {
        for (const char* name : {"X-Forwarded-Proto", "X-Forwarded-Protocol"})
            for (auto v : head.headers.get_list(name))
                if (core::iequals(v, "https") || core::iequals(v, "wss")) tls = true;
    }
    out.remove("X-Forwarded-Proto");
    out.remove("X-Forwarded-Protocol");
    if (tls && s.set_x_forwarded_protocol != config::XForwardedProtocol::Off) {
        // The scheme the client used, as Pushpin sends it: wss for a WebSocket (passthrough and
        // WebSocket-over-HTTP alike), https otherwise.
        const char* scheme = head.headers.has_token("Upgrade", "websocket") ? "wss" : "https";
        out.add("X-Forwarded-Proto", scheme);
        if (s.set_x_forwarded_protocol == config::XForwardedProtocol::Both)
            out.add("X-Forwarded-Protocol", scheme);
    }
}

void add_cdn_loop(http::Headers& out, const ForwardContext& ctx) {
    const std::string& ours = ctx.settings.cdn_loop;
    if (ours.empty()) return;
    const std::string* prev = out.get("CDN-Loop");
    std::string v = prev ? *prev + ", " + ours : ours;
    out.set("CDN-Loop", v);
}

// On a GRIP route, for an untrusted client: sign the request and announce our features.
void add_grip_headers(http::Headers& out, const ForwardContext& ctx) {
    if (!grip_enabled(ctx.route) || ctx.trusted) return;
    const auto& s = ctx.settings;
    const core::JwtKeyRef& key = ctx.route.sig_key ? ctx.route.sig_key : s.sig_key;
    const std::string& iss = ctx.route.sig_iss.empty() ? s.sig_iss : ctx.route.sig_iss;
    if (key && !key->is_empty_secret()) {
        const std::string& token = core::cached_grip_sig(iss, key, ctx.now_unix);
        if (!token.empty()) out.set("Grip-Sig", token);
    }
    out.set("Grip-Feature", kGripFeatures);
}

} // namespace

http::Headers upstream_headers(const http::RequestHead& head, const ForwardContext& ctx) {
    http::Headers out = end_to_end_headers(head, ctx);
    apply_route_headers(out, ctx);
    add_forwarded_for(out, head, ctx);
    set_forwarded_protocol(out, head, ctx);
    add_cdn_loop(out, ctx);
    add_grip_headers(out, ctx);
    return out;
}

std::string upstream_host_name(const config::Route& route, const config::Target& target,
                               const http::Headers& client_headers) {
    std::string_view host;
    const std::string* client = client_headers.get("Host");
    if (client) host = *client;
    if (!target.host.empty()) host = target.host;
    if (!route.as_host.empty()) host = route.as_host;
    for (const auto& rh : route.headers)
        if (core::iequals(rh.name, "Host")) host = rh.value;
    host = core::trim(host);
    if (!host.empty() && host.front() == '[') { // [v6]:port
        size_t close = host.find(']');
        return std::string(close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1));
    }
    size_t colon = host.rfind(':');
    if (colon != std::string_view::npos && host.find(':') == colon) host = host.substr(0, colon);
    return std::string(host);
}

http::BackendTarget backend_target(const config::Route& route, const config::Target& t,
                                   const http::Headers& client_headers) {
    http::BackendTarget b{t.connect_host, t.connect_port, std::nullopt};
    b.deny_internal = !t.trusted;
    if (t.ssl) {
        // trust_connect_host: the certificate is checked against (and SNI names) the host connected
        // to, not the Host header sent upstream.
        std::string name =
            t.trust_connect_host ? t.connect_host : upstream_host_name(route, t, client_headers);
        if (name.empty()) name = t.connect_host;
        b.tls = net::TlsSettings{std::move(name), !t.insecure, t.client_cert_pem, t.client_key_pem, {}};
        if (t.client_cert_pem) b.tls->client_identity = t.client_cert + " " + t.client_key;
    }
    return b;
}

std::string upstream_request_head(const http::RequestHead& head, const ForwardContext& ctx,
                                  const std::vector<std::string>& grip_last, std::string_view connection_id) {
    http::Headers headers = upstream_headers(head, ctx);
    if (!headers.has("Host")) {
        // An HTTP/1.0 client may omit Host, but what we send is HTTP/1.1, which requires it (RFC 9112
        // §3.2): name the target we connect to.
        std::string host = ctx.target.connect_host;
        if (host.find(':') != std::string::npos) host = "[" + host + "]";
        headers.add("Host", host + ":" + std::to_string(ctx.target.connect_port));
    }
    for (const auto& v : grip_last) // after the forwarding rules, which drop a client's Grip-*
        headers.add("Grip-Last", v);
    if (!connection_id.empty()) headers.add("Grip-Connection-Id", connection_id);
    if (head.chunked)
        headers.add("Transfer-Encoding", "chunked");
    else if (head.content_length >= 0)
        headers.add("Content-Length", std::to_string(head.content_length));
    std::string out;
    http::serialize_request_head(head.method, upstream_target(ctx.route, head.target), headers, out);
    return out;
}

} // namespace gripd::http
