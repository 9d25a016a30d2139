// ClientCodec: an optional re-framing of what a ws Session exchanges with its client, for protocols
// carried inside WebSocket messages (SockJS's framed WebSocket transport, src/sockjs). The session
// keeps its WebSocket framing and close handshake; the codec only rewrites data messages.
#pragma once

#include "gripd/ws/frame.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace gripd::ws {

class ClientCodec {
  public:
    virtual ~ClientCodec() = default;
    // Frames written to the client once the handshake is answered (SockJS: "o").
    virtual std::string opening() = 0;
    // Frames written every heartbeat_ms() while the client is open (0: none).
    virtual uint64_t heartbeat_ms() const = 0;
    virtual std::string heartbeat() = 0;
    // Server frame bytes the session would write (whole frames, or one message's fragments over
    // several calls) -> the frames to write instead, appended to `out`. False: a message too large
    // to re-frame (the caller ends the connection).
    virtual bool encode(std::string_view frames, std::string& out) = 0;
    // One data frame from the client -> the messages it carries, once its message is complete (the
    // frames of a message come in order). False: not a valid payload (the caller ends the connection).
    virtual bool decode(const Frame& frame, std::vector<std::string>& messages) = 0;
};

} // namespace gripd::ws
