#include "gripd/pubsub/redis_bus.hpp"

#include "gripd/pubsub/bus_stream.hpp"
#include "gripd/pubsub/cluster_bus.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/loop/worker.hpp"

#include "redis_loop.hpp"
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>

namespace gripd::pubsub {

namespace {
constexpr uint64_t kFirstRetryMs = 500;
constexpr uint64_t kMaxRetryMs = 8000;
// Publishes sent to Redis and not yet answered (hiredis keeps them in its output buffer and its
// reply queue): past either bound a publish fails at once (the API answers 503) instead of
// growing the buffer while Redis is slow.
constexpr size_t kMaxPendingPublishes = 100000;
constexpr size_t kMaxPendingPublishBytes = 64 * 1024 * 1024;

std::string redis_channel(std::string_view channel) {
    std::string c(RedisBus::kChannelPrefix);
    c += channel;
    return c;
}
} // namespace

namespace {
// "host[:port]" with host a name, an IPv4 address or a bracketed IPv6 address.
bool parse_endpoint(std::string_view rest, std::string_view url, BusEndpoint* out, std::string* error) {
    std::string_view host = rest, port;
    if (!rest.empty() && rest.front() == '[') {
        size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            *error = "bus: unclosed [ in the address";
            return false;
        }
        host = rest.substr(1, close - 1);
        std::string_view after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                *error = "bus: bad address";
                return false;
            }
            port = after.substr(1);
        }
    } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty() || host.find('/') != std::string_view::npos ||
        host.find('@') != std::string_view::npos) {
        *error = "bus: bad host in \"" + std::string(url) +
                 "\" (credentials and database numbers are not supported)";
        return false;
    }
    out->host = std::string(host);
    out->port = 6379;
    if (!port.empty()) {
        int p = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || end != port.data() + port.size() || p < 1 || p > 65535) {
            *error = "bus: bad port in \"" + std::string(url) + "\"";
            return false;
        }
        out->port = p;
    }
    return true;
}

// A comma-separated list of endpoints (at most kMaxBusNodes).
bool parse_endpoints(std::string_view list, std::string_view url, std::vector<BusEndpoint>* out,
                     std::string* error) {
    out->clear();
    while (true) {
        size_t comma = list.find(',');
        BusEndpoint e;
        if (!parse_endpoint(list.substr(0, comma), url, &e, error)) return false;
        out->push_back(std::move(e));
        if (out->size() > kMaxBusNodes) {
            *error = "bus: more than " + std::to_string(kMaxBusNodes) + " addresses";
            return false;
        }
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}
} // namespace

bool parse_bus_url(std::string_view url, BusAddress* out, std::string* error) {
    constexpr std::string_view scheme = "redis://";
    constexpr std::string_view sentinel = "redis-sentinel://";
    constexpr std::string_view cluster = "redis-cluster://";
    *out = BusAddress{};
    if (url.substr(0, sentinel.size()) == sentinel) {
        std::string_view rest = url.substr(sentinel.size());
        size_t slash = rest.find('/');
        std::string_view name = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (name.empty() || name.find_first_of("/ \t") != std::string_view::npos) {
            *error = "bus: redis-sentinel://host:port[,host:port...]/<master-name> needs the master's name";
            return false;
        }
        out->kind = BusKind::Sentinel;
        out->master_name = std::string(name);
        return parse_endpoints(rest.substr(0, slash), url, &out->nodes, error);
    }
    if (url.substr(0, cluster.size()) == cluster) {
        std::string_view rest = url.substr(cluster.size());
        if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
        out->kind = BusKind::Cluster;
        return parse_endpoints(rest, url, &out->nodes, error);
    }
    if (url.substr(0, scheme.size()) != scheme) {
        *error = "bus must be redis://host[:port], redis-sentinel://host:port[,...]/<master> or "
                 "redis-cluster://host:port[,...] (got \"" +
                 std::string(url) + "\")";
        return false;
    }
    std::string_view rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    BusEndpoint e;
    if (!parse_endpoint(rest, url, &e, error)) return false;
    out->host = e.host;
    out->port = e.port;
    out->nodes = {std::move(e)};
    return true;
}

