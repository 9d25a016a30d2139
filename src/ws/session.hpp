// Session: what every WebSocket session shares, whatever its backend side.
//
//  - The client endpoint: RFC 6455 framing (FrameParser, server role), the close handshake, the
//    output cap, and writing messages (fragmented at 16384 bytes, as Pushpin relays them).
//  - GRIP: `c:` control messages (subscribe/unsubscribe/detach/set-meta/keep-alive), implicit `sub=`
//    subscriptions, and ws-message publishes (send, close, refresh).
//
// Lifetime: the service owns the session. The client connection only sees a small ClientLink
// exchange pointing here, so the session outlives its client when the backend must still be told
// (a DISCONNECT event). A session ends with finish(): unsubscribed, timers off, freed after the
// current loop iteration.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/deletable.hpp"
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/filters.hpp"
#include "gripd/ws/client_codec.hpp"
#include "gripd/ws/frame.hpp"
#include "gripd/ws/ws_service.hpp"
#include "states.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gripd::ws {

class Session;

// The client connection's exchange: forwards to the session while both exist.
class ClientLink final : public http::Exchange {
  public:
    explicit ClientLink(Session* s) : session_(s) {}
    void on_start() override;
    void on_request_body(std::string_view) override {}
    void on_request_end() override {}
    void on_client_gone() override;
    void on_client_writable() override;
    void on_raw_data(std::string_view data) override;
    void detach() { session_ = nullptr; }

  private:
    Session* session_;
};

