#include "gripd/pubsub/cluster_bus.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/handle.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/bus_stream.hpp"

#include "redis_loop.hpp"
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <charconv>
#include <cstring>

namespace gripd::pubsub {

namespace {
constexpr uint64_t kFirstRetryMs = 500;
constexpr uint64_t kMaxRetryMs = 8000;
constexpr uint64_t kRefreshMs = 5000; // the slot map is asked again this often (resharding)
constexpr size_t kMaxNodes = kMaxBusNodes * 4;
constexpr size_t kMaxPending = 100000; // as for the single-server bus (test/LIMITS.md)
constexpr size_t kMaxPendingBytes = 64 * 1024 * 1024;
// A subscriber connection's SSUBSCRIBEs/SUNSUBSCRIBEs libuv has not yet written: past this, the
// channels' wanted states wait (one entry per channel) and go out as the queue drains; a node that
// takes nothing of it for kSubStallMs is dropped and connected again.
constexpr size_t kMaxSubOutBytes = 16 * 1024 * 1024;
constexpr uint64_t kSubStallMs = 5000;
constexpr std::string_view kPrefix = "gripd:{";

uint16_t crc16(std::string_view s) { // CRC16-CCITT (XMODEM), as Redis Cluster uses
    uint16_t crc = 0;
    for (unsigned char c : s) {
        crc ^= static_cast<uint16_t>(c << 8);
        for (int i = 0; i < 8; ++i)
            crc =
                (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
    return crc;
}

std::string_view str(const redisReply* r) {
    return r && r->type == REDIS_REPLY_STRING ? std::string_view(r->str, r->len) : std::string_view{};
}

// "gripd:{<channel>}" -> "<channel>"; empty when the name is not one of ours.
std::string_view channel_of(std::string_view name) {
    if (name.size() < kPrefix.size() + 1 || name.substr(0, kPrefix.size()) != kPrefix || name.back() != '}')
        return {};
    return name.substr(kPrefix.size(), name.size() - kPrefix.size() - 1);
}
} // namespace

uint16_t cluster_key_slot(std::string_view key) {
    size_t open = key.find('{');
    if (open != std::string_view::npos) {
        size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & 16383;
}

std::string ClusterBus::channel_name(std::string_view channel) {
    std::string s(kPrefix);
    s += channel;
    s += '}';
    return s;
}

std::string ClusterBus::stream_key(std::string_view channel) {
    std::string s("gripd:h:{");
    s += channel;
    s += '}';
    return s;
}

// --- the subscriber connection: libuv TCP + hiredis' reply parser ---------------------------------

struct SubConn { // heap; lives until its handle closed
    uv_tcp_t tcp{};
    uv_connect_t req{};
    ClusterBus::Sub* owner = nullptr; // null once the owner let go
    redisReader* reader = nullptr;
    char buf[65536];
    ~SubConn() {
        if (reader) redisReaderFree(reader);
    }
};

struct ClusterBus::Sub {
    Node* node = nullptr;
    SubConn* conn = nullptr;
    bool connected = false;
    bool reported_down = false;
    std::unordered_map<std::string, bool> deferred; // Redis channel -> SSUBSCRIBE (else SUNSUBSCRIBE)
    loop::TimerEntry stall; // armed while commands wait to be written: a node that reads nothing
    uint64_t retry_ms = kFirstRetryMs;
    loop::TimerEntry retry;
    loop::TimerEntry connect_timeout; // armed while the TCP connection is being made
    void connect();
    void drop(const char* why);
    void command(const char* verb, const std::string& name);
    void write(const char* verb, const std::string& name);
    void flush_deferred();
    size_t unwritten() const { return conn ? conn->tcp.write_queue_size : 0; }
    void on_reply(redisReply* r);
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
};

struct ClusterBus::Node {
    ClusterBus* bus = nullptr;
    std::string host;
    int port = 0;
    redisAsyncContext* ac = nullptr;
    bool connected = false;
    bool reported_down = false;
    uint64_t retry_ms = kFirstRetryMs;
    loop::TimerEntry retry;
    loop::TimerEntry connect_timeout; // armed while the connection is being made
    Sub sub;
    void connect();
    void give_up_connecting();
};

struct ClusterBus::Pending {
    ClusterBus* bus;
    std::string channel;
    std::vector<std::string> command; // kept for a MOVED/ASK resend
    size_t bytes = 0;                 // counted in pending_bytes_
    bool read = false;                // XREVRANGE (count) instead of a publish
    size_t count = 0;
    bool redirected = false; // MOVED/ASK followed once already
    std::function<void(bool)> done;
    std::function<void(bool, std::vector<RedisBus::StreamEntry>)> read_done;
    void fail() {
        if (read)
            read_done(false, {});
        else
            done(false);
    }
};

namespace {
constexpr auto on_close = &loop::delete_owner_on_close<SubConn>;

struct WriteReq {
    uv_write_t req;
    char* cmd;
    size_t len;
    ClusterBus::Sub* sub; // may be stale once the conn was dropped: checked through conn->owner
    SubConn* conn;
};
} // namespace

void ClusterBus::Sub::connect() {
    ClusterBus* bus = node->bus;
    if (bus->stopping_ || conn) return;
    sockaddr_storage addr{};
    if (uv_ip4_addr(node->host.c_str(), node->port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(node->host.c_str(), node->port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
        drop("bad address");
        return;
    }
    auto c = std::make_unique<SubConn>();
    c->reader = redisReaderCreate();
    c->owner = this;
    c->tcp.data = c.get();
    c->req.data = c.get();
    if (!c->reader || uv_tcp_init(bus->worker_.uv(), &c->tcp) != 0) {
        drop("out of memory");
        return;
    }
    SubConn* raw = c.release(); // owned by its handle from here: freed in on_close
    if (uv_tcp_connect(&raw->req, &raw->tcp, reinterpret_cast<sockaddr*>(&addr),
                       [](uv_connect_t* req, int status) {
                           auto* conn = static_cast<SubConn*>(req->data);
                           Sub* self = conn->owner;
                           if (!self) return;
                           self->connect_timeout.disarm();
                           if (status != 0) {
                               self->drop(uv_strerror(status));
                               return;
                           }
                           uv_read_start(
                               reinterpret_cast<uv_stream_t*>(&conn->tcp),
                               [](uv_handle_t* h, size_t, uv_buf_t* b) {
                                   auto* cn = static_cast<SubConn*>(h->data);
                                   *b = uv_buf_init(cn->buf, sizeof(cn->buf));
                               },
                               &Sub::on_read);
                           self->connected = true;
                           self->retry_ms = kFirstRetryMs;
                           if (self->reported_down)
                               LOG_INFO("bus", "cluster node %s:%d (subscribe) connected again",
                                        self->node->host.c_str(), self->node->port);
                           self->reported_down = false;
                           ClusterBus* b = self->node->bus;
                           for (const std::string& ch : b->handler_.bus_channels())
                               if (b->node_for(channel_name(ch)) == self->node) b->subscribe(ch);
                       }) != 0) {
        raw->owner = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&raw->tcp), on_close);
        drop("cannot connect");
        return;
    }
    conn = raw;
    connect_timeout.arm(kBusConnectTimeoutMs);
}

void ClusterBus::Sub::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* /*buf*/) {
    auto* cn = static_cast<SubConn*>(s->data);
    Sub* sub = cn->owner;
    if (!sub) return;
    if (n < 0) {
        sub->drop(n == UV_EOF ? "closed by redis" : uv_strerror(static_cast<int>(n)));
        return;
    }
    if (redisReaderFeed(cn->reader, cn->buf, static_cast<size_t>(n)) != REDIS_OK) {
        sub->drop("bad reply");
        return;
    }
    while (cn->owner == sub) {
        void* r = nullptr;
        if (redisReaderGetReply(cn->reader, &r) != REDIS_OK) {
            sub->drop("bad reply");
            return;
        }
        if (!r) break;
        sub->on_reply(static_cast<redisReply*>(r));
        freeReplyObject(r);
    }
}

void ClusterBus::Sub::drop(const char* why) {
    ClusterBus* bus = node->bus;
    connect_timeout.disarm();
    if (conn) {
        conn->owner = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), on_close);
        conn = nullptr;
    }
    bool was = connected;
    connected = false;
    deferred.clear();
    stall.disarm();
    for (auto it = bus->subscribed_on_.begin(); it != bus->subscribed_on_.end();) {
        if (it->second != node) {
            ++it;
            continue;
        }
        if (!bus->stopping_) bus->handler_.on_bus_unsubscribed(it->first);
        it = bus->subscribed_on_.erase(it);
    }
    if (bus->stopping_) return;
    if (!reported_down)
        LOG_WARN("bus", "cluster node %s:%d (subscribe): %s", node->host.c_str(), node->port, why);
    reported_down = true;
    retry.arm(retry_ms);
    retry_ms = retry_ms * 2 > kMaxRetryMs ? kMaxRetryMs : retry_ms * 2;
    if (was) bus->refresh(); // the slots may have moved with the node
}

void ClusterBus::Sub::command(const char* verb, const std::string& name) {
    if (!connected || !conn) return;
    // Once commands wait, every later one waits too (a channel's commands keep their order): the
    // last wanted state per channel is what goes out.
    if (!deferred.empty() || unwritten() > kMaxSubOutBytes) {
        if (deferred.empty()) stall.arm(kSubStallMs);
        deferred.insert_or_assign(name, std::strcmp(verb, "SSUBSCRIBE") == 0);
        return;
    }
    write(verb, name);
}

// Sends what waits while the queue is under half the bound (from a write callback: progress).
void ClusterBus::Sub::flush_deferred() {
    if (deferred.empty() || !conn) return;
    stall.arm(kSubStallMs); // the node took something
    while (!deferred.empty() && unwritten() < kMaxSubOutBytes / 2 && conn) {
        auto it = deferred.begin();
        std::string name = it->first;
        bool on = it->second;
        deferred.erase(it);
        write(on ? "SSUBSCRIBE" : "SUNSUBSCRIBE", name);
    }
    if (deferred.empty()) stall.disarm();
}

void ClusterBus::Sub::write(const char* verb, const std::string& name) {
    const char* argv[2] = {verb, name.data()};
    size_t lens[2] = {strlen(verb), name.size()};
    char* cmd = nullptr;
    long long len = redisFormatCommandArgv(&cmd, 2, argv, lens);
    if (len < 0) return;
    auto* w = new WriteReq{uv_write_t{}, cmd, static_cast<size_t>(len), this, conn};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(cmd, static_cast<unsigned>(len));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&conn->tcp), &b, 1, [](uv_write_t* req, int status) {
            auto* wr = static_cast<WriteReq*>(req->data);
            Sub* sub = wr->conn->owner == wr->sub ? wr->sub : nullptr;
            redisFreeCommand(wr->cmd);
            delete wr;
            if (sub && status == 0) sub->flush_deferred();
        }) != 0) {
        redisFreeCommand(cmd);
        delete w;
        drop("write failed");
    }
}

