// Holds: a client request kept open after the backend answered with GRIP instructions.
//  - ResponseHold (long-poll): nothing is sent until a publish (http-response) or the timeout
//    (the instruct response); a `hint` publish asks the backend again, and so does a hold that is
//    behind (its prev-id is not the channel's last id, or a publish does not follow it), with
//    Grip-Last saying where it was.
//  - StreamHold: the instruct response is sent at once as a chunked stream; http-stream publishes
//    are appended in channel order; `close` ends it; keep-alive data is sent per Grip-Keep-Alive.
//    With a next link it also appends what the link's URL answers and follows that answer's
//    instructions (more links, other channels, or the end); a response with a next link and no
//    hold is streamed the same way.
// A hold is the connection's current Exchange and a pubsub Subscriber; it lives on one worker.
#pragma once

#include "gripd/grip/instruct.hpp"
#include "gripd/grip/next_link.hpp"
#include "gripd/http/cors.hpp"
#include "gripd/http/request_parser.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/filters.hpp"
#include "gripd/stats/hold_stats.hpp"

#include <functional>
#include <memory>
#include <string>

namespace gripd::grip {

// Per-worker hold statistics (single writer: the worker), kept in the stats module for the metrics.
using HoldStats = stats::HoldStats;

// What a hold needs to re-ask the backend (hint): the original request, kept compactly.
struct SavedRequest {
    http::RequestHead head;
    std::string body;
    std::vector<std::string> grip_last; // Grip-Last values to send with it ("name; last-id=ID")
    // CORS / JSON-P for the answer (null: off); `head` is then the request as rewritten for JSON-P.
    std::shared_ptr<const http::CrossOrigin> cross_origin;
    std::string connection_id;  // the Grip-Connection-Id the backend got (empty: none)
    bool response_sent = false; // the proxy relayed the (large) initial response itself
};

// History resume for a hold (pubsub/history.hpp), given by the dispatcher when the route keeps
// history: holds with a `prev-id` resume from it, and a stream hold also from the client's
// Last-Event-ID (or `lastEventID` query parameter) when it has one channel.
struct HoldResume {
    std::optional<pubsub::HistoryBounds> bounds; // the route's override, if it has one
    std::string last_event_id;                   // empty: none
};

// Re-sends a saved request for this client (implemented by the proxy).
using RetryFn = std::function<void(http::ClientStream& client, SavedRequest&& request)>;

struct HoldEnv {
    loop::Worker& worker;
    pubsub::Broker& broker;
    HoldStats& stats;
    size_t max_queued_bytes; // a client further behind than this is cut off
};

class Hold : public http::Exchange, public pubsub::Subscriber {
  public:
    ~Hold() override;
    void on_request_body(std::string_view) override {}
    void on_request_end() override {}
    void on_client_gone() override;
    bool has_subscription(std::string_view channel) const override;
    // The server is stopping: answer now (a long-poll gets its timeout response, a stream ends).
    virtual void stop() = 0;
    // The instructions' gone link (Pushpin 1.41): `fn` runs once when this hold ends, however it
    // ends (the client closed, reset, timed out or was cut off; answered; the server stopped),
    // unless a retry of the same client's request replaces it (the new answer has its own).
    void set_gone(std::function<void()> fn) { gone_ = std::move(fn); }
    // The route keeps history: resume from it (call before on_start).
    void set_resume(HoldResume&& resume) { resume_ = std::make_unique<HoldResume>(std::move(resume)); }
    // POST /recover: ask the backend again (a long-poll re-sends its request with Grip-Last, a
    // stream with a next link fetches it now; a stream without one has nothing to ask).
    virtual void recover() = 0;

    core::ListHook dispatch_link; // the worker's list of live holds
    // The Grip-Connection-Id the backend got for this request: a publish close naming another id
    // does not end this hold. Kept inline (a UUID is 36 characters).
    void set_connection_id(std::string_view id);

  protected:
    // `channels` already carry the route prefix; at most `max_channels` are used.
    Hold(HoldEnv env, http::ClientStream& client, const Instruct& instruct, size_t max_channels,
         const std::string& prefix);
    // (Re)builds the subscriptions: the first `max_channels` of `channels`, with the route prefix
    // (not yet subscribed; unsubscribe first).
    void set_channels(const std::vector<Channel>& channels, HoldMode mode, size_t max_channels,
                      const std::string& prefix);
    void subscribe_all();
    void unsubscribe_all();
    // Ends the exchange: the connection goes on with its next request (or closes).
    void end();
    // One log line for a publish whose content filters do not match this hold's subscription.
    void log_content_filter_mismatch(const pubsub::Message& msg) const;
    // Has the subscription to `channel` (prefixed) resume after `id` (needs set_resume).
    void resume_from(const std::string& channel, const std::string& id);
    struct HoldSub;
    // Keeps the channels' prev-ids for build-id (only when a channel names that filter).
    void keep_channel_ids(const std::vector<Channel>& channels, const std::string& prefix);
    // `content` through the content filters of `sub`'s channel (a publish on it: the item's id
    // becomes that channel's last id first, as in Pushpin), or, with `sub` null, through build-id
    // as a proxied body (the initial response, a next link's answer). Unchanged content comes
    // back as nullopt in `out` with true; false (one debug line) when a filter fails.
    bool filter_content(const HoldSub* sub, const pubsub::Message* msg, std::string_view content,
                        std::optional<std::string>& out);

