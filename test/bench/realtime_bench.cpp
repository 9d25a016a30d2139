// realtime_bench: load generator and tiny GRIP backend for the realtime benchmarks (test/bench/).
//
// One single-threaded libuv program with four modes:
//
//   realtime_bench backend --listen 127.0.0.1:PORT
//       Answers GET /stream/<channel> (or any path with ?channel=<channel>) with
//       `200 OK`, `Grip-Hold: stream`, `Grip-Channel: <channel>` and a short body; any other path
//       with a plain `200 ok`. Keep-alive, pipelining. Runs until SIGTERM/SIGINT or --max-seconds.
//
//   realtime_bench held --url http://127.0.0.1:7999/stream/ --conns 10000,18000 [--pid PID]
//       Opens the connections (at most --concurrency connecting at once), waits until every one has
//       its initial response headers, waits --settle seconds, then reads VmRSS of PID and all its
//       descendants (pushpin is several processes). Reports KiB per held connection at each step,
//       measured from the RSS before the first connection.
//
//   realtime_bench fanout --url URL --publish http://127.0.0.1:5561 --subs 10000 --messages 20
//       N stream subscribers on one channel. One uncounted warm-up publish checks that every
//       subscription is live, then --messages publishes, one at a time, --gap ms apart. For each
//       publish: time from send to the last subscriber having it. Reports p50/p99 and misses.
//
//   realtime_bench throughput --url URL --publish URL --subs 100 --publishers 2 --batch 1 --duration 10
//       S subscribers on one channel; P publisher connections post back to back (B items per
//       request) for D seconds; then drains. Reports deliveries/s, lost and duplicated deliveries
//       (every item carries a sequence number), and delivery latency.
//
// Published content is "@<seq>:<send time ns>\n" (plus optional padding to --payload bytes).
// Every client mode ends with one line `RESULT mode=<mode> status=ok|partial|failed|timeout k=v...`
// on stdout; exit status 0 when the mode ran (whatever the figures), 2 when it could not run.
// Every wait is bounded (--connect-timeout, --msg-timeout, --max-seconds).
//
// Build: g++ -O2 -std=c++20 realtime_bench.cpp -o realtime_bench -luv

#include <uv.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

uv_loop_t* g_loop = nullptr;

uint64_t now_ns() { return uv_hrtime(); }

void logf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "[realtime_bench] ");
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
}

// ---------------------------------------------------------------- options and URLs

struct Options {
    std::string mode;
    std::map<std::string, std::string> kv;

    std::string str(const std::string& k, const std::string& def) const {
        auto it = kv.find(k);
        return it == kv.end() ? def : it->second;
    }
    long num(const std::string& k, long def) const {
        auto it = kv.find(k);
        return it == kv.end() ? def : std::strtol(it->second.c_str(), nullptr, 10);
    }
    double real(const std::string& k, double def) const {
        auto it = kv.find(k);
        return it == kv.end() ? def : std::strtod(it->second.c_str(), nullptr);
    }
};

struct Url {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/";
    sockaddr_in addr{};
};

bool parse_url(std::string_view s, Url& u) {
    if (!s.starts_with("http://")) return false;
    s.remove_prefix(7);
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

std::string host_header(const Url& u) { return u.host + ":" + std::to_string(u.port); }

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

// ---------------------------------------------------------------- /proc: RSS of a process tree

struct ProcInfo {
    int pid = 0;
    int ppid = 0;
    std::string comm;
    long rss_kib = 0;
};

bool read_proc(int pid, ProcInfo& p) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(st, line)) return false;
    size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return false;
    p.pid = pid;
    p.comm = line.substr(open + 1, close - open - 1);
    char state = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &p.ppid) != 2) return false;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    p.rss_kib = 0;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:")) {
            p.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
            break;
        }
    }
    return true;
}

// pid and all its descendants.
std::vector<ProcInfo> proc_tree(int root) {
    std::vector<ProcInfo> all;
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
            ProcInfo p;
            if (read_proc(std::atoi(e->d_name), p)) all.push_back(p);
        }
        closedir(d);
    }
    std::vector<ProcInfo> out;
    std::vector<int> frontier{root};
    for (size_t depth = 0; depth < 8 && !frontier.empty(); ++depth) {
        std::vector<int> next;
        for (const auto& p : all) {
            if (std::find(frontier.begin(), frontier.end(), p.pid) != frontier.end()) out.push_back(p);
            if (std::find(frontier.begin(), frontier.end(), p.ppid) != frontier.end()) next.push_back(p.pid);
        }
        frontier = std::move(next);
    }
    return out;
}

long tree_rss_kib(const std::vector<ProcInfo>& t) {
    long sum = 0;
    for (const auto& p : t) sum += p.rss_kib;
    return sum;
}

std::string tree_desc(const std::vector<ProcInfo>& t) {
    std::string s;
    for (const auto& p : t) {
        if (!s.empty()) s += ",";
        s += p.comm + ":" + std::to_string(p.rss_kib);
    }
    return s;
}

// ---------------------------------------------------------------- writes

struct WriteReq {
    uv_write_t req;
    std::string data;
};

int write_str(uv_stream_t* stream, std::string data) {
    auto* w = new WriteReq;
    w->data = std::move(data);
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int r = uv_write(&w->req, stream, &buf, 1, [](uv_write_t* req, int) { delete static_cast<WriteReq*>(req->data); });
    if (r < 0) delete w;
    return r;
}

// All reads land in one buffer and are consumed before the callback returns (single thread).
char g_read_buf[256 * 1024];

void alloc_shared(uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(g_read_buf, sizeof g_read_buf); }

// ---------------------------------------------------------------- HTTP/1.1 response parser

