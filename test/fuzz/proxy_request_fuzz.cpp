// libFuzzer target: the HTTP/1.1 request path end to end, without sockets. A client's bytes go through
// RequestParser the way ServerConn feeds it (in pieces, resuming after each request, declining
// upgrades); every request becomes what ProxySession sends upstream (upstream_request_head(), then the
// body framed as ProxySession frames it: Content-Length bytes as they come, a chunked body re-chunked);
// a rejected request gets the error response ServerConn writes (status, text/plain, the message).
//
// Invariants (abort on violation):
//  - the forwarded bytes parse back, with a strict parser, as exactly the requests the client sent, in
//    order, each with the same method and body and the target the route rewrite gives; nothing is
//    left over and no extra request appears (no smuggling through the proxy);
//  - no hop-by-hop header and at most one framing header reaches the backend;
//  - after a parse error nothing more is forwarded; the error response is one complete response
//    with a 4xx/5xx status, whatever the error message contains.
//
// The first input byte picks the route (plain, rewriting, as_host, header rules) and the limits; the
// rest is the client's bytes.
#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/http/forwarding.hpp"
#include "gripd/http/headers.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/http/response_parser.hpp"
#include "gripd/http/serialize.hpp"

#include "fuzz_util.hpp"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace gripd;

namespace {

const char* const kRoutes[] = {
    "* 127.0.0.1:8080",
    "* 127.0.0.1:8080,path_rem=1,replace_beg=/x",
    "*,as_host=backend.example 127.0.0.1:8080",
    "*,path_beg=/a,path_rem=2 127.0.0.1:8080",
    "* 127.0.0.1:8080,over_http",
    "*,no_grip,header=X-A:1 127.0.0.1:8080",
};
constexpr size_t kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);

struct Forwarded {
    std::string method, target, body;
};

// What ServerConn + ProxySession do with each parser event.
struct Proxy final : http::RequestParser::Handler {
    const config::Settings& settings;
    const config::Route& route;
    std::string wire; // bytes sent upstream
    std::vector<Forwarded> expected;
    bool chunked = false;
    bool open = false; // a request whose head was forwarded and whose end was not

    Proxy(const config::Settings& s, const config::Route& r) : settings(s), route(r) {}

    void on_request_head(http::RequestHead& head) override {
        http::ForwardContext ctx{settings, route, route.targets[0], "192.0.2.1", false, false, 1700000000};
        wire += http::upstream_request_head(head, ctx, {});
        expected.push_back({head.method, http::upstream_target(route, head.target), {}});
        chunked = head.chunked;
        open = true;
    }
    void on_request_body(std::string_view data) override {
        if (data.empty()) abort();
        expected.back().body += data;
        if (chunked)
            http::append_chunk(wire, data);
        else
            wire += data;
    }
    void on_request_complete() override {
        if (chunked) http::append_last_chunk(wire);
        open = false;
    }
};

// The backend's view: a strict parser over the forwarded bytes.
struct Backend final : http::RequestParser::Handler {
    std::vector<Forwarded> got;
    std::vector<http::RequestHead> heads;
    void on_request_head(http::RequestHead& head) override {
        got.push_back({head.method, head.target, {}});
        heads.push_back(head);
    }
    void on_request_body(std::string_view data) override { got.back().body += data; }
    void on_request_complete() override {}
};

struct ResponseCheck final : http::ResponseParser::Handler {
    int status = 0;
    int complete = 0;
    std::string body;
    void on_response_head(http::ResponseHead& head) override { status = head.status; }
    void on_response_body(std::string_view data) override { body += data; }
    void on_response_complete() override { ++complete; }
};

const config::Settings& settings() {
    static const config::Settings s = [] {
        config::Settings v;
        v.sig_key = core::JwtKey::from_secret("fuzz-key");
        return v;
    }();
    return s;
}

const config::RouteTable& routes(size_t i) {
    static std::vector<std::shared_ptr<const config::RouteTable>> tables = [] {
        std::vector<std::shared_ptr<const config::RouteTable>> t;
        for (const char* line : kRoutes) {
            auto r = config::parse_route_lines({line});
            if (!r.ok() || r.table->empty()) abort(); // a broken table is a bug in this file
            t.push_back(r.table);
        }
        return t;
    }();
    return *tables[i];
}