    HoldEnv env_;
    http::ClientStream* client_;
    struct HoldSub : pubsub::Subscription {
        std::string channel; // route prefix applied; kept to subscribe again
    };
    std::unique_ptr<HoldSub[]> subs_;
    size_t sub_count_ = 0;
    size_t named_count_ = 0; // the first of subs_: the instructions' channels (the rest: implicit_)
    std::vector<std::string> implicit_; // the target's sub= channels: kept by every set_channels()
    std::vector<std::pair<std::string, std::string>> meta_; // Grip-Set-Meta / hold.meta
    std::unique_ptr<pubsub::ChannelIds> ids_;               // build-id's channel ids (only if used)
    char connection_id_[37] = {};
    loop::TimerEntry timer_;
    std::function<void()> gone_;         // set only when the instructions named a gone link
    std::unique_ptr<HoldResume> resume_; // only on routes with history
};

class ResponseHold final : public Hold {
  public:
    ResponseHold(HoldEnv env, http::ClientStream& client, Instruct&& instruct, size_t max_channels,
                 const std::string& prefix, SavedRequest&& request, RetryFn retry);
    ~ResponseHold() override;
    void on_start() override;
    void on_message(pubsub::Subscription& sub, const pubsub::MessageRef& msg) override;
    // Pushpin 1.36 answers the held request 502 "Error while proxying to origin.".
    void on_content_filter_mismatch(pubsub::Subscription& sub, const pubsub::MessageRef& msg) override;
    // History could not cover the prev-id: asked again with Grip-Last (Pushpin's way), or, with
    // nothing kept, checked against the channel's last id as without history.
    void on_resume(pubsub::Subscription& sub, pubsub::ReplayStatus status) override;
    void stop() override { on_timeout(this); }
    void recover() override;

  private:
    static void on_timeout(void* self);
    // Answers the client (gone from the hold) with a whole response, CORS or JSON-P applied.
    void answer(http::ClientStream& c, int code, std::string reason, http::Headers headers, std::string body);
    // Answers 502 "Error while proxying to origin." as Pushpin's doError() does (unsubscribed first).
    void answer_error();
    // Asks the backend again (hint, or behind); its answer replaces this exchange.
    void ask_again(bool behind);
    InstructResponse response_;
    int timeout_s_;
    SavedRequest request_;
    RetryFn retry_;
    struct PrevIds; // the prev-ids the backend gave, with the checks out (only if it gave any)
    std::unique_ptr<PrevIds> prev_ids_;
};

class StreamHold final : public Hold, private LinkUser {
  public:
    // `fetch_link` is needed only when the instructions carry a next link.
    StreamHold(HoldEnv env, http::ClientStream& client, Instruct&& instruct, size_t max_channels,
               const std::string& prefix, FetchLinkFn fetch_link = {});
    ~StreamHold() override;
    // The proxy already sent the initial response (head and body; too large to buffer): on_start
    // only subscribes.
    void mark_response_sent() { response_sent_ = true; }
    void on_start() override;
    void on_client_gone() override;
    void on_message(pubsub::Subscription& sub, const pubsub::MessageRef& msg) override;
    void on_client_writable() override {}
    // Pushpin 1.36 ends the stream (cleanly: the connection stays usable).
    void on_content_filter_mismatch(pubsub::Subscription& sub, const pubsub::MessageRef& msg) override;
    // History could not cover the resume point: the next link is followed (Grip-Last), an SSE
    // stream gets a `gripd-gap` event, any other stream ends (the client must start over).
    void on_resume(pubsub::Subscription& sub, pubsub::ReplayStatus status) override;
    void stop() override { end(); }
    void recover() override;

  private:
    static void on_keep_alive(void* self);
    void arm_keep_alive();
    void sent_data();
    bool check_backlog();

    // Next links (next_link.hpp).
    struct NextLink;
    void fetch_next();
    void schedule_next(uint64_t delay_ms);
    static void on_link_timer(void* self);
    void on_link_response(http::ResponseHead& head, std::string& body) override;
    void on_link_failed(const char* why) override;
    void note_last_id(const std::string& channel, const std::string& id);
    // Asks whether the channels with a known id are behind; if one is, the link is followed now.
    void check_behind();
    // A message that does not follow this hold's last id on its channel: something was missed.
    bool misses_before(const std::string& channel, const pubsub::Message& msg) const;

    InstructResponse initial_;
    bool is_sse_ = false;                                         // the response is text/event-stream
    std::vector<std::pair<std::string, std::string>> resume_ids_; // (channel prefixed, id): prev-ids
    std::optional<KeepAlive> keep_alive_;
    std::unique_ptr<NextLink> next_; // only for holds that follow next links
    bool response_sent_ = false;     // a fact of the request: see mark_response_sent()
};

} // namespace gripd::grip
