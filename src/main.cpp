// gripd entry point: command line, config, workers, signals. Wiring only; behaviour lives in modules.
#include "gripd/config/cli.hpp"
#include "gripd/config/debug_knobs.hpp"
#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/malloc_policy.hpp"
#include "gripd/core/sd_notify.hpp"
#include "gripd/net/tls_server.hpp"
#include "gripd/zmq/publish_cli.hpp"
#include "server.hpp"
#include "upgrade.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <pthread.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <vector>

using namespace gripd;

namespace {

// At exit, how long the log writer may take to write what is queued (a stalled output is left).
constexpr int kLogDrainMs = 2000;

// What tells a file's versions apart: taken before the file is read, so a write after the read is
// never mistaken for what was read (uv_fs_poll takes its first stat on the thread pool after it
// starts, which on a busy machine can come after a write and then take that write as the start).
struct FileStamp {
    bool exists = false;
    struct stat st {};

    static FileStamp of(const std::string& path) {
        FileStamp f;
        f.exists = ::stat(path.c_str(), &f.st) == 0;
        return f;
    }
    bool operator==(const FileStamp& o) const {
        if (exists != o.exists) return false;
        if (!exists) return true;
        return st.st_ino == o.st.st_ino && st.st_dev == o.st.st_dev && st.st_size == o.st.st_size &&
               st.st_mtim.tv_sec == o.st.st_mtim.tv_sec && st.st_mtim.tv_nsec == o.st.st_mtim.tv_nsec &&
               st.st_ctim.tv_sec == o.st.st_ctim.tv_sec && st.st_ctim.tv_nsec == o.st.st_ctim.tv_nsec;
    }
};

// The main thread's loop: signals and the routes file watch. It talks to workers only through their
// inboxes, as producer number `workers.size()`.
struct MainLoop {
    uv_loop_t loop{};
    uv_signal_t sigint{}, sigterm{}, sighup{}, sigusr2{};
    uv_timer_t routes_watch{};
    std::string routes_file;
    FileStamp routes_stamp;   // the routes file as it was when last read
    uv_timer_t certs_watch{}; // https_ports: polls runner/certs for changed files
    app::Server* server = nullptr;
    app::Upgrader* upgrader = nullptr;
    bool watching = false;
};

// How this process was started: what SIGUSR2 runs again (upgrade.hpp).
struct Invocation {
    std::string exe; // argv[0], made absolute if it is a path (a later chdir cannot change it)
    std::vector<std::string> args;
};

// [runner] logdir, as Pushpin's runner lays it out when run without -m: the directory is created, and
// the proxy's and the handler's lines go to {logdir}/[pN-]pushpin-proxy.log and pushpin-handler.log
// (a relative logdir is relative to the working directory, as in Pushpin). --logfile keeps every line
// in that one file instead. Returns an error message, or "".
std::string open_log_files(const config::Settings& settings, const config::CliOptions& cli) {
    if (settings.logdir.empty() || cli.merge_output || !settings.log_file.empty()) return "";
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::absolute(settings.logdir, ec);
    if (!ec) std::filesystem::create_directories(dir, ec);
    if (ec) return "failed to create directory: " + dir.string() + " (" + ec.message() + ")";
    std::string prefix = cli.id ? "p" + std::to_string(*cli.id) + "-" : "";
    for (auto [file, name] : {std::pair{core::LogFile::Proxy, "pushpin-proxy.log"},
                              std::pair{core::LogFile::Handler, "pushpin-handler.log"}}) {
        std::string path = (dir / (prefix + name)).string();
        if (!core::log_set_service_file(file, path.c_str())) return "cannot open log file " + path;
    }
    return "";
}

// `handover`: a new process serves now (SIGUSR2) and systemd follows it: no STOPPING=1 for the unit.
void stop_all(MainLoop& m, int signum, bool handover = false) {
    if (handover)
        LOG_INFO("main", "handing over to the new process: stopping");
    else
        LOG_INFO("main", "got signal %d: stopping", signum);
    if (!handover) core::sd_notify("STOPPING=1");
    m.server->request_stop();
    m.upgrader->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&m.sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m.sigterm), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m.sighup), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m.sigusr2), nullptr);
    if (m.watching) uv_close(reinterpret_cast<uv_handle_t*>(&m.routes_watch), nullptr);
    if (m.server->has_tls()) uv_close(reinterpret_cast<uv_handle_t*>(&m.certs_watch), nullptr);
}