class ResponseSink {
public:
    virtual ~ResponseSink() = default;
    // Return false to stop parsing (the sink is closing the connection).
    virtual bool on_head(int status, bool conn_close) = 0;
    virtual void on_body(const char* p, size_t n) = 0;
    virtual void on_end() = 0;
};

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

// Content-Length, chunked and close-delimited bodies; keep-alive (parses response after response).
class ResponseParser {
public:
    // False on a protocol error or when the sink asked to stop.
    bool feed(const char* p, size_t n, ResponseSink& sink) {
        while (n > 0) {
            switch (st_) {
            case St::Head: {
                size_t old = head_.size();
                head_.append(p, n);
                size_t pos = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
                if (pos == std::string::npos) return head_.size() <= 65536;
                size_t used = pos + 4 - old;
                p += used;
                n -= used;
                head_.resize(pos + 4);
                if (!parse_head(sink)) return false;
                std::string().swap(head_);
                if (st_ == St::Head) sink.on_end(); // no body
                break;
            }
            case St::Length: {
                size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n));
                sink.on_body(p, take);
                p += take;
                n -= take;
                remaining_ -= take;
                if (remaining_ == 0) finish(sink);
                break;
            }
            case St::UntilClose:
                sink.on_body(p, n);
                return true;
            case St::ChunkSize: {
                char c = *p++;
                --n;
                int v = hexval(c);
                if (v >= 0) {
                    remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
                } else if (c == ';' || c == ' ' || c == '\t') {
                    st_ = St::ChunkExt;
                } else if (c == '\n') {
                    chunk_size_done(sink);
                } else if (c != '\r') {
                    return false;
                }
                break;
            }
            case St::ChunkExt:
                if (*p == '\n') chunk_size_done(sink);
                ++p;
                --n;
                break;
            case St::ChunkData: {
                size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n));
                sink.on_body(p, take);
                p += take;
                n -= take;
                remaining_ -= take;
                if (remaining_ == 0) st_ = St::ChunkDataEnd;
                break;
            }
            case St::ChunkDataEnd:
                if (*p == '\n') {
                    st_ = St::ChunkSize;
                    remaining_ = 0;
                }
                ++p;
                --n;
                break;
            case St::Trailer:
                if (*p == '\n') {
                    if (line_len_ == 0) {
                        finish(sink);
                    } else {
                        line_len_ = 0;
                    }
                } else if (*p != '\r') {
                    ++line_len_;
                }
                ++p;
                --n;
                break;
            }
        }
        return true;
    }

    // True while a close-delimited body is being read (EOF then ends the response).
    bool until_close() const { return st_ == St::UntilClose; }

private:
    enum class St : uint8_t { Head, Length, UntilClose, ChunkSize, ChunkExt, ChunkData, ChunkDataEnd, Trailer };

    static int hexval(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    void chunk_size_done(ResponseSink&) {
        if (remaining_ == 0) {
            st_ = St::Trailer;
            line_len_ = 0;
        } else {
            st_ = St::ChunkData;
        }
    }

    void finish(ResponseSink& sink) {
        st_ = St::Head;
        remaining_ = 0;
        sink.on_end();
    }

    bool parse_head(ResponseSink& sink) {
        std::string_view h(head_);
        if (!h.starts_with("HTTP/1.") || h.size() < 12) return false;
        bool http10 = h[7] == '0';
        int status = std::atoi(std::string(h.substr(9, 3)).c_str());
        bool chunked = false, conn_close = http10, has_len = false;
        uint64_t len = 0;
        size_t pos = h.find("\r\n") + 2;
        while (pos < h.size()) {
            size_t end = h.find("\r\n", pos);
            if (end == std::string_view::npos || end == pos) break;
            std::string_view line = h.substr(pos, end - pos);
            pos = end + 2;
            size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            if (iequals_prefix(line, "content-length:")) {
                has_len = true;
                len = std::strtoull(std::string(value).c_str(), nullptr, 10);
            } else if (iequals_prefix(line, "transfer-encoding:")) {
                chunked = lower(value).find("chunked") != std::string::npos;
            } else if (iequals_prefix(line, "connection:")) {
                std::string v = lower(value);
                if (v.find("close") != std::string::npos) conn_close = true;
                if (v.find("keep-alive") != std::string::npos) conn_close = false;
            }
        }
        if (!sink.on_head(status, conn_close)) return false;
        if (status / 100 == 1 || status == 204 || status == 304) {
            st_ = St::Head;
        } else if (chunked) {
            st_ = St::ChunkSize;
            remaining_ = 0;
        } else if (has_len) {
            st_ = len == 0 ? St::Head : St::Length;
            remaining_ = len;
        } else {
            st_ = St::UntilClose;
        }
        return true;
    }

    St st_ = St::Head;
    uint32_t line_len_ = 0;
    uint64_t remaining_ = 0;
    std::string head_; // only while reading a response head
};

// Finds "@<seq>:<ts>\n" records in a byte stream (records may be split across reads).
struct MsgScanner {
    uint8_t st = 0; // 0 looking for '@', 1 in seq, 2 in ts
    uint64_t seq = 0;
    uint64_t ts = 0;

    template <class F>
    void feed(const char* p, size_t n, F&& on_msg) {
        const char* end = p + n;
        while (p < end) {
            if (st == 0) {
                p = static_cast<const char*>(std::memchr(p, '@', static_cast<size_t>(end - p)));
                if (!p) return;
                ++p;
                st = 1;
                seq = 0;
                continue;
            }
            char c = *p++;
            bool digit = c >= '0' && c <= '9';
            if (st == 1) {
                if (digit) {
                    seq = seq * 10 + static_cast<uint64_t>(c - '0');
                } else if (c == ':') {
                    st = 2;
                    ts = 0;
                } else {
                    st = 0;
                }
            } else {
                if (digit) {
                    ts = ts * 10 + static_cast<uint64_t>(c - '0');
                } else {
                    if (c == '\n') on_msg(seq, ts);
                    st = 0;
                }
            }
        }
    }
};