struct RedisBus::Link {
    RedisBus* bus = nullptr;
    const char* role = "";
    bool subscriber = false;
    bool watcher = false; // Sentinel: the +switch-master subscription
    redisAsyncContext* ac = nullptr;
    redisAsyncContext* ask_ac = nullptr; // Sentinel: the query for the master in flight
    std::string host;                    // where ac connects
    int port = 0;
    bool connected = false;
    bool reported_down = false; // one log line per outage
    uint64_t retry_ms = kFirstRetryMs;
    loop::TimerEntry retry;
    loop::TimerEntry connect_timeout; // armed while connecting or asking a sentinel
};

struct RedisBus::SentinelAsk {
    RedisBus* bus;
    Link* link;
    size_t index; // in address_.nodes
};

RedisBus::RedisBus(loop::Worker& worker, BusAddress address, Handler& handler)
    : worker_(worker), address_(std::move(address)), handler_(handler) {
    for (auto* slot : {&publisher_, &subscriber_, &watcher_}) {
        *slot = std::make_unique<Link>();
        (*slot)->bus = this;
        (*slot)->retry.init(&worker_.timers(), slot->get(), &RedisBus::on_retry_timer);
        (*slot)->connect_timeout.init(&worker_.timers(), slot->get(), &RedisBus::on_connect_timeout);
    }
    publisher_->role = "publish";
    subscriber_->role = "subscribe";
    subscriber_->subscriber = true;
    watcher_->role = "sentinel watch";
    watcher_->watcher = true;
    if (address_.kind == BusKind::Cluster)
        cluster_ = std::make_unique<ClusterBus>(worker_, address_.nodes, handler_);
    // Each worker starts its watch at another sentinel, so one sentinel does not carry them all.
    if (!address_.nodes.empty()) watch_index_ = worker_.index() % address_.nodes.size();
}

RedisBus::~RedisBus() {
    stop();
}

void RedisBus::start() {
    if (cluster_) return cluster_->start();
    connect(*publisher_);
    connect(*subscriber_);
    if (address_.kind == BusKind::Sentinel) connect(*watcher_);
}

void RedisBus::stop() {
    stopping_ = true;
    if (cluster_) cluster_->stop();
    for (Link* link : {publisher_.get(), subscriber_.get(), watcher_.get()}) {
        if (!link) continue;
        link->retry.disarm();
        link->connect_timeout.disarm();
        if (redisAsyncContext* ac = link->ask_ac) {
            link->ask_ac = nullptr;
            redisAsyncFree(ac); // its pending query is answered (NULL) from here and ends
        }
        if (redisAsyncContext* ac = link->ac) {
            link->ac = nullptr;
            link->connected = false;
            ac->data = nullptr;
            redisAsyncFree(ac); // pending publishes are answered (failed) from here
        }
    }
}

void RedisBus::connect(Link& link) {
    if (stopping_ || link.ac || link.ask_ac) return;
    if (address_.kind != BusKind::Sentinel) {
        connect_to(link, address_.host, address_.port);
        return;
    }
    if (link.watcher) {
        if (link.reported_down) watch_index_ = (watch_index_ + 1) % address_.nodes.size();
        const BusEndpoint& s = address_.nodes[watch_index_];
        connect_to(link, s.host, s.port);
        return;
    }
    // Where the master is now: asked again on every (re)connection, as a failover may have moved it.
    ask_sentinel(link, 0);
}

void RedisBus::ask_sentinel(Link& link, size_t index) {
    if (stopping_) return;
    if (index >= address_.nodes.size()) {
        if (!link.reported_down)
            LOG_WARN("bus", "no sentinel named a master for \"%s\" (%s)", address_.master_name.c_str(),
                     link.role);
        link.reported_down = true;
        retry_later(link);
        return;
    }
    const BusEndpoint& s = address_.nodes[index];
    redisAsyncContext* ac = redisAsyncConnect(s.host.c_str(), s.port);
    if (!ac || ac->err || attach_redis_to_loop(ac, worker_) != REDIS_OK) {
        if (ac) redisAsyncFree(ac);
        ask_sentinel(link, index + 1);
        return;
    }
    auto ask = std::make_unique<SentinelAsk>(SentinelAsk{this, &link, index});
    const char* argv[3] = {"SENTINEL", "get-master-addr-by-name", address_.master_name.c_str()};
    size_t lens[3] = {8, 23, address_.master_name.size()};
    // Sent once connected; on_sentinel_reply runs exactly once: with the answer, or with NULL when
    // the connection fails or is freed.
    if (redisAsyncCommandArgv(ac, &RedisBus::on_sentinel_reply, ask.get(), 3, argv, lens) != REDIS_OK) {
        redisAsyncFree(ac);
        ask_sentinel(link, index + 1);
        return;
    }
    static_cast<void>(ask.release());
    link.ask_ac = ac;
    link.connect_timeout.arm(kBusConnectTimeoutMs);
}

