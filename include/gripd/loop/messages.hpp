// The messages that cross loops: one named struct per thing a worker can be told, gathered in one
// std::variant (InboxMessage::body). The receiving worker dispatches them with one std::visit, so a
// new message that nobody handles fails to compile instead of being dropped at run time.
//
// Rules for adding one:
//  - Payloads that other threads can see are immutable and refcounted (shared_ptr<const T>), so
//    the sender may keep reading them. Everything else is moved in and owned by the message.
//  - Keep the common messages small: the variant is as big as its largest member and every ring
//    slot has that size. A rare, big payload goes behind a unique_ptr.
//  - loop only moves these around: the payload types of other modules are declared, not included,
//    and loop never looks inside them (src/README.md lists this as the one place loop names them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

namespace gripd::config {
class RouteTable;
}
namespace gripd::pubsub {
class Message;
struct PublishBatch;
struct ReplayAsk;
struct ReplayAnswer;
} // namespace gripd::pubsub
namespace gripd::stats {
struct EventBatch;
}
namespace gripd::sockjs {
struct RelayedRequest;
struct RelayedAnswer;
} // namespace gripd::sockjs

namespace gripd::loop {

// main -> worker: stop accepting, finish within the grace period, then end the loop. Handled by the
// Worker itself.
struct Stop {
    uint64_t grace_ms = 0;
};

// main -> worker: the routes file was reloaded; use this table from now on.
struct ReloadRoutes {
    std::shared_ptr<const config::RouteTable> routes;
};

// publisher -> shard owner: the items of one publish request that this owner sequences.
struct PublishToOwner {
    std::shared_ptr<pubsub::PublishBatch> batch; // the owner moves the items out
};

// shard owner -> publisher: the batch with this token has been taken.
struct PublishAck {
    uint64_t token = 0;
};

// shard owner -> subscribed worker: deliver this message to the local subscriptions.
struct Deliver {
    std::shared_ptr<const pubsub::Message> message;
};

// worker -> shard owner: the sender's first local subscriber on `channel` came (+1) or its last
// one went (-1).
struct SubscribeDelta {
    std::string channel;
    int32_t delta = 0;
    bool linger = false; // the last local subscription to leave was a long-poll (subscription_linger)
};

// shard owner -> the worker with the ZeroMQ SUB inputs: this instance got its first subscriber on
// `channel` (on) or lost its last one, after subscription_linger (off): subscription forwarding.
struct ChannelInterest {
    std::string channel;
    bool on = false;
};

// control API -> every shard owner: forget every channel's last id (POST /recover).
struct Recover {};

// worker -> shard owner: is a subscriber that has seen up to `prev_id` on `channel` behind? Rare
// and carries two strings, so its fields live behind a pointer.
struct LastIdQuery {
    struct Fields {
        uint64_t token = 0;
        std::string channel;
        std::string prev_id;
    };
    std::unique_ptr<const Fields> fields;
};

// shard owner -> asking worker: the answer to the LastIdQuery with this token.
struct LastIdReply {
    uint64_t token = 0;
    bool behind = false;
};

// worker -> shard owner: send the history items after an id (pubsub::ReplayAsk; history.hpp). Sent
// after the asker's SubscribeDelta on the same ring, so the owner already delivers live items to it.
struct ReplayRequest {
    std::shared_ptr<pubsub::ReplayAsk> ask; // shared_ptr: its deleter is bound where it is made
};

// shard owner -> asking worker: the answer (pubsub::ReplayAnswer). Items the owner routes later
// follow it on the same ring.
struct ReplayReply {
    std::shared_ptr<pubsub::ReplayAnswer> answer;
};

// worker -> worker 0: stats events (stats/events.hpp) for the stats socket.
struct StatsEvents {
    std::shared_ptr<stats::EventBatch> batch; // shared_ptr: its deleter is bound where it is made
};

// worker -> the worker that owns a SockJS session id (sockjs/relay.hpp): one xhr/jsonp request of
// that session, read in full, to be answered there.
struct SockjsRelay {
    std::shared_ptr<sockjs::RelayedRequest> request; // shared_ptr: its deleter is bound where it is made
};

// session owner -> the worker the request came from: its answer (status, headers, body).
struct SockjsAnswer {
    std::shared_ptr<sockjs::RelayedAnswer> answer;
};

// worker -> session owner: the client of the relayed request with this token went away.
struct SockjsGone {
    uint64_t token = 0;
};

// command socket (worker 0) -> every worker: refresh the WebSocket session with connection id `id`
// (the command `refresh {cid}`), if it is yours; answer with a ConnRefreshReply.
struct ConnRefresh {
    uint64_t token = 0;
    std::string id;
};

// worker -> command socket: whether it had the session of the ConnRefresh with this token.
struct ConnRefreshReply {
    uint64_t token = 0;
    bool found = false;
};

using InboxBody =
    std::variant<Stop, ReloadRoutes, PublishToOwner, PublishAck, Deliver, SubscribeDelta, Recover,
                 LastIdQuery, LastIdReply, ChannelInterest, ReplayRequest, ReplayReply, StatsEvents,
                 SockjsRelay, SockjsAnswer, SockjsGone, ConnRefresh, ConnRefreshReply>;

// What a ring slot holds: the message and who sent it.
struct InboxMessage {
    InboxBody body;
    int32_t from = -1; // the producer number, set by Inbox::push
    uint32_t cost = 0; // estimated bytes it keeps alive (set by the sender; see Inbox's bounds)
};

// A ring slot must stay small: grow a message past this and put its fields behind a pointer.
static_assert(sizeof(InboxMessage) <= 56, "cross-loop messages must stay small");

} // namespace gripd::loop