// ---------------------------------------------------------------- polling waits

struct Waiter {
    std::function<bool()> cond;
    uint64_t deadline;
    std::function<void(bool)> next;
};

std::vector<Waiter> g_waiters;
uv_timer_t g_tick;

// Calls next(true) once cond() holds (checked every 5 ms), or next(false) after timeout_ms.
void wait_until(std::function<bool()> cond, double timeout_ms, std::function<void(bool)> next) {
    g_waiters.push_back({std::move(cond), now_ns() + static_cast<uint64_t>(timeout_ms * 1e6), std::move(next)});
}

void after_ms(double ms, std::function<void()> fn) {
    wait_until([] { return false; }, ms, [fn = std::move(fn)](bool) { fn(); });
}

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
    g_waiters.insert(g_waiters.begin(), std::make_move_iterator(keep.begin()), std::make_move_iterator(keep.end()));
}

// ---------------------------------------------------------------- result line and shutdown

std::vector<std::pair<std::string, std::string>> g_result;
std::string g_mode;
bool g_finished = false;
int g_exit = 0;

template <class T>
void result(const std::string& k, T v) {
    std::ostringstream o;
    o << v;
    std::string s = o.str();
    for (auto& c : s) {
        if (c == ' ' || c == '\t' || c == '\n') c = '_';
    }
    g_result.emplace_back(k, s);
}

void finish(const char* status, int exit_code) {
    if (g_finished) return;
    g_finished = true;
    g_exit = exit_code;
    std::printf("RESULT mode=%s status=%s", g_mode.c_str(), status);
    for (auto& [k, v] : g_result) std::printf(" %s=%s", k.c_str(), v.c_str());
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

// ---------------------------------------------------------------- stream subscribers

class SubPool;

struct Sub final : ResponseSink {
    enum class St : uint8_t { Connecting, Waiting, Open, Closed };

    uv_tcp_t tcp{};
    uv_connect_t creq{};
    SubPool* pool = nullptr;
    uint32_t idx = 0;
    St st = St::Connecting;
    ResponseParser parser;
    MsgScanner scan;
    uint32_t received = 0;

    bool on_head(int status, bool) override;
    void on_body(const char* p, size_t n) override;
    void on_end() override;
};

class SubPool {
public:
    using MsgFn = std::function<void(Sub&, uint64_t seq, uint64_t ts, uint64_t now)>;

    // At most `concurrency` connections are connecting or waiting for their response head at once.
    // A connection that fails before its head is replaced by a new attempt while the pool's failures
    // stay within the retry budget (retry_pct percent of the target plus 100).
    SubPool(Url url, std::function<std::string(uint32_t)> channel_of, uint32_t concurrency, double retry_pct)
        : url_(std::move(url)), channel_of_(std::move(channel_of)), concurrency_(concurrency), retry_pct_(retry_pct) {}

    MsgFn on_msg;

    void grow_to(uint32_t n) {
        target_ = n;
        max_failed_ = static_cast<uint32_t>(n * retry_pct_ / 100.0) + 100;
        step_start_ns_ = now_ns();
        step_base_ok_ = ok_;
        pump();
    }
    // Every wanted connection has its head, or the retry budget is spent and nothing is in flight.
    bool settled() const { return inflight_ == 0 && (ok_ >= target_ || failed_ > max_failed_); }
    uint32_t open() const { return ok_ - dropped_; }
    uint32_t ok() const { return ok_; }
    uint32_t failed() const { return failed_; }
    uint32_t dropped() const { return dropped_; }
    uint32_t inflight() const { return inflight_; }
    std::vector<std::unique_ptr<Sub>>& subs() { return subs_; }
    // Time from the last grow_to() to the last response head, and the rate of new heads in it.
    double connect_seconds() const {
        return last_head_ns_ > step_start_ns_ ? (last_head_ns_ - step_start_ns_) / 1e9 : 0.0;
    }
    double connect_rate() const {
        double s = connect_seconds();
        return s > 0 ? (ok_ - step_base_ok_) / s : 0.0;
    }

    std::string top_failure() const { return top(fail_reasons_); }
    std::string top_drop() const { return top(drop_reasons_); }

    // One line: heads received, failed attempts and drops with their most frequent reasons.
    std::string summary() const {
        std::string s = std::to_string(ok_) + " answered 200, " + std::to_string(failed_) + " failed";
        if (failed_) s += " [" + top(fail_reasons_) + "]";
        s += ", " + std::to_string(dropped_) + " closed after the head";
        if (dropped_) s += " [" + top(drop_reasons_) + "]";
        return s;
    }

    void progress() const {
        logf("subscribers: target=%u open=%u failed=%u dropped=%u in-flight=%u", target_, open(), failed_, dropped_,
             inflight_);
    }

    void pump() {
        while (inflight_ < concurrency_ && ok_ + inflight_ < target_ && failed_ <= max_failed_) start_one();
    }

    void headed(Sub& s, int status) {
        --inflight_;
        if (status == 200) {
            ++ok_;
            s.st = Sub::St::Open;
            last_head_ns_ = now_ns();
        } else {
            ++failed_;
            ++fail_reasons_["status " + std::to_string(status)];
            close(s);
        }
        pump();
    }

    void lost(Sub& s, const std::string& why) {
        if (s.st == Sub::St::Closed) return;
        if (s.st == Sub::St::Open) {
            ++dropped_;
            ++drop_reasons_[why];
        } else {
            --inflight_;
            ++failed_;
            ++fail_reasons_[why];
        }
        close(s);
        pump();
    }

    void close(Sub& s) {
        s.st = Sub::St::Closed;
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&s.tcp))) {
            uv_close(reinterpret_cast<uv_handle_t*>(&s.tcp), nullptr);
        }
    }

