// The client side of WebSockets (RFC 6455) for the load generator, written here rather than taken
// from gripd so that the benchmark does not test gripd against itself: the opening handshake's key
// and expected accept value, masked frames for what the client sends, and a reader for the frames
// a server sends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rtb {

namespace ws_op {
constexpr uint8_t kContinuation = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA;
}

// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string ws_new_key();
// The Sec-WebSocket-Accept a server must answer `key` with: base64(SHA-1(key + the RFC's GUID)).
std::string ws_accept_for(std::string_view key);
// The upgrade request for `path` (RFC 6455 §4.1).
std::string ws_handshake_request(std::string_view path, std::string_view host, std::string_view key);
// Appends one final frame, masked with a random key as every client frame must be (§5.3).
void ws_append_client_frame(std::string& out, uint8_t opcode, std::string_view payload);

// Reads a server's frames incrementally. Data payloads are streamed out as they arrive (nothing is
// buffered for them); control frames (at most 125 bytes) are gathered and handed over whole.
class WsFrameReader {
  public:
    struct Handler {
        virtual ~Handler() = default;
        // Payload bytes of text, binary and continuation frames, in order.
        virtual void on_ws_data(const char* p, size_t n) = 0;
        // A whole ping, pong or close frame. Return false to stop reading (the connection closes).
        virtual bool on_ws_control(uint8_t opcode, std::string_view payload) = 0;
    };

    // False on a protocol violation by the server (see error()) or when a handler stopped it.
    bool feed(const char* p, size_t n, Handler& h);
    // Why feed() failed ("" when a handler stopped it).
    const char* error() const { return error_; }

  private:
    bool start_frame();
    bool fail(const char* why) {
        error_ = why;
        return false;
    }

    uint8_t header_[10] = {};
    uint8_t header_len_ = 0;
    uint8_t header_need_ = 2;
    uint8_t opcode_ = 0;
    bool in_payload_ = false;
    bool in_message_ = false; // inside a fragmented data message
    uint64_t left_ = 0;       // payload bytes of the current frame still to come
    std::string control_;     // the payload of a control frame being gathered
    const char* error_ = "";
};

} // namespace rtb
