// Mode held (HTTP streams, or WebSockets with a ws:// URL): RSS growth of the server's process tree
// per idle held connection.
//
// Opens the connections (at most --concurrency connecting at once), waits until every one has its
// initial response head (the stream's headers, or the WebSocket's 101), waits --settle seconds,
// then reads VmRSS of --pid and all its descendants. Reports KiB per held connection at each step
// of --conns, measured from the RSS before the first connection. Each connection has its own
// channel unless --channels N shares N channels among them.
#include "client.hpp"
#include "proc_tree.hpp"

#include <unistd.h>

#include <algorithm>

namespace rtb {

namespace {

struct HeldMode : Client {
    std::vector<long> steps;
    size_t step = 0;
    int pid = 0;
    long rss0 = 0;
    double settle_ms = 0;
    bool partial = false;

    void start() {
        if (!init(false)) return;
        steps = parse_list(opt.str("conns", "10000,18000"));
        std::sort(steps.begin(), steps.end());
        if (steps.empty() || steps.front() <= 0) return fail("bad --conns");
        pid = static_cast<int>(opt.num("pid", 0));
        settle_ms = opt.real("settle", 3) * 1000;
        long channels = opt.num("channels", 0); // 0: one channel per connection
        std::string prefix = opt.str("channel", "held-" + std::to_string(getpid()));
        make_pool([prefix, channels](uint32_t i) {
            return prefix + "-" + std::to_string(channels > 0 ? i % static_cast<uint32_t>(channels) : i);
        });
        long need = steps.back() + 64;
        if (nofile_limit() < need) logf("warning: open-file limit %ld < %ld needed", nofile_limit(), need);
        result("channels", channels > 0 ? std::to_string(channels) : "per-connection");
        if (pid > 0) {
            auto t = proc_tree(pid);
            if (t.empty()) return fail("--pid " + std::to_string(pid) + " not found");
            rss0 = tree_rss_kib(t);
            result("rss_before_kib", rss0);
            result("procs_before", tree_desc(t));
            logf("RSS before: %ld KiB (%s)", rss0, tree_desc(t).c_str());
        }
        next_step();
    }

    void next_step() {
        if (step == steps.size()) {
            if (pool->failed()) result("top_failure", pool->top_failure());
            return finish(partial ? "partial" : "ok", 0);
        }
        uint32_t n = static_cast<uint32_t>(steps[step]);
        logf("opening connections up to %u", n);
        open_subs(n, [this, n](bool in_time) {
            if (!in_time) logf("step %u: not all connections answered within the connect timeout", n);
            after_ms(settle_ms, [this, n, in_time] { measure(n, in_time); });
        });
    }

    void measure(uint32_t n, bool in_time) {
        std::string k = std::to_string(n);
        uint32_t open = pool->open();
        result("held_" + k, open);
        if (pool->failed()) result("failed_attempts_" + k, pool->failed());
        if (pool->dropped()) result("dropped_" + k, pool->dropped());
        if (pool->dropped()) result("top_drop_" + k, pool->top_drop());
        logf("step %u: held=%u failed=%u dropped=%u connect_s=%.1f", n, open, pool->failed(), pool->dropped(),
             pool->connect_seconds());
        result("connect_s_" + k, fmt2(pool->connect_seconds()));
        result("conns_per_s_" + k, fmt2(pool->connect_rate()));
        if (open == 0) {
            if (pool->failed()) result("top_failure", pool->top_failure());
            return fail("no connection held at step " + k + ": " + pool->summary());
        }
        if (pid > 0) {
            auto t = proc_tree(pid);
            long rss = tree_rss_kib(t);
            double per = static_cast<double>(rss - rss0) / open;
            result("rss_kib_" + k, rss);
            result("kib_per_conn_" + k, fmt2(per));
            result("procs_" + k, tree_desc(t));
            logf("step %u: RSS %ld KiB (%s) -> %.2f KiB per held connection", n, rss, tree_desc(t).c_str(),
                 per);
        }
        if (open < n) partial = true;
        if (!in_time) {
            if (pool->failed()) result("top_failure", pool->top_failure());
            return finish("partial", 0);
        }
        ++step;
        next_step();
    }
};

} // namespace

void start_held(const Options& opt) {
    launch<HeldMode>(opt);
}

} // namespace rtb
