#include "server.hpp"

#include "gripd/core/log.hpp"

#include <chrono>
#include <thread>

namespace gripd::app {

struct Server::WorkerContext {
    std::unique_ptr<proxy::ProxyService> proxy;
    std::vector<http::Listener*> listeners; // each frees itself when closed
};

Server::Server(const config::Settings& settings) : settings_(settings) {
    conn_limit_.max = settings.client_maxconn;
}

Server::~Server() { join(); }

bool Server::load_routes(bool initial) {
    config::RoutesResult r = settings_.route_lines.empty() ? config::load_routes_file(settings_.routes_file)
                                                           : config::parse_route_lines(settings_.route_lines);
    for (const auto& w : r.warnings) LOG_WARN("config", "%s", w.c_str());
    for (const auto& e : r.errors) LOG_ERROR("config", "%s", e.c_str());
    if (initial) {
        if (!r.ok() && r.table->empty()) {
            LOG_ERROR("config", "no usable routes");
            return false;
        }
        routes_ = r.table;
        LOG_INFO("config", "loaded %zu routes", routes_->size());
        return true;
    }
    if (!r.ok()) {
        LOG_ERROR("config", "routes not reloaded: keeping the %zu routes in use", routes_->size());
        return true;
    }
    routes_ = r.table;
    for (auto& w : workers_) {
        loop::InboxMessage m;
        m.kind = loop::InboxMessage::Kind::ReloadRoutes;
        m.payload = routes_;
        w->post(main_producer(), std::move(m));
    }
    LOG_INFO("config", "reloaded %zu routes", routes_->size());
    return true;
}

void Server::wire(loop::Worker& w, WorkerContext& ctx) {
    ctx.proxy = std::make_unique<proxy::ProxyService>(w, settings_, routes_);
    for (const auto& addr : settings_.http_ports) {
        std::string error;
        http::Listener* l = http::Listener::open(w, addr, *ctx.proxy, ctx.proxy->conns(), &conn_limit_, &error);
        if (!l) {
            if (!error_claimed_.exchange(true)) first_error_ = error;
            failed_.fetch_add(1);
            continue;
        }
        ctx.listeners.push_back(l);
        if (w.index() == 0) LOG_INFO("main", "listening for HTTP on %s", addr.to_string().c_str());
    }
}

bool Server::start(std::string* error) {
    int count = config::effective_workers(settings_);
    for (int i = 0; i < count; ++i) {
        workers_.push_back(std::make_unique<loop::Worker>(i, count + 1));
        contexts_.push_back(std::make_unique<WorkerContext>());
    }
    std::vector<loop::Worker*> peers;
    for (auto& w : workers_) peers.push_back(w.get());
    for (int i = 0; i < count; ++i) {
        loop::Worker& w = *workers_[static_cast<size_t>(i)];
        WorkerContext& ctx = *contexts_[static_cast<size_t>(i)];
        w.set_peers(peers);
        w.set_shutdown_barrier(&quiesced_, count);
        w.on_start([this, &ctx](loop::Worker& self) {
            wire(self, ctx);
            started_.fetch_add(1);
        });
        w.set_message_handler([&ctx](loop::Worker&, loop::InboxMessage& m) {
            if (m.kind == loop::InboxMessage::Kind::ReloadRoutes)
                ctx.proxy->set_routes(std::static_pointer_cast<const config::RouteTable>(m.payload));
        });
        w.on_stop([&ctx](loop::Worker&) {
            for (auto* l : ctx.listeners) l->close();
            ctx.listeners.clear();
            ctx.proxy->conns().close_idle();
            ctx.proxy->backends().close_idle();
        });
        w.on_close_all([&ctx](loop::Worker&) {
            ctx.proxy->conns().close_all();
            ctx.proxy->backends().close_idle();
        });
    }
    for (auto& w : workers_) w->start();
    // Startup only: wait (bounded) until every worker has opened its listeners.
    for (int i = 0; i < 1000 && started_.load() < count; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (failed_.load() > 0) {
        *error = first_error_;
        return false;
    }
    LOG_INFO("main", "started %d workers", count);
    return true;
}

void Server::request_stop() {
    if (stop_requested_) return;
    stop_requested_ = true;
    uint64_t grace = static_cast<uint64_t>(settings_.shutdown_grace) * 1000;
    for (auto& w : workers_) w->request_stop(grace);
}

void Server::join() {
    for (auto& w : workers_) w->join();
    workers_.clear(); // closes each loop; contexts outlive their worker's handles
    contexts_.clear();
}

void Server::flush_main_overflow() {
    for (auto& w : workers_) w->flush_from(main_producer());
}

} // namespace gripd::app
