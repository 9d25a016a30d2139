// realtime_bench's shared ground: the one libuv loop, command-line options, URLs, polling waits and
// the RESULT line every client mode ends with. Single-threaded: nothing here is locked.
#pragma once

#include <uv.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace rtb {

extern uv_loop_t* g_loop;
extern std::string g_mode;
extern bool g_finished; // the RESULT line is out; handles are closing
extern int g_exit;

inline uint64_t now_ns() {
    return uv_hrtime();
}

// RTB_WS_IDS set (and not "0"; realtime_bench.sh WS_IDS=1): the backend's WebSocket subscribes ask
// for gripd's ids and ws-message publishes carry one, so gripd sends a gripd-id message before each.
inline bool ws_ids() {
    static const bool on = [] {
        const char* v = std::getenv("RTB_WS_IDS");
        return v && *v && std::string_view(v) != "0";
    }();
    return on;
}

void logf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

struct Options {
    std::string mode;
    std::map<std::string, std::string> kv;

    std::string str(const std::string& k, const std::string& def) const;
    long num(const std::string& k, long def) const;
    double real(const std::string& k, double def) const;
};

struct Url {
    bool ws = false; // ws:// (WebSocket subscribers) rather than http://
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/";
    sockaddr_in addr{};
};

// http://HOST:PORT/path or ws://HOST:PORT/path with a numeric IPv4 host (or localhost).
bool parse_url(std::string_view s, Url& u);
std::string host_header(const Url& u);
// "10000,18000" -> {10000, 18000}.
std::vector<long> parse_list(const std::string& s);

void raise_nofile();
long nofile_limit();

// Writes a copy of `data` (freed when the write completes); returns uv_write's status.
int write_str(uv_stream_t* stream, std::string data);
// All reads land in one buffer and are consumed before the read callback returns.
void alloc_shared(uv_handle_t*, size_t, uv_buf_t* buf);

// Polling waits, checked every 5 ms by one timer (thousands of connections need no timer each).
// Calls next(true) once cond() holds, or next(false) after timeout_ms.
void wait_until(std::function<bool()> cond, double timeout_ms, std::function<void(bool)> next);
void after_ms(double ms, std::function<void()> fn);
// Starts the polling timer and the --max-seconds watchdog of a client mode.
void start_client_timers(double max_seconds);

// The RESULT line: key=value pairs in the order added (spaces in values become '_').
void add_result(const std::string& k, std::string v);
template <class T> void result(const std::string& k, T v) {
    std::ostringstream o;
    o << v;
    add_result(k, o.str());
}
// Prints the RESULT line once and closes every handle so the loop ends.
void finish(const char* status, int exit_code);
void fail(const std::string& reason);

double pct(std::vector<double> v, double p);
std::string fmt2(double v);

} // namespace rtb