private:
    static std::string top(const std::map<std::string, uint32_t>& reasons) {
        std::string best;
        uint32_t n = 0;
        for (auto& [k, v] : reasons) {
            if (v > n) {
                n = v;
                best = k;
            }
        }
        return best.empty() ? "" : best + " x" + std::to_string(n);
    }

    void start_one() {
        auto s = std::make_unique<Sub>();
        s->pool = this;
        s->idx = started_++;
        ++inflight_;
        Sub* raw = s.get();
        subs_.push_back(std::move(s));
        uv_tcp_init(g_loop, &raw->tcp);
        raw->tcp.data = raw;
        raw->creq.data = raw;
        int r = uv_tcp_connect(&raw->creq, &raw->tcp, reinterpret_cast<const sockaddr*>(&url_.addr), on_connect);
        if (r < 0) lost(*raw, std::string("connect: ") + uv_err_name(r));
    }

    static void on_connect(uv_connect_t* req, int status) {
        auto* s = static_cast<Sub*>(req->data);
        if (s->st == Sub::St::Closed) return;
        if (status < 0) {
            s->pool->lost(*s, std::string("connect: ") + uv_err_name(status));
            return;
        }
        SubPool& p = *s->pool;
        std::string req_text = "GET " + p.url_.path + p.channel_of_(s->idx) + " HTTP/1.1\r\nHost: " + host_header(p.url_) +
                               "\r\nUser-Agent: realtime_bench\r\nAccept: */*\r\n\r\n";
        s->st = Sub::St::Waiting;
        int r = write_str(reinterpret_cast<uv_stream_t*>(&s->tcp), std::move(req_text));
        if (r == 0) r = uv_read_start(reinterpret_cast<uv_stream_t*>(&s->tcp), alloc_shared, on_read);
        if (r < 0) p.lost(*s, std::string("write: ") + uv_err_name(r));
    }

    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* s = static_cast<Sub*>(stream->data);
        if (s->st == Sub::St::Closed) return;
        if (nread > 0) {
            if (!s->parser.feed(buf->base, static_cast<size_t>(nread), *s) && s->st != Sub::St::Closed) {
                s->pool->lost(*s, "bad response");
            }
        } else if (nread < 0) {
            s->pool->lost(*s, s->st == Sub::St::Open ? std::string("closed by proxy: ") + uv_err_name(static_cast<int>(nread))
                                                      : std::string("closed before headers: ") + uv_err_name(static_cast<int>(nread)));
        }
    }

    Url url_;
    std::function<std::string(uint32_t)> channel_of_;
    uint32_t concurrency_;
    double retry_pct_;
    uint32_t max_failed_ = 0;
    uint32_t target_ = 0, started_ = 0, ok_ = 0, failed_ = 0, dropped_ = 0, inflight_ = 0;
    uint64_t step_start_ns_ = 0, last_head_ns_ = 0;
    uint32_t step_base_ok_ = 0;
    std::map<std::string, uint32_t> fail_reasons_, drop_reasons_;
    std::vector<std::unique_ptr<Sub>> subs_;
};

bool Sub::on_head(int status, bool) {
    pool->headed(*this, status);
    return st == St::Open;
}

void Sub::on_body(const char* p, size_t n) {
    if (!pool->on_msg) return;
    uint64_t t = now_ns();
    scan.feed(p, n, [&](uint64_t seq, uint64_t ts) { pool->on_msg(*this, seq, ts, t); });
}

void Sub::on_end() { pool->lost(*this, "stream ended"); }

// ---------------------------------------------------------------- publisher (control API client)

struct Pub final : ResponseSink {
    enum class St : uint8_t { Idle, Connecting, Ready, Busy, Closing };
    using DoneFn = std::function<void(int status)>;

    Url url;
    uv_tcp_t tcp{};
    uv_connect_t creq{};
    St st = St::Idle;
    ResponseParser parser;
    std::string pending;
    DoneFn done;
    int status = 0;
    bool server_close = false;
    uint32_t connects = 0;

    // Sends one request; done(status) is called once with the HTTP status, or 0 on a network error.
    void post(std::string request, DoneFn cb) {
        pending = std::move(request);
        done = std::move(cb);
        if (st == St::Ready) {
            send();
        } else if (st == St::Idle) {
            connect();
        } // Closing: close_cb connects; Connecting: on_connect sends
    }

    bool on_head(int s, bool close) override {
        status = s;
        server_close = close;
        return true;
    }
    void on_body(const char*, size_t) override {}
    void on_end() override {
        if (st != St::Busy) return;
        int s = status;
        if (server_close) {
            shut();
        } else {
            st = St::Ready;
        }
        complete(s);
    }

private:
    void complete(int s) {
        DoneFn cb = std::move(done);
        done = nullptr;
        if (cb) cb(s);
    }

