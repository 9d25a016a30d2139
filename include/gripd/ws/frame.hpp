// WebSocket framing (RFC 6455 §5), sans-I/O: bytes in, validated frames out; frames rendered into
// caller-owned strings.
//
// FrameParser enforces the protocol rules of one direction:
//  - masking: a server (Role::Server) requires masked frames from its client, a client
//    (Role::Client) requires unmasked frames from its server (§5.1);
//  - RSV bits must be 0 (no extension is ever negotiated with a peer), reserved opcodes are refused;
//  - control frames: FIN set, payload <= 125 bytes; close payloads: no 1-byte payload, a valid code,
//    a UTF-8 reason;
//  - fragmentation: continuation frames only inside a message, no new data frame inside one;
//  - text messages are valid UTF-8 (checked incrementally across fragments);
//  - size limits per frame and per message (close code 1009).
// A violation stops the parser with state Error and the close code to send (1002, 1007 or 1009).
//
// Memory: between frames the parser holds nothing but a few integers; a frame's payload is gathered
// (and unmasked) in an owned buffer only while it is incomplete or masked, and released afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gripd::ws {

// Frame opcodes (RFC 6455 §5.2).
enum class WsOpcode : uint8_t {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA
};

// Close codes (RFC 6455 §7.4.1).
constexpr int kCloseNormal = 1000;
constexpr int kCloseGoingAway = 1001;
constexpr int kCloseProtocolError = 1002;
constexpr int kCloseUnsupportedData = 1003;
constexpr int kCloseNoStatus = 1005; // never on the wire: "the close frame had no code"
constexpr int kCloseAbnormal = 1006; // never on the wire: "no close frame at all"
constexpr int kCloseInvalidData = 1007;
constexpr int kClosePolicy = 1008;
constexpr int kCloseTooBig = 1009;
constexpr int kCloseInternalError = 1011;

// Whether `code` may appear in a close frame (1000-1003, 1007-1014, 3000-4999).
bool is_valid_close_code(int code);

// Incremental UTF-8 validation (rejects overlong forms, surrogates and code points > U+10FFFF).
class Utf8Validator {
  public:
    // False as soon as the bytes so far cannot start valid UTF-8.
    bool feed(std::string_view data);
    // True when the bytes so far end on a character boundary.
    bool complete() const { return need_ == 0; }
    void reset() { need_ = 0, lower_ = 0x80, upper_ = 0xBF; }

  private:
    uint8_t need_ = 0; // continuation bytes still expected
    uint8_t lower_ = 0x80;
    uint8_t upper_ = 0xBF;
};

bool is_valid_utf8(std::string_view data);

struct Frame {
    WsOpcode opcode;          // as on the wire (Continuation for later fragments)
    WsOpcode message_type;    // data frames: the message's Text or Binary; control frames: == opcode
    bool fin = true;          // last frame of its message
    bool first = true;        // first frame of its message (always true for control frames)
    std::string_view payload; // unmasked; valid only during the callback
};

// A parsed close payload.
struct ClosePayload {
    int code = kCloseNoStatus; // kCloseNoStatus when the frame had no code
    std::string_view reason;
};
// Splits a close frame payload; false if it is invalid (1 byte, bad code, reason not UTF-8).
// *error_code tells which close code answers it (1002 or 1007).
bool parse_close_payload(std::string_view payload, ClosePayload* out, int* error_code);

class FrameParser {
  public:
    enum class Role : uint8_t { Server, Client };
    struct Limits {
        uint64_t max_frame = 1 << 20; // payload bytes of one frame
        uint64_t max_message = 0;     // bytes of one (reassembled) data message; 0 = no limit
    };
    // The handler must not destroy the parser from inside on_frame (stop() is allowed).
    struct Handler {
        virtual ~Handler() = default;
        virtual void on_frame(const Frame& frame) = 0;
    };
    enum class State : uint8_t { Ok, Closed, Stopped, Error };

    FrameParser(Handler& handler, Role role, Limits limits)
        : handler_(handler), limits_(limits), role_(role) {}
    FrameParser(const FrameParser&) = delete;
    FrameParser& operator=(const FrameParser&) = delete;

    // Parses up to len bytes and returns how many were consumed. Stops after a close frame (state
    // Closed: nothing may follow it), after stop() was called from on_frame (state Stopped, resume()
    // continues), or on a protocol error (state Error). Returns 0 unless state() is Ok.
    size_t feed(const char* data, size_t len);
    // Callable from on_frame: stop after this frame.
    void stop() { stop_requested_ = true; }
    // Continues after Stopped.
    void resume() {
        if (state_ == State::Stopped) state_ = State::Ok;
    }
    State state() const { return state_; }
    // The close code answering the error (1002, 1007 or 1009) and a short text for logs.
    int error_code() const { return error_code_; }
    const char* error_message() const { return error_message_; }
    // Between frames with nothing buffered.
    bool is_idle() const { return header_len_ == 0 && !in_payload_; }
    // Inside a fragmented data message.
    bool in_message() const { return message_type_ != 0; }
    void set_limits(Limits limits) { limits_ = limits; }
    // Bytes the parser's payload buffer holds allocated.
    size_t buffer_capacity_for_test() const { return buffer_.capacity(); }

  private:
    bool fail(int code, const char* message);
    bool start_frame(); // header complete: validate it
    bool finish_frame(std::string_view payload);
    void release_buffer();

    Handler& handler_;
    Limits limits_;
    Role role_;
    State state_ = State::Ok;
    bool stop_requested_ = false;
    bool in_payload_ = false;
    uint8_t header_len_ = 0; // header bytes gathered so far
    uint8_t header_need_ = 2;
    uint8_t header_[14] = {};
    // The current frame.
    bool fin_ = false;
    bool masked_ = false;
    uint8_t opcode_ = 0;
    uint8_t mask_[4] = {};
    uint64_t length_ = 0;
    uint64_t received_ = 0; // payload bytes seen of this frame
    std::string buffer_;    // gathered (unmasked) payload of an incomplete or masked frame
    // The message in progress (0 = none).
    uint8_t message_type_ = 0;
    uint64_t message_bytes_ = 0;
    Utf8Validator utf8_;
    int error_code_ = 0;
    const char* error_message_ = "";
};

// Appends one frame. `mask` (4 bytes) masks the payload, as a client must; nullptr for a server.
void append_frame(std::string& out, WsOpcode opcode, std::string_view payload, bool fin = true,
                  const uint8_t* mask = nullptr);
// Appends a whole message split into frames of at most `max_frame` payload bytes (Pushpin relays
// backend messages in frames of at most 16384 bytes). An empty message is one empty frame.
void append_message(std::string& out, WsOpcode type, std::string_view data, size_t max_frame,
                    const uint8_t* mask = nullptr);
// The payload of a close frame, the one place it is built: nothing for code < 0, else the 2-byte
// code and the reason, cut to 123 bytes on a character boundary (the payload stays within 125). A
// reason that is not UTF-8 is left out (the peer would have to fail the connection on it).
// parse_close_payload() is the one place it is read.
std::string close_payload(int code, std::string_view reason);
// Appends a close frame carrying close_payload(code, reason); `mask` as for append_frame.
void append_close_frame(std::string& out, int code, std::string_view reason, const uint8_t* mask = nullptr);
// Fills `mask` with 4 random bytes (for client frames).
void random_mask(uint8_t mask[4]);

} // namespace gripd::ws
