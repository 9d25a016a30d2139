// Stats events (Pushpin's stats socket, PROTOCOL.md §6.9): what the workers tell the stats socket
// on worker 0 (zmq/stats_service.hpp), which keeps the state (connections, subscriptions, TTL
// refreshes, reports) and writes the PUB messages.
//
// Each worker thread has one Emitter (installed by app::Server only when `stats_spec` is set); the
// code that sees an event calls the free functions below, which do nothing on a thread without one.
// Events are queued per worker (bounded: kMaxPending items, then dropped and counted) and sent to
// worker 0 as one batch per flush (every kFlushMs, or at kBatch items) through the inbox.
//
// Cost when nobody listens: `activity` and `message` events are per request and per delivery, so
// they are built only while the PUB socket has a subscriber (listening(): one relaxed load; worker 0
// sets it from the XPUB subscription messages). `conn` and `sub` events are per connection and per
// subscription and always kept (with `stats_spec` set), as later subscribers get them on refresh and
// the command socket's `conncheck` reads the connections.
#pragma once

#include "gripd/core/counter.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::stats {

enum class SubMode : uint8_t { Response, Stream, Ws };
enum class Transport : uint8_t { HttpResponse, HttpStream, WsMessage };

struct Event {
    enum class Kind : uint8_t { Activity, Message, ConnOpen, ConnClose, Sub, Unsub };
    Kind kind = Kind::Activity;
    uint8_t mode = 0;    // SubMode (Sub, Unsub), Transport (Message)
    bool ws = false;     // ConnOpen: a WebSocket
    bool ssl = false;    // ConnOpen
    bool linger = false; // Unsub: the last subscriber was a long-poll (subscription_linger)
    int32_t count = 0;   // Activity, Message
    std::string key;     // channel (Message, Sub, Unsub) or connection id (ConnOpen, ConnClose)
    std::string extra;   // item id (Message) or peer address (ConnOpen)
    std::string route;   // route id (Activity, ConnOpen): only for `separate_stats` routes; "" else
};

// One worker's events, in order, as one inbox message.
struct EventBatch {
    std::vector<Event> events;
};

struct EmitterStats {
    core::Counter queued;  // events queued
    core::Counter dropped; // events dropped: the worker's queue or worker 0's inbox was full
};

class Emitter {
  public:
    static constexpr size_t kMaxPending = 8192;
    static constexpr size_t kBatch = 512;
    static constexpr uint64_t kFlushMs = 20;

    // `send` hands a batch to worker 0 (false: refused, counted as dropped).
    explicit Emitter(std::function<bool(std::shared_ptr<EventBatch>)> send) : send_(std::move(send)) {}

    void push(Event&& e) {
        if (pending_ && pending_->events.size() >= kMaxPending) {
            stats_.dropped.add();
            return;
        }
        if (!pending_) pending_ = std::make_shared<EventBatch>();
        pending_->events.push_back(std::move(e));
        stats_.queued.add();
        if (pending_->events.size() >= kBatch) flush();
    }
    void flush() {
        if (!pending_ || pending_->events.empty()) return;
        size_t n = pending_->events.size();
        std::shared_ptr<EventBatch> b = std::move(pending_);
        pending_.reset();
        if (!send_(std::move(b))) stats_.dropped.add(static_cast<int64_t>(n));
    }
    const EmitterStats& stats() const { return stats_; }
    // Events wait for flush() (the worker arms its flush timer only then).
    bool has_pending() const { return pending_ && !pending_->events.empty(); }

  private:
    std::function<bool(std::shared_ptr<EventBatch>)> send_;
    std::shared_ptr<EventBatch> pending_;
    EmitterStats stats_;
};

// The running thread's emitter (nullptr: stats are off, or not a worker thread).
inline thread_local Emitter* tl_emitter = nullptr;
// Whether the stats PUB socket has a subscriber (set by worker 0, read anywhere).
inline std::atomic<bool> g_listening{false};
// Connection ids: per thread, prefixed by the worker number so they are unique in the instance.
inline thread_local uint64_t tl_conn_seq = 0;
inline thread_local int tl_worker = 0;

inline bool enabled() {
    return tl_emitter != nullptr;
}
inline bool listening() {
    return tl_emitter != nullptr && g_listening.load(std::memory_order_relaxed);
}

// A new connection id for a client request or WebSocket ("" when stats are off).
inline std::string new_conn_id() {
    if (!tl_emitter) return {};
    return std::to_string(tl_worker) + "-" + std::to_string(++tl_conn_seq);
}

inline void conn_open(const std::string& id, bool ws, std::string_view peer, bool ssl,
                      std::string_view route = {}) {
    if (!tl_emitter || id.empty()) return;
    Event e;
    e.kind = Event::Kind::ConnOpen;
    e.ws = ws;
    e.ssl = ssl;
    e.key = id;
    e.extra = peer;
    e.route = route;
    tl_emitter->push(std::move(e));
}

inline void conn_close(const std::string& id) {
    if (!tl_emitter || id.empty()) return;
    Event e;
    e.kind = Event::Kind::ConnClose;
    e.key = id;
    tl_emitter->push(std::move(e));
}

inline void activity(std::string_view route, int count = 1) {
    if (!listening()) return;
    Event e;
    e.kind = Event::Kind::Activity;
    e.count = count;
    e.route = route;
    tl_emitter->push(std::move(e));
}

inline void message(std::string_view channel, std::string_view item_id, Transport t, int count) {
    if (!listening()) return;
    Event e;
    e.kind = Event::Kind::Message;
    e.mode = static_cast<uint8_t>(t);
    e.count = count;
    e.key = channel;
    e.extra = item_id;
    tl_emitter->push(std::move(e));
}

// A client request's (or WebSocket's) `conn` events: open() when it starts, closed once (close()
// or the destructor) when it ends. Lives in the connection (HTTP/1.1) or stream (HTTP/2), on its
// worker.
class ConnTrack {
  public:
    ConnTrack() = default;
    ConnTrack(const ConnTrack&) = delete;
    ConnTrack& operator=(const ConnTrack&) = delete;
    ~ConnTrack() { close(); }

    void open(bool ws, std::string_view peer, bool ssl) {
        close();
        if (!tl_emitter) return;
        id_ = new_conn_id();
        conn_open(id_, ws, peer, ssl);
        activity({});
    }
    void close() {
        if (id_.empty()) return;
        conn_close(id_);
        id_.clear();
    }
    const std::string& id() const { return id_; }

  private:
    std::string id_;
};

// One subscriber more (on) or less on (mode, channel) in this worker.
inline void subscription(SubMode mode, std::string_view channel, bool on, bool linger = false) {
    if (!tl_emitter) return;
    Event e;
    e.kind = on ? Event::Kind::Sub : Event::Kind::Unsub;
    e.mode = static_cast<uint8_t>(mode);
    e.linger = linger;
    e.key = channel;
    tl_emitter->push(std::move(e));
}

} // namespace gripd::stats