    void connect() {
        st = St::Connecting;
        parser = ResponseParser();
        ++connects;
        uv_tcp_init(g_loop, &tcp);
        uv_tcp_nodelay(&tcp, 1);
        tcp.data = this;
        creq.data = this;
        int r = uv_tcp_connect(&creq, &tcp, reinterpret_cast<const sockaddr*>(&url.addr), [](uv_connect_t* req, int status) {
            auto* p = static_cast<Pub*>(req->data);
            if (p->st != St::Connecting) return;
            if (status < 0) {
                p->shut();
                p->complete(0);
                return;
            }
            int r2 = uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp), alloc_shared, on_read);
            if (r2 < 0) {
                p->shut();
                p->complete(0);
                return;
            }
            p->send();
        });
        if (r < 0) {
            shut();
            complete(0);
        }
    }

    void send() {
        st = St::Busy;
        status = 0;
        server_close = false;
        if (write_str(reinterpret_cast<uv_stream_t*>(&tcp), std::move(pending)) < 0) {
            shut();
            complete(0);
        }
        pending.clear();
    }

    void shut() {
        st = St::Closing;
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) {
            auto* p = static_cast<Pub*>(h->data);
            p->st = St::Idle;
            if (p->done && !g_finished) p->connect(); // a request is waiting
        });
    }

    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* p = static_cast<Pub*>(stream->data);
        if (p->st == St::Closing || p->st == St::Idle) return;
        if (nread > 0) {
            if (!p->parser.feed(buf->base, static_cast<size_t>(nread), *p)) {
                bool busy = p->st == St::Busy;
                p->shut();
                if (busy) p->complete(0);
            }
        } else if (nread < 0) {
            bool busy = p->st == St::Busy;
            if (busy && p->parser.until_close()) {
                int s = p->status;
                p->shut();
                p->complete(s);
                return;
            }
            p->shut();
            if (busy) p->complete(0);
        }
    }
};

