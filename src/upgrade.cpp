#include "upgrade.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/sd_notify.hpp"
#include "gripd/loop/handle.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

extern char** environ;

namespace gripd::app {

namespace {
constexpr const char* kReadyEnv = "GRIPD_UPGRADE_READY_FD";
constexpr int kChildReadyFd = 3; // the pipe's write end in the new process

// This process's environment for the new one: without an inherited ready fd, with the new one's.
std::vector<std::string> child_environment() {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, kReadyEnv, std::strlen(kReadyEnv)) != 0) env.emplace_back(*e);
    env.push_back(std::string(kReadyEnv) + "=" + std::to_string(kChildReadyFd));
    return env;
}

// The char* array exec wants (valid while `texts` lives unchanged).
std::vector<char*> null_terminated(std::vector<std::string>& texts) {
    std::vector<char*> out;
    out.reserve(texts.size() + 1);
    for (auto& t : texts)
        out.push_back(t.data());
    out.push_back(nullptr);
    return out;
}
} // namespace

int upgrade_ready_fd_from_env() {
    const char* v = std::getenv(kReadyEnv);
    if (!v) return -1;
    char* end = nullptr;
    long fd = std::strtol(v, &end, 10);
    ::unsetenv(kReadyEnv); // not passed on to a later upgrade from this process
    if (*v == '\0' || *end != '\0' || fd < 0 || fd > 1024 || ::fcntl(static_cast<int>(fd), F_GETFD) < 0)
        return -1;
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
}

void report_upgrade_ready(int fd) {
    // systemd (NotifyAccess=all in the unit) follows this process from now on, not the old one.
    core::sd_notify("MAINPID=" + std::to_string(::getpid()));
    char one = '1';
    ssize_t n;
    do
        n = ::write(fd, &one, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        LOG_WARN("main", "upgrade: could not tell the old process we serve: %s", std::strerror(errno));
    ::close(fd);
    LOG_INFO("main", "upgrade: serving; the old process %d stops now", static_cast<int>(::getppid()));
}

Upgrader::Upgrader(uv_loop_t* loop, std::string exe, std::vector<std::string> args)
    : loop_(loop), exe_(std::move(exe)), args_(std::move(args)) {}

Upgrader::~Upgrader() {
    close();
}

void Upgrader::close() {
    end_pipe();
    if (proc_) {
        proc_->data = nullptr; // the new process goes on; only our handle closes
        loop::close_and_delete(proc_);
        proc_ = nullptr;
    }
}

void Upgrader::end_pipe() {
    if (!pipe_) return;
    pipe_->data = nullptr;
    loop::close_and_delete(pipe_);
    pipe_ = nullptr;
}

bool Upgrader::start(std::function<void(int)> on_ready) {
    if (proc_) {
        LOG_WARN("main", "got SIGUSR2: an upgrade is under way already (new process %d); ignored", pid_);
        return false;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        LOG_ERROR("main", "upgrade: pipe: %s; this process goes on", std::strerror(errno));
        return false;
    }
    std::vector<std::string> env_text = child_environment();
    std::vector<char*> env = null_terminated(env_text);
    std::vector<std::string> argv_text{exe_};
    argv_text.insert(argv_text.end(), args_.begin(), args_.end());
    std::vector<char*> argv = null_terminated(argv_text);

    uv_stdio_container_t stdio[4];
    for (int i = 0; i < 3; ++i) {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = i;
    }
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = fds[1];
    uv_process_options_t opts{};
    opts.file = exe_.c_str();
    opts.args = argv.data();
    opts.env = env.data();
    opts.stdio = stdio;
    opts.stdio_count = 4;
    opts.exit_cb = &Upgrader::on_exit;
    // Same process group: a terminal's Ctrl-C (or a supervisor's group kill) reaches both.
    auto* proc = new uv_process_t{};
    proc->data = this;
    int r = uv_spawn(loop_, proc, &opts);
    ::close(fds[1]);
    if (r != 0) {
        LOG_ERROR("main", "upgrade: cannot start %s: %s; this process goes on", exe_.c_str(), uv_strerror(r));
        ::close(fds[0]);
        loop::close_and_delete(proc);
        return false;
    }
    proc_ = proc;
    pid_ = proc->pid;
    ready_ = false;
    on_ready_ = std::move(on_ready);
    pipe_ = new uv_pipe_t{};
    uv_pipe_init(loop_, pipe_, 0);
    pipe_->data = this;
    if (uv_pipe_open(pipe_, fds[0]) != 0 ||
        uv_read_start(reinterpret_cast<uv_stream_t*>(pipe_), &Upgrader::on_alloc, &Upgrader::on_read) != 0) {
        LOG_ERROR("main", "upgrade: cannot watch the new process %d; it is stopped, this process goes on",
                  pid_);
        uv_process_kill(proc_, SIGTERM);
        end_pipe();
        return false;
    }
    LOG_INFO("main", "got SIGUSR2: upgrade: started %s as process %d; serving on until it is ready",
             exe_.c_str(), pid_);
    return true;
}

void Upgrader::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Upgrader*>(h->data);
    *buf = self ? uv_buf_init(&self->byte_, 1) : uv_buf_init(nullptr, 0);
}

void Upgrader::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* self = static_cast<Upgrader*>(s->data);
    if (!self || n == 0) return;
    if (n > 0 && !self->ready_) {
        self->ready_ = true;
        self->end_pipe();
        LOG_INFO("main", "upgrade: the new process %d serves: stopping this one", self->pid_);
        if (self->on_ready_) self->on_ready_(self->pid_);
        return;
    }
    // EOF (or an error) before the byte: the new process exited or gave up; on_exit says how.
    self->end_pipe();
}

void Upgrader::on_exit(uv_process_t* p, int64_t status, int signal) {
    auto* self = static_cast<Upgrader*>(p->data);
    if (!self) return;
    if (!self->ready_)
        LOG_ERROR("main",
                  "upgrade failed: the new process %d exited (status %lld%s%s) before it served; this "
                  "process goes on (its log lines above say why)",
                  self->pid_, static_cast<long long>(status), signal ? ", signal " : "",
                  signal ? std::to_string(signal).c_str() : "");
    self->end_pipe();
    self->proc_ = nullptr;
    loop::close_and_delete(p);
}

} // namespace gripd::app