void RedisBus::on_sentinel_reply(redisAsyncContext* ac, void* r, void* privdata) {
    std::unique_ptr<SentinelAsk> ask(static_cast<SentinelAsk*>(privdata));
    Link& link = *ask->link;
    RedisBus* bus = ask->bus;
    if (link.ask_ac == ac) link.ask_ac = nullptr;
    link.connect_timeout.disarm();
    if (bus->stopping_) return;
    auto* reply = static_cast<redisReply*>(r);
    if (reply) redisAsyncDisconnect(ac); // done with this sentinel (freed once the callback returns)
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING) {
        std::string host(reply->element[0]->str, reply->element[0]->len);
        int port = 0;
        std::string_view p(reply->element[1]->str, reply->element[1]->len);
        std::from_chars(p.data(), p.data() + p.size(), port);
        if (port > 0 && port < 65536) {
            bus->address_.host = host;
            bus->address_.port = port;
            bus->connect_to(link, host, port);
            return;
        }
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        LOG_WARN("bus", "sentinel %s:%d refused the master query: %.*s",
                 bus->address_.nodes[ask->index].host.c_str(), bus->address_.nodes[ask->index].port,
                 static_cast<int>(reply->len), reply->str);
    bus->ask_sentinel(link, ask->index + 1);
}

void RedisBus::connect_to(Link& link, const std::string& host, int port) {
    if (stopping_ || link.ac) return;
    link.host = host;
    link.port = port;
    redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
    if (!ac || ac->err) {
        if (!link.reported_down)
            LOG_WARN("bus", "cannot connect to redis://%s:%d (%s): %s", host.c_str(), port, link.role,
                     ac ? ac->errstr : "out of memory");
        link.reported_down = true;
        if (ac) redisAsyncFree(ac);
        retry_later(link);
        return;
    }
    ac->data = &link;
    if (attach_redis_to_loop(ac, worker_) != REDIS_OK) {
        LOG_ERROR("bus", "cannot watch the bus connection on the loop");
        ac->data = nullptr;
        redisAsyncFree(ac);
        retry_later(link);
        return;
    }
    redisAsyncSetConnectCallback(ac, &RedisBus::on_connect_cb);
    redisAsyncSetDisconnectCallback(ac, &RedisBus::on_disconnect_cb);
    link.ac = ac;
    link.connect_timeout.arm(kBusConnectTimeoutMs);
}

void RedisBus::retry_later(Link& link) {
    if (stopping_) return;
    link.retry.arm(link.retry_ms);
    link.retry_ms = link.retry_ms * 2 > kMaxRetryMs ? kMaxRetryMs : link.retry_ms * 2;
}

void RedisBus::on_retry_timer(void* p) {
    auto* link = static_cast<Link*>(p);
    link->bus->connect(*link);
}

void RedisBus::on_connect_timeout(void* p) {
    auto* link = static_cast<Link*>(p);
    RedisBus* bus = link->bus;
    if (redisAsyncContext* ac = link->ask_ac) {
        LOG_WARN("bus", "sentinel %s:%d did not answer within %llu ms (%s): asking the next",
                 ac->c.tcp.host ? ac->c.tcp.host : "?", ac->c.tcp.port,
                 static_cast<unsigned long long>(kBusConnectTimeoutMs), link->role);
        redisAsyncFree(ac); // on_sentinel_reply runs (NULL) and asks the next sentinel
        return;
    }
    redisAsyncContext* ac = link->ac;
    if (!ac || link->connected) return;
    link->ac = nullptr;
    ac->data = nullptr; // no disconnect callback: the retry is armed here
    redisAsyncFree(ac); // a pending ROLE is answered NULL (ignored)
    if (!link->reported_down)
        LOG_WARN("bus", "cannot connect to redis://%s:%d (%s): no answer within %llu ms", link->host.c_str(),
                 link->port, link->role, static_cast<unsigned long long>(kBusConnectTimeoutMs));
    link->reported_down = true;
    bus->retry_later(*link);
}