std::string publish_request(const Url& ctl, const std::string& channel, uint64_t first_seq, uint32_t count,
                            size_t payload) {
    std::string body = "{\"items\":[";
    uint64_t ts = now_ns();
    for (uint32_t i = 0; i < count; ++i) {
        std::string content = "@" + std::to_string(first_seq + i) + ":" + std::to_string(ts) + "\\n";
        if (content.size() < payload) content.append(payload - content.size(), 'x');
        if (i) body += ",";
        body += "{\"channel\":\"" + channel + "\",\"formats\":{\"http-stream\":{\"content\":\"" + content + "\"}}}";
    }
    body += "]}";
    std::string path = ctl.path == "/" ? "/publish/" : ctl.path;
    return "POST " + path + " HTTP/1.1\r\nHost: " + host_header(ctl) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// ---------------------------------------------------------------- common client setup

struct Client {
    Options opt;
    Url url;
    Url ctl;
    std::unique_ptr<SubPool> pool;
    uv_timer_t progress_timer{};
    double connect_timeout_ms = 0;

    bool init(bool need_ctl) {
        if (!parse_url(opt.str("url", ""), url)) {
            fail("--url http://127.0.0.1:PORT/path/ is required (numeric loopback host)");
            return false;
        }
        if (!url.path.ends_with('/')) url.path += '/';
        if (need_ctl && !parse_url(opt.str("publish", "http://127.0.0.1:5561"), ctl)) {
            fail("bad --publish URL");
            return false;
        }
        connect_timeout_ms = opt.real("connect-timeout", 180) * 1000;
        uv_timer_init(g_loop, &progress_timer);
        progress_timer.data = this;
        uv_timer_start(
            &progress_timer, [](uv_timer_t* t) {
                auto* c = static_cast<Client*>(t->data);
                if (c->pool) c->pool->progress();
            }, 3000, 3000);
        return true;
    }

    void make_pool(std::function<std::string(uint32_t)> channel_of) {
        pool = std::make_unique<SubPool>(url, std::move(channel_of), static_cast<uint32_t>(opt.num("concurrency", 50)),
                                         opt.real("retry-pct", 10));
    }

    // Opens subscribers up to n, then calls next(all_settled_in_time).
    void open_subs(uint32_t n, std::function<void(bool)> next) {
        pool->grow_to(n);
        SubPool* p = pool.get();
        wait_until([p] { return p->settled(); }, connect_timeout_ms, std::move(next));
    }

    void report_pool(const std::string& prefix = "") {
        result(prefix + "open", pool->open());
        result(prefix + "failed", pool->failed());
        result(prefix + "dropped", pool->dropped());
        if (pool->failed()) result(prefix + "top_failure", pool->top_failure());
        if (pool->dropped()) result(prefix + "top_drop", pool->top_drop());
    }
};

// ---------------------------------------------------------------- mode: held

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
            logf("step %u: RSS %ld KiB (%s) -> %.2f KiB per held connection", n, rss, tree_desc(t).c_str(), per);
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

// ---------------------------------------------------------------- mode: fanout

struct FanoutMode : Client {
    struct Rec {
        uint64_t sent = 0, first = 0, last = 0;
        uint32_t count = 0;
    };
    std::string channel;
    uint32_t subs = 0, messages = 0;
    double gap_ms = 0, msg_timeout_ms = 0;
    size_t payload = 0;
    std::vector<Rec> recs; // index 0: warm-up
    uint32_t seq = 0;
    uint64_t dups = 0;
    std::vector<double> lat_last_ms, lat_first_ms;
    uint32_t incomplete = 0;
    Pub pub;

    void start() {
        if (!init(true)) return;
        subs = static_cast<uint32_t>(opt.num("subs", 10000));
        messages = static_cast<uint32_t>(opt.num("messages", 20));
        gap_ms = opt.real("gap", 200);
        msg_timeout_ms = opt.real("msg-timeout", 10) * 1000;
        payload = static_cast<size_t>(opt.num("payload", 0));
        channel = opt.str("channel", "fanout-" + std::to_string(getpid()));
        pub.url = ctl;
        recs.resize(messages + 1);
        make_pool([this](uint32_t) { return channel; });
        pool->on_msg = [this](Sub& s, uint64_t q, uint64_t, uint64_t t) {
            if (q >= recs.size()) return;
            Rec& r = recs[q];
            if (r.count == 0) r.first = t;
            r.last = t;
            ++r.count;
            if (q > 0 && s.received >= q) ++dups; // per-subscriber order: seq q is its q-th message
            if (q > 0) ++s.received;
        };
        result("subs", subs);
        result("messages", messages);
        open_subs(subs, [this](bool in_time) {
            report_pool("subs_");
            result("connect_s", fmt2(pool->connect_seconds()));
            result("conns_per_s", fmt2(pool->connect_rate()));
            if (pool->open() == 0) return fail("no subscriber holds a stream: " + pool->summary());
            if (!in_time) logf("not all subscribers answered in time; continuing with %u", pool->open());
            after_ms(1000, [this] { publish(0); });
        });
    }

    void publish(uint32_t q) {
        seq = q;
        recs[q].sent = now_ns();
        pub.post(publish_request(ctl, channel, q, 1, payload), [this, q](int status) {
            if (status != 200) return fail("publish answered " + std::to_string(status) + " (0 = network error)");
            SubPool* p = pool.get();
            wait_until([this, p, q] { return recs[q].count >= p->open(); }, msg_timeout_ms,
                       [this, q](bool all) { delivered(q, all); });
        });
    }

    void delivered(uint32_t q, bool all) {
        Rec& r = recs[q];
        if (q == 0) {
            result("warmup_received", r.count);
            if (r.count == 0) return fail("warm-up publish reached no subscriber");
            if (!all) logf("warm-up reached %u of %u subscribers", r.count, pool->open());
        } else {
            if (!all) ++incomplete;
            if (r.count > 0) {
                lat_last_ms.push_back((r.last - r.sent) / 1e6);
                lat_first_ms.push_back((r.first - r.sent) / 1e6);
            }
            logf("publish %u: %u/%u subscribers, first %.2f ms, last %.2f ms", q, r.count, pool->open(),
                 r.count ? (r.first - r.sent) / 1e6 : -1.0, r.count ? (r.last - r.sent) / 1e6 : -1.0);
        }
        if (q == messages) {
            after_ms(1000, [this] { report(); }); // stragglers
            return;
        }
        after_ms(gap_ms, [this, q] { publish(q + 1); });
    }

    void report() {
        uint64_t expected = 0, got = 0;
        uint32_t subs_missing = 0;
        for (auto& s : pool->subs()) {
            if (s->st != Sub::St::Open) continue;
            expected += messages;
            got += std::min(s->received, messages);
            if (s->received < messages) ++subs_missing;
        }
        result("open_at_end", pool->open());
        result("last_p50_ms", fmt2(pct(lat_last_ms, 50)));
        result("last_p99_ms", fmt2(pct(lat_last_ms, 99)));
        result("last_max_ms", fmt2(pct(lat_last_ms, 100)));
        result("first_p50_ms", fmt2(pct(lat_first_ms, 50)));
        result("missed_deliveries", expected - got);
        result("subs_missing_any", subs_missing);
        result("incomplete_publishes", incomplete);
        result("out_of_order_or_dup", dups);
        finish(expected == got ? "ok" : "partial", 0);
    }
};

// ---------------------------------------------------------------- mode: throughput

struct ThroughputMode : Client {
    std::string channel;
    uint32_t subs = 0, batch = 1, npubs = 1;
    double duration_ms = 0;
    size_t payload = 0;
    std::vector<std::unique_ptr<Pub>> pubs;
    std::vector<uint32_t> counts; // deliveries per seq (seq 0 = warm-up)
    std::vector<uint8_t> acked;   // 1 = publish answered 200
    uint64_t next_seq = 1;
    uint64_t t0 = 0, t_end = 0, t_pub_end = 0, first_delivery = 0, last_delivery = 0;
    double rate = 0;        // publish requests per second over all publishers, 0 = back to back
    uint64_t scheduled = 0; // requests scheduled so far when rate > 0
    uint64_t deliveries = 0, in_window = 0, requests = 0, req_errors = 0, items_acked = 0;
    uint32_t running = 0, expected_per_item = 0;
    std::vector<uint32_t> lat_us;
    int last_bad_status = -1;

    void start() {
        if (!init(true)) return;
        subs = static_cast<uint32_t>(opt.num("subs", 100));
        batch = static_cast<uint32_t>(std::max(1L, opt.num("batch", 1)));
        npubs = static_cast<uint32_t>(std::max(1L, opt.num("publishers", 2)));
        duration_ms = opt.real("duration", 10) * 1000;
        payload = static_cast<size_t>(opt.num("payload", 0));
        rate = opt.real("rate", 0);
        channel = opt.str("channel", "tp-" + std::to_string(getpid()));
        counts.assign(1, 0);
        acked.assign(1, 1);
        lat_us.reserve(1 << 20);
        make_pool([this](uint32_t) { return channel; });
        pool->on_msg = [this](Sub&, uint64_t q, uint64_t ts, uint64_t t) {
            if (q >= counts.size()) return;
            ++counts[q];
            if (q == 0) return;
            ++deliveries;
            if (!first_delivery) first_delivery = t;
            last_delivery = t;
            if (t <= t_end) ++in_window;
            if (lat_us.size() < (1u << 24) && t > ts) lat_us.push_back(static_cast<uint32_t>((t - ts) / 1000));
        };
        result("subs", subs);
        result("batch", batch);
        result("publishers", npubs);
        if (rate > 0) result("rate_limit_req_per_s", rate);
        open_subs(subs, [this](bool) {
            report_pool("subs_");
            if (pool->open() == 0) return fail("no subscriber holds a stream: " + pool->summary());
            after_ms(1000, [this] { warmup(); });
        });
    }

    void warmup() {
        pubs.push_back(std::make_unique<Pub>());
        pubs[0]->url = ctl;
        pubs[0]->post(publish_request(ctl, channel, 0, 1, payload), [this](int status) {
            if (status != 200) return fail("publish answered " + std::to_string(status) + " (0 = network error)");
            SubPool* p = pool.get();
            wait_until([this, p] { return counts[0] >= p->open(); }, 10000, [this](bool all) {
                result("warmup_received", counts[0]);
                if (counts[0] == 0) return fail("warm-up publish reached no subscriber");
                if (!all) logf("warm-up reached %u of %u subscribers", counts[0], pool->open());
                run();
            });
        });
    }

    void run() {
        expected_per_item = pool->open();
        t0 = now_ns();
        t_end = t0 + static_cast<uint64_t>(duration_ms * 1e6);
        for (uint32_t i = 1; i < npubs; ++i) {
            pubs.push_back(std::make_unique<Pub>());
            pubs.back()->url = ctl;
        }
        running = npubs;
        for (auto& p : pubs) post_next(*p);
    }

    void post_next(Pub& p) {
        uint64_t t = now_ns();
        if (t >= t_end || g_finished) {
            if (--running == 0) drain();
            return;
        }
        if (rate > 0) {
            uint64_t due = t0 + static_cast<uint64_t>(static_cast<double>(scheduled) * 1e9 / rate);
            if (due > t) {
                after_ms((due - t) / 1e6, [this, &p] { send_next(p); });
                ++scheduled;
                return;
            }
            ++scheduled;
        }
        send_next(p);
    }

    void send_next(Pub& p) {
        uint64_t first = next_seq;
        next_seq += batch;
        counts.resize(next_seq, 0);
        acked.resize(next_seq, 0);
        ++requests;
        p.post(publish_request(ctl, channel, first, batch, payload), [this, &p, first](int status) {
            if (status == 200) {
                for (uint64_t q = first; q < first + batch; ++q) acked[q] = 1;
                items_acked += batch;
            } else {
                ++req_errors;
                last_bad_status = status;
                if (req_errors > 1000 && items_acked == 0) return fail("publishes keep failing, status " + std::to_string(status));
            }
            post_next(p);
        });
    }

    void drain() {
        t_pub_end = now_ns();
        uint64_t target = items_acked * expected_per_item;
        double max_ms = opt.real("drain", 15) * 1000;
        wait_until([this, target] { return deliveries >= target || (last_delivery && now_ns() - std::max(last_delivery, t_pub_end) > 2000000000ull); },
                   max_ms, [this](bool) { report(); });
    }

    void report() {
        uint64_t expected = 0, got_acked = 0, dup = 0, unacked_delivered = 0;
        for (size_t q = 1; q < counts.size(); ++q) {
            if (acked[q]) {
                expected += expected_per_item;
                got_acked += std::min(counts[q], expected_per_item);
                if (counts[q] > expected_per_item) dup += counts[q] - expected_per_item;
            } else {
                unacked_delivered += counts[q];
            }
        }
        double d_s = duration_ms / 1000.0;
        double total_s = (std::max(last_delivery, t_pub_end) - t0) / 1e9;
        std::vector<double> lat(lat_us.begin(), lat_us.end());
        // pct() sorts a copy; sort once here instead for the three figures.
        std::sort(lat.begin(), lat.end());
        auto at = [&](double p) {
            if (lat.empty()) return 0.0;
            size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * lat.size()));
            return lat[std::min(lat.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
        };
        result("duration_s", fmt2(d_s));
        result("publish_requests", requests);
        result("publish_errors", req_errors);
        if (last_bad_status >= 0) result("last_bad_status", last_bad_status);
        result("pub_req_per_s", fmt2(requests / d_s));
        result("items_acked", items_acked);
        result("items_per_s", fmt2(items_acked / d_s));
        result("deliveries", deliveries);
        result("deliveries_per_s", fmt2(total_s > 0 ? deliveries / total_s : 0));
        result("deliveries_per_s_in_window", fmt2(in_window / d_s));
        result("first_delivery_ms", fmt2(first_delivery ? (first_delivery - t0) / 1e6 : -1));
        result("expected", expected);
        result("lost", expected - got_acked);
        result("lost_pct", fmt2(expected ? 100.0 * static_cast<double>(expected - got_acked) / expected : 0));
        result("dups", dup);
        result("unacked_delivered", unacked_delivered);
        result("drain_s", fmt2((std::max(last_delivery, t_pub_end) - t_pub_end) / 1e9));
        result("lat_p50_ms", fmt2(at(50)));
        result("lat_p99_ms", fmt2(at(99)));
        result("lat_max_ms", fmt2(at(100)));
        result("subs_dropped", pool->dropped());
        finish(expected == got_acked ? "ok" : "partial", 0);
    }
};

// ---------------------------------------------------------------- mode: backend

struct BackendConn {
    uv_tcp_t tcp{};
    std::string in;
};

uint64_t g_backend_requests = 0, g_backend_holds = 0;
std::string g_backend_body = "stream open\n";

std::string channel_of_target(std::string_view target) {
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (q != std::string_view::npos) {
        std::string_view query = target.substr(q + 1);
        size_t pos = 0;
        while (pos <= query.size()) {
            size_t amp = query.find('&', pos);
            std::string_view kv = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
            if (kv.starts_with("channel=")) return std::string(kv.substr(8));
            if (amp == std::string_view::npos) break;
            pos = amp + 1;
        }
    }
    if (path.starts_with("/stream/") && path.size() > 8) {
        std::string_view ch = path.substr(8);
        size_t slash = ch.rfind('/');
        return std::string(slash == std::string_view::npos ? ch : ch.substr(slash + 1));
    }
    return "";
}

void backend_close(BackendConn* c) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) { delete static_cast<BackendConn*>(h->data); });
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
        bool http10 = head.substr(sp2 + 1, eol - sp2 - 1) == "HTTP/1.0";
        uint64_t body_len = 0;
        bool close = http10;
        size_t pos = eol + 2;
        while (pos < end) {
            size_t e = head.find("\r\n", pos);
            std::string_view line = head.substr(pos, e - pos);
            pos = e + 2;
            size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            if (iequals_prefix(line, "content-length:")) body_len = std::strtoull(std::string(v).c_str(), nullptr, 10);
            if (iequals_prefix(line, "connection:")) {
                std::string lv = lower(v);
                if (lv.find("close") != std::string::npos) close = true;
                if (lv.find("keep-alive") != std::string::npos) close = false;
            }
        }
        if (c->in.size() < end + 4 + body_len) break;
        std::string ch = channel_of_target(target);
        ++g_backend_requests;
        if (!ch.empty()) {
            ++g_backend_holds;
            out += "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nGrip-Hold: stream\r\nGrip-Channel: " + ch +
                   "\r\nContent-Length: " + std::to_string(g_backend_body.size()) + "\r\n\r\n" + g_backend_body;
        } else {
            out += "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
        }
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

