// Logging in Pushpin's line format: "[LEVEL] YYYY-MM-DD HH:MM:SS.mmm [target] message".
// Thread-safe: each line is formatted into a local buffer and written with one write(2).
#pragma once

#include <cstdarg>

namespace gripd::core {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3, Trace = 4 };

// Sets the maximum level that is written (Pushpin's --loglevel: 0 error .. 4 trace).
void log_set_level(int level);
int log_level();
inline bool log_enabled(LogLevel level) {
    return static_cast<int>(level) <= log_level();
}

// Redirects output to a file (append); returns false if it cannot be opened. Default: stderr.
bool log_set_file(const char* path);

// Event-loop threads batch their lines: with buffering on, lines are kept in a per-thread buffer
// (flushed when large) and written by log_flush_thread(), which the worker calls once per loop
// iteration. This saves a write(2) per access line without delaying lines past the iteration.
void log_set_thread_buffering(bool on);
void log_flush_thread();

void log_write(LogLevel level, const char* target, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(LogLevel level, const char* target, const char* fmt, va_list ap);

} // namespace gripd::core

// The level check happens before the arguments are evaluated.
#define GRIPD_LOG(level, target, ...)                                                                        \
    do {                                                                                                     \
        if (::gripd::core::log_enabled(level)) ::gripd::core::log_write(level, target, __VA_ARGS__);         \
    } while (0)
#define LOG_ERROR(target, ...) GRIPD_LOG(::gripd::core::LogLevel::Error, target, __VA_ARGS__)
#define LOG_WARN(target, ...) GRIPD_LOG(::gripd::core::LogLevel::Warn, target, __VA_ARGS__)
#define LOG_INFO(target, ...) GRIPD_LOG(::gripd::core::LogLevel::Info, target, __VA_ARGS__)
#define LOG_DEBUG(target, ...) GRIPD_LOG(::gripd::core::LogLevel::Debug, target, __VA_ARGS__)
#define LOG_TRACE(target, ...) GRIPD_LOG(::gripd::core::LogLevel::Trace, target, __VA_ARGS__)
