#include "gripd/core/log.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

namespace gripd::core {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
// One descriptor per LogFile: Main is stderr or --logfile; Proxy and Handler are -1 until logdir's
// files are opened (their lines then go to Main).
constexpr size_t kFiles = 3;
std::array<std::atomic<int>, kFiles> g_fds{STDERR_FILENO, -1, -1};
std::atomic<uint64_t> g_error_lines{0};
std::atomic<bool> g_split{false}; // a service file is open: look up each line's file

constexpr size_t kThreadBufferFlushAt = 16 * 1024;

// ---- the writer thread (see log.hpp) ----

constexpr size_t kChunkSlots = 64;               // chunks waiting per thread (power of two)
constexpr uint64_t kMaxQueuedBytes = 256 * 1024; // bytes waiting per thread
constexpr size_t kMaxChannels = 256;             // threads that log through the writer
constexpr int kWarnIntervalMs = 1000;            // at most one "dropped" warning per interval

// One thread's lines on their way to the writer: a single-producer single-consumer ring of chunks
// (each a batch of whole lines). The producer's "store tail, load head" and the writer's "store
// head, load tail" are seq_cst and pair up as in loop/spsc_ring.hpp, so a chunk pushed while the
// writer goes to sleep always comes with a wake-up.
struct Chunk {
    std::string bytes;
    uint8_t file = 0; // LogFile
};
struct Channel {
    std::array<Chunk, kChunkSlots> slots;
    alignas(64) std::atomic<uint64_t> head{0}; // writer
    std::atomic<uint64_t> written_bytes{0};    // writer: bytes taken out (monotonic)
    alignas(64) std::atomic<uint64_t> tail{0}; // producer
    uint64_t queued_bytes = 0;                 // producer: bytes put in (monotonic)
};

struct Writer {
    std::array<std::atomic<Channel*>, kMaxChannels> channels{};
    std::atomic<size_t> channel_count{0};
    std::atomic<bool> running{false};
    std::atomic<bool> stopping{false};
    std::atomic<bool> idle{false}; // the writer found every channel empty after its last pass
    std::atomic<uint64_t> dropped{0};
    int wake_fd = -1;
};
// Lives until the process ends (never destroyed): a writer stuck on a full pipe at exit must not
// touch freed memory.
Writer* g_writer = nullptr;

struct ThreadBuffer {
    bool on = false;
    std::array<std::string, kFiles> data; // per LogFile
    Channel* channel = nullptr;           // registered on first use once the writer runs
    bool no_channel = false;              // every slot taken: this thread writes directly
};
thread_local ThreadBuffer t_buffer;

void write_all(size_t file, const char* p, size_t len) {
    int fd = g_fds[file].load(std::memory_order_relaxed);
    if (fd < 0) fd = g_fds[0].load(std::memory_order_relaxed);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        len -= static_cast<size_t>(n);
    }
}

size_t count_lines(const std::string& s) {
    size_t n = 0;
    for (char c : s)
        n += c == '\n';
    return n;
}

void wake_writer(Writer& w) {
    uint64_t one = 1;
    ssize_t r = ::write(w.wake_fd, &one, sizeof(one)); // non-blocking eventfd: never waits
    (void)r;
}

// Producer side: hands `chunk` (whole lines) to the writer, or drops it (counted) when this
// thread's queue is at its bound. Never blocks.
void hand_over(Writer& w, Channel& ch, std::string& chunk, size_t file) {
    uint64_t tail = ch.tail.load(std::memory_order_relaxed);
    uint64_t head = ch.head.load(std::memory_order_acquire);
    uint64_t waiting = ch.queued_bytes - ch.written_bytes.load(std::memory_order_acquire);
    if (tail - head >= kChunkSlots || waiting + chunk.size() > kMaxQueuedBytes) {
        w.dropped.fetch_add(count_lines(chunk), std::memory_order_relaxed);
        chunk.clear();
        return;
    }
    Chunk& slot = ch.slots[tail % kChunkSlots];
    slot.bytes.swap(chunk);
    slot.file = static_cast<uint8_t>(file);
    chunk.clear();
    ch.queued_bytes += slot.bytes.size();
    ch.tail.store(tail + 1, std::memory_order_seq_cst);
    if (w.idle.load(std::memory_order_seq_cst)) wake_writer(w);
}