int run_backend(const Options& opt) {
    Url u;
    std::string listen = opt.str("listen", "127.0.0.1:8080");
    if (!parse_url("http://" + listen, u)) {
        logf("bad --listen %s", listen.c_str());
        return 2;
    }
    if (opt.kv.count("body")) g_backend_body = opt.str("body", "") + "\n";
    static uv_tcp_t server;
    uv_tcp_init(g_loop, &server);
    int r = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&u.addr), 0);
    if (r == 0) {
        r = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 4096, [](uv_stream_t* srv, int status) {
            if (status < 0) return;
            auto* c = new BackendConn;
            uv_tcp_init(g_loop, &c->tcp);
            c->tcp.data = c;
            if (uv_accept(srv, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
                backend_close(c);
                return;
            }
            uv_tcp_nodelay(&c->tcp, 1);
            uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), alloc_shared,
                          [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
                              auto* conn = static_cast<BackendConn*>(s->data);
                              if (nread < 0) return backend_close(conn);
                              conn->in.append(buf->base, static_cast<size_t>(nread));
                              if (!backend_serve(conn)) {
                                  uv_read_stop(s);
                                  uv_shutdown_t* sh = new uv_shutdown_t;
                                  sh->data = conn;
                                  if (uv_shutdown(sh, s, [](uv_shutdown_t* req, int) {
                                          backend_close(static_cast<BackendConn*>(req->data));
                                          delete req;
                                      }) != 0) {
                                      delete sh;
                                      backend_close(conn);
                                  }
                              }
                          });
        });
    }
    if (r != 0) {
        logf("backend: cannot listen on %s: %s", listen.c_str(), uv_strerror(r));
        return 2;
    }
    logf("backend listening on %s (hold path /stream/<channel> or ?channel=)", listen.c_str());
    static uv_signal_t sigterm, sigint;
    static uv_timer_t limit;
    auto stop = [] {
        logf("backend: %" PRIu64 " requests, %" PRIu64 " stream holds", g_backend_requests, g_backend_holds);
        uv_stop(g_loop);
    };
    uv_signal_init(g_loop, &sigterm);
    uv_signal_init(g_loop, &sigint);
    uv_signal_start(&sigterm, [](uv_signal_t* h, int) { (*static_cast<decltype(stop)*>(h->data))(); }, SIGTERM);
    uv_signal_start(&sigint, [](uv_signal_t* h, int) { (*static_cast<decltype(stop)*>(h->data))(); }, SIGINT);
    sigterm.data = sigint.data = &stop;
    uv_timer_init(g_loop, &limit);
    limit.data = &stop;
    uv_timer_start(&limit, [](uv_timer_t* h) { (*static_cast<decltype(stop)*>(h->data))(); },
                   static_cast<uint64_t>(opt.real("max-seconds", 3600) * 1000), 0);
    uv_run(g_loop, UV_RUN_DEFAULT);
    return 0;
}

