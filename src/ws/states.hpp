// The named states of the WebSocket layer, one enum per object, each with its transition table.
//
// Rules (as h2o names its http1 states and nginx swaps a connection's handler):
//  1. An object's lifecycle is one of these enums, never a set of booleans. What is left as a
//     boolean is not lifecycle (a negotiated feature, backpressure, a re-entrancy guard) and says so
//     where it is declared.
//  2. The state changes only through the object's one transition function, which asks
//     can_transition(from, to): an impossible transition aborts debug and sanitizer builds
//     (GRIPD_ASSERT) and, in a release build, is refused (GRIPD_CHECK: logged and counted) so that
//     the caller drops the connection instead of going on in a state nobody planned for.
//  3. The tables are pure (no I/O) so that tests check them directly, refused transitions included.
//  4. dump() on each object prints "state=<name>" and its remaining flags, for tests and debug logs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace gripd::ws {

// The client side of every Session (the RFC 6455 close handshake, then the session's end).
enum class ClientState : uint8_t {
    Handshake,     // the client waits for the answer to its upgrade
    Open,          // 101 sent: frames both ways
    CloseSent,     // our close frame is out; theirs is awaited (bounded by the close timeout)
    CloseReceived, // their close frame came first; ours follows once the backend side has closed
    Closed,        // both close frames exchanged: the connection ends after flushing
    Ended,         // the client connection is gone; the backend side may still be finishing
    Finished,      // the session is over (freed after this loop iteration)
};

// The backend side of a WohSession: the WebSocket-over-HTTP conversation (PROTOCOL.md §5.2).
enum class WohState : uint8_t {
    Opening,        // the OPEN request (or its retry, or the next target) is under way
    Open,           // events both ways
    CloseQueued,    // we owe the backend a CLOSE (the client closed first, detach, publish close)
    CloseSent,      // the backend accepted our CLOSE; its own CLOSE ends the conversation
    CloseReceived,  // the backend sent CLOSE first; the client's answer becomes our CLOSE
    CloseAnswering, // both: the backend's CLOSE came and ours is queued; its acceptance ends it
    Disconnecting,  // the client is gone (or was cut off): a DISCONNECT is to be sent
    DisconnectSent, // the DISCONNECT is in flight; its answer ends the conversation
    Closed,         // the backend side is done
};

// What a PassthroughSession does with the backend's current data message.
enum class RelayState : uint8_t {
    Idle,     // between messages
    Relaying, // a message is half relayed to the client: publishes wait (they would interleave)
    Skipping, // the rest of a message is dropped (unprefixed, control, or nobody to relay to)
};

// A BackendWsConn, the passthrough's WebSocket client towards the backend.
enum class BackendWsState : uint8_t {
    Connecting,    // connecting, or the handshake is sent and its answer is being read
    Refused,       // the backend answered with something else than 101: its body is being read
    Open,          // 101 checked: frames both ways
    CloseSent,     // our close frame is out; theirs is awaited
    CloseReceived, // their close frame came first; ours is up to the user
    Closed,        // both close frames exchanged: the connection ends after flushing
    Ended,         // the connection failed, was refused or closed: no more frames either way
};

// Whether an object may go from `from` to `to`. A state never "transitions" to itself.
bool can_transition(ClientState from, ClientState to);
bool can_transition(WohState from, WohState to);
bool can_transition(RelayState from, RelayState to);
bool can_transition(BackendWsState from, BackendWsState to);

// The state's name as written in the enum (for dump() and logs).
const char* state_name(ClientState s);
const char* state_name(WohState s);
const char* state_name(RelayState s);
const char* state_name(BackendWsState s);

// The close handshake, shared by both ends of a WebSocket: the state after our close frame went
// out, or after theirs came in. Open -> CloseSent / CloseReceived -> Closed; any other state is
// returned unchanged (the caller's transition function then refuses nothing, as nothing changes).
ClientState after_close_sent(ClientState s);
ClientState after_close_received(ClientState s);
BackendWsState after_close_sent(BackendWsState s);
BackendWsState after_close_received(BackendWsState s);

// The WebSocket-over-HTTP close sequence: the state after we decide to send CLOSE (Open ->
// CloseQueued, CloseReceived -> CloseAnswering), after the backend accepted our CLOSE
// (CloseQueued -> CloseSent, CloseAnswering -> Closed) and after the backend's CLOSE came
// (Open -> CloseReceived, CloseQueued -> CloseAnswering, CloseSent -> Closed). Other states are
// returned unchanged.
WohState after_close_queued(WohState s);
WohState after_close_accepted(WohState s);
WohState after_peer_close(WohState s);
// Events flow (the OPEN was accepted and the client has not gone).
bool is_connected(WohState s);
// The client is gone: only a DISCONNECT (or its answer) is left to do.
bool is_disconnecting(WohState s);

// Checks a transition: GRIPD_ASSERT in debug builds, GRIPD_CHECK (false, logged) in release.
// `what` names the object in the log line.
bool check_transition(bool allowed, const char* what, const char* from, const char* to);

using DumpFlags = std::initializer_list<std::pair<const char*, bool>>;
// " <flag>=0|1" for each flag.
std::string format_flags(DumpFlags flags);
// The body of every object's one transition function: moves `state` to `to` if the table allows it,
// else refuses (see check_transition) and leaves it as it is.
template <typename State> bool enter_state(State& state, State to, const char* what) {
    if (!check_transition(can_transition(state, to), what, state_name(state), state_name(to))) return false;
    state = to;
    return true;
}

// "state=<name>" and its flags: the format of every dump().
std::string format_dump(const char* state, DumpFlags flags);

} // namespace gripd::ws