Channel* channel_for_thread(Writer& w) {
    if (t_buffer.channel || t_buffer.no_channel) return t_buffer.channel;
    size_t i = w.channel_count.fetch_add(1);
    if (i >= kMaxChannels) {
        t_buffer.no_channel = true;
        return nullptr;
    }
    auto* ch = new Channel(); // NOLINT: lives until the process ends, like the writer
    w.channels[i].store(ch, std::memory_order_release);
    t_buffer.channel = ch;
    return ch;
}

// Writes every waiting chunk of every channel; returns whether anything was written.
bool write_pass(Writer& w) {
    bool any = false;
    size_t n = std::min(w.channel_count.load(std::memory_order_acquire), kMaxChannels);
    for (size_t i = 0; i < n; ++i) {
        Channel* ch = w.channels[i].load(std::memory_order_acquire);
        if (!ch) continue; // registered, not yet published
        uint64_t head = ch->head.load(std::memory_order_relaxed);
        while (head != ch->tail.load(std::memory_order_seq_cst)) {
            Chunk& chunk = ch->slots[head % kChunkSlots];
            write_all(chunk.file, chunk.bytes.data(), chunk.bytes.size()); // may block: this thread's job
            uint64_t size = chunk.bytes.size();
            std::string().swap(chunk.bytes); // give the memory back: the producer sends a new one
            ch->written_bytes.store(ch->written_bytes.load(std::memory_order_relaxed) + size,
                                    std::memory_order_release);
            ch->head.store(++head, std::memory_order_seq_cst);
            any = true;
        }
    }
    return any;
}

void format_prefix(LogLevel level, const char* target, char* line, size_t cap, int* n);

void warn_dropped(Writer& w, uint64_t* reported) {
    uint64_t dropped = w.dropped.load(std::memory_order_relaxed);
    if (dropped == *reported) return;
    char line[256];
    int n = 0;
    format_prefix(LogLevel::Warn, "log", line, sizeof(line), &n);
    if (n < 0) return;
    int m = std::snprintf(line + n, sizeof(line) - static_cast<size_t>(n),
                          "dropped %llu log lines: the log output is not keeping up\n",
                          static_cast<unsigned long long>(dropped - *reported));
    if (m <= 0) return;
    // A line snprintf cut short still goes out, without its last bytes.
    size_t len = std::min(static_cast<size_t>(n) + static_cast<size_t>(m), sizeof(line) - 1);
    write_all(0, line, len);
    *reported = dropped;
}

void writer_main(Writer* w) {
    uint64_t reported = 0;
    auto last_warn = std::chrono::steady_clock::now();
    for (;;) {
        w->idle.store(false, std::memory_order_seq_cst);
        bool wrote = write_pass(*w);
        auto now = std::chrono::steady_clock::now();
        if (now - last_warn >= std::chrono::milliseconds(kWarnIntervalMs)) {
            warn_dropped(*w, &reported);
            last_warn = now;
        }
        if (wrote) continue;
        if (w->stopping.load()) break;
        // Announce sleep, then look once more: a producer that pushed after our pass either sees
        // idle (and wakes us) or we see its chunk here.
        w->idle.store(true, std::memory_order_seq_cst);
        if (write_pass(*w)) continue;
        pollfd p{w->wake_fd, POLLIN, 0};
        if (::poll(&p, 1, kWarnIntervalMs) > 0) {
            uint64_t v = 0;
            ssize_t r = ::read(w->wake_fd, &v, sizeof(v));
            (void)r;
        }
    }
    warn_dropped(*w, &reported);
    w->running.store(false);
}

const char* level_name(LogLevel level) {
    switch (level) {
    case LogLevel::Error:
        return "ERR";
    case LogLevel::Warn:
        return "WARN";
    case LogLevel::Info:
        return "INFO";
    case LogLevel::Debug:
        return "DEBUG";
    case LogLevel::Trace:
        return "TRACE";
    }
    return "?";
}

// [gripd] log_instance: set once before any thread logs, read-only after (no lock needed).
std::string g_instance_tag; // "[id] " or ""