// SIGINT/SIGTERM stop, SIGHUP reloads routes and certificates, SIGUSR2 upgrades.
void start_signal_handlers(MainLoop& m) {
    for (auto* s : {&m.sigint, &m.sigterm, &m.sighup, &m.sigusr2}) {
        uv_signal_init(&m.loop, s);
        s->data = &m;
    }
    uv_signal_start(
        &m.sigint, [](uv_signal_t* s, int n) { stop_all(*static_cast<MainLoop*>(s->data), n); }, SIGINT);
    uv_signal_start(
        &m.sigterm, [](uv_signal_t* s, int n) { stop_all(*static_cast<MainLoop*>(s->data), n); }, SIGTERM);
    uv_signal_start(
        &m.sighup,
        [](uv_signal_t* s, int) {
            LOG_INFO("main", "got SIGHUP: reloading routes%s",
                     static_cast<MainLoop*>(s->data)->server->has_tls() ? " and TLS certificates" : "");
            core::sd_notify("RELOADING=1");
            static_cast<MainLoop*>(s->data)->server->load_routes(false);
            static_cast<MainLoop*>(s->data)->server->reload_certs(true);
            core::sd_notify("READY=1");
        },
        SIGHUP);
    // Zero-downtime restart and upgrade: start the new process, stop this one once it serves.
    uv_signal_start(
        &m.sigusr2,
        [](uv_signal_t* s, int) {
            auto* mp = static_cast<MainLoop*>(s->data);
            mp->upgrader->start([mp](int) { stop_all(*mp, SIGUSR2, /*handover=*/true); });
        },
        SIGUSR2);
}

// The routes file (unless routes come from the command line) and the TLS certificates, checked
// once a second on this thread.
void start_file_watches(MainLoop& m, const config::Settings& settings, const FileStamp& routes_stamp) {
    if (settings.route_lines.empty() && !settings.routes_file.empty()) {
        // Pushpin reloads the routes file when it changes. A stat a second on this (main) thread,
        // not a worker loop, compared with the stamp taken before the last read; a stat also sees
        // editors that replace the file.
        m.routes_file = settings.routes_file;
        m.routes_stamp = routes_stamp;
        uv_timer_init(&m.loop, &m.routes_watch);
        m.routes_watch.data = &m;
        uv_timer_start(
            &m.routes_watch,
            [](uv_timer_t* t) {
                auto* mp = static_cast<MainLoop*>(t->data);
                FileStamp now = FileStamp::of(mp->routes_file);
                if (now == mp->routes_stamp) return;
                mp->routes_stamp = now;
                if (!now.exists) return; // as before: a missing file keeps the routes in use
                LOG_INFO("main", "routes file changed: reloading");
                mp->server->load_routes(false);
            },
            1000, 1000);
        m.watching = true;
    }
    if (m.server->has_tls()) {
        // Certificates are renewed in place (certbot and the like): a changed, added or removed
        // file is picked up within a second, as Pushpin checks them on use.
        uv_timer_init(&m.loop, &m.certs_watch);
        m.certs_watch.data = &m;
        uv_timer_start(
            &m.certs_watch,
            [](uv_timer_t* t) { static_cast<MainLoop*>(t->data)->server->reload_certs(false); }, 1000, 1000);
    }
}