void ClusterBus::Sub::on_reply(redisReply* r) {
    ClusterBus* bus = node->bus;
    if (r->type == REDIS_REPLY_ERROR) {
        // MOVED on an SSUBSCRIBE: the map is stale; the refresh subscribes it where it belongs.
        LOG_DEBUG("bus", "cluster node %s:%d (subscribe): %.*s", node->host.c_str(), node->port,
                  static_cast<int>(r->len), r->str);
        bus->refresh();
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    std::string_view kind = str(r->element[0]);
    std::string_view ch = channel_of(str(r->element[1]));
    if (ch.empty()) return;
    if (kind == "smessage") {
        bus->handler_.on_bus_message(ch, str(r->element[2]));
    } else if (kind == "ssubscribe") {
        bus->handler_.on_bus_subscribed(ch);
    } else if (kind == "sunsubscribe") {
        // Also pushed by Redis when the channel's slot leaves this node (resharding).
        auto it = bus->subscribed_on_.find(std::string(ch));
        if (it != bus->subscribed_on_.end() && it->second == node) {
            bus->handler_.on_bus_unsubscribed(it->first);
            bus->subscribed_on_.erase(it);
            bus->refresh();
        }
    }
}

// --- command connections (hiredis) -------------------------------------------------------------------

void ClusterBus::Node::connect() {
    if (bus->stopping_ || ac) return;
    redisAsyncContext* c = redisAsyncConnect(host.c_str(), port);
    if (!c || c->err || attach_redis_to_loop(c, bus->worker_) != REDIS_OK) {
        if (c) redisAsyncFree(c);
        retry.arm(retry_ms);
        retry_ms = retry_ms * 2 > kMaxRetryMs ? kMaxRetryMs : retry_ms * 2;
        return;
    }
    c->data = this;
    redisAsyncSetConnectCallback(c, [](const redisAsyncContext* a, int status) {
        auto* n = static_cast<Node*>(a->data);
        if (!n) return;
        n->connect_timeout.disarm();
        if (status != REDIS_OK) {
            n->ac = nullptr;
            if (!n->reported_down)
                LOG_WARN("bus", "cannot connect to cluster node %s:%d: %s", n->host.c_str(), n->port,
                         a->errstr);
            n->reported_down = true;
            n->retry.arm(n->retry_ms);
            n->retry_ms = n->retry_ms * 2 > kMaxRetryMs ? kMaxRetryMs : n->retry_ms * 2;
            return;
        }
        n->connected = true;
        n->retry_ms = kFirstRetryMs;
        if (n->reported_down)
            LOG_INFO("bus", "cluster node %s:%d connected again", n->host.c_str(), n->port);
        else if (n->bus->worker_.index() == 0)
            LOG_INFO("bus", "connected to cluster node %s:%d", n->host.c_str(), n->port);
        n->reported_down = false;
        n->bus->refresh();
    });
    redisAsyncSetDisconnectCallback(c, [](const redisAsyncContext* a, int) {
        auto* n = static_cast<Node*>(a->data);
        if (!n) return;
        n->ac = nullptr;
        n->connected = false;
        if (n->bus->stopping_) return;
        LOG_WARN("bus", "lost the connection to cluster node %s:%d", n->host.c_str(), n->port);
        n->reported_down = true;
        n->retry.arm(n->retry_ms);
        n->bus->refresh();
    });
    ac = c;
    connect_timeout.arm(kBusConnectTimeoutMs);
}

// No connection within kBusConnectTimeoutMs (an address that drops packets): freed, tried again later.
void ClusterBus::Node::give_up_connecting() {
    redisAsyncContext* c = ac;
    if (!c || connected) return;
    ac = nullptr;
    c->data = nullptr;
    redisAsyncFree(c); // commands queued for it fail (503) from here
    if (!reported_down)
        LOG_WARN("bus", "cannot connect to cluster node %s:%d: no answer within %llu ms", host.c_str(), port,
                 static_cast<unsigned long long>(kBusConnectTimeoutMs));
    reported_down = true;
    retry.arm(retry_ms);
    retry_ms = retry_ms * 2 > kMaxRetryMs ? kMaxRetryMs : retry_ms * 2;
}

ClusterBus::ClusterBus(loop::Worker& worker, std::vector<BusEndpoint> seeds, RedisBus::Handler& handler)
    : worker_(worker), seeds_(std::move(seeds)), handler_(handler) {
    tick_.init(&worker_.timers(), this, &ClusterBus::on_tick);
}

ClusterBus::~ClusterBus() {
    stop();
}

void ClusterBus::start() {
    for (const BusEndpoint& s : seeds_)
        node_at(s.host, s.port);
    tick_.arm(kRefreshMs);
}

void ClusterBus::stop() {
    stopping_ = true;
    tick_.disarm();
    for (auto& n : nodes_) {
        n->retry.disarm();
        n->connect_timeout.disarm();
        n->sub.retry.disarm();
        n->sub.drop("stopping");
        if (redisAsyncContext* c = n->ac) {
            n->ac = nullptr;
            n->connected = false;
            c->data = nullptr;
            redisAsyncFree(c); // pending commands fail (503) from here
        }
    }
}

void ClusterBus::on_tick(void* self) {
    auto* bus = static_cast<ClusterBus*>(self);
    bus->refresh();
    bus->tick_.arm(kRefreshMs);
}

ClusterBus::Node* ClusterBus::node_at(const std::string& host, int port) {
    for (auto& n : nodes_)
        if (n->host == host && n->port == port) return n.get();
    if (nodes_.size() >= kMaxNodes || stopping_) return nullptr;
    auto n = std::make_unique<Node>();
    n->bus = this;
    n->host = host;
    n->port = port;
    n->sub.node = n.get();
    n->retry.init(&worker_.timers(), n.get(), [](void* p) { static_cast<Node*>(p)->connect(); });
    n->sub.retry.init(&worker_.timers(), &n->sub, [](void* p) { static_cast<Sub*>(p)->connect(); });
    n->sub.stall.init(&worker_.timers(), &n->sub,
                      [](void* p) { static_cast<Sub*>(p)->drop("redis does not read its subscriptions"); });
    n->connect_timeout.init(&worker_.timers(), n.get(),
                            [](void* p) { static_cast<Node*>(p)->give_up_connecting(); });
    n->sub.connect_timeout.init(&worker_.timers(), &n->sub, [](void* p) {
        auto* s = static_cast<Sub*>(p);
        if (s->conn && !s->connected) s->drop("no answer within the connect timeout");
    });
    Node* raw = n.get();
    nodes_.push_back(std::move(n));
    raw->connect();
    return raw;
}

ClusterBus::Node* ClusterBus::node_for(std::string_view key) {
    uint16_t i = slots_[cluster_key_slot(key)];
    return i ? nodes_[i - 1].get() : nullptr;
}

void ClusterBus::refresh() {
    if (refreshing_ || stopping_) return;
    for (auto& n : nodes_) {
        if (!n->connected || !n->ac) continue;
        if (redisAsyncCommand(n->ac, &ClusterBus::on_slots_reply, n.get(), "CLUSTER SLOTS") == REDIS_OK) {
            refreshing_ = true;
            return;
        }
    }
}

void ClusterBus::on_slots_reply(redisAsyncContext* /*ac*/, void* reply, void* privdata) {
    auto* from = static_cast<Node*>(privdata);
    ClusterBus* bus = from->bus;
    bus->refreshing_ = false;
    if (bus->stopping_) return;
    bus->on_slots(*from, reply);
}

void ClusterBus::on_slots(Node& from, void* rp) {
    auto* r = static_cast<redisReply*>(rp);
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    std::array<uint16_t, 16384> map{};
    for (size_t i = 0; i < r->elements; ++i) {
        redisReply* e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2 || e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        std::string host(str(e->element[2]->element[0]));
        if (host.empty() || host == "?") host = from.host; // "the node you asked"
        Node* n = node_at(host, static_cast<int>(e->element[2]->element[1]->integer));
        if (!n || lo < 0 || hi > 16383 || lo > hi) continue;
        size_t idx = 0;
        while (nodes_[idx].get() != n)
            ++idx;
        for (long long s = lo; s <= hi; ++s)
            map[static_cast<size_t>(s)] = static_cast<uint16_t>(idx + 1);
    }
    if (map == slots_) return;
    slots_ = map;
    LOG_INFO("bus", "cluster slot map changed (%zu nodes known)", nodes_.size());
    for (auto& n : nodes_) {
        bool used = false;
        for (uint16_t s : slots_)
            if (s && nodes_[s - 1].get() == n.get()) {
                used = true;
                break;
            }
        if (used && !n->sub.conn && !n->sub.retry.is_armed()) n->sub.connect(); // one per master in use
    }
    resubscribe_moved();
}

void ClusterBus::resubscribe_moved() {
    for (auto it = subscribed_on_.begin(); it != subscribed_on_.end();) {
        std::string name = channel_name(it->first);
        if (node_for(name) != it->second) {
            it->second->sub.command("SUNSUBSCRIBE", name);
            handler_.on_bus_unsubscribed(it->first);
            it = subscribed_on_.erase(it);
        } else {
            ++it;
        }
    }
    for (const std::string& ch : handler_.bus_channels())
        if (!subscribed_on_.count(ch)) subscribe(ch);
}

bool ClusterBus::is_connected() const {
    bool any = false;
    for (uint16_t s : slots_) {
        if (!s) return false;
        const Node& n = *nodes_[s - 1];
        if (!n.connected || !n.sub.connected) return false;
        any = true;
    }
    return any;
}

void ClusterBus::subscribe(const std::string& channel) {
    std::string name = channel_name(channel);
    Node* n = node_for(name);
    if (!n || !n->sub.connected) return; // subscribed to once the map or the connection is there
    auto [it, fresh] = subscribed_on_.emplace(channel, n);
    if (!fresh) {
        if (it->second == n) return;
        it->second->sub.command("SUNSUBSCRIBE", name);
        it->second = n;
    }
    n->sub.command("SSUBSCRIBE", name);
}

void ClusterBus::unsubscribe(const std::string& channel) {
    auto it = subscribed_on_.find(channel);
    if (it == subscribed_on_.end()) return;
    Node* n = it->second;
    subscribed_on_.erase(it);
    n->sub.command("SUNSUBSCRIBE", channel_name(channel));
}

void ClusterBus::publish(const std::string& channel, const std::vector<RedisBus::BusItem>& items,
                         std::function<void(bool)> done, const RedisBus::StreamBounds& keep) {
    std::string name = channel_name(channel);
    Node* n = node_for(name);
    size_t bytes = 0;
    for (const RedisBus::BusItem& it : items)
        bytes += name.size() + it.payload.size();
    if (!n || !n->connected || pending_ >= kMaxPending || pending_bytes_ + bytes > kMaxPendingBytes) {
        done(false);
        return;
    }
    std::vector<std::vector<std::string>> commands;
    if (keep.items == 0) { // no stream: plain SPUBLISHes, one per run
        size_t next = 0;   // the first item of each call
        for (const bus_stream::Call& call : bus_stream::plan_calls(items, keep)) {
            commands.push_back({"SPUBLISH", name, bus_stream::publish_message(call, items[next].payload)});
            next += call.records;
        }
    } else {
        std::vector<std::string> keys = bus_stream::keys(channel, name, true);
        for (const bus_stream::Call& call : bus_stream::plan_calls(items, keep)) {
            std::vector<std::string> c{"EVAL", bus_stream::publish_script(true), "4"};
            c.insert(c.end(), keys.begin(), keys.end());
            std::vector<std::string> args = bus_stream::args(call, keep);
            c.insert(c.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
            commands.push_back(std::move(c));
        }
    }
    if (commands.size() > 1) { // answered once, when every call came back: ok only if all were taken
        struct Join {
            size_t left = 0;
            bool ok = true;
            std::function<void(bool)> done;
        };
        auto join = std::make_shared<Join>();
        join->left = commands.size();
        join->done = std::move(done);
        done = [join](bool ok) {
            join->ok = join->ok && ok;
            if (--join->left == 0) join->done(join->ok);
        };
    }
    for (auto& c : commands) {
        auto p = std::make_unique<Pending>();
        p->bus = this;
        p->channel = channel;
        p->bytes = name.size() + c.back().size();
        p->command = std::move(c);
        p->done = done;
        send(*n, std::move(p), false);
    }
}

void ClusterBus::read_history(const std::string& channel, size_t count,
                              std::function<void(bool, std::vector<RedisBus::StreamEntry>)> done) {
    Node* n = node_for(stream_key(channel));
    if (!n || !n->connected || pending_ >= kMaxPending) {
        done(false, {});
        return;
    }
    auto p = std::make_unique<Pending>();
    p->bus = this;
    p->channel = channel;
    p->read = true;
    p->count = count == 0 ? 1 : count;
    p->command = {"XREVRANGE", stream_key(channel), "+", "-", "COUNT", std::to_string(p->count)};
    p->read_done = std::move(done);
    send(*n, std::move(p), false);
}

void ClusterBus::send(Node& node, std::unique_ptr<Pending> p, bool asking) {
    if (!node.connected || !node.ac) {
        p->fail();
        return;
    }
    if (asking) redisAsyncCommand(node.ac, nullptr, nullptr, "ASKING");
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : p->command) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    int rc = redisAsyncCommandArgv(node.ac, &ClusterBus::on_reply, p.get(), static_cast<int>(argv.size()),
                                   argv.data(), lens.data());
    if (rc != REDIS_OK) {
        p->fail();
        return;
    }
    ++pending_;
    pending_bytes_ += p->bytes;
    static_cast<void>(p.release()); // freed in on_reply
}

void ClusterBus::on_reply(redisAsyncContext* /*ac*/, void* rp, void* privdata) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(privdata));
    ClusterBus* bus = p->bus;
    --bus->pending_;
    bus->pending_bytes_ -= p->bytes;
    auto* r = static_cast<redisReply*>(rp);
    if (r && r->type == REDIS_REPLY_ERROR && !bus->stopping_) {
        std::string_view err(r->str, r->len);
        bool moved = err.substr(0, 6) == "MOVED ", ask = err.substr(0, 4) == "ASK ";
        if ((moved || ask) && !p->redirected) {
            // "MOVED <slot> <host>:<port>": send it there once; MOVED also means the map is stale.
            std::string_view rest = err.substr(moved ? 6 : 4);
            size_t sp = rest.find(' ');
            std::string_view addr = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
            size_t colon = addr.rfind(':');
            int port = 0;
            if (colon != std::string_view::npos)
                std::from_chars(addr.data() + colon + 1, addr.data() + addr.size(), port);
            Node* to = port > 0 ? bus->node_at(std::string(addr.substr(0, colon)), port) : nullptr;
            if (moved) bus->refresh();
            if (to && to->connected) {
                p->redirected = true;
                bus->send(*to, std::move(p), ask);
                return;
            }
        }
        LOG_WARN("bus", "redis cluster refused a %s: %.*s", p->read ? "history read" : "publish",
                 static_cast<int>(r->len), r->str);
        p->fail();
        return;
    }
    if (!p->read) {
        p->done(r && r->type == REDIS_REPLY_INTEGER);
        return;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        p->read_done(false, {});
        return;
    }
    std::vector<RedisBus::StreamEntry> out;
    for (size_t i = r->elements; i-- > 0;) { // newest first: reversed here
        redisReply* e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY ||
            e->element[1]->elements < 2)
            continue;
        bus_stream::expand_entry(str(e->element[0]), str(e->element[1]->element[0]),
                                 str(e->element[1]->element[1]), &out);
    }
    // `count` entries hold at least `count` items: the oldest beyond them go.
    if (out.size() > p->count) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(p->count));
    p->read_done(true, std::move(out));
}

} // namespace gripd::pubsub