// Feeds `input` like ServerConn::drive: pieces, resume after each complete request, decline upgrades
// (only WebSocket upgrades leave HTTP, and those go to the WebSocket layer, not through this path).
http::RequestParser::State drive(http::RequestParser& parser, std::string_view input, uint64_t seed) {
    fuzz::Rng rng{seed};
    std::string buf;
    size_t pos = 0;
    for (int guard = 0;; ++guard) {
        if (guard > 1000000) abort();
        auto st = parser.state();
        if (st == http::RequestParser::State::Paused || st == http::RequestParser::State::Upgrade) {
            if (buf.empty() && pos == input.size()) return st;
            parser.resume();
        }
        if (parser.state() != http::RequestParser::State::Ok) return parser.state();
        size_t n = parser.feed(buf.data(), buf.size());
        buf.erase(0, n);
        if (parser.state() == http::RequestParser::State::Paused ||
            parser.state() == http::RequestParser::State::Upgrade)
            continue;
        if (parser.state() != http::RequestParser::State::Ok) return parser.state();
        if (pos == input.size()) return parser.state();
        size_t step = (seed & 4) ? 1 + rng.next() % 64 : input.size();
        step = std::min(step, input.size() - pos);
        buf.append(input.substr(pos, step));
        pos += step;
    }
}

void check_error_response(int status, std::string_view message) {
    if (status < 400 || status > 599) abort();
    // As ServerConn::handle_parse_error writes it.
    http::Headers h;
    h.add("Content-Type", "text/plain");
    h.add("Connection", "close");
    std::string body(message);
    body += '\n';
    h.add("Content-Length", std::to_string(body.size()));
    std::string out;
    http::serialize_response_head(status, {}, h, out);
    out += body;
    ResponseCheck rc;
    http::ResponseParser rp(rc, http::ResponseParser::Limits{});
    size_t n = rp.feed(out.data(), out.size());
    if (n != out.size() || rc.complete != 1 || rc.status != status || rc.body != body) abort();
}

// Hop-by-hop headers never reach the backend; the one framing header is the proxy's own.
bool forbidden_upstream(std::string_view name) {
    return http::is_hop_by_hop(name) && !core::iequals(name, "transfer-encoding") &&
           !core::iequals(name, "content-length");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t sel = data[0];
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const config::Route& route = routes(sel % kRouteCount).routes()[0];
    http::RequestParser::Limits limits;
    limits.max_header_bytes = (sel & 0x40) ? 8192 : 256;
    limits.max_headers = (sel & 0x80) ? 100 : 8;

    Proxy proxy(settings(), route);
    http::RequestParser client(proxy, limits);
    auto st = drive(client, input, fuzz::hash_bytes(data, size) ^ sel);
    if (st == http::RequestParser::State::Error)
        check_error_response(client.error_status(), client.error_message());

    // A request cut short (end of input, or an error in its body) was partly forwarded; ProxySession
    // abandons that backend connection, so its body need not be whole.
    size_t complete = proxy.expected.size() - (proxy.open ? 1 : 0);

    Backend backend;
    http::RequestParser upstream(backend, http::RequestParser::Limits{1 << 20, true, 100000});
    std::string rest = fuzz::drive(upstream, proxy.wire, 0, 0);
    if (upstream.state() == http::RequestParser::State::Error) abort(); // we forwarded something malformed
    if (backend.got.size() != proxy.expected.size()) abort();           // a request appeared or vanished
    if (complete == proxy.expected.size() && !rest.empty()) abort();    // bytes beyond the last request
    for (size_t i = 0; i < backend.got.size(); ++i) {
        const Forwarded& want = proxy.expected[i];
        const Forwarded& got = backend.got[i];
        if (got.method != want.method || got.target != want.target) abort();
        if (i < complete && got.body != want.body) abort();
        const http::Headers& hs = backend.heads[i].headers;
        size_t framing = hs.get_all("content-length").size() + hs.get_all("transfer-encoding").size();
        if (framing > 1) abort();
        for (const auto& h : hs)
            if (forbidden_upstream(h.name)) abort();
        if (hs.get_all("host").size() > 1) abort();
    }
    return 0;
}
