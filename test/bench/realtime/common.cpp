#include "common.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace rtb {

uv_loop_t* g_loop = nullptr;
std::string g_mode;
bool g_finished = false;
int g_exit = 0;

void logf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "[realtime_bench] ");
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
}

// ---------------------------------------------------------------- options and URLs

std::string Options::str(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
}

long Options::num(const std::string& k, long def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::strtol(it->second.c_str(), nullptr, 10);
}

double Options::real(const std::string& k, double def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::strtod(it->second.c_str(), nullptr);
}

bool parse_url(std::string_view s, Url& u) {
    if (s.starts_with("http://")) {
        s.remove_prefix(7);
    } else if (s.starts_with("ws://")) {
        s.remove_prefix(5);
        u.ws = true;
    } else {
        return false;
    }
    size_t slash = s.find('/');
    std::string_view hostport = s.substr(0, slash);
    u.path = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
    size_t colon = hostport.rfind(':');
    if (colon == std::string_view::npos) {
        u.host = std::string(hostport);
        u.port = 80;
    } else {
        u.host = std::string(hostport.substr(0, colon));
        u.port = std::atoi(std::string(hostport.substr(colon + 1)).c_str());
    }
    if (u.host == "localhost") u.host = "127.0.0.1";
    return u.port > 0 && uv_ip4_addr(u.host.c_str(), u.port, &u.addr) == 0;
}

std::string host_header(const Url& u) {
    return u.host + ":" + std::to_string(u.port);
}

std::vector<long> parse_list(const std::string& s) {
    std::vector<long> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(std::strtol(item.c_str(), nullptr, 10));
    }
    return out;
}

void raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

long nofile_limit() {
    rlimit rl{};
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<long>(rl.rlim_cur) : -1;
}

// ---------------------------------------------------------------- I/O helpers

namespace {
struct WriteReq {
    uv_write_t req;
    std::string data;
};

char g_read_buf[256 * 1024];
} // namespace

int write_str(uv_stream_t* stream, std::string data) {
    auto* w = new WriteReq;
    w->data = std::move(data);
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int r = uv_write(&w->req, stream, &buf, 1,
                     [](uv_write_t* req, int) { delete static_cast<WriteReq*>(req->data); });
    if (r < 0) delete w;
    return r;
}

void alloc_shared(uv_handle_t*, size_t, uv_buf_t* buf) {
    *buf = uv_buf_init(g_read_buf, sizeof g_read_buf);
}

// ---------------------------------------------------------------- polling waits

namespace {
struct Waiter {
    std::function<bool()> cond;
    uint64_t deadline;
    std::function<void(bool)> next;
};

std::vector<Waiter> g_waiters;
uv_timer_t g_tick;
uv_timer_t g_watchdog;

void on_tick(uv_timer_t*) {
    if (g_waiters.empty()) return;
    auto cur = std::move(g_waiters);
    g_waiters.clear();
    std::vector<Waiter> keep;
    uint64_t t = now_ns();
    for (auto& w : cur) {
        if (w.cond()) {
            w.next(true);
        } else if (t >= w.deadline) {
            w.next(false);
        } else {
            keep.push_back(std::move(w));
        }
    }
    // Waits added by the callbacks above go after the ones still pending, as they were added later.
    g_waiters.insert(g_waiters.begin(), std::make_move_iterator(keep.begin()),
                     std::make_move_iterator(keep.end()));
}
} // namespace

void wait_until(std::function<bool()> cond, double timeout_ms, std::function<void(bool)> next) {
    g_waiters.push_back(
        {std::move(cond), now_ns() + static_cast<uint64_t>(timeout_ms * 1e6), std::move(next)});
}

void after_ms(double ms, std::function<void()> fn) {
    wait_until([] { return false; }, ms, [fn = std::move(fn)](bool) { fn(); });
}

void start_client_timers(double max_seconds) {
    uv_timer_init(g_loop, &g_tick);
    uv_timer_start(&g_tick, on_tick, 5, 5);
    uv_timer_init(g_loop, &g_watchdog);
    uv_timer_start(
        &g_watchdog,
        [](uv_timer_t*) {
            logf("--max-seconds reached");
            finish("timeout", 3);
        },
        static_cast<uint64_t>(max_seconds * 1000), 0);
}

// ---------------------------------------------------------------- result line and shutdown

namespace {
std::vector<std::pair<std::string, std::string>> g_result;
}

void add_result(const std::string& k, std::string v) {
    for (auto& c : v) {
        if (c == ' ' || c == '\t' || c == '\n') c = '_';
    }
    g_result.emplace_back(k, std::move(v));
}

void finish(const char* status, int exit_code) {
    if (g_finished) return;
    g_finished = true;
    g_exit = exit_code;
    std::printf("RESULT mode=%s status=%s", g_mode.c_str(), status);
    for (auto& [k, v] : g_result)
        std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\n");
    std::fflush(stdout);
    g_waiters.clear();
    uv_walk(
        g_loop,
        [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
}

void fail(const std::string& reason) {
    logf("FAILED: %s", reason.c_str());
    result("reason", reason);
    finish("failed", 2);
}

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string fmt2(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
}

} // namespace rtb