void usage() {
    std::fprintf(stderr,
                 "usage: realtime_bench MODE [--key value]...\n"
                 "  backend    --listen 127.0.0.1:PORT [--max-seconds 3600]\n"
                 "  held       --url http://127.0.0.1:P/stream/ [--conns 10000,18000] [--pid PID] [--channels 0]\n"
                 "             [--settle 3]\n"
                 "  fanout     --url URL --publish http://127.0.0.1:5561 [--subs 10000] [--messages 20] [--gap 200]\n"
                 "             [--msg-timeout 10]\n"
                 "  throughput --url URL --publish URL [--subs 100] [--publishers 2] [--batch 1] [--duration 10]\n"
                 "             [--drain 15] [--rate REQ_PER_S]\n"
                 "  common:    [--concurrency 50] [--retry-pct 10] [--connect-timeout 180] [--max-seconds 600] [--payload 0]\n"
                 "             [--channel NAME]\n");
}

} // namespace

int main(int argc, char** argv) {
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

    uv_timer_init(g_loop, &g_tick);
    uv_timer_start(&g_tick, on_tick, 5, 5);
    static uv_timer_t watchdog;
    uv_timer_init(g_loop, &watchdog);
    uv_timer_start(&watchdog, [](uv_timer_t*) {
        logf("--max-seconds reached");
        finish("timeout", 3);
    }, static_cast<uint64_t>(opt.real("max-seconds", 600) * 1000), 0);

    std::unique_ptr<HeldMode> held;
    std::unique_ptr<FanoutMode> fanout;
    std::unique_ptr<ThroughputMode> tp;
    if (opt.mode == "held") {
        held = std::make_unique<HeldMode>();
        held->opt = opt;
        held->start();
    } else if (opt.mode == "fanout") {
        fanout = std::make_unique<FanoutMode>();
        fanout->opt = opt;
        fanout->start();
    } else if (opt.mode == "throughput") {
        tp = std::make_unique<ThroughputMode>();
        tp->opt = opt;
        tp->start();
    } else {
        usage();
        return 2;
    }
    uv_run(g_loop, UV_RUN_DEFAULT);
    if (!g_finished) finish("failed", 2);
    uv_run(g_loop, UV_RUN_DEFAULT);
    uv_loop_close(g_loop);
    return g_exit;
}