class Session : public SessionNode, public pubsub::Subscriber, protected FrameParser::Handler {
  public:
    Session(WsService& service, http::ClientStream& client, std::shared_ptr<const config::RouteTable> routes,
            const config::Route& route, bool trusted);
    ~Session() override;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Starts the backend side (called once the client's exchange is installed).
    virtual void start() = 0;
    // What serves this session (for statistics).
    virtual WsMode mode() const = 0;
    // Server stop: close the client with 1001 and drop the backend side.
    virtual void stop();
    // The client side's state and flags ("state=Open grip=0 ..."), for tests and debug logs.
    virtual std::string dump() const;
    ClientState client_state() const { return state_; }

    // --- the command socket's `refresh` by connection id (WsService::refresh_connection) ---
    // The ids this session is found by: the backend's Connection-Id (WebSocket-over-HTTP) and the
    // id of its `conn` stats events (with stats_spec). Pushpin has one id for both; gripd two.
    std::string_view backend_connection_id() const { return connection_id(); }
    // (read from the client connection, which owns it: a session whose client is gone has none, as
    // Pushpin forgets a connection's id when its client goes; no copy in every idle session)
    const std::string& stats_conn_id() const {
        static const std::string none;
        return client_ ? client_->stats_conn_id() : none;
    }
    // As a ws-message publish with action refresh: WebSocket-over-HTTP asks the backend again (when
    // connected); passthrough has nothing to refresh.
    void refresh() { on_refresh(); }

    // --- from the ClientLink ---
    void set_link(ClientLink* link) { link_ = link; }
    // Re-frames the client's side (SockJS's framed transport); set before start().
    void set_codec(std::unique_ptr<ClientCodec> codec) { codec_ = std::move(codec); }
    void on_client_data(std::string_view data);
    void on_client_gone();
    void on_client_writable();

    // pubsub::Subscriber
    void on_message(pubsub::Subscription& sub, const pubsub::MessageRef& msg) override;
    // A subscribe with `last-id` was answered: history could not cover it -> a `gripd-gap` message.
    void on_resume(pubsub::Subscription& sub, pubsub::ReplayStatus status) override;
    bool has_subscription(std::string_view channel) const override;

  protected:
    // --- what the backend side implements ---
    // A client data frame (or ping/pong), validated. Not called once detached.
    virtual void on_client_frame(const Frame& frame) = 0;
    // The client sent a close frame first: the backend side should close, then close_client().
    virtual void on_client_close(int code, std::string_view reason) = 0;
    // The client's close frame answered ours (the close handshake is complete; on_client_ended(true)
    // follows).
    virtual void on_client_close_reply(int /*code*/, std::string_view /*reason*/) {}
    // The client side ended (called once): `clean` when the close handshake completed, else the
    // client vanished, broke the protocol, was cut off or was dropped by us.
    virtual void on_client_ended(bool clean) = 0;
    // Control message `detach`: stop relaying; the backend side should close.
    virtual void on_detach() = 0;
    // A ws-message publish with action close: the backend side should close.
    virtual void on_publish_close() = 0;
    // A ws-message publish with action refresh.
    virtual void on_refresh() {}
    // The id the backend knows this session by (WebSocket-over-HTTP: Connection-Id); a publish
    // close naming another id does not close it. Empty: none (only untargeted closes apply).
    virtual std::string_view connection_id() const { return {}; }
    // The client's write queue drained.
    virtual void on_client_drained() {}
    // Publishes must wait (a relayed backend message is half written).
    virtual bool relay_in_progress() const { return false; }

    // --- the client endpoint ---
    // The size limits for the client's frames and messages.
    virtual FrameParser::Limits frame_limits() const = 0;
    // Answers the handshake with 101 (Upgrade, Connection, Sec-WebSocket-Accept for the client's
    // Sec-WebSocket-Key, plus `headers`) and enters raw mode. False if the client is gone.
    bool accept_client(const http::Headers& headers, std::string_view client_key);
    // The request's Sec-WebSocket-Key (checked by the WsService before any session exists).
    static std::string client_key(const http::RequestHead& head);
    // Refuses the handshake with this response and ends the client connection.
    void reject_client(int status, std::string_view reason, const http::Headers& headers,
                       std::string_view body);
    // The access log line of the handshake (info level): `head` is null once it was answered.
    void log_handshake(int code, const http::RequestHead* head, const config::Target& target) const;
    // 502 to the handshake: Pushpin's generic text, or (debug, when no target connected) the targets tried.
    void reject_bad_gateway(bool no_target_connected = false);
    bool has_client() const { return client_ != nullptr; }
    size_t client_queued_bytes() const { return client_ ? client_->queued_bytes() : 0; }
    http::ClientStream* client() { return client_; }
    // Writes a whole relayed message (data messages fragmented at 16384 bytes). Counts it as
    // activity for an idle keep-alive.
    void send_message(WsOpcode type, std::string_view data);
    // Writes pre-rendered frame bytes (shared, not copied when `keep` owns them).
    void send_frames(std::string_view bytes, const std::shared_ptr<const void>& keep = {});
    // Sends our close frame (once). When the client's close already came, the connection ends after
    // flushing; else we wait for it (bounded by the close timeout).
    void close_client(int code, std::string_view reason);
    void close_client_with_frame(std::string_view frame, const std::shared_ptr<const void>& keep);
    // Closes the client connection at once, without a close frame. on_client_ended(false) follows.
    void drop_client() { end_client(false, Ending::Abort, true); }
    // Ends the connection after what is queued for the client (no close frame of its own).
    void end_client_after_output() { end_client(false, Ending::Flush, true); }
    bool client_close_received() const {
        return state_ == ClientState::CloseReceived || state_ == ClientState::Closed;
    }
    bool client_close_sent() const {
        return state_ == ClientState::CloseSent || state_ == ClientState::Closed;
    }
    int client_close_code() const { return peer_close_code_; }
    // Stop/start reading the client (backpressure).
    void pause_client();
    void resume_client();

    // --- GRIP ---
    // Handles the text of a `c:` message (without the prefix).
    void apply_control(std::string_view json);
    // A backend message seen through the grip extension: control, prefixed (relayed without the
    // prefix) or dropped. Without grip every message is relayed. Returns after writing.
    void relay_backend_message(WsOpcode type, std::string_view data);
    void enable_grip(std::string prefix) {
        grip_ = true;
        message_prefix_ = std::move(prefix);
    }
    bool grip_enabled() const { return grip_; }
    // The handshake headers to send target `t` (Pushpin's forwarding rules), before the caller
    // removes and adds what its kind of backend request needs.
    http::Headers upstream_headers(const http::RequestHead& head, const config::Target& t);
    // The backend's handshake answer offered the grip extension: enable it (its message prefix,
    // default "m:"), or, for a trusted client (an upstream GRIP proxy doing the GRIP work), copy
    // the extension onto the client's 101 headers `out` instead.
    void negotiate_grip(const http::Headers& backend_headers, http::Headers& out);
    std::string_view message_prefix() const { return message_prefix_; }
    // Writes one relayed frame (counts a message when it ends one, resets an idle keep-alive).
    void send_relayed(std::string_view frame_bytes, bool ends_message);
    // The target's sub= channels (cannot be unsubscribed by control messages).
    void subscribe_implicit(const config::Target& target);
    bool is_detached() const { return detached_; }

    // Writes the publishes held while a relayed message was half written.
    void flush_held();
    // Ends the session (unsubscribes; the client, if still there, is dropped).
    void finish();
    bool is_finished() const { return state_ == ClientState::Finished; }

    WsService& service_;
    std::shared_ptr<const config::RouteTable> routes_; // keeps route_ alive across reloads
    const config::Route& route_;
    bool trusted_ = false; // not lifecycle: the client is an upstream GRIP proxy (from the config)

  private:
    struct Sub : pubsub::Subscription {
        bool implicit = false;
        // Not lifecycle: the subscribe asked for `ids` (README History): each delivered item with
        // an id is preceded by a `gripd-id` text message.
        bool ids = false;
    };
    // A publish held while a relayed message is half written, with its `gripd-id` frame (empty:
    // none) rendered when it came, since the subscription may be gone when it is sent.
    struct Held {
        pubsub::MessageRef msg;
        std::string id_frame;
    };
    struct KeepAlive {
        std::string frame; // rendered once
        uint64_t timeout_ms = 0;
        bool interval = false;
        loop::TimerEntry timer;
    };
    // A `send-delayed` message (Pushpin keeps one per session): sent when its timer fires, when
    // `flush-delayed` comes, or when the next `send-delayed` replaces it.
    struct Delayed {
        WsOpcode type = WsOpcode::Text;
        std::string content;
        bool pending = false; // a message waits (its timer armed, or due behind a relayed message)
        bool due = false;     // its time came while a relayed message was half written
        loop::TimerEntry timer;
    };

    void on_frame(const Frame& frame) override; // FrameParser::Handler
    void resume(pubsub::Subscription& sub, const std::string& last_id);
    void subscribe(const std::string& channel, std::vector<std::string> filters, bool implicit,
                   const std::optional<std::string>& last_id = std::nullopt,
                   std::optional<bool> ids = std::nullopt);
    // The channel as the backend named it in its subscribe (the route prefix taken off).
    std::string_view client_channel(const pubsub::Subscription& sub) const;
    // The `gripd-id` frame that goes before `msg` to `sub`'s client; empty when none does.
    std::string id_frame(const pubsub::Subscription& sub, const pubsub::Message& msg) const;
    void unsubscribe_all();
    void setup_keep_alive(const struct ControlMessage& m);
    void arm_keep_alive();
    void send_delayed(const struct ControlMessage& m);
    void flush_delayed();
    static void on_delayed_timer(void* self);
    // With a codec: writes `bytes` re-framed; false (the client is being closed) if it cannot be.
    bool send_encoded(std::string_view bytes);
    void on_codec_frame(const Frame& frame);
    static void on_heartbeat_timer(void* self);
    void note_activity();
    bool check_backlog();
    void deliver(const pubsub::MessageRef& msg, std::string_view id_frame);
    // How the client connection ends: after sending what is queued, at once, or with a reset (a
    // client that stopped reading gets nothing more, not even what the kernel holds for it).
    enum class Ending { Flush, Abort, Reset };
    void end_client(bool clean, Ending how, bool notify);
    // Lets go of the client connection (state Ended): timers off, publishes dropped, unsubscribed.
    // Returns the connection (null if it was already gone).
    http::ClientStream* release_client();
    // Sends a close frame now (the close handshake's "ours"); false if the client went meanwhile.
    bool send_close_frame(std::string_view frame, const std::shared_ptr<const void>& keep);
    // The one transition function of the client side (see states.hpp).
    bool set_state(ClientState to);
    static void on_keep_alive_timer(void* self);
    static void on_close_timer(void* self);

    http::ClientStream* client_;
    ClientLink* link_ = nullptr;
    // Only while the client's input is mid-frame or mid-message: an idle socket holds none.
    std::unique_ptr<FrameParser> parser_;
    std::vector<std::unique_ptr<Sub>> subs_;
    pubsub::Meta meta_; // set-meta control messages: what the subscriptions' filters see
    std::unique_ptr<KeepAlive> keep_alive_;
    std::unique_ptr<Delayed> delayed_; // created by the first send-delayed
    std::unique_ptr<ClientCodec> codec_;
    std::unique_ptr<loop::TimerEntry> heartbeat_;   // the codec's heartbeat, while the client is open
    std::vector<Held> held_;                        // publishes waiting for a relayed message to end
    size_t held_bytes_ = 0;                         // their frames' bytes (gripd-id frames included)
    std::unique_ptr<loop::TimerEntry> close_timer_; // once our close frame is out
    std::string message_prefix_;
    int peer_close_code_ = -1;
    ClientState state_ = ClientState::Handshake;
    // Not lifecycle: the grip extension was negotiated (a feature of the connection, set once).
    bool grip_ = false;
    // Not lifecycle: a relay mode (control message `detach`), orthogonal to the close handshake:
    // a detached session still goes through every ClientState. Set once, never cleared.
    bool detached_ = false;
    // Not lifecycle: backpressure on the client's input, toggled in any open state.
    bool paused_ = false;
};

// The UUID-formatted Connection-Id of a new session.
std::string make_connection_id();

} // namespace gripd::ws