void format_prefix(LogLevel level, const char* target, char* line, size_t cap, int* n) {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm t{};
    localtime_r(&tv.tv_sec, &t);
    *n = std::snprintf(line, cap, "[%s] %04d-%02d-%02d %02d:%02d:%02d.%03d %s[%s] ", level_name(level),
                       t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                       static_cast<int>(tv.tv_usec / 1000), g_instance_tag.c_str(), target);
}

} // namespace

void log_set_instance(std::string_view id) {
    g_instance_tag = id.empty() ? std::string() : "[" + std::string(id) + "] ";
}

void log_set_level(int level) {
    g_level.store(level < 0 ? 0 : (level > 4 ? 4 : level));
}
int log_level() {
    return g_level.load(std::memory_order_relaxed);
}

bool log_set_file(const char* path) {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    int old = g_fds[0].exchange(fd);
    if (old != STDERR_FILENO) ::close(old);
    return true;
}

bool log_set_service_file(LogFile file, const char* path) {
    auto i = static_cast<size_t>(file);
    if (i == 0 || i >= kFiles) return false;
    int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    int old = g_fds[i].exchange(fd);
    if (old >= 0) ::close(old);
    g_split.store(true);
    return true;
}

LogFile log_file_of(const char* target) {
    std::string_view t = target ? target : "";
    for (std::string_view p : {"proxy", "ws", "backend", "http", "net"})
        if (t == p) return LogFile::Proxy;
    for (std::string_view h : {"control", "pubsub", "bus", "grip"})
        if (t == h) return LogFile::Handler;
    return LogFile::Main;
}

bool log_start_writer() {
    if (g_writer) return true;
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return false;
    auto* w = new Writer(); // NOLINT: lives until the process ends (see g_writer)
    w->wake_fd = fd;
    w->running.store(true);
    std::thread(writer_main, w).detach();
    g_writer = w;
    return true;
}

void log_stop_writer(int wait_ms) {
    Writer* w = g_writer;
    if (!w) return;
    log_flush_thread();
    w->stopping.store(true);
    wake_writer(*w);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (w->running.load() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // Still running: stuck writing to an output nobody reads. The process ends without it.
}

uint64_t log_dropped_lines() {
    return g_writer ? g_writer->dropped.load(std::memory_order_relaxed) : 0;
}

uint64_t log_error_lines() {
    return g_error_lines.load(std::memory_order_relaxed);
}

void log_vwrite(LogLevel level, const char* target, const char* fmt, va_list ap) {
    if (level == LogLevel::Error) g_error_lines.fetch_add(1, std::memory_order_relaxed);
    char line[4096];
    int n = 0;
    format_prefix(level, target, line, sizeof(line), &n);
    if (n < 0) return;
    size_t len = static_cast<size_t>(n);
    int m = std::vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    if (m > 0)
        len +=
            static_cast<size_t>(m) < sizeof(line) - len - 1 ? static_cast<size_t>(m) : sizeof(line) - len - 2;
    line[len++] = '\n';
    size_t file = g_split.load(std::memory_order_relaxed) ? static_cast<size_t>(log_file_of(target)) : 0;
    if (!t_buffer.on && !g_writer) {
        write_all(file, line, len);
        return;
    }
    t_buffer.data[file].append(line, len);
    if (!t_buffer.on || t_buffer.data[file].size() >= kThreadBufferFlushAt) log_flush_thread();
}

void log_set_thread_buffering(bool on) {
    if (!on) log_flush_thread();
    t_buffer.on = on;
}

void log_flush_thread() {
    for (size_t file = 0; file < kFiles; ++file) {
        std::string& data = t_buffer.data[file];
        if (data.empty()) continue;
        Writer* w = g_writer;
        Channel* ch = w ? channel_for_thread(*w) : nullptr;
        if (!ch || !w->running.load(std::memory_order_relaxed)) {
            write_all(file, data.data(), data.size());
            data.clear();
            continue;
        }
        hand_over(*w, *ch, data, file);
    }
}

void log_write(LogLevel level, const char* target, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, target, fmt, ap);
    va_end(ap);
}

} // namespace gripd::core
