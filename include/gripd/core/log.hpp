// Logging in Pushpin's line format: "[LEVEL] YYYY-MM-DD HH:MM:SS.mmm [target] message".
// Thread-safe: each line is formatted into a local buffer.
//
// Where lines go. Before log_start_writer() (startup, tools, unit tests) each line is written with
// one write(2) on the calling thread. Once the writer runs, no thread but the writer ever writes:
// each thread hands its lines, in order, to the writer thread through its own bounded queue (64
// chunks, 256 KiB), and the writer does the blocking write(2)s. A log output that is slow or stalled
// (a pipe nobody reads, a full disk) therefore never blocks an event loop; when a thread's queue is
// full its new lines are dropped and counted (log_dropped_lines(), the gripd_log_lines_dropped_total
// metric), and the writer logs one WARN per second saying how many, once it can write again.
// Why a thread and not uv_fs_write or O_NONBLOCK: libuv's threadpool is shared with DNS lookups
// (a stalled pipe would hold its threads), and O_NONBLOCK on an inherited stderr changes the file
// for every process sharing it and does nothing for regular files.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string_view>

namespace gripd::core {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3, Trace = 4 };

// Sets the maximum level that is written (Pushpin's --loglevel: 0 error .. 4 trace).
void log_set_level(int level);
int log_level();
inline bool log_enabled(LogLevel level) {
    return static_cast<int>(level) <= log_level();
}

// [gripd] log_instance: every line carries `[id] ` after the time (empty id: none). Call before any
// other thread logs (startup).
void log_set_instance(std::string_view id);

// Redirects output to a file (append); returns false if it cannot be opened. Default: stderr.
bool log_set_file(const char* path);

// Pushpin's per-process log files ([runner] logdir, when gripd runs without -m and --logfile): lines of
// the proxy's log targets (proxy, ws, backend, http, net: the access lines) go to the Proxy file
// (pushpin-proxy.log), those of the handler's (control, pubsub, bus, grip: publishes, GRIP
// instructions) to the Handler file (pushpin-handler.log), and the rest (startup, config, memory)
// stays on stderr, as Pushpin's runner prints its own lines there.
enum class LogFile : uint8_t { Main = 0, Proxy = 1, Handler = 2 };
// Opens `path` (append; created 0644) for `file`'s lines (Proxy or Handler). False if it cannot.
// Call before log_start_writer().
bool log_set_service_file(LogFile file, const char* path);
// The file a log target's lines go to once service files are open.
LogFile log_file_of(const char* target);

// Starts the writer thread (call once, after signals are masked: it inherits the mask). False if
// it cannot (then lines are written directly, as before).
bool log_start_writer();
// Hands over this thread's lines and waits up to `wait_ms` for the writer to write everything
// queued; a writer stuck on an output nobody reads is left behind (the process is ending).
void log_stop_writer(int wait_ms);
// Lines dropped because a thread's queue to the writer was full.
uint64_t log_dropped_lines();
// Error lines written so far (all threads): `gripd --check-config` fails if checking logged any.
uint64_t log_error_lines();

// Event-loop threads batch their lines: with buffering on, lines are kept in a per-thread buffer
// (flushed when large) and written by log_flush_thread(), which the worker calls once per loop
// iteration (handed to the writer thread then, see above). This saves a hand-over per access line
// without delaying lines past the iteration.
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
