// RedisBus: one worker's link to the Redis server that joins gripd instances (DESIGN.md "Beyond one
// machine", `[gripd] bus=redis://host:port`). Publishes do not go straight to the shard owners: the
// control API PUBLISHes the items (their JSON text, a request's in runs: bus_stream.hpp) on the
// Redis channel "gripd:<channel>", and every instance, this one included, delivers what Redis
// brings to the channels it has subscribers on.
//
// Two connections per worker, both on the worker's loop (hiredis and its libuv adapter): one for
// PUBLISH, one in subscribe mode for the channels whose shards this worker owns. Either one that
// drops is opened again (0.5 s, doubling up to 8 s) and the subscriber then subscribes again to
// every channel the owner still has subscribers for. While the bus is down, publishes fail (the
// control API answers 503) and nothing is delivered.
#pragma once

#include "gripd/loop/timer_wheel.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct redisAsyncContext;

namespace gripd::loop {
class Worker;
}

namespace gripd::pubsub {

class ClusterBus;
namespace bus_stream {
struct Call;
}

struct BusEndpoint {
    std::string host; // a numeric address (resolved once at startup: connecting must not block)
    int port = 6379;
};

enum class BusKind {
    Single,   // redis://host:port
    Sentinel, // redis-sentinel://h:p[,h:p...]/<master>: the master is asked of the sentinels
    Cluster,  // redis-cluster://h:p[,h:p...]: seed nodes of a Redis Cluster (sharded pub/sub)
};

constexpr size_t kMaxBusNodes = 64; // addresses in one bus URL
// How long a bus connection may take to be made (and a sentinel to name the master, a sentinel's
// master to answer ROLE) before it is given up and the next address or a later retry is tried: an
// address that drops packets would otherwise hold the link for the OS's TCP timeout (minutes).
constexpr uint64_t kBusConnectTimeoutMs = 3000;

struct BusAddress {
    BusKind kind = BusKind::Single;
    // Single: the server. Sentinel: the master in use (filled in from the sentinels' answer).
    std::string host;
    int port = 6379;
    std::vector<BusEndpoint> nodes; // Single: the server; Sentinel: the sentinels; Cluster: the seeds
    std::string master_name;        // Sentinel
};

// Parses "redis://host[:port][/]", "redis-sentinel://host:port[,host:port...]/<master-name>" and
// "redis-cluster://host:port[,host:port...]" (host: a name, an IPv4 address or a bracketed IPv6
// address).
bool parse_bus_url(std::string_view url, BusAddress* out, std::string* error);

class RedisBus {
  public:
    static constexpr std::string_view kChannelPrefix = "gripd:";

    struct Handler {
        virtual ~Handler() = default;
        // A message on a subscribed channel (the name without the prefix).
        virtual void on_bus_message(std::string_view channel, std::string_view payload) = 0;
        // Every channel to subscribe to after (re)connecting.
        virtual std::vector<std::string> bus_channels() const = 0;
        // Redis confirmed a SUBSCRIBE: from now on every publish on `channel` reaches this instance.
        virtual void on_bus_subscribed(std::string_view /*channel*/) {}
        // A confirmed subscription is gone (its connection dropped, or its cluster slot moved): until
        // the next on_bus_subscribed, publishes on `channel` may not reach this instance.
        virtual void on_bus_unsubscribed(std::string_view /*channel*/) {}
        // Every confirmed subscription is gone at once (the subscribing connection dropped).
        virtual void on_bus_subscriptions_lost() {}
    };

    RedisBus(loop::Worker& worker, BusAddress address, Handler& handler);
    ~RedisBus();
    RedisBus(const RedisBus&) = delete;
    RedisBus& operator=(const RedisBus&) = delete;

    void start();
    // Closes both connections (the loop must still run so their handles can close).
    void stop();

