// The built-in GRIP backend of the benchmarks (`realtime_bench backend --listen 127.0.0.1:PORT`).
//
// GET /stream/<channel> (or any path with ?channel=<channel>) is answered with `200 OK`,
// `Grip-Hold: stream`, `Grip-Channel: <channel>` and a short body; any other plain request with
// `200 ok`. WebSocket-over-HTTP requests (Content-Type: application/websocket-events, from an
// `over_http` route, PROTOCOL.md §5.2) for /ws/<channel> (or ?channel=) are answered: OPEN with OPEN
// and a `c:` subscribe to the channel (§5.3; the grip extension header enables control messages),
// CLOSE with CLOSE, anything else with no events. Keep-alive, pipelining, Content-Length bodies.
// Runs until SIGTERM/SIGINT or --max-seconds.
#include "client.hpp"
#include "http_response.hpp"

#include "gripd/ws/events.hpp"

#include <cinttypes>
#include <csignal>
#include <cstdlib>
#include <vector>

namespace rtb {

namespace {

namespace gws = gripd::ws;

struct BackendConn {
    uv_tcp_t tcp{};
    std::string in;
};

uint64_t g_requests = 0, g_holds = 0, g_woh_requests = 0, g_woh_opens = 0;
std::string g_stream_body = "stream open\n";

// The channel a request asks for: ?channel=NAME, else the last segment of /stream/... or /ws/....
std::string channel_of_target(std::string_view target) {
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (q != std::string_view::npos) {
        std::string_view query = target.substr(q + 1);
        size_t pos = 0;
        while (pos <= query.size()) {
            size_t amp = query.find('&', pos);
            std::string_view kv = query.substr(pos, amp == std::string_view::npos ? amp : amp - pos);
            if (kv.starts_with("channel=")) return std::string(kv.substr(8));
            if (amp == std::string_view::npos) break;
            pos = amp + 1;
        }
    }
    for (std::string_view prefix : {"/stream/", "/ws/"}) {
        if (path.starts_with(prefix) && path.size() > prefix.size()) {
            std::string_view ch = path.substr(prefix.size());
            size_t slash = ch.rfind('/');
            return std::string(slash == std::string_view::npos ? ch : ch.substr(slash + 1));
        }
    }
    return "";
}

// The answer to one batch of WebSocket-over-HTTP events.
std::string woh_response(std::string_view target, std::string_view body) {
    std::vector<gws::Event> events;
    std::string error;
    ++g_woh_requests;
    if (!gws::parse_events(body, &events, &error)) {
        logf("backend: bad websocket-events body: %s", error.c_str());
        return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    }
    std::string out;
    for (const auto& e : events) {
        if (e.type == gws::EventType::Open) {
            ++g_woh_opens;
            gws::append_event(out, gws::EventType::Open);
            std::string ch = channel_of_target(target);
            if (!ch.empty()) {
                gws::append_event(out, gws::EventType::Text,
                                  "c:{\"type\":\"subscribe\",\"channel\":\"" + ch +
                                      (ws_ids() ? "\",\"ids\":true}" : "\"}"));
            }
        } else if (e.type == gws::EventType::Close) {
            gws::append_event(out, gws::EventType::Close, e.content); // the same code back: a clean close
        }
    }
    return "HTTP/1.1 200 OK\r\nContent-Type: application/websocket-events\r\nSec-WebSocket-Extensions: "
           "grip\r\n"
           "Content-Length: " +
           std::to_string(out.size()) + "\r\n\r\n" + out;
}

std::string plain_response(std::string_view target) {
    std::string ch = channel_of_target(target);
    ++g_requests;
    if (ch.empty()) return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
    ++g_holds;
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nGrip-Hold: stream\r\nGrip-Channel: " + ch +
           "\r\nContent-Length: " + std::to_string(g_stream_body.size()) + "\r\n\r\n" + g_stream_body;
}

void backend_close(BackendConn* c) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
                 [](uv_handle_t* h) { delete static_cast<BackendConn*>(h->data); });
    }
}

