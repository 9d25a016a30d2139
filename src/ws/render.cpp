#include "gripd/ws/render.hpp"

#include "gripd/ws/frame.hpp"

#include <string_view>

namespace gripd::ws {

namespace {

constexpr size_t kControlPayloadMax = 125; // RFC 6455 §5.5

} // namespace

WsOpcode opcode_of(pubsub::WsType t) {
    switch (t) {
    case pubsub::WsType::Binary:
        return WsOpcode::Binary;
    case pubsub::WsType::Ping:
        return WsOpcode::Ping;
    case pubsub::WsType::Pong:
        return WsOpcode::Pong;
    default:
        return WsOpcode::Text;
    }
}

void render_ws_message(const pubsub::WsMessageFormat& f, pubsub::Rendered& out) {
    if (f.action == pubsub::Action::Send) {
        WsOpcode op = opcode_of(f.type);
        std::string_view payload = f.content;
        if (op == WsOpcode::Ping || op == WsOpcode::Pong) payload = payload.substr(0, kControlPayloadMax);
        out.bytes.reserve(payload.size() + 10);
        append_frame(out.bytes, op, payload);
        out.span_offset = out.bytes.size() - payload.size();
        out.span_size = payload.size();
    } else if (f.action == pubsub::Action::Close) {
        int code = f.close_code;
        if (code < 0 && !f.close_reason.empty()) code = kCloseNormal;
        // close_payload() cuts a long reason at 123 bytes on a character boundary (a cut inside a
        // UTF-8 sequence would make every client fail the connection with 1007 instead).
        append_close_frame(out.bytes, code, f.close_reason);
    }
}

} // namespace gripd::ws