void RedisBus::on_connect_cb(const redisAsyncContext* ac, int status) {
    auto* link = static_cast<Link*>(ac->data);
    if (!link) return;
    RedisBus* bus = link->bus;
    if (status != REDIS_OK) { // hiredis frees the context after this returns
        link->connect_timeout.disarm();
        link->ac = nullptr;
        if (!link->reported_down)
            LOG_WARN("bus", "cannot connect to redis://%s:%d (%s): %s", link->host.c_str(), link->port,
                     link->role, ac->errstr);
        link->reported_down = true;
        bus->retry_later(*link);
        return;
    }
    bus->on_connected(*link);
}

void RedisBus::on_connected(Link& link) {
    if (address_.kind == BusKind::Sentinel && !link.watcher) {
        // The sentinels' answer may be stale during a failover: use the server only once it says
        // it is the master (a demoted one would take PUBLISHes that reach nobody).
        redisAsyncCommand(link.ac, &RedisBus::on_role_reply, &link, "ROLE");
        return;
    }
    link_ready(link);
}

void RedisBus::on_role_reply(redisAsyncContext* ac, void* r, void* privdata) {
    auto* reply = static_cast<redisReply*>(r);
    auto* link = static_cast<Link*>(privdata);
    if (!reply || !link || link->ac != ac) return; // freed: the disconnect callback retries
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        std::string_view(reply->element[0]->str, reply->element[0]->len) == "master") {
        link->bus->link_ready(*link);
        return;
    }
    LOG_WARN("bus", "redis://%s:%d is not the master of \"%s\" (yet): asking the sentinels again (%s)",
             link->host.c_str(), link->port, link->bus->address_.master_name.c_str(), link->role);
    link->reported_down = true;
    redisAsyncDisconnect(ac); // the disconnect callback retries
}

void RedisBus::link_ready(Link& link) {
    link.connect_timeout.disarm();
    link.connected = true;
    link.retry_ms = kFirstRetryMs;
    if (link.reported_down)
        LOG_INFO("bus", "connected to redis://%s:%d (%s) again", link.host.c_str(), link.port, link.role);
    else if (worker_.index() == 0)
        LOG_INFO("bus", "connected to redis://%s:%d (%s)", link.host.c_str(), link.port, link.role);
    link.reported_down = false;
    if (&link == publisher_.get()) { // EVALSHA once Redis has the script (not on a sentinel watch)
        script_sha_.clear();
        const std::string& script = bus_stream::publish_script(false);
        const char* argv[3] = {"SCRIPT", "LOAD", script.data()};
        size_t lens[3] = {6, 4, script.size()};
        redisAsyncCommandArgv(link.ac, &RedisBus::on_script_loaded, nullptr, 3, argv, lens);
    }
    if (link.subscriber)
        for (const std::string& channel : handler_.bus_channels())
            subscribe(channel);
    if (link.watcher)
        redisAsyncCommand(link.ac, &RedisBus::on_switch_master, &link, "SUBSCRIBE +switch-master");
}

