#include "gripd/core/log.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <sys/time.h>
#include <unistd.h>

namespace gripd::core {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::atomic<int> g_fd{STDERR_FILENO};

constexpr size_t kThreadBufferFlushAt = 16 * 1024;
struct ThreadBuffer {
    bool on = false;
    std::string data;
};
thread_local ThreadBuffer t_buffer;

void write_all(const char* p, size_t len) {
    int fd = g_fd.load(std::memory_order_relaxed);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n <= 0) return;
        p += n;
        len -= static_cast<size_t>(n);
    }
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

} // namespace

void log_set_level(int level) {
    g_level.store(level < 0 ? 0 : (level > 4 ? 4 : level));
}
int log_level() {
    return g_level.load(std::memory_order_relaxed);
}

bool log_set_file(const char* path) {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    int old = g_fd.exchange(fd);
    if (old != STDERR_FILENO) ::close(old);
    return true;
}

void log_vwrite(LogLevel level, const char* target, const char* fmt, va_list ap) {
    char line[4096];
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm t{};
    localtime_r(&tv.tv_sec, &t);
    int n = std::snprintf(line, sizeof(line), "[%s] %04d-%02d-%02d %02d:%02d:%02d.%03d [%s] ",
                          level_name(level), t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                          t.tm_sec, static_cast<int>(tv.tv_usec / 1000), target);
    if (n < 0) return;
    size_t len = static_cast<size_t>(n);
    int m = std::vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    if (m > 0)
        len +=
            static_cast<size_t>(m) < sizeof(line) - len - 1 ? static_cast<size_t>(m) : sizeof(line) - len - 2;
    line[len++] = '\n';
    if (t_buffer.on) {
        t_buffer.data.append(line, len);
        if (t_buffer.data.size() >= kThreadBufferFlushAt) log_flush_thread();
        return;
    }
    write_all(line, len);
}

void log_set_thread_buffering(bool on) {
    if (!on) log_flush_thread();
    t_buffer.on = on;
}

void log_flush_thread() {
    if (t_buffer.data.empty()) return;
    write_all(t_buffer.data.data(), t_buffer.data.size());
    t_buffer.data.clear();
}

void log_write(LogLevel level, const char* target, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, target, fmt, ap);
    va_end(ap);
}

} // namespace gripd::core
