// The route options table (see route_options_internal.hpp). Checked against Pushpin 1.36's routes
// parser (DomainMap) and PROTOCOL.md 2.1 and 2.2.
#include "route_options_internal.hpp"

namespace gripd::config::route_options {

namespace {

constexpr Where C = Where::Condition;
constexpr Where T = Where::Target;

constexpr std::string_view kJsonp =
    "JSON-P as Pushpin does it, with `aco` or `[proxy] auto_cross_origin` (without them a line warns)";

const Option kOptions[] = {
    // Condition (the route's first token).
    {"proto", C, Status::Works, "`http` or `ws`: only requests of that protocol match"},
    {"ssl", C, Status::Works, "`yes` or `no`: only TLS or only plain requests match"},
    {"id", C, Status::Works, "the route's id (`Pushpin-Route`, access lines show it as `route=`)"},
    {"path_beg", C, Status::Works, "path prefix the request must start with"},
    {"path_rem", C, Status::Works, "removes this many leading characters of the path upstream"},
    {"replace_beg", C, Status::Works, "replaces the `path_beg` prefix upstream"},
    {"as_host", C, Status::Works, "Host sent upstream (and host of the rewritten URI)"},
    {"header", C, Status::Works,
     "`Name:Value` header set on requests upstream (repeatable; empty value removes)"},
    {"sig_iss", C, Status::Works, "Grip-Sig issuer for this route"},
    {"sig_key", C, Status::Works, "Grip-Sig key for this route"},
    {"prefix", C, Status::Works, "prepended to every channel name of this route"},
    {"history_size", C, Status::Works,
     "gripd: history items kept for the channels this route's clients resume on (overrides `[gripd] "
     "history_size`; 0 = no resume on this route)"},
    {"history_ttl", C, Status::Works,
     "gripd: seconds those items are kept (overrides `[gripd] history_ttl`)"},
    {"debug", C, Status::Works, "Pushpin's detailed error texts for this route (as `[proxy] debug`)"},
    {"no_grip", C, Status::Works, "no GRIP: responses are relayed as they are and requests are not signed"},
    {"aco", C, Status::Works, "CORS headers and JSON-P for this route, as `[proxy] auto_cross_origin`"},
    {"jsonp_mode", C, Status::Works, kJsonp, "jsonp_*"},
    {"jsonp_cb", C, Status::Works, kJsonp, "jsonp_*"},
    {"jsonp_body", C, Status::Works, kJsonp, "jsonp_*"},
    {"jsonp_defcb", C, Status::Works, kJsonp, "jsonp_*"},
    {"jsonp_defmethod", C, Status::Works, kJsonp, "jsonp_*"},
    {"session", C, Status::Warn,
     "Grip-Session-Id / Grip-Session-Detect answers go to no session-state service (Pushpin needs `[handler] "
     "state_spec` for them too)"},
    {"sockjs", C, Status::Works,
     "serve SockJS under this path (`/info`, `/iframe.html`, the websocket, xhr and jsonp transports), "
     "bridged to the route's backend"},
    {"sockjs_as_path", C, Status::Works,
     "the path (with the client's query) a SockJS session's backend request gets; default: the `sockjs` "
     "path + `/websocket`"},
    {"orig_headers", C, Status::Warn, "the backend gets no eb9bf0f5-* copies of the client's headers"},
    {"log_level", C, Status::Warn, "Pushpin 1.41+: this route logs at the global log level"},
    // Targets.
    {"ssl", T, Status::Works, "https/wss to the backend, certificate checked against the Host sent upstream"},
    {"insecure", T, Status::Works, "the backend's certificate is not checked"},
    {"host", T, Status::Works, "Host sent to this target"},
    {"over_http", T, Status::Works, "WebSocket clients are served as WebSocket-over-HTTP"},
    {"one_event", T, Status::Works, "with `over_http`: one event per request"},
    {"client_cert", T, Status::Works,
     "PEM certificate (then its chain) presented to an `ssl` target (mTLS; Pushpin 1.41+); read when routes "
     "load"},
    {"client_key", T, Status::Works, "PEM private key of `client_cert`"},
    {"sub", T, Status::Works,
     "every GRIP hold and WebSocket this target answers is also subscribed to the channel (no route prefix, "
     "not counted against connection_subscription_max)"},
    {"untrusted", T, Status::Works,
     "the target may not reach internal addresses (127/8, 10/8, 172.16/12, 192.168/16, link-local, ULA, "
     "`.local`): 502, no other target tried"},
    {"trust_connect_host", T, Status::Works,
     "with `ssl`, the backend's certificate is checked against the connect host (SNI names it too)"},
    {"ipc_file_mode", T, Status::Inert,
     "only for `zhttp/` targets' IPC sockets, which gripd does not open "
     "(a ZeroMQ target warns)"},
};

} // namespace

std::span<const Option> options() {
    return kOptions;
}

const Option* find(Where where, std::string_view name) {
    for (const auto& o : kOptions)
        if (o.where == where && o.name == name) return &o;
    return nullptr;
}

} // namespace gripd::config::route_options