void RedisBus::on_switch_master(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    auto* reply = static_cast<redisReply*>(r);
    auto* link = static_cast<Link*>(privdata);
    if (!reply || !link || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply** e = reply->element;
    if (e[0]->type != REDIS_REPLY_STRING || std::string_view(e[0]->str, e[0]->len) != "message" ||
        e[2]->type != REDIS_REPLY_STRING)
        return;
    // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
    std::string_view text(e[2]->str, e[2]->len);
    std::vector<std::string_view> words;
    while (!text.empty() && words.size() < 6) {
        size_t sp = text.find(' ');
        words.push_back(text.substr(0, sp));
        if (sp == std::string_view::npos) break;
        text.remove_prefix(sp + 1);
    }
    RedisBus* bus = link->bus;
    if (words.size() != 5 || words[0] != bus->address_.master_name) return;
    int port = 0;
    std::from_chars(words[4].data(), words[4].data() + words[4].size(), port);
    std::string host(words[3]);
    if (bus->worker_.index() == 0)
        LOG_INFO("bus", "sentinel: master \"%s\" moved to %s:%d", bus->address_.master_name.c_str(),
                 host.c_str(), port);
    bus->address_.host = host;
    bus->address_.port = port;
    // Links on the old master are dropped; they ask the sentinels again and subscribe again.
    for (Link* l : {bus->publisher_.get(), bus->subscriber_.get()})
        if (l->ac && (l->host != host || l->port != port)) {
            l->reported_down = true;
            redisAsyncDisconnect(l->ac);
        }
}

void RedisBus::on_disconnect_cb(const redisAsyncContext* ac, int status) {
    auto* link = static_cast<Link*>(ac->data);
    if (!link) return;
    link->ac = nullptr; // hiredis frees it after this returns
    link->connected = false;
    link->connect_timeout.disarm();
    RedisBus* bus = link->bus;
    if (bus->stopping_) return;
    if (link == bus->subscriber_.get()) bus->handler_.on_bus_subscriptions_lost();
    LOG_WARN("bus", "lost the connection to redis://%s:%d (%s)%s", link->host.c_str(), link->port, link->role,
             status == REDIS_OK ? "" : ": error");
    link->reported_down = true;
    bus->retry_later(*link);
}

void RedisBus::on_script_loaded(redisAsyncContext* ac, void* r, void* /*privdata*/) {
    auto* link = ac ? static_cast<Link*>(ac->data) : nullptr;
    auto* reply = static_cast<redisReply*>(r);
    if (!link || !reply) return;
    if (reply->type == REDIS_REPLY_STRING)
        link->bus->script_sha_.assign(reply->str, reply->len);
    else if (reply->type == REDIS_REPLY_ERROR)
        LOG_WARN("bus", "redis refused SCRIPT LOAD (publishing with EVAL): %.*s",
                 static_cast<int>(reply->len), reply->str);
}

bool RedisBus::is_connected() const {
    if (cluster_) return cluster_->is_connected();
    return publisher_ && publisher_->connected && subscriber_ && subscriber_->connected;
}

void RedisBus::read_history(const std::string& channel, size_t count,
                            std::function<void(bool, std::vector<StreamEntry>)> done) {
    if (cluster_) return cluster_->read_history(channel, count, std::move(done));
    Link& link = *publisher_;
    if (!link.connected || !link.ac) {
        done(false, {});
        return;
    }
    std::string key = std::string(kStreamPrefix) + channel;
    std::string n = std::to_string(count == 0 ? 1 : count);
    const char* argv[6] = {"XREVRANGE", key.data(), "+", "-", "COUNT", n.data()};
    size_t lens[6] = {9, key.size(), 1, 1, 5, n.size()};
    auto cb = std::make_unique<PendingRead>(PendingRead{std::move(done), count == 0 ? 1 : count});
    if (redisAsyncCommandArgv(link.ac, &RedisBus::on_read_reply, cb.get(), 6, argv, lens) != REDIS_OK) {
        cb->done(false, {});
        return;
    }
    static_cast<void>(cb.release()); // freed in on_read_reply
}

void RedisBus::on_read_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    std::unique_ptr<PendingRead> p(static_cast<PendingRead*>(privdata));
    auto* reply = static_cast<redisReply*>(r);
    std::vector<StreamEntry> out;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            LOG_WARN("bus", "redis refused a history read: %.*s", static_cast<int>(reply->len), reply->str);
        p->done(false, {});
        return;
    }
    // [[id, [field, value, ...]], ...], newest first.
    for (size_t i = reply->elements; i-- > 0;) {
        redisReply* e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        redisReply* id = e->element[0];
        redisReply* fields = e->element[1];
        if (id->type != REDIS_REPLY_STRING || fields->type != REDIS_REPLY_ARRAY || fields->elements < 2)
            continue;
        redisReply* f = fields->element[0];
        redisReply* v = fields->element[1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        bus_stream::expand_entry(std::string_view(id->str, id->len), std::string_view(f->str, f->len),
                                 std::string_view(v->str, v->len), &out);
    }
    // `count` entries hold at least `count` items: the oldest beyond them go.
    if (out.size() > p->count) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(p->count));
    p->done(true, std::move(out));
}

