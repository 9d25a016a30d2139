// realtime_bench: load generator and tiny GRIP backend for the realtime benchmarks (test/bench/,
// driven by realtime_bench.sh). One single-threaded libuv program:
//
//   realtime_bench backend --listen 127.0.0.1:PORT                         (backend.cpp)
//   realtime_bench held --url http://127.0.0.1:7999/stream/ --conns 10000,18000 [--pid PID]
//   realtime_bench fanout --url URL --publish http://127.0.0.1:5561 --subs 10000 --messages 20
//   realtime_bench throughput --url URL --publish URL --subs 100 --publishers 2 --batch 1 --duration 10
//
// The client modes (held.cpp, fanout.cpp, throughput.cpp) subscribe with HTTP streams for an
// http:// URL (GET <path><channel>, held by the backend's Grip-Hold: stream) and with WebSockets for a
// ws:// URL (upgrade to <path><channel> through an over_http route; the backend subscribes the
// socket; publishes use the ws-message format).
//
// Every client mode ends with one line `RESULT mode=<mode> status=ok|partial|failed|timeout k=v...`
// on stdout; exit status 0 when the mode ran (whatever the figures), 2 when it could not run.
// Every wait is bounded (--connect-timeout, --msg-timeout, --max-seconds).
//
// Build: meson (test/bench/meson.build), or as realtime_bench.sh does without it:
//   g++ -O2 -std=c++20 -Iinclude test/bench/realtime/*.cpp src/ws/events.cpp src/core/strings.cpp -o
//   realtime_bench -luv
#include "client.hpp"

#include <csignal>
#include <cstdio>

namespace {

void usage() {
    std::fprintf(
        stderr,
        "usage: realtime_bench MODE [--key value]...\n"
        "  backend    --listen 127.0.0.1:PORT [--max-seconds 3600]\n"
        "  held       --url http://127.0.0.1:P/stream/ [--conns 10000,18000] [--pid PID] [--channels 0]\n"
        "             [--settle 3]\n"
        "  fanout     --url URL --publish http://127.0.0.1:5561 [--subs 10000] [--messages 20] [--gap 200]\n"
        "             [--msg-timeout 10]\n"
        "  throughput --url URL --publish URL [--subs 100] [--publishers 2] [--batch 1] [--duration 10]\n"
        "             [--drain 15] [--rate REQ_PER_S]\n"
        "  common:    [--concurrency 50] [--retry-pct 10] [--connect-timeout 180] [--max-seconds 600]\n"
        "             [--payload 0] [--channel NAME] [--also URL[,URL...]] (subscribers spread over\n"
        "             --url and these, round robin)\n"
        "  URL: http://HOST:PORT/path/ (HTTP streams) or ws://HOST:PORT/path/ (WebSockets)\n");
}

} // namespace

int main(int argc, char** argv) {
    using namespace rtb;
    if (argc < 2) {
        usage();
        return 2;
    }
    Options opt;
    opt.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (!a.starts_with("--") || i + 1 >= argc) {
            usage();
            return 2;
        }
        opt.kv[a.substr(2)] = argv[++i];
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    g_loop = uv_default_loop();
    g_mode = opt.mode;
    if (opt.mode == "backend") return run_backend(opt);

    void (*start)(const Options&) = opt.mode == "held"         ? start_held
                                    : opt.mode == "fanout"     ? start_fanout
                                    : opt.mode == "throughput" ? start_throughput
                                                               : nullptr;
    if (!start) {
        usage();
        return 2;
    }
    start_client_timers(opt.real("max-seconds", 600));
    start(opt);
    uv_run(g_loop, UV_RUN_DEFAULT);
    if (!g_finished) finish("failed", 2);
    uv_run(g_loop, UV_RUN_DEFAULT);
    uv_loop_close(g_loop);
    return g_exit;
}
