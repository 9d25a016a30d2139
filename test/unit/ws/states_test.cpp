// The WebSocket layer's named states (src/ws/states.hpp): the transition tables, the close
// handshake steps the sessions use, and the dump() format. The objects themselves need a loop and
// sockets (the integration tests drive them); their tables and steps are tested here, refused
// transitions included, without aborting the test binary.
#include "ws/states.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <utility>
#include <vector>

using namespace gripd::ws;

namespace {
template <typename State> using Edges = std::set<std::pair<State, State>>;

// Every pair of states: the listed edges are allowed, every other pair is refused.
template <typename State> void check_table(int count, const Edges<State>& allowed) {
    for (int f = 0; f < count; ++f)
        for (int t = 0; t < count; ++t) {
            auto from = static_cast<State>(f);
            auto to = static_cast<State>(t);
            INFO(state_name(from) << " -> " << state_name(to));
            CHECK(can_transition(from, to) == (allowed.count({from, to}) == 1));
        }
}

// Walks `steps` from `s`, each one allowed by the table; returns where it ends.
template <typename State> State walk(State s, const std::vector<State>& steps) {
    for (State next : steps) {
        INFO(state_name(s) << " -> " << state_name(next));
        REQUIRE(can_transition(s, next));
        s = next;
    }
    return s;
}
} // namespace

TEST_CASE("states: the client side's table", "[ws][states]") {
    using C = ClientState;
    check_table<C>(7, {
                          {C::Handshake, C::Open},
                          {C::Handshake, C::Ended},
                          {C::Open, C::CloseSent},
                          {C::Open, C::CloseReceived},
                          {C::Open, C::Ended},
                          {C::CloseSent, C::Closed},
                          {C::CloseSent, C::Ended},
                          {C::CloseReceived, C::Closed},
                          {C::CloseReceived, C::Ended},
                          {C::Closed, C::Ended},
                          {C::Ended, C::Finished},
                      });
    // Some of what is refused, by name: no frame before the 101, no reopening, no second end.
    CHECK_FALSE(can_transition(C::Handshake, C::CloseSent));
    CHECK_FALSE(can_transition(C::Closed, C::Open));
    CHECK_FALSE(can_transition(C::Ended, C::Ended));
    CHECK_FALSE(can_transition(C::Finished, C::Ended));
    CHECK_FALSE(can_transition(C::Open, C::Finished)); // the client is let go first
}

TEST_CASE("states: the ws-over-http backend side's table", "[ws][states]") {
    using W = WohState;
    check_table<W>(9, {
                          {W::Opening, W::Open},
                          {W::Opening, W::Disconnecting},
                          {W::Opening, W::Closed},
                          {W::Open, W::CloseQueued},
                          {W::Open, W::CloseReceived},
                          {W::Open, W::Disconnecting},
                          {W::Open, W::Closed},
                          {W::CloseQueued, W::CloseSent},
                          {W::CloseQueued, W::CloseAnswering},
                          {W::CloseQueued, W::Disconnecting},
                          {W::CloseQueued, W::Closed},
                          {W::CloseSent, W::Disconnecting},
                          {W::CloseSent, W::Closed},
                          {W::CloseReceived, W::CloseAnswering},
                          {W::CloseReceived, W::Disconnecting},
                          {W::CloseReceived, W::Closed},
                          {W::CloseAnswering, W::Disconnecting},
                          {W::CloseAnswering, W::Closed},
                          {W::Disconnecting, W::DisconnectSent},
                          {W::Disconnecting, W::Closed},
                          {W::DisconnectSent, W::Closed},
                      });
    CHECK_FALSE(can_transition(W::Opening, W::CloseQueued));          // a close before the OPEN was accepted
    CHECK_FALSE(can_transition(W::DisconnectSent, W::Disconnecting)); // DISCONNECT goes once
    CHECK_FALSE(can_transition(W::Closed, W::Open));
}

TEST_CASE("states: the passthrough relay's and the backend connection's tables", "[ws][states]") {
    using R = RelayState;
    check_table<R>(
        3, {{R::Idle, R::Relaying}, {R::Idle, R::Skipping}, {R::Relaying, R::Idle}, {R::Skipping, R::Idle}});
    CHECK_FALSE(can_transition(R::Relaying, R::Skipping)); // a new message before the last one ended

    using B = BackendWsState;
    check_table<B>(7, {
                          {B::Connecting, B::Open},
                          {B::Connecting, B::Refused},
                          {B::Connecting, B::Ended},
                          {B::Refused, B::Ended},
                          {B::Open, B::CloseSent},
                          {B::Open, B::CloseReceived},
                          {B::Open, B::Ended},
                          {B::CloseSent, B::Closed},
                          {B::CloseSent, B::Ended},
                          {B::CloseReceived, B::Closed},
                          {B::CloseReceived, B::Ended},
                          {B::Closed, B::Ended},
                      });
    CHECK_FALSE(can_transition(B::Refused, B::Open)); // a refusal is final
}

TEST_CASE("states: names", "[ws][states]") {
    CHECK(std::string(state_name(ClientState::CloseReceived)) == "CloseReceived");
    CHECK(std::string(state_name(ClientState::Finished)) == "Finished");
    CHECK(std::string(state_name(WohState::CloseAnswering)) == "CloseAnswering");
    CHECK(std::string(state_name(WohState::Closed)) == "Closed");
    CHECK(std::string(state_name(RelayState::Skipping)) == "Skipping");
    CHECK(std::string(state_name(BackendWsState::Ended)) == "Ended");
    CHECK(std::string(state_name(static_cast<ClientState>(99))) == "?");
    CHECK_FALSE(can_transition(static_cast<ClientState>(99), ClientState::Open));
}

