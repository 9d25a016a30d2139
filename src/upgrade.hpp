// Zero-downtime restart and upgrade (SIGUSR2), used by main.cpp only.
//
// The running gripd starts a new copy of itself: the binary at the path it was started from (so an
// upgraded package's new binary), with the same arguments. Every TCP listener is opened with
// SO_REUSEPORT, so the new process binds the same ports while the old one still serves; unix sockets
// are bound beside the old file and renamed over it. The new process reports on a pipe once every
// worker listens (and tells systemd it is the main process now); only then does the old one stop as on
// SIGTERM: it takes what waits in its accept queues, closes its listeners, finishes requests in flight,
// closes held streams and WebSockets (their clients reconnect, to the new process) and exits within
// shutdown_grace. If the new process fails to start, the old one logs why and goes on serving.
#pragma once

#include <functional>
#include <string>
#include <uv.h>
#include <vector>

namespace gripd::app {

// The new process's side: the descriptor to report readiness on (from GRIPD_UPGRADE_READY_FD, which
// is then removed from the environment), or -1 when this process is not an upgrade.
int upgrade_ready_fd_from_env();
// Tells the old process (and systemd: MAINPID) that this one serves now. Closes `fd`.
void report_upgrade_ready(int fd);

// The old process's side: one upgrade at a time, on the main thread's loop.
class Upgrader {
  public:
    // `exe`: argv[0] made absolute at startup (or a bare name, looked up in PATH as the shell did).
    Upgrader(uv_loop_t* loop, std::string exe, std::vector<std::string> args);
    Upgrader(const Upgrader&) = delete;
    Upgrader& operator=(const Upgrader&) = delete;
    ~Upgrader();

    // Starts the new process; `on_ready(pid)` runs once it serves. False (and a logged reason) if an
    // upgrade is under way already or the spawn fails.
    bool start(std::function<void(int)> on_ready);
    // Closes this side's handles (the new process goes on). Before the loop closes.
    void close();

  private:
    static void on_exit(uv_process_t* p, int64_t status, int signal);
    static void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
    void end_pipe();

    uv_loop_t* loop_;
    std::string exe_;
    std::vector<std::string> args_;
    std::function<void(int)> on_ready_;
    uv_process_t* proc_ = nullptr; // heap: freed by its close callback, which may run after this
    uv_pipe_t* pipe_ = nullptr;    // the read end of the readiness pipe; likewise
    int pid_ = 0;
    bool ready_ = false;
    char byte_ = 0;
};

} // namespace gripd::app