// Answers every complete request in c->in. False: close the connection after the writes.
bool backend_serve(BackendConn* c) {
    std::string out;
    bool keep = true;
    for (int guard = 0; guard < 10000; ++guard) {
        size_t end = c->in.find("\r\n\r\n");
        if (end == std::string::npos) break;
        std::string_view head(c->in.data(), end + 4);
        size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1), eol = head.find("\r\n");
        if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp2 > eol) return false;
        std::string_view target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        bool close = head.substr(sp2 + 1, eol - sp2 - 1) == "HTTP/1.0";
        bool woh = false;
        uint64_t body_len = 0;
        for_each_header(head, [&](std::string_view line, std::string_view v) {
            if (iequals_prefix(line, "content-length:"))
                body_len = std::strtoull(std::string(v).c_str(), nullptr, 10);
            if (iequals_prefix(line, "content-type:"))
                woh = lower(v).starts_with("application/websocket-events");
            if (iequals_prefix(line, "connection:")) apply_connection_header(v, close);
        });
        if (c->in.size() < end + 4 + body_len) break;
        std::string_view body(c->in.data() + end + 4, body_len);
        out += woh ? woh_response(target, body) : plain_response(target);
        c->in.erase(0, end + 4 + body_len);
        if (close) {
            keep = false;
            break;
        }
    }
    if (c->in.size() > 1 << 20) return false;
    if (!out.empty()) write_str(reinterpret_cast<uv_stream_t*>(&c->tcp), std::move(out));
    return keep;
}

void on_backend_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<BackendConn*>(s->data);
    if (nread < 0) return backend_close(conn);
    conn->in.append(buf->base, static_cast<size_t>(nread));
    if (backend_serve(conn)) return;
    uv_read_stop(s);
    auto* sh = new uv_shutdown_t;
    sh->data = conn;
    if (uv_shutdown(sh, s, [](uv_shutdown_t* req, int) {
            backend_close(static_cast<BackendConn*>(req->data));
            delete req;
        }) != 0) {
        delete sh;
        backend_close(conn);
    }
}

void on_backend_connection(uv_stream_t* srv, int status) {
    if (status < 0) return;
    auto* c = new BackendConn;
    uv_tcp_init(g_loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        backend_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), alloc_shared, on_backend_read);
}

void stop_backend() {
    logf("backend: %" PRIu64 " requests, %" PRIu64 " stream holds, %" PRIu64
         " websocket-events requests, %" PRIu64 " WebSocket opens",
         g_requests, g_holds, g_woh_requests, g_woh_opens);
    uv_stop(g_loop);
}

} // namespace

int run_backend(const Options& opt) {
    Url u;
    std::string listen = opt.str("listen", "127.0.0.1:8080");
    if (!parse_url("http://" + listen, u)) {
        logf("bad --listen %s", listen.c_str());
        return 2;
    }
    if (opt.kv.count("body")) g_stream_body = opt.str("body", "") + "\n";
    static uv_tcp_t server;
    uv_tcp_init(g_loop, &server);
    int r = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&u.addr), 0);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 4096, on_backend_connection);
    if (r != 0) {
        logf("backend: cannot listen on %s: %s", listen.c_str(), uv_strerror(r));
        return 2;
    }
    logf("backend listening on %s (hold path /stream/<channel>, WebSocket-over-HTTP /ws/<channel>, or "
         "?channel=)",
         listen.c_str());
    static uv_signal_t sigterm, sigint;
    static uv_timer_t limit;
    uv_signal_init(g_loop, &sigterm);
    uv_signal_init(g_loop, &sigint);
    uv_signal_start(
        &sigterm, [](uv_signal_t*, int) { stop_backend(); }, SIGTERM);
    uv_signal_start(
        &sigint, [](uv_signal_t*, int) { stop_backend(); }, SIGINT);
    uv_timer_init(g_loop, &limit);
    uv_timer_start(
        &limit, [](uv_timer_t*) { stop_backend(); },
        static_cast<uint64_t>(opt.real("max-seconds", 3600) * 1000), 0);
    uv_run(g_loop, UV_RUN_DEFAULT);
    return 0;
}

} // namespace rtb