void RedisBus::publish(const std::string& channel, const std::vector<BusItem>& items,
                       std::function<void(bool)> done, const StreamBounds& keep) {
    if (cluster_) return cluster_->publish(channel, items, std::move(done), keep);
    Link& link = *publisher_;
    if (!link.connected || !link.ac) {
        done(false);
        return;
    }
    std::string name = redis_channel(channel);
    size_t bytes = 0;
    for (const BusItem& it : items)
        bytes += name.size() + it.payload.size();
    if (pending_publishes_ >= kMaxPendingPublishes ||
        pending_publish_bytes_ + bytes > kMaxPendingPublishBytes) {
        if (!refusing_) // once per episode: until every waiting publish is answered
            LOG_WARN("bus",
                     "redis is not keeping up: %zu publishes (%zu bytes) wait for it; refusing "
                     "publishes (503) while that many wait",
                     pending_publishes_, pending_publish_bytes_);
        refusing_ = true;
        done(false);
        return;
    }
    std::vector<bus_stream::Call> calls = bus_stream::plan_calls(items, keep);
    if (calls.size() > 1) { // answered once, when every call came back: ok only if all were taken
        struct Join {
            size_t left = 0;
            bool ok = true;
            std::function<void(bool)> done;
        };
        auto join = std::make_shared<Join>();
        join->left = calls.size();
        join->done = std::move(done);
        done = [join](bool ok) {
            join->ok = join->ok && ok;
            if (--join->left == 0) join->done(join->ok);
        };
    }
    if (keep.items == 0) { // no stream: plain PUBLISHes, one per run
        size_t next = 0;   // the first item of each call
        for (const bus_stream::Call& call : calls) {
            std::string message = bus_stream::publish_message(call, items[next].payload);
            next += call.records;
            const char* argv[3] = {"PUBLISH", name.data(), message.data()};
            size_t lens[3] = {7, name.size(), message.size()};
            send_publish(argv, lens, 3, name.size() + message.size(), done);
        }
        return;
    }
    std::vector<std::string> keys = bus_stream::keys(channel, name, false);
    size_t next = 0; // the first item of each call
    for (const bus_stream::Call& call : calls) {
        if (bus_stream::add_outside_script(call, keep))
            send_kept_run(keys, call, bus_stream::publish_message(call, items[next].payload), keep, done);
        else
            send_script(keys, bus_stream::args(call, keep), name.size() + call.run.size(), done);
        next += call.records;
    }
}

void RedisBus::send_script(const std::vector<std::string>& keys, const std::vector<std::string>& args,
                           size_t bytes, std::function<void(bool)> done) {
    const bool sha = !script_sha_.empty();
    const std::string& script = sha ? script_sha_ : bus_stream::publish_script(false);
    std::vector<const char*> argv{sha ? "EVALSHA" : "EVAL", script.data(), "4"};
    std::vector<size_t> lens{sha ? 7u : 4u, script.size(), 1u};
    for (const auto* list : {&keys, &args})
        for (const std::string& a : *list) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
    send_publish(argv.data(), lens.data(), static_cast<int>(argv.size()), bytes, std::move(done));
}