// Runs the main thread's loop until a stop signal: signal handlers, the routes file watch, the retry
// of inbox overflow. Unblocks the held signals and tells systemd READY once everything is in place.
// `ready_fd`: this process is an upgrade; it tells the old one once it serves.
void run_main_loop(app::Server& server, const config::Settings& settings, const sigset_t& handled,
                   const Invocation& self, int ready_fd, const FileStamp& routes_stamp) {
    MainLoop m;
    m.server = &server;
    uv_loop_init(&m.loop);
    m.loop.data = &m;
    app::Upgrader upgrader(&m.loop, self.exe, self.args);
    m.upgrader = &upgrader;
    start_signal_handlers(m);
    start_file_watches(m, settings, routes_stamp);
    pthread_sigmask(SIG_UNBLOCK, &handled, nullptr); // pending ones are delivered now
    // Every listener is bound and every worker runs: a Type=notify unit is up from here.
    if (ready_fd >= 0) app::report_upgrade_ready(ready_fd); // MAINPID= first, then READY=1
    core::sd_notify("READY=1");

    // Overflowed inbox messages from the main thread are retried on this timer, which runs only
    // while some wait (the check after each loop turn starts it), so an idle main thread sleeps.
    uv_timer_t flush_timer;
    uv_timer_init(&m.loop, &flush_timer);
    flush_timer.data = &server;
    uv_unref(reinterpret_cast<uv_handle_t*>(&flush_timer));
    uv_check_t overflow_check;
    uv_check_init(&m.loop, &overflow_check);
    overflow_check.data = &flush_timer;
    uv_check_start(&overflow_check, [](uv_check_t* h) {
        auto* t = static_cast<uv_timer_t*>(h->data);
        if (uv_is_active(reinterpret_cast<uv_handle_t*>(t))) return;
        if (!static_cast<app::Server*>(t->data)->flush_main_overflow()) return;
        uv_timer_start(
            t,
            [](uv_timer_t* tt) {
                if (!static_cast<app::Server*>(tt->data)->flush_main_overflow()) uv_timer_stop(tt);
            },
            100, 100);
    });
    uv_unref(reinterpret_cast<uv_handle_t*>(&overflow_check));

    uv_run(&m.loop, UV_RUN_DEFAULT); // returns once the signal handles are closed
    uv_close(reinterpret_cast<uv_handle_t*>(&overflow_check), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_timer), nullptr);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    uv_loop_close(&m.loop);
}

// Exits main with `status` once the log lines saying why were written (they go through the writer
// thread from here on).
int exit_after_log(int status) {
    core::log_stop_writer(kLogDrainMs);
    return status;
}

// --help, --version, --print-config-reference and command-line errors: the exit status, or -1 to go on.
int answer_without_running(const config::CliResult& cli) {
    if (!cli.ok()) {
        std::fprintf(stderr, "gripd: %s\n\n%s", cli.error.c_str(), config::cli_usage().c_str());
        return 2;
    }
    if (cli.options.help) {
        std::fputs(config::cli_usage().c_str(), stdout);
        return 0;
    }
    if (cli.options.version) {
        std::printf("gripd %s\n", GRIPD_VERSION);
        return 0;
    }
    if (cli.options.print_config_reference) {
        std::fputs(config::config_reference_markdown().c_str(), stdout);
        return 0;
    }
    return -1;
}

// Log level, log file or logdir files, then the config's notices: the exit status on failure, or -1.
int start_logging(const config::SettingsResult& loaded, const config::CliOptions& options) {
    const config::Settings& settings = loaded.settings;
    core::log_set_level(settings.log_level);
    if (settings.log_instance) core::log_set_instance(settings.instance_id);
    if (!settings.log_file.empty() && !core::log_set_file(settings.log_file.c_str())) {
        std::fprintf(stderr, "gripd: cannot open log file %s\n", settings.log_file.c_str());
        return 2;
    }
    config::log_notices(loaded.notices);
    if (std::string err = open_log_files(settings, options); !err.empty()) {
        LOG_ERROR("main", "%s", err.c_str());
        return 1;
    }
    return -1;
}

// --check-config, as `nginx -t`: loads everything startup loads without opening a port, prints
// each problem (FILE:LINE where there is one) and exits 1 if any is an error. The systemd unit runs
// it before a reload.
int check_config(const config::SettingsResult& loaded) {
    const config::Settings& settings = loaded.settings;
    core::log_set_level(static_cast<int>(core::LogLevel::Warn));
    config::log_notices(loaded.notices);
    config::RoutesResult r = settings.route_lines.empty() ? config::load_routes_file(settings.routes_file)
                                                          : config::parse_route_lines(settings.route_lines);
    for (const auto& w : r.warnings)
        LOG_WARN("config", "%s", w.c_str());
    for (const auto& e : r.errors)
        LOG_ERROR("config", "%s", e.c_str());
    if (r.ok() && r.table->empty()) LOG_ERROR("config", "%s: no routes", settings.routes_file.c_str());
    if (!settings.https_ports.empty()) {
        std::string dir =
            (settings.config_dir.empty() ? std::string(".") : settings.config_dir) + "/runner/certs";
        net::TlsCertSource certs(dir);
        certs.reload(true);
        if (certs.names().empty())
            LOG_ERROR("config", "[runner] https_ports is set but %s holds no usable certificate",
                      dir.c_str());
    }
    if (core::log_error_lines() > 0) {
        std::fprintf(stderr, "gripd: configuration check failed: %s\n", settings.config_file.c_str());
        return 1;
    }
    std::printf("gripd: configuration OK: %s, %zu routes\n", settings.config_file.c_str(), r.table->size());
    return 0;
}

