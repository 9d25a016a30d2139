#include "states.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"

namespace gripd::ws {

namespace {
// A transition table: for each state (its index), the set of states it may go to (bit i = state i).
template <typename State> constexpr uint32_t bit(State s) {
    return 1u << static_cast<unsigned>(s);
}
template <typename State, typename... Rest> constexpr uint32_t bits(State s, Rest... rest) {
    return (bit(s) | ... | bit(rest));
}
template <typename State, size_t N> bool allowed(const uint32_t (&table)[N], State from, State to) {
    auto i = static_cast<size_t>(from);
    return i < N && (table[i] & bit(to)) != 0;
}

using C = ClientState;
constexpr uint32_t kClientTable[] = {
    /* Handshake     */ bits(C::Open, C::Ended),
    /* Open          */ bits(C::CloseSent, C::CloseReceived, C::Ended),
    /* CloseSent     */ bits(C::Closed, C::Ended),
    /* CloseReceived */ bits(C::Closed, C::Ended),
    /* Closed        */ bits(C::Ended),
    /* Ended         */ bits(C::Finished),
    /* Finished      */ 0,
};

using W = WohState;
constexpr uint32_t kWohTable[] = {
    /* Opening        */ bits(W::Open, W::Disconnecting, W::Closed),
    /* Open           */ bits(W::CloseQueued, W::CloseReceived, W::Disconnecting, W::Closed),
    /* CloseQueued    */ bits(W::CloseSent, W::CloseAnswering, W::Disconnecting, W::Closed),
    /* CloseSent      */ bits(W::Disconnecting, W::Closed),
    /* CloseReceived  */ bits(W::CloseAnswering, W::Disconnecting, W::Closed),
    /* CloseAnswering */ bits(W::Disconnecting, W::Closed),
    /* Disconnecting  */ bits(W::DisconnectSent, W::Closed),
    /* DisconnectSent */ bits(W::Closed),
    /* Closed         */ 0,
};

using R = RelayState;
constexpr uint32_t kRelayTable[] = {
    /* Idle     */ bits(R::Relaying, R::Skipping),
    /* Relaying */ bits(R::Idle),
    /* Skipping */ bits(R::Idle),
};

using B = BackendWsState;
constexpr uint32_t kBackendTable[] = {
    /* Connecting    */ bits(B::Open, B::Refused, B::Ended),
    /* Refused       */ bits(B::Ended),
    /* Open          */ bits(B::CloseSent, B::CloseReceived, B::Ended),
    /* CloseSent     */ bits(B::Closed, B::Ended),
    /* CloseReceived */ bits(B::Closed, B::Ended),
    /* Closed        */ bits(B::Ended),
    /* Ended         */ 0,
};

template <size_t N> const char* name_of(const char* const (&names)[N], size_t i) {
    return i < N ? names[i] : "?";
}
} // namespace

bool can_transition(ClientState from, ClientState to) {
    return allowed(kClientTable, from, to);
}
bool can_transition(WohState from, WohState to) {
    return allowed(kWohTable, from, to);
}
bool can_transition(RelayState from, RelayState to) {
    return allowed(kRelayTable, from, to);
}
bool can_transition(BackendWsState from, BackendWsState to) {
    return allowed(kBackendTable, from, to);
}

const char* state_name(ClientState s) {
    static constexpr const char* kNames[] = {"Handshake", "Open",  "CloseSent", "CloseReceived",
                                             "Closed",    "Ended", "Finished"};
    return name_of(kNames, static_cast<size_t>(s));
}
const char* state_name(WohState s) {
    static constexpr const char* kNames[] = {"Opening",       "Open",           "CloseQueued",
                                             "CloseSent",     "CloseReceived",  "CloseAnswering",
                                             "Disconnecting", "DisconnectSent", "Closed"};
    return name_of(kNames, static_cast<size_t>(s));
}
const char* state_name(RelayState s) {
    static constexpr const char* kNames[] = {"Idle", "Relaying", "Skipping"};
    return name_of(kNames, static_cast<size_t>(s));
}
const char* state_name(BackendWsState s) {
    static constexpr const char* kNames[] = {"Connecting",    "Refused", "Open", "CloseSent",
                                             "CloseReceived", "Closed",  "Ended"};
    return name_of(kNames, static_cast<size_t>(s));
}

namespace {
// RFC 6455's close handshake, the same at both ends: Open -> `half`; the other half -> Closed.
template <typename State> State close_step(State s, State half, State other_half) {
    return s == State::Open ? half : s == other_half ? State::Closed : s;
}
} // namespace

ClientState after_close_sent(ClientState s) {
    return close_step(s, C::CloseSent, C::CloseReceived);
}
ClientState after_close_received(ClientState s) {
    return close_step(s, C::CloseReceived, C::CloseSent);
}
BackendWsState after_close_sent(BackendWsState s) {
    return close_step(s, B::CloseSent, B::CloseReceived);
}
BackendWsState after_close_received(BackendWsState s) {
    return close_step(s, B::CloseReceived, B::CloseSent);
}

WohState after_close_queued(WohState s) {
    return s == W::Open ? W::CloseQueued : s == W::CloseReceived ? W::CloseAnswering : s;
}
WohState after_close_accepted(WohState s) {
    return s == W::CloseQueued ? W::CloseSent : s == W::CloseAnswering ? W::Closed : s;
}
WohState after_peer_close(WohState s) {
    switch (s) {
    case W::Open:
        return W::CloseReceived;
    case W::CloseQueued:
        return W::CloseAnswering;
    case W::CloseSent:
        return W::Closed;
    default:
        return s;
    }
}
bool is_connected(WohState s) {
    return s == W::Open || s == W::CloseQueued || s == W::CloseSent || s == W::CloseReceived ||
           s == W::CloseAnswering;
}
bool is_disconnecting(WohState s) {
    return s == W::Disconnecting || s == W::DisconnectSent;
}

bool check_transition(bool ok, const char* what, const char* from, const char* to) {
    if (!ok) LOG_ERROR("ws", "%s: refused state transition %s -> %s", what, from, to);
    GRIPD_ASSERT(ok);
    return GRIPD_CHECK(ok);
}

std::string format_dump(const char* state, DumpFlags flags) {
    return std::string("state=") + state + format_flags(flags);
}

std::string format_flags(DumpFlags flags) {
    std::string out;
    for (const auto& [name, on] : flags) {
        out += ' ';
        out += name;
        out += on ? "=1" : "=0";
    }
    return out;
}

} // namespace gripd::ws