void RedisBus::send_kept_run(const std::vector<std::string>& keys, const bus_stream::Call& call,
                             const std::string& message, const StreamBounds& keep,
                             std::function<void(bool)> done) {
    redisAsyncContext* ac = publisher_->ac;
    const std::string& stream = keys[0];
    const std::string& name = keys[1];
    const std::string& meta = keys[2];
    const std::string& runs = keys[3];
    const std::string value = bus_stream::run_value(call);
    const std::string items = std::to_string(call.items);
    const std::string bytes_kept = std::to_string(call.bytes);
    // The queued commands' own replies (+OK, +QUEUED) are dropped; EXEC's array answers for all.
    const char* multi[1] = {"MULTI"};
    size_t multi_len[1] = {5};
    const char* xadd[5] = {"XADD", stream.data(), "*", "r", call.run.data()};
    size_t xadd_lens[5] = {4, stream.size(), 1, 1, call.run.size()};
    const char* rpush[3] = {"RPUSH", runs.data(), value.data()};
    size_t rpush_lens[3] = {5, runs.size(), value.size()};
    const char* add_n[4] = {"HINCRBY", meta.data(), "n", items.data()};
    size_t add_n_lens[4] = {7, meta.size(), 1, items.size()};
    const char* add_b[4] = {"HINCRBY", meta.data(), "b", bytes_kept.data()};
    size_t add_b_lens[4] = {7, meta.size(), 1, bytes_kept.size()};
    const char* pub[3] = {"PUBLISH", name.data(), message.data()};
    size_t pub_lens[3] = {7, name.size(), message.size()};
    if (redisAsyncCommandArgv(ac, nullptr, nullptr, 1, multi, multi_len) != REDIS_OK ||
        redisAsyncCommandArgv(ac, nullptr, nullptr, 5, xadd, xadd_lens) != REDIS_OK ||
        redisAsyncCommandArgv(ac, nullptr, nullptr, 3, rpush, rpush_lens) != REDIS_OK ||
        redisAsyncCommandArgv(ac, nullptr, nullptr, 4, add_n, add_n_lens) != REDIS_OK ||
        redisAsyncCommandArgv(ac, nullptr, nullptr, 4, add_b, add_b_lens) != REDIS_OK ||
        redisAsyncCommandArgv(ac, nullptr, nullptr, 3, pub, pub_lens) != REDIS_OK) {
        done(false); // only when the context is going away: EXEC never follows, so nothing runs
        return;
    }
    const char* exec[1] = {"EXEC"};
    size_t exec_len[1] = {4};
    const size_t bytes = name.size() + call.run.size() + message.size();
    auto cb = std::make_unique<PendingRun>(PendingRun{{this, bytes, std::move(done)}, keys, keep});
    if (redisAsyncCommandArgv(ac, &RedisBus::on_exec_reply, cb.get(), 1, exec, exec_len) != REDIS_OK) {
        cb->publish.done(false);
        return;
    }
    publish_sent(bytes);
    static_cast<void>(cb.release()); // owned by the pending command; freed in on_exec_reply
}

void RedisBus::on_exec_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    std::unique_ptr<PendingRun> p(static_cast<PendingRun*>(privdata));
    RedisBus* bus = p->publish.bus;
    bus->publish_answered(p->publish.bytes);
    auto* reply = static_cast<redisReply*>(r);
    // [XADD's id, RPUSH's length, the sums n and b, PUBLISH's receivers]; an error (EXECABORT) or
    // an error inside: refused.
    redisReply* err = reply && reply->type == REDIS_REPLY_ERROR ? reply : nullptr;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 5;
    for (size_t i = 0; ok && i < reply->elements; ++i)
        if (reply->element[i]->type == REDIS_REPLY_ERROR) {
            ok = false;
            err = reply->element[i];
        }
    if (err) LOG_WARN("bus", "redis refused a publish: %.*s", static_cast<int>(err->len), err->str);
    if (ok && reply->element[2]->type == REDIS_REPLY_INTEGER &&
        reply->element[3]->type == REDIS_REPLY_INTEGER &&
        bus_stream::over_bounds(reply->element[2]->integer, reply->element[3]->integer, p->keep))
        bus->request_trim(p->keys, p->keep);
    p->publish.done(ok);
}