// Holds stop/reload signals until the main loop handles them: a SIGTERM right after the ports open
// must stop gripd cleanly, not kill it. Worker threads inherit the mask and never see them.
sigset_t block_handled_signals() {
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &handled, nullptr);
    return handled;
}

// Loads the routes, starts the workers, runs until a stop: main's exit status.
int serve(const config::Settings& settings, const config::DebugKnobs& knobs, const sigset_t& handled,
          const Invocation& self) {
    LOG_INFO("main", "gripd %s starting: instance %s, pid %d", GRIPD_VERSION, settings.instance_id.c_str(),
             static_cast<int>(::getpid()));
    app::Server server(settings, knobs);
    int ready_fd = app::upgrade_ready_fd_from_env();
    server.set_taking_over(ready_fd >= 0);
    const FileStamp routes_stamp = FileStamp::of(settings.routes_file); // before the read
    if (!server.load_routes(/*initial=*/true)) return exit_after_log(2);
    std::string error;
    switch (server.start(&error)) {
    case app::Server::StartResult::Ok:
        break;
    case app::Server::StartResult::Failed:
        LOG_ERROR("main", "%s", error.c_str());
        server.request_stop();
        server.join();
        core::log_stop_writer(kLogDrainMs);
        return 1;
    case app::Server::StartResult::TimedOut:
        // A worker that did not start may never end either: do not wait for it.
        LOG_ERROR("main", "startup failed: %s; exiting without reporting READY", error.c_str());
        core::log_stop_writer(kLogDrainMs);
        std::fflush(nullptr);
        std::_Exit(1);
    }
    run_main_loop(server, settings, handled, self, ready_fd, routes_stamp);
    server.join();
    LOG_INFO("main", "stopped");
    core::log_stop_writer(kLogDrainMs);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    core::apply_malloc_policy(); // before any thread (core/malloc_policy.hpp)
    // `gripd publish ...`: Pushpin's pushpin-publish (src/zmq/publish_cli.cpp).
    if (argc > 1 && std::string_view(argv[1]) == "publish") return zmq::run_publish_cli(argc - 1, argv + 1);
    config::CliResult cli = config::parse_cli(argc, argv);
    if (int status = answer_without_running(cli); status >= 0) return status;
    config::SettingsResult loaded = config::load_settings(cli.options);
    if (!loaded.ok()) {
        std::fprintf(stderr, "gripd: %s\n", loaded.error.c_str());
        return 2;
    }
    if (cli.options.check_config) return check_config(loaded);
    if (int status = start_logging(loaded, cli.options); status >= 0) return status;
    config::DebugKnobsResult knobs = config::debug_knobs_from_env();
    if (!knobs.ok()) {
        std::fprintf(stderr, "gripd: %s\n", knobs.error.c_str());
        return 2;
    }
    for (const auto& knob : knobs.in_use)
        LOG_WARN("main", "debug knob %s is set (for tests only)", knob.c_str());
    sigset_t handled = block_handled_signals();
    // From here on no loop writes a log line itself (see core/log.hpp).
    if (!core::log_start_writer()) LOG_WARN("main", "no log writer thread: log lines are written directly");
    Invocation self;
    self.exe = argv[0];
    if (self.exe.find('/') != std::string::npos) self.exe = std::filesystem::absolute(self.exe).string();
    self.args.assign(argv + 1, argv + argc);
    return serve(loaded.settings, knobs.knobs, handled, self);
}
