// app::Server wires the modules into a running process: W workers, each with its own services and
// listeners, and the routes snapshot they share. Used by main.cpp only.
#pragma once

#include "gripd/config/debug_knobs.hpp"
#include "gripd/config/routes.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/control/metrics_service.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/tls_server.hpp"
#include "gripd/net/unix_socket.hpp"
#include "gripd/proxy/proxy_service.hpp"
#include "gripd/pubsub/redis_bus.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace gripd::app {

class Server {
  public:
    static constexpr std::chrono::seconds kStartTimeout{10};

    // `knobs` (tests only, see debug_knobs.hpp) may shorten the startup latch and hold a worker back.
    explicit Server(const config::Settings& settings, const config::DebugKnobs& knobs = {});
    ~Server();

    // Loads the routes file (or --route lines). Bad lines are logged and skipped, as Pushpin does.
    // At startup a file with nothing usable is fatal; on reload it leaves the running routes in
    // place. Returns false only for a fatal startup error.
    bool load_routes(bool initial);
    // TLS certificates (runner/certs) for https_ports: loads them again when `force` (SIGHUP) or
    // when a file changed (polled by main). No-op without https_ports.
    void reload_certs(bool force);
    bool has_tls() const { return tls_certs_ != nullptr; }
    enum class StartResult : uint8_t {
        Ok,       // every worker runs with its listeners open
        Failed,   // a listener (or the bus) could not be set up: stop and join the workers
        TimedOut, // a worker did not finish starting in time: it may be stuck, do not join it
    };
    // Starts every worker and waits (bounded, kStartTimeout) until each has opened its listeners.
    // On a timeout, *error names the workers that did not start.
    StartResult start(std::string* error);
    // This process replaces a running gripd (an upgrade, see upgrade.hpp): unix sockets in use are
    // taken over instead of refused. Before start().
    void set_taking_over(bool on) { taking_over_ = on; }
    // From the main thread: graceful stop of every worker.
    void request_stop();
    void join();
    // Retries the main thread's overflowed inbox messages; true if some still wait.
    bool flush_main_overflow();

  private:
    struct WorkerContext;
    void wire(loop::Worker& w, WorkerContext& ctx);
    void install_hooks(loop::Worker& w, WorkerContext& ctx, int count);
    void dispatch(loop::Worker& self, WorkerContext& ctx, loop::InboxMessage& m);
    // Opens a Prometheus listener on `port` ("" = none) serving every metric with `prefix`.
    void open_metrics(loop::Worker& w, WorkerContext& ctx, const std::string& port, const std::string& prefix,
                      const char* key);
    void open_listener(loop::Worker& w, WorkerContext& ctx, const config::ListenAddr& addr,
                       http::Service& service, http::ConnSet& conns, const char* what, const char* keys,
                       bool memory_guarded = false, const net::TlsCertSource* tls = nullptr);
    bool open_local_sockets(std::string* error);
    void adopt_local_sockets(loop::Worker& w, WorkerContext& ctx);
    bool open_tls_sockets(std::string* error);
    void adopt_tls_sockets(loop::Worker& w, WorkerContext& ctx);
    std::vector<control::WorkerStatsView> stats_views() const;
    void wire_stats(loop::Worker& w, WorkerContext& ctx);
    static void arm_periodic(WorkerContext& ctx);
    int main_producer() const { return static_cast<int>(workers_.size()); }
    // The latch's timeout message, naming the workers that did not count in (under start_mutex_).
    std::string not_started(std::chrono::milliseconds waited, int count) const;

    const config::Settings& settings_;
    const config::DebugKnobs knobs_;
    std::shared_ptr<const config::RouteTable> routes_;
    std::vector<std::unique_ptr<loop::Worker>> workers_;
    std::vector<loop::Worker*> peers_;
    std::optional<pubsub::BusAddress> bus_; // [gripd] bus, resolved
    // [runner] local_ports: opened once by start(), before the workers; the files go in join().
    std::vector<std::unique_ptr<net::UnixSocketFile>> local_sockets_;
    // [runner] https_ports: one listening socket per address, opened by start() before the workers,
    // each worker accepting on its own dup(); start() closes these once every worker holds its own.
    struct ListenSocket {
        int fd = -1;
        explicit ListenSocket(int f) : fd(f) {}
        ListenSocket(const ListenSocket&) = delete;
        ListenSocket& operator=(const ListenSocket&) = delete;
        ~ListenSocket();
    };
    std::vector<std::unique_ptr<ListenSocket>> tls_sockets_; // by index in settings_.https_ports
    std::vector<std::unique_ptr<WorkerContext>> contexts_;
    http::ConnLimit conn_limit_;
    std::unique_ptr<net::TlsCertSource> tls_certs_; // with https_ports only
    std::atomic<int> quiesced_{0};
    // Startup latch: each worker counts itself in once wired; start() waits on it. Taken once per
    // worker before its loop runs, never on a loop's path.
    std::mutex start_mutex_;
    std::condition_variable start_cv_;
    int started_ = 0;                  // guarded by start_mutex_
    std::vector<bool> worker_started_; // by worker index; guarded by start_mutex_
    std::atomic<int> failed_{0};
    std::string first_error_; // written by the first worker that fails, read after started_ says so
    std::atomic<bool> error_claimed_{false};
    bool stop_requested_ = false;
    bool taking_over_ = false;
};

} // namespace gripd::app