// Not waited for by the publish: a slice of a publish request waits for its answer before the next
// one goes (PublishQueue), so a second round trip there cost more throughput than the script saved.
// One trim per stream at a time; a run found over the bounds meanwhile asks for one more after it
// (that run may have reached Redis after the trim), so the stream is back within its bounds once
// the last publish's trims have run, whatever their order.
void RedisBus::request_trim(const std::vector<std::string>& keys, const StreamBounds& keep) {
    if (!publisher_->connected || !publisher_->ac) return;
    auto [it, fresh] = trimming_.try_emplace(keys[0], false);
    if (!fresh) {
        it->second = true;
        return;
    }
    send_script(keys, bus_stream::trim_args(keep), 0, [this, keys, keep](bool) {
        auto t = trimming_.find(keys[0]);
        if (t == trimming_.end()) return;
        bool again = t->second;
        trimming_.erase(t);
        if (again && !stopping_) request_trim(keys, keep);
    });
}

// The bound on what waits for Redis (pending_publishes_, pending_publish_bytes_) counts a command
// from when it is queued in hiredis until its reply, whatever its kind.
void RedisBus::publish_sent(size_t bytes) {
    ++pending_publishes_;
    pending_publish_bytes_ += bytes;
}

void RedisBus::publish_answered(size_t bytes) {
    --pending_publishes_;
    pending_publish_bytes_ -= bytes;
    if (pending_publishes_ == 0) refusing_ = false;
}

void RedisBus::send_publish(const char** argv, const size_t* lens, int argc, size_t bytes,
                            std::function<void(bool)> done) {
    auto cb = std::make_unique<PendingPublish>(PendingPublish{this, bytes, std::move(done)});
    if (redisAsyncCommandArgv(publisher_->ac, &RedisBus::on_publish_reply, cb.get(), argc, argv, lens) !=
        REDIS_OK) {
        cb->done(false);
        return;
    }
    publish_sent(bytes);
    static_cast<void>(cb.release()); // owned by the pending command; freed in on_publish_reply
}

void RedisBus::on_publish_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    std::unique_ptr<PendingPublish> p(static_cast<PendingPublish*>(privdata));
    p->bus->publish_answered(p->bytes);
    auto* reply = static_cast<redisReply*>(r);
    bool ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        LOG_WARN("bus", "redis refused a publish: %.*s", static_cast<int>(reply->len), reply->str);
    p->done(ok);
}

void RedisBus::subscribe(const std::string& channel) {
    if (cluster_) return cluster_->subscribe(channel);
    Link& link = *subscriber_;
    if (!link.connected || !link.ac) return; // subscribed to on connecting
    std::string name = redis_channel(channel);
    const char* argv[2] = {"SUBSCRIBE", name.data()};
    size_t lens[2] = {9, name.size()};
    redisAsyncCommandArgv(link.ac, &RedisBus::on_subscription_reply, &link, 2, argv, lens);
}

void RedisBus::unsubscribe(const std::string& channel) {
    if (cluster_) return cluster_->unsubscribe(channel);
    Link& link = *subscriber_;
    if (!link.connected || !link.ac) return;
    std::string name = redis_channel(channel);
    const char* argv[2] = {"UNSUBSCRIBE", name.data()};
    size_t lens[2] = {11, name.size()};
    redisAsyncCommandArgv(link.ac, nullptr, nullptr, 2, argv, lens);
}

void RedisBus::on_subscription_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    auto* reply = static_cast<redisReply*>(r);
    auto* link = static_cast<Link*>(privdata);
    if (!reply || !link || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply** e = reply->element;
    if (e[0]->type == REDIS_REPLY_STRING && std::string_view(e[0]->str, e[0]->len) == "subscribe" &&
        e[1]->type == REDIS_REPLY_STRING) {
        std::string_view name(e[1]->str, e[1]->len);
        if (name.substr(0, kChannelPrefix.size()) == kChannelPrefix)
            link->bus->handler_.on_bus_subscribed(name.substr(kChannelPrefix.size()));
        return;
    }
    if (e[0]->type != REDIS_REPLY_STRING || std::string_view(e[0]->str, e[0]->len) != "message") return;
    if (e[1]->type != REDIS_REPLY_STRING || e[2]->type != REDIS_REPLY_STRING) return;
    std::string_view channel(e[1]->str, e[1]->len);
    if (channel.substr(0, kChannelPrefix.size()) != kChannelPrefix) return;
    channel.remove_prefix(kChannelPrefix.size());
    link->bus->handler_.on_bus_message(channel, std::string_view(e[2]->str, e[2]->len));
}

} // namespace gripd::pubsub
