#include "client.hpp"

namespace rtb {

bool Client::init(bool need_ctl) {
    if (!parse_url(opt.str("url", ""), url)) {
        fail("--url http://127.0.0.1:PORT/path/ or ws://127.0.0.1:PORT/path/ is required (numeric loopback "
             "host)");
        return false;
    }
    if (!url.path.ends_with('/')) url.path += '/';
    // --also URL[,URL...]: further servers the subscribers are spread over (same scheme and path)
    const std::string also_opt = opt.str("also", "");
    for (std::string_view rest = also_opt; !rest.empty();) {
        size_t comma = rest.find(',');
        Url u;
        if (!parse_url(rest.substr(0, comma), u) || u.ws != url.ws) {
            fail("bad --also URL (http:// or ws:// like --url)");
            return false;
        }
        if (!u.path.ends_with('/')) u.path += '/';
        also.push_back(std::move(u));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (need_ctl && !parse_url(opt.str("publish", "http://127.0.0.1:5561"), ctl)) {
        fail("bad --publish URL");
        return false;
    }
    result("proto", url.ws ? "ws" : "http");
    connect_timeout_ms = opt.real("connect-timeout", 180) * 1000;
    uv_timer_init(g_loop, &progress_timer);
    progress_timer.data = this;
    uv_timer_start(
        &progress_timer,
        [](uv_timer_t* t) {
            auto* c = static_cast<Client*>(t->data);
            if (c->pool) c->pool->progress();
        },
        3000, 3000);
    return true;
}

void Client::make_pool(std::function<std::string(uint32_t)> channel_of) {
    pool = std::make_unique<SubPool>(url, std::move(channel_of),
                                     static_cast<uint32_t>(opt.num("concurrency", 50)),
                                     opt.real("retry-pct", 10));
    for (const Url& u : also)
        pool->add_url(u);
}

void Client::open_subs(uint32_t n, std::function<void(bool)> next) {
    pool->grow_to(n);
    SubPool* p = pool.get();
    wait_until([p] { return p->settled(); }, connect_timeout_ms, std::move(next));
}

void Client::report_pool(const std::string& prefix) {
    result(prefix + "open", pool->open());
    result(prefix + "failed", pool->failed());
    result(prefix + "dropped", pool->dropped());
    if (pool->failed()) result(prefix + "top_failure", pool->top_failure());
    if (pool->dropped()) result(prefix + "top_drop", pool->top_drop());
}

} // namespace rtb
