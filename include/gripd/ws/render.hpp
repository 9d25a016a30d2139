// The ws-message format in WebSocket bytes: ws is its renderer for pubsub (pubsub/render.hpp),
// installed in pubsub::Renderers and called once per message (not per subscriber) when the message
// is created. Sessions then write the frame as it is to every subscribed client.
#pragma once

#include "gripd/pubsub/publish.hpp"
#include "gripd/pubsub/render.hpp"
#include "gripd/ws/frame.hpp"

namespace gripd::ws {

// One unmasked server frame (FIN set):
//  - send: a text, binary, ping or pong frame carrying the content (ping and pong payloads cut to
//    125 bytes); the span is the payload;
//  - close: a close frame with no payload when the item has neither code nor reason, else the 2-byte
//    code (1000 when only a reason is given) and the reason cut to 123 bytes;
//  - hint, refresh: nothing.
// The frame opcode of a published ws-message type.
WsOpcode opcode_of(pubsub::WsType type);

void render_ws_message(const pubsub::WsMessageFormat& format, pubsub::Rendered& out);

} // namespace gripd::ws