    // done(true) once Redis took the items, done(false) if the bus is down or refused them.
    // Without a stream (keep.items == 0): one item, PUBLISHed. With keep.items > 0: a run of one
    // channel's items, sent as few script calls (bus_stream.hpp: one stream entry and one message per
    // call, not per item), each item PUBLISHed and, unless its `how` says publish only, also kept in
    // the channel's Redis Stream ("gripd:h:<channel>") atomically with its PUBLISH, so the stream and
    // the live messages have one order. The stream keeps at least keep.items items, and entries
    // are trimmed, oldest first, while the rest still hold keep.items (so at most keep.items + 255;
    // runs of items with their own ids are trimmed only past keep.items + keep.items / 8:
    // bus_stream::over_bounds) and while over keep.bytes bytes of items (their JSON); an item over keep.bytes
    // alone replaces the whole stream by a marker entry (so a resume from before it is told of the gap). With
    // how
    // == KeepAssign, the item's id is made from its stream entry's id (the same on every instance).
    struct StreamBounds {
        size_t items = 0; // 0: no stream
        size_t bytes = 0;
        bool ids_only = false; // history_assign_ids without history: the stream only makes ids
    };
    struct BusItem {
        enum class How : uint8_t { Keep, KeepAssign, PublishOnly };
        std::string_view payload;
        How how = How::Keep;
        std::string_view id; // the item's own id, if any (named by a marker)
    };
    static constexpr size_t kMaxItemsPerCall = 256; // items in one run handed to publish()
    void publish(const std::string& channel, const std::vector<BusItem>& items,
                 std::function<void(bool)> done, const StreamBounds& keep);
    // The channel's last `count` kept items, oldest first, with their stream ids (XREVRANGE of the
    // last `count` entries on the publish connection, expanded: bus_stream.hpp); ok false when Redis
    // is unreachable or refused. A marker has no payload and stands for an item too big to keep
    // (item_id: its own id, empty when it was assigned).
    struct StreamEntry {
        uint64_t time_ms = 0;
        std::string stream_id;
        std::string payload;
        bool marker = false;
        std::string item_id;
    };
    void read_history(const std::string& channel, size_t count,
                      std::function<void(bool ok, std::vector<StreamEntry> entries)> done);
    bool is_connected() const;
    static constexpr std::string_view kStreamPrefix = "gripd:h:";
    void subscribe(const std::string& channel);
    void unsubscribe(const std::string& channel);

  private:
    struct Link;        // one connection
    struct SentinelAsk; // one SENTINEL get-master-addr-by-name in flight for a link
    void ask_sentinel(Link& link, size_t index);
    static void on_sentinel_connect_cb(const redisAsyncContext* ac, int status);
    static void on_sentinel_disconnect_cb(const redisAsyncContext* ac, int status);
    static void on_sentinel_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_role_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_switch_master(redisAsyncContext* ac, void* reply, void* privdata);
    void connect_to(Link& link, const std::string& host, int port);
    void link_ready(Link& link);
    void watch_sentinels();
    struct PendingRead {
        std::function<void(bool, std::vector<StreamEntry>)> done;
        size_t count; // items asked for
    };
    static void on_read_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_script_loaded(redisAsyncContext* ac, void* reply, void* privdata);
    std::string script_sha_; // the publish script's SHA1 once SCRIPT LOAD answered (EVALSHA), else EVAL
    struct PendingPublish {
        RedisBus* bus;
        size_t bytes; // counted in pending_publish_bytes_
        std::function<void(bool)> done;
    };

    void send_publish(const char** argv, const size_t* lens, int argc, size_t bytes,
                      std::function<void(bool)> done);
    // The publish script with `keys` (bus_stream::keys) and `args`; done with its answer.
    void request_trim(const std::vector<std::string>& keys, const StreamBounds& keep);
    void publish_sent(size_t bytes);
    void publish_answered(size_t bytes);
    void send_script(const std::vector<std::string>& keys, const std::vector<std::string>& args, size_t bytes,
                     std::function<void(bool)> done);
    // MULTI, XADD of the run, its bookkeeping, PUBLISH of `message`, EXEC (bus_stream::
    // add_outside_script); done with EXEC's answer, or after the trim it calls for.
    void send_kept_run(const std::vector<std::string>& keys, const bus_stream::Call& call,
                       const std::string& message, const StreamBounds& keep, std::function<void(bool)> done);
    struct PendingRun {
        PendingPublish publish;
        std::vector<std::string> keys; // for the trim, when EXEC's sums are over the bounds
        StreamBounds keep;
    };
    static void on_exec_reply(redisAsyncContext* ac, void* reply, void* privdata);
    void connect(Link& link);
    void retry_later(Link& link);
    void on_connected(Link& link);
    static void on_connect_cb(const redisAsyncContext* ac, int status);
    static void on_disconnect_cb(const redisAsyncContext* ac, int status);
    static void on_subscription_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_publish_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_retry_timer(void* link);
    static void on_connect_timeout(void* link);

    loop::Worker& worker_;
    BusAddress address_;
    Handler& handler_;
    std::unique_ptr<Link> publisher_;
    std::unique_ptr<Link> subscriber_;
    std::unique_ptr<ClusterBus> cluster_; // Cluster: all the work is there
    std::unique_ptr<Link> watcher_;       // Sentinel: subscribed to +switch-master on one sentinel
    size_t watch_index_ = 0;              // the sentinel the watcher uses (moves on when it fails)
    size_t pending_publishes_ = 0;        // sent, not yet answered (bounded: see redis_bus.cpp)
    size_t pending_publish_bytes_ = 0;
    bool refusing_ = false; // past that bound: warned once, until all are answered
    bool stopping_ = false;
    // Streams with a trim sent and not yet answered, and whether a run found over the bounds since
    // asks for one more once it is. At most one per kept channel with a publish waiting, so bounded
    // as pending_publishes_ is.
    std::unordered_map<std::string, bool> trimming_;
};

} // namespace gripd::pubsub