TEST_CASE("states: dump format", "[ws][states]") {
    CHECK(format_dump("Open", {}) == "state=Open");
    CHECK(format_dump(state_name(ClientState::CloseSent), {{"grip", true}, {"detached", false}}) ==
          "state=CloseSent grip=1 detached=0");
    CHECK(format_flags({{"processing", false}}) == " processing=0");
}

TEST_CASE("states: the close handshake steps stay within the tables", "[ws][states]") {
    // Each step either changes the state along an allowed edge or leaves it as it is.
    for (int i = 0; i < 7; ++i) {
        auto s = static_cast<ClientState>(i);
        for (ClientState next : {after_close_sent(s), after_close_received(s)})
            CHECK((next == s || can_transition(s, next)));
        auto b = static_cast<BackendWsState>(i);
        for (BackendWsState next : {after_close_sent(b), after_close_received(b)})
            CHECK((next == b || can_transition(b, next)));
    }
    for (int i = 0; i < 9; ++i) {
        auto s = static_cast<WohState>(i);
        for (WohState next : {after_close_queued(s), after_close_accepted(s), after_peer_close(s)})
            CHECK((next == s || can_transition(s, next)));
    }
    // Nothing closes before it opened, and nothing reopens.
    CHECK(after_close_sent(ClientState::Handshake) == ClientState::Handshake);
    CHECK(after_close_received(ClientState::Ended) == ClientState::Ended);
    CHECK(after_close_queued(WohState::Opening) == WohState::Opening);
    CHECK(after_peer_close(WohState::Disconnecting) == WohState::Disconnecting);
}

TEST_CASE("states: the client closes first", "[ws][states]") {
    // Client side: their close, then ours (the backend's answer), then the connection ends.
    ClientState c = ClientState::Open;
    c = walk(c, {after_close_received(c)});
    CHECK(c == ClientState::CloseReceived);
    c = walk(c, {after_close_sent(c), ClientState::Ended, ClientState::Finished});
    // ws-over-http: our CLOSE is queued, accepted, then the backend's CLOSE ends it.
    WohState w = WohState::Open;
    w = walk(w, {after_close_queued(w)});
    w = walk(w, {after_close_accepted(w)});
    CHECK(w == WohState::CloseSent);
    CHECK(walk(w, {after_peer_close(w)}) == WohState::Closed);
    // passthrough: the backend connection sends our close, then reads the backend's.
    BackendWsState b = BackendWsState::Open;
    b = walk(b, {after_close_sent(b)});
    CHECK(b == BackendWsState::CloseSent);
    CHECK(walk(b, {after_close_received(b)}) == BackendWsState::Closed);
}

TEST_CASE("states: the backend closes first", "[ws][states]") {
    WohState w = WohState::Open;
    w = walk(w, {after_peer_close(w)});
    CHECK(w == WohState::CloseReceived);
    CHECK(is_connected(w));               // the client may still send until it answers
    w = walk(w, {after_close_queued(w)}); // the client's answer becomes our CLOSE
    CHECK(w == WohState::CloseAnswering);
    CHECK(walk(w, {after_close_accepted(w)}) == WohState::Closed);
    // The client is told first and answers.
    ClientState c = ClientState::Open;
    c = walk(c, {after_close_sent(c)});
    CHECK(c == ClientState::CloseSent);
    CHECK(walk(c, {after_close_received(c), ClientState::Ended}) == ClientState::Ended);
    BackendWsState b = BackendWsState::Open;
    b = walk(b, {after_close_received(b)});
    CHECK(walk(b, {after_close_sent(b)}) == BackendWsState::Closed);
}

TEST_CASE("states: both close at once", "[ws][states]") {
    // Our close and theirs cross: either order ends in Closed, on every side.
    ClientState c1 = ClientState::Open;
    c1 = walk(c1, {after_close_sent(c1)});
    c1 = walk(c1, {after_close_received(c1)});
    ClientState c2 = ClientState::Open;
    c2 = walk(c2, {after_close_received(c2)});
    c2 = walk(c2, {after_close_sent(c2)});
    CHECK(c1 == ClientState::Closed);
    CHECK(c2 == ClientState::Closed);
    // ws-over-http: the backend's CLOSE comes before it accepted ours.
    WohState w = WohState::Open;
    w = walk(w, {after_close_queued(w)});
    w = walk(w, {after_peer_close(w)});
    CHECK(w == WohState::CloseAnswering);
    CHECK(walk(w, {after_close_accepted(w)}) == WohState::Closed);
}

TEST_CASE("states: a peer that never answers a close", "[ws][states]") {
    // The client: our close is out, the close timeout ends the connection without their answer.
    ClientState c = ClientState::Open;
    c = walk(c, {after_close_sent(c)});
    CHECK(after_close_sent(c) == c); // no second close frame
    CHECK(walk(c, {ClientState::Ended}) == ClientState::Ended);
    // The backend connection: it ends (EOF or linger) in CloseSent, never reaching Closed.
    BackendWsState b = BackendWsState::Open;
    b = walk(b, {after_close_sent(b), BackendWsState::Ended});
    CHECK(b == BackendWsState::Ended);
    // ws-over-http: our CLOSE accepted, no CLOSE back: the conversation ends (DISCONNECT if the
    // client leaves meanwhile).
    WohState w = WohState::CloseQueued;
    w = walk(w, {after_close_accepted(w)});
    CHECK(w == WohState::CloseSent);
    CHECK(walk(w, {WohState::Disconnecting, WohState::DisconnectSent, WohState::Closed}) == WohState::Closed);
    CHECK(can_transition(WohState::CloseSent, WohState::Closed));
}
