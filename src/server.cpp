#include "server.hpp"

#include "gripd/control/control_service.hpp"
#include "gripd/control/metrics_service.hpp"
#include "gripd/control/publish_gate.hpp"
#include "gripd/core/log.hpp"
#include "gripd/grip/render.hpp"
#include "gripd/h2/session.hpp"
#include "gripd/net/memory_guard.hpp"
#include "gripd/proxy/grip_dispatch.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/render.hpp"
#include "gripd/sockjs/http_transport.hpp"
#include "gripd/ws/render.hpp"
#include "gripd/ws/ws_service.hpp"
#include "gripd/zmq/spec.hpp"
#include "gripd/zmq/stats_service.hpp"
#include "gripd/zmq/zmq_service.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <thread>
#include <unistd.h>
#include <variant>

namespace gripd::app {

namespace {
constexpr uint64_t kBrokerTickMs = 100; // sequencer expiry resolution

// One lambda per message type for std::visit.
template <class... F> struct Overloaded : F... { using F::operator()...; };
template <class... F> Overloaded(F...) -> Overloaded<F...>;

// Memory ceiling: a client is cut for memory only with at least this much output queued, so one that
// reads (its queue is empty or short between two ticks) is never taken for a slow one.
constexpr size_t kShedMinQueued = 256 * 1024;
constexpr size_t kShedMaxPerTick = 64; // bounds one tick's work; the next tick (100 ms) goes on

// One memory-ceiling tick on a worker: sample RSS (rate-limited across workers) and, while over the
// shedding mark, cut this worker's share of the slowest consumers; then give freed heap back to the
// kernel, which is what RSS (and the OOM killer) sees.
void memory_tick(http::ConnSet& conns, uint64_t now_ms, int workers) {
    auto& guard = net::MemoryGuard::instance();
    guard.sample(now_ms);
    uint64_t excess = guard.excess();
    if (excess == 0) return;
    size_t cut =
        conns.cut_slowest(kShedMinQueued, excess / static_cast<uint64_t>(workers) + 1, kShedMaxPerTick);
    if (cut == 0) return;
    guard.count_shed(cut);
    LOG_WARN("memory", "memory use %llu MiB over the limit's release mark: cut %zu slow clients",
             static_cast<unsigned long long>(excess >> 20), cut);
    net::trim_heap();
}
// [gripd] http2 = false: the HTTP/2 preface gets no HTTP/2 (ALPN never offers h2 then).
std::unique_ptr<http::Exchange> refuse_h2(http::ServerConn& conn, http::Service&) {
    LOG_DEBUG("h2", "client %s: HTTP/2 preface with [gripd] http2 = false: closing", conn.peer().c_str());
    return nullptr;
}
} // namespace

struct Server::WorkerContext {
    std::unique_ptr<pubsub::Broker> broker;
    std::unique_ptr<proxy::ProxyService> proxy;
    std::unique_ptr<proxy::GripDispatch> grip;
    std::unique_ptr<ws::WsService> ws;
    std::unique_ptr<control::ControlService> control;
    std::unique_ptr<zmq::ZmqService> zmq;          // worker 0 only: Pushpin's ZeroMQ inputs
    std::unique_ptr<zmq::StatsService> stats_out;  // worker 0 only: the stats socket (stats_spec)
    std::unique_ptr<stats::Emitter> stats_emitter; // every worker, with stats_spec
    loop::TimerEntry stats_flush;
    // [handler] prometheus_port's and [proxy] prometheus_port's listeners (as Pushpin's two processes).
    std::vector<std::unique_ptr<control::MetricsService>> metrics;
    std::vector<http::Listener*> listeners; // each frees itself when closed
    loop::TimerEntry tick;
    loop::TimerEntry minute; // samples open connections for connection_minute
    loop::TimerEntry memory; // memory ceiling: RSS sample and shedding
    // The worker is stopping: the turn hook arms no periodic timer any more.
    bool stopping = false;
    bool memory_guarded = false; // the memory ceiling is on (memory timer initialised)
    int workers = 1;
    core::Counter connection_minutes;
    // Set (release) once wire() has built everything above: another worker's metrics scrape reads
    // these objects only after seeing it (acquire), never while they are being constructed.
    std::atomic<bool> wired{false};
};

Server::Server(const config::Settings& settings, const config::DebugKnobs& knobs)
    : settings_(settings), knobs_(knobs) {
    conn_limit_.max = settings.client_maxconn;
    control::PublishGate::instance().configure(settings.message_rate, settings.message_hwm);
    if (!settings.https_ports.empty()) {
        // Pushpin's place for them: runner/certs next to the config file.
        std::string dir =
            (settings.config_dir.empty() ? std::string(".") : settings.config_dir) + "/runner/certs";
        net::set_alpn_h2(settings.http2); // before any context is built
        tls_certs_ = std::make_unique<net::TlsCertSource>(dir, config::effective_workers(settings));
        tls_certs_->reload(true);
    }
    // Before any worker starts: each published format is rendered by its owner, once per message.
    pubsub::set_renderers({&grip::render_http_response, &grip::render_http_stream, &ws::render_ws_message});
}

Server::~Server() {
    join();
}

bool Server::load_routes(bool initial) {
    config::RoutesResult r = settings_.route_lines.empty() ? config::load_routes_file(settings_.routes_file)
                                                           : config::parse_route_lines(settings_.route_lines);
    for (const auto& w : r.warnings)
        LOG_WARN("config", "%s", w.c_str());
    for (const auto& e : r.errors)
        LOG_ERROR("config", "%s", e.c_str());
    if (initial) {
        // A route's signing key that cannot be loaded stops startup (Pushpin would silently sign that
        // route's requests with the global key, or not at all).
        if (r.key_failed) return false;
        if (!r.ok() && r.table->empty()) {
            LOG_ERROR("config", "no usable routes");
            return false;
        }
        routes_ = r.table;
        LOG_INFO("config", "loaded %zu routes", routes_->size());
        return true;
    }
    // As Pushpin does, bad lines are skipped and the rest applies; a file with nothing usable (or
    // that cannot be read) leaves the running routes in place.
    if ((!r.ok() && r.table->empty()) || r.key_failed) {
        LOG_ERROR("config", "routes not reloaded: keeping the %zu routes in use", routes_->size());
        return true;
    }
    routes_ = r.table;
    for (auto& w : workers_)
        w->post(main_producer(), loop::InboxMessage{loop::ReloadRoutes{routes_}});
    LOG_INFO("config", "reloaded %zu routes", routes_->size());
    return true;
}

void Server::reload_certs(bool force) {
    if (tls_certs_) tls_certs_->reload(force);
}

std::vector<control::WorkerStatsView> Server::stats_views() const {
    std::vector<control::WorkerStatsView> out;
    for (size_t i = 0; i < contexts_.size(); ++i) {
        const auto& ctx = contexts_[i];
        if (!ctx->wired.load(std::memory_order_acquire)) continue; // still starting

        out.push_back({&ctx->proxy->requests, &ctx->proxy->connections, &ctx->connection_minutes,
                       &ctx->grip->stats(), &ctx->broker->stats(), ctx->ws ? &ctx->ws->stats() : nullptr,
                       &workers_[i]->turn_stats(), ctx->zmq ? &ctx->zmq->stats() : nullptr,
                       ctx->stats_emitter ? &ctx->stats_emitter->stats() : nullptr,
                       ctx->stats_out ? &ctx->stats_out->out_stats() : nullptr, &ctx->grip->gone_stats()});
    }
    return out;
}

void Server::open_metrics(loop::Worker& w, WorkerContext& ctx, const std::string& port,
                          const std::string& prefix, const char* key) {
    if (port.empty()) return;
    config::ListenAddr addr;
    std::string error;
    if (!config::parse_listen_addr(port, &addr, &error)) {
        if (!error_claimed_.exchange(true)) first_error_ = std::string(key) + ": " + error;
        failed_.fetch_add(1);
        return;
    }
    auto& m = ctx.metrics.emplace_back(
        std::make_unique<control::MetricsService>(settings_, prefix, [this] { return stats_views(); }));
    open_listener(w, ctx, addr, *m, m->conns(), "metrics", key);
}

void Server::open_listener(loop::Worker& w, WorkerContext& ctx, const config::ListenAddr& addr,
                           http::Service& service, http::ConnSet& conns, const char* what, const char* keys,
                           bool memory_guarded, const net::TlsCertSource* tls) {
    std::string error;
    http::Listener* l =
        http::Listener::open(w, addr, service, conns, &conn_limit_, &error, memory_guarded, tls);
    if (!l) {
        // The startup error names the config keys to fix, not only the address.
        if (!error_claimed_.exchange(true)) first_error_ = std::string(keys) + ": " + error;
        failed_.fetch_add(1);
        return;
    }
    ctx.listeners.push_back(l);
    if (w.index() == 0) LOG_INFO("main", "listening for %s on %s", what, addr.to_string().c_str());
}

// Unix sockets cannot be bound once per worker as TCP ports are (SO_REUSEPORT): the main thread
// binds each one here and every worker accepts on its own dup() of it (adopt_local_sockets).
bool Server::open_local_sockets(std::string* error) {
    for (const auto& lp : settings_.local_ports) {
        auto file = net::UnixSocketFile::open({lp.path, lp.mode, lp.user, lp.group, taking_over_}, error);
        if (!file) {
            *error = "[runner] local_ports: " + *error;
            return false;
        }
        local_sockets_.push_back(std::move(file));
    }
    return true;
}

void Server::adopt_local_sockets(loop::Worker& w, WorkerContext& ctx) {
    for (const auto& file : local_sockets_) {
        std::string error;
        int fd = file->dup_fd(&error);
        http::Listener* l = fd < 0
                                ? nullptr
                                : http::Listener::adopt(w, fd, net::Transport::Unix, file->path(), *ctx.proxy,
                                                        ctx.proxy->conns(), &conn_limit_, &error, true);
        if (!l) {
            if (!error_claimed_.exchange(true)) first_error_ = "[runner] local_ports: " + error;
            failed_.fetch_add(1);
            continue;
        }
        ctx.listeners.push_back(l);
        if (w.index() == 0) LOG_INFO("main", "listening for HTTP on unix:%s", file->path().c_str());
    }
}

Server::ListenSocket::~ListenSocket() {
    if (fd >= 0) ::close(fd);
}

// TLS ports share one accept queue between the workers rather than one SO_REUSEPORT queue each: a
// handshake costs a worker hundreds of microseconds, and a hash of the client's address can queue
// several on one busy worker while the other sits idle (tls_bench.sh measured the difference
// against nginx, whose workers share one queue). On a shared socket a connection wakes one idle
// worker (Listener::make, EPOLLEXCLUSIVE); plain ports keep their own queues, where a connection
// costs too little for a shared queue to pay.
bool Server::open_tls_sockets(std::string* error) {
    for (const auto& addr : settings_.https_ports) {
        int fd = http::Listener::listen_tcp(addr, error);
        if (fd < 0) {
            *error = "[runner] https_ports: " + *error;
            return false;
        }
        tls_sockets_.push_back(std::make_unique<ListenSocket>(fd));
    }
    return true;
}

void Server::adopt_tls_sockets(loop::Worker& w, WorkerContext& ctx) {
    for (size_t i = 0; i < tls_sockets_.size(); ++i) {
        const config::ListenAddr& addr = settings_.https_ports[i];
        std::string error;
        int fd = ::fcntl(tls_sockets_[i]->fd, F_DUPFD_CLOEXEC, 0);
        http::Listener* l = nullptr;
        if (fd < 0)
            error = "dup: " + std::string(std::strerror(errno));
        else
            l = http::Listener::adopt_tcp(w, fd, addr, *ctx.proxy, ctx.proxy->conns(), &conn_limit_, &error,
                                          true, tls_certs_.get(), true);
        if (!l) {
            if (!error_claimed_.exchange(true)) first_error_ = "[runner] https_ports: " + error;
            failed_.fetch_add(1);
            continue;
        }
        ctx.listeners.push_back(l);
        if (w.index() == 0) LOG_INFO("main", "listening for HTTPS on %s", addr.to_string().c_str());
    }
}

void Server::wire(loop::Worker& w, WorkerContext& ctx) {
    ctx.broker = std::make_unique<pubsub::Broker>(w, peers_, settings_);
    if (bus_) ctx.broker->start_bus(*bus_);
    // Subscription forwarding to the ZeroMQ SUB inputs, which live on worker 0 (ZmqService).
    if (!zmq::split_specs(settings_.push_in_sub_specs).empty()) ctx.broker->set_interest_worker(0);
    ctx.proxy = std::make_unique<proxy::ProxyService>(w, settings_, routes_);
    // HTTP/2 for clients: h2c prior knowledge, ALPN h2 ([gripd] http2 = false: HTTP/1.1 only).
    // Off, an h2c preface is still recognised, and the connection closed without an answer, as
    // pushpin 1.36 does (a factory that declines: ServerConn::start_h2 closes), not answered 505.
    ctx.proxy->h2_factory = settings_.http2 ? &h2::start_session : &refuse_h2;
    ctx.grip = std::make_unique<proxy::GripDispatch>(*ctx.proxy, *ctx.broker, settings_);
    ctx.proxy->set_grip_handler(ctx.grip.get());
    ctx.ws = std::make_unique<ws::WsService>(w, settings_, *ctx.broker, ctx.proxy->backends());
    ctx.proxy->set_ws_handler(ctx.ws.get());
    ctx.proxy->set_workers(peers_);
    for (const auto& addr : settings_.http_ports)
        open_listener(w, ctx, addr, *ctx.proxy, ctx.proxy->conns(), "HTTP", "[runner] http_port (or --port)",
                      true);
    adopt_tls_sockets(w, ctx);
    adopt_local_sockets(w, ctx);

    if (settings_.push_in_http_port > 0) {
        ctx.control = std::make_unique<control::ControlService>(settings_, *ctx.broker, w.uv());
        config::ListenAddr addr{settings_.push_in_http_addr, settings_.push_in_http_port};
        open_listener(w, ctx, addr, *ctx.control, ctx.control->conns(), "the control API",
                      "[handler] push_in_http_addr, push_in_http_port");
    }
    if (w.index() == 0 && zmq::ZmqService::wanted(settings_)) {
        ctx.zmq = std::make_unique<zmq::ZmqService>(settings_, *ctx.broker, w.uv());
        ctx.zmq->set_taking_over(taking_over_);
        // `refresh {cid}`: the sessions live on their workers' loops; each worker looks for the id.
        ctx.zmq->set_conn_refresher([this, from = w.index()](uint64_t token, const std::string& id) {
            for (loop::Worker* to : peers_) {
                loop::InboxMessage m{loop::ConnRefresh{token, id}};
                m.cost = static_cast<uint32_t>(sizeof(loop::InboxMessage) + id.size());
                to->post(from, std::move(m));
            }
            return peers_.size();
        });
        std::string error;
        if (!ctx.zmq->start(&error)) {
            if (!error_claimed_.exchange(true)) first_error_ = error;
            failed_.fetch_add(1);
        }
    }
    wire_stats(w, ctx);
    // Each process of Pushpin's serves its own metrics listener; gripd serves the same metrics on both,
    // each with its own prefix. The same address twice is opened once (the settings warn).
    open_metrics(w, ctx, settings_.handler_prometheus_port, settings_.handler_prometheus_prefix,
                 "[handler] prometheus_port");
    if (settings_.proxy_prometheus_port != settings_.handler_prometheus_port)
        open_metrics(w, ctx, settings_.proxy_prometheus_port, settings_.proxy_prometheus_prefix,
                     "[proxy] prometheus_port");

    // The broker's tick and the connection-minute sample run only while there is something to do
    // (arm_periodic(), on every loop turn): an idle worker's timer wheel stops and its loop sleeps.
    ctx.tick.init(&w.timers(), &ctx, [](void* p) {
        auto* c = static_cast<WorkerContext*>(p);
        c->broker->tick(c->proxy->worker().timers().now());
        arm_periodic(*c);
    });
    ctx.minute.init(&w.timers(), &ctx, [](void* p) {
        auto* c = static_cast<WorkerContext*>(p);
        c->connection_minutes.add(c->proxy->connections.get());
        if (c->proxy->connections.get() > 0) c->minute.arm(60 * 1000);
    });
    w.on_turn([&ctx](loop::Worker&) { arm_periodic(ctx); });
    if (net::MemoryGuard::instance().enabled()) {
        ctx.workers = static_cast<int>(workers_.size());
        ctx.memory.init(&w.timers(), &ctx, [](void* p) {
            auto* c = static_cast<WorkerContext*>(p);
            memory_tick(c->proxy->conns(), c->proxy->worker().timers().now(), c->workers);
            arm_periodic(*c);
        });
        ctx.memory_guarded = true;
    }
}

// The stats socket (stats_spec): worker 0 owns it; every worker's events go there in batches
// through the inbox (bounded: a full inbox drops the batch, counted by the emitter).
void Server::wire_stats(loop::Worker& w, WorkerContext& ctx) {
    if (settings_.stats_spec.empty()) return;
    if (w.index() == 0) {
        ctx.stats_out = std::make_unique<zmq::StatsService>(settings_, w.uv(), [this] {
            zmq::ReportTotals t;
            for (const auto& v : stats_views()) {
                t.received += v.broker->messages_published.get();
                t.sent += v.broker->messages_delivered.get();
                t.response_sent += v.broker->response_delivered.get();
                if (v.zmq) t.received += v.zmq->published.get();
            }
            return t;
        });
        std::string error;
        if (!ctx.stats_out->start(&error)) {
            if (!error_claimed_.exchange(true)) first_error_ = error;
            failed_.fetch_add(1);
        }
        if (ctx.zmq) ctx.zmq->set_connections(ctx.stats_out.get());
    }
    loop::Worker* to = peers_[0];
    int from = w.index();
    WorkerContext* own = &ctx;
    ctx.stats_emitter =
        std::make_unique<stats::Emitter>([to, from, own](std::shared_ptr<stats::EventBatch> b) {
            if (from == 0) {
                if (own->stats_out) own->stats_out->on_batch(*b);
                return true;
            }
            loop::InboxMessage m{loop::StatsEvents{std::move(b)}};
            m.cost = static_cast<uint32_t>(sizeof(loop::InboxMessage) + 128 * stats::Emitter::kBatch);
            return to->post_bounded(from, std::move(m)) != loop::Inbox::Pushed::Full;
        });
    stats::tl_emitter = ctx.stats_emitter.get();
    stats::tl_worker = w.index();
    // Armed by arm_periodic() while events wait, so a worker with nothing to tell sleeps.
    ctx.stats_flush.init(&w.timers(), &ctx,
                         [](void* p) { static_cast<WorkerContext*>(p)->stats_emitter->flush(); });
}

// End of every loop turn: the periodic timers that have work now are armed (a few loads when idle).
void Server::arm_periodic(WorkerContext& ctx) {
    if (ctx.stopping) return;
    uint64_t now = ctx.proxy->worker().timers().now();
    // The tick comes when the broker has work, no sooner than kBrokerTickMs (its resolution);
    // earlier than armed when new work is due sooner (an item now waits, say, during a linger).
    if (std::optional<uint64_t> in = ctx.broker->tick_in(now)) {
        uint64_t delay = std::max(kBrokerTickMs, *in);
        if (!ctx.tick.is_armed() || ctx.tick.deadline() > now + delay) ctx.tick.arm(delay);
    }
    if (!ctx.minute.is_armed() && ctx.proxy->connections.get() > 0) ctx.minute.arm(60 * 1000);
    // RSS is sampled while this worker has connections (clients, publishers): with none, nothing
    // here can grow it or be cut, and the last sample stands.
    if (ctx.memory_guarded && !ctx.memory.is_armed() &&
        (ctx.proxy->conns().size() > 0 || (ctx.control && ctx.control->conns().size() > 0)))
        ctx.memory.arm(net::MemoryGuard::kSampleMs);
    if (ctx.stats_emitter && !ctx.stats_flush.is_armed() && ctx.stats_emitter->has_pending())
        ctx.stats_flush.arm(stats::Emitter::kFlushMs);
}

// A bus host resolved once, here: hiredis resolves names with a blocking call, which must not run on
// a worker's loop when it reconnects.
static bool resolve_bus_host(std::string* host, std::string* error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host->c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) {
        *error = "bus: cannot resolve " + *host + ": " + gai_strerror(rc);
        return false;
    }
    addrinfo* pick = res; // IPv4 first, as for backends
    for (addrinfo* a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr =
        pick->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(pick->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(pick->ai_addr)->sin6_addr);
    inet_ntop(pick->ai_family, addr, text, sizeof(text));
    freeaddrinfo(res);
    *host = text;
    return true;
}

static bool resolve_bus(const std::string& url, pubsub::BusAddress* out, std::string* error) {
    if (!pubsub::parse_bus_url(url, out, error)) return false;
    for (pubsub::BusEndpoint& node : out->nodes)
        if (!resolve_bus_host(&node.host, error)) return false;
    if (out->kind == pubsub::BusKind::Single) out->host = out->nodes.front().host;
    return true;
}

// Every message but Stop (the worker's own) lands here. Each type needs a handler: the generic case
// compiles only if the broker has an on_inbox overload for it.
void Server::dispatch(loop::Worker& self, WorkerContext& ctx, loop::InboxMessage& m) {
    std::visit(Overloaded{
                   [&](loop::ReloadRoutes& r) { ctx.proxy->set_routes(std::move(r.routes)); },
                   [&](loop::ConnRefresh& r) {
                       bool found = ctx.ws && ctx.ws->refresh_connection(r.id);
                       if (m.from >= 0 && static_cast<size_t>(m.from) < peers_.size())
                           peers_[static_cast<size_t>(m.from)]->post(
                               self.index(), loop::InboxMessage{loop::ConnRefreshReply{r.token, found}});
                   },
                   [&](loop::ConnRefreshReply& r) {
                       if (ctx.zmq) ctx.zmq->on_conn_refresh_reply(r.token, r.found);
                   },
                   [&](loop::StatsEvents& s) {
                       if (ctx.stats_out && s.batch) ctx.stats_out->on_batch(*s.batch);
                   },
                   [&](loop::SockjsRelay& r) { ctx.proxy->sockjs().on_relay(m.from, std::move(r.request)); },
                   [&](loop::SockjsAnswer& a) { ctx.proxy->sockjs().on_answer(a.answer); },
                   [&](loop::SockjsGone& g) { ctx.proxy->sockjs().on_gone(m.from, g.token); },
                   [](loop::Stop&) {}, // handled by loop::Worker before this handler runs
                   [&](auto& pubsub_msg) { ctx.broker->on_inbox(m.from, pubsub_msg); },
               },
               m.body);
}

// The worker's hooks: wiring on start (then counting in on the startup latch), the inbox
// dispatch, and what stopping and closing do to this worker's services.
void Server::install_hooks(loop::Worker& w, WorkerContext& ctx, int count) {
    w.set_peers(peers_);
    w.set_shutdown_barrier(&quiesced_, count);
    w.on_start([this, &ctx](loop::Worker& self) {
        if (self.index() == knobs_.hold_worker) {
            // Debug knob GRIPD_DEBUG_HOLD_WORKER: a worker slow or stuck before it counts in.
            LOG_WARN("main", "worker %d: held back %lld ms before starting (GRIPD_DEBUG_HOLD_WORKER)",
                     self.index(), static_cast<long long>(knobs_.hold_for.count()));
            core::log_flush_thread();
            std::this_thread::sleep_for(knobs_.hold_for);
            LOG_INFO("main", "worker %d: hold over, starting", self.index());
        }
        wire(self, ctx);
        ctx.wired.store(true, std::memory_order_release);
        // What wiring logged (listeners) goes out before main, once the latch opens, logs the start.
        core::log_flush_thread();
        std::lock_guard lock(start_mutex_);
        ++started_;
        worker_started_[static_cast<size_t>(self.index())] = true;
        start_cv_.notify_one();
    });
    w.set_message_handler(
        [this, &ctx](loop::Worker& self, loop::InboxMessage& m) { dispatch(self, ctx, m); });
    w.on_stop([&ctx](loop::Worker&) {
        ctx.stopping = true;
        for (auto* l : ctx.listeners)
            l->close_draining();
        ctx.listeners.clear();
        ctx.tick.disarm();
        ctx.minute.disarm();
        ctx.memory.disarm();
        ctx.grip->stop_holds();
        ctx.ws->stop_all();
        ctx.proxy->conns().close_idle();
        if (ctx.control) ctx.control->conns().close_idle();
        if (ctx.zmq) ctx.zmq->stop();
        ctx.stats_flush.disarm();
        if (ctx.stats_out) ctx.stats_out->stop();
        for (auto& m : ctx.metrics)
            m->conns().close_all();
        ctx.proxy->backends().close_idle();
    });
    w.on_close_all([&ctx](loop::Worker&) {
        ctx.broker->stop_bus(); // pending publishes fail (503) before their connections close
        ctx.tick.disarm();
        ctx.minute.disarm();
        ctx.memory.disarm();
        ctx.proxy->conns().close_all();
        if (ctx.control) ctx.control->conns().close_all();
        for (auto& m : ctx.metrics)
            m->conns().close_all();
        ctx.proxy->backends().close_all();
    });
}

Server::StartResult Server::start(std::string* error) {
    if (!settings_.bus.empty()) {
        pubsub::BusAddress bus;
        if (!resolve_bus(settings_.bus, &bus, error)) return StartResult::Failed;
        bus_ = bus;
        LOG_INFO("main", "publishing through the bus at %s (%zu address%s)", settings_.bus.c_str(),
                 bus.nodes.size(), bus.nodes.size() == 1 ? "" : "es");
    }
    if (!open_local_sockets(error) || !open_tls_sockets(error)) return StartResult::Failed;
    int count = config::effective_workers(settings_);
    uint64_t limit = settings_.memory_limit >= 0 ? static_cast<uint64_t>(settings_.memory_limit)
                                                 : net::default_memory_limit();
    net::MemoryGuard::instance().configure(limit);
    if (limit > 0)
        LOG_INFO("main", "memory limit %llu MiB%s", static_cast<unsigned long long>(limit >> 20),
                 settings_.memory_limit < 0 ? " (from the machine)" : "");
    for (int i = 0; i < count; ++i) {
        workers_.push_back(std::make_unique<loop::Worker>(i, count + 1));
        contexts_.push_back(std::make_unique<WorkerContext>());
    }
    for (auto& w : workers_)
        peers_.push_back(w.get());
    for (int i = 0; i < count; ++i) {
        loop::Worker& w = *workers_[static_cast<size_t>(i)];
        WorkerContext& ctx = *contexts_[static_cast<size_t>(i)];
        install_hooks(w, ctx, count);
    }
    worker_started_.assign(static_cast<size_t>(count), false);
    for (auto& w : workers_)
        w->start();
    // Startup only: wait until every worker has opened its listeners. READY is sent after this
    // returns Ok, so a worker that never comes up must fail the start, not be skipped.
    {
        std::chrono::milliseconds timeout = knobs_.start_timeout.value_or(kStartTimeout);
        std::unique_lock lock(start_mutex_);
        if (!start_cv_.wait_for(lock, timeout, [&] { return started_ == count; })) {
            *error = not_started(timeout, count);
            return StartResult::TimedOut;
        }
    }
    if (failed_.load() > 0) {
        *error = first_error_;
        return StartResult::Failed;
    }
    tls_sockets_.clear(); // every worker's listener holds its own dup() now
    for (auto& file : local_sockets_) {
        file->close_fd(); // every worker's listener holds its own dup() now
        if (!file->install(error)) return StartResult::Failed; // an upgrade: take the path over now
    }
    LOG_INFO("main", "started %d workers", count);
    return StartResult::Ok;
}

std::string Server::not_started(std::chrono::milliseconds waited, int count) const {
    std::string missing;
    int n = 0;
    for (size_t i = 0; i < worker_started_.size(); ++i) {
        if (worker_started_[i]) continue;
        missing += (n++ ? ", " : "") + std::to_string(i);
    }
    std::string within = waited.count() % 1000 == 0 ? std::to_string(waited.count() / 1000) + " s"
                                                    : std::to_string(waited.count()) + " ms";
    return (n == 1 ? "worker " : "workers ") + missing + " did not start within " + within + " (" +
           std::to_string(count - n) + " of " + std::to_string(count) + " workers started)";
}

void Server::request_stop() {
    if (stop_requested_) return;
    stop_requested_ = true;
    uint64_t grace = static_cast<uint64_t>(settings_.shutdown_grace) * 1000;
    for (auto& w : workers_)
        w->request_stop(grace);
}

void Server::join() {
    for (auto& w : workers_)
        w->join();
    // Services hold pointers into their worker: free them before the workers (loops are closed).
    for (auto& ctx : contexts_) {
        ctx->tick.disarm();
        ctx->minute.disarm();
        ctx->memory.disarm();
        ctx->ws.reset();
        ctx->metrics.clear();
        ctx->control.reset();
        ctx->zmq.reset();
        ctx->stats_flush.disarm();
        ctx->stats_out.reset();
        ctx->stats_emitter.reset();
        ctx->grip.reset();
        ctx->proxy.reset();
        ctx->broker.reset();
    }
    workers_.clear();
    contexts_.clear();
    local_sockets_.clear(); // closes them and removes their files
}

bool Server::flush_main_overflow() {
    bool left = false;
    for (auto& w : workers_) {
        w->flush_from(main_producer());
        left = left || w->has_overflow_from(main_producer());
    }
    return left;
}

} // namespace gripd::app
