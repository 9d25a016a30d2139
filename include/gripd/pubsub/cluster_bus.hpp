// ClusterBus: the Redis bus on a Redis Cluster with sharded pub/sub (`bus=redis-cluster://h:p,...`,
// Redis 7: SPUBLISH / SSUBSCRIBE). The thin client-side part every cluster client has: the slot map
// (CRC16 of the key mod 16384, hash tags) from CLUSTER SLOTS, one command connection (hiredis) and
// one subscriber connection per master in use, MOVED/ASK answered by sending once more where Redis
// says, and a refresh of the map on MOVED, on a lost connection, on a slot leaving a subscriber's
// node (sunsubscribe pushed by Redis) and every few seconds; after each, every channel whose slot
// moved is subscribed again on its new master.
//
// Keys: channel "gripd:{<channel>}" and stream "gripd:h:{<channel>}": the hash tag puts both in the
// channel's slot, so the publish-with-history script touches one node.
//
// The subscriber connections are not hiredis async contexts: hiredis 0.14 (Debian 12) knows only
// SUBSCRIBE/PSUBSCRIBE as subscribe mode and aborts on an `smessage` it did not expect. They are
// plain libuv TCP connections with hiredis' reply parser (redisReader).
#pragma once

#include "gripd/loop/timer_wheel.hpp"
#include "gripd/pubsub/redis_bus.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gripd::pubsub {

uint16_t cluster_key_slot(std::string_view key);

class ClusterBus {
  public:
    ClusterBus(loop::Worker& worker, std::vector<BusEndpoint> seeds, RedisBus::Handler& handler);
    ~ClusterBus();
    ClusterBus(const ClusterBus&) = delete;
    ClusterBus& operator=(const ClusterBus&) = delete;

    void start();
    void stop();
    // As RedisBus::publish, on the channel's master (the script with SPUBLISH, keys in the channel's
    // slot: bus_stream.hpp).
    void publish(const std::string& channel, const std::vector<RedisBus::BusItem>& items,
                 std::function<void(bool)> done, const RedisBus::StreamBounds& keep);
    void read_history(const std::string& channel, size_t count,
                      std::function<void(bool, std::vector<RedisBus::StreamEntry>)> done);
    bool is_connected() const;
    void subscribe(const std::string& channel);
    void unsubscribe(const std::string& channel);

    static std::string channel_name(std::string_view channel); // "gripd:{<channel>}"
    static std::string stream_key(std::string_view channel);   // "gripd:h:{<channel>}"

    struct Node;
    struct Sub;
    struct Pending;

  private:
    friend struct Node;
    friend struct Sub;
    Node* node_for(std::string_view key);
    Node* node_at(const std::string& host, int port);
    void refresh();
    void on_slots(Node& from, void* reply);
    void resubscribe_moved();
    void send(Node& node, std::unique_ptr<Pending> p, bool asking);
    static void on_reply(struct redisAsyncContext* ac, void* reply, void* privdata);
    static void on_slots_reply(struct redisAsyncContext* ac, void* reply, void* privdata);
    static void on_tick(void* self);

    loop::Worker& worker_;
    std::vector<BusEndpoint> seeds_;
    RedisBus::Handler& handler_;
    std::vector<std::unique_ptr<Node>> nodes_;             // masters seen (bounded: kMaxBusNodes x 4)
    std::array<uint16_t, 16384> slots_{};                  // node index + 1; 0 = unknown
    std::unordered_map<std::string, Node*> subscribed_on_; // channel -> node SSUBSCRIBEd on
    bool refreshing_ = false;
    bool stopping_ = false;
    size_t pending_ = 0;
    size_t pending_bytes_ = 0;
    loop::TimerEntry tick_;
};

} // namespace gripd::pubsub
