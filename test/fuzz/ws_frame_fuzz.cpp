// libFuzzer target: the WebSocket FrameParser on arbitrary bytes. The first input byte picks the role
// (a server requires masked frames, a client unmasked ones), the frame and message limits, and after
// which frames the handler stops the parser; the rest is the byte stream. It is parsed in one piece,
// byte by byte and in random pieces: the frames, the final state and the bytes left must be
// identical. Every frame must keep the parser's promises (control frames whole and short with a valid
// close payload, fragments in order, limits, text messages UTF-8), and the frames, rendered again
// with append_frame (masked for the server role), must parse back the same.
#include "gripd/ws/frame.hpp"

#include "fuzz_util.hpp"

#include <cstdlib>
#include <string>
#include <vector>

using namespace gripd::ws;

namespace {

struct Config {
    FrameParser::Role role;
    FrameParser::Limits limits;
    uint8_t stop_bits; // stop after frame i when bit (i % 3) is set
};

Config config_of(uint8_t b) {
    static constexpr uint64_t kFrame[] = {1 << 20, 125, 0, 70000};
    static constexpr uint64_t kMessage[] = {0, 200000, 300, 65536};
    return {(b & 1) ? FrameParser::Role::Client : FrameParser::Role::Server,
            {kFrame[(b >> 1) & 3], kMessage[(b >> 3) & 3]},
            static_cast<uint8_t>(b >> 5)};
}

struct Saved {
    WsOpcode opcode;
    bool fin;
    std::string payload;
};

struct Trace final : FrameParser::Handler {
    const Config& cfg;
    FrameParser* parser = nullptr;
    std::string log;
    std::vector<Saved> frames;
    // The data message in progress.
    bool in_message = false;
    WsOpcode message_type = WsOpcode::Continuation;
    std::string message;

    explicit Trace(const Config& c) : cfg(c) {}

    void on_frame(const Frame& f) override {
        check(f);
        log += "\nF " + std::to_string(static_cast<int>(f.opcode)) + ' ' +
               std::to_string(static_cast<int>(f.message_type)) + ' ' + std::to_string(f.fin) + ' ' +
               std::to_string(f.first) + ' ' + std::string(f.payload);
        frames.push_back({f.opcode, f.fin, std::string(f.payload)});
        if ((cfg.stop_bits >> (frames.size() % 3)) & 1) parser->stop();
    }

    void check(const Frame& f) {
        bool control = (static_cast<uint8_t>(f.opcode) & 0x8) != 0;
        if (control) {
            if (f.opcode != WsOpcode::Close && f.opcode != WsOpcode::Ping && f.opcode != WsOpcode::Pong)
                abort();
            if (!f.fin || !f.first || f.message_type != f.opcode || f.payload.size() > 125) abort();
            ClosePayload cp;
            int code = 0;
            if (f.opcode == WsOpcode::Close && !parse_close_payload(f.payload, &cp, &code)) abort();
            return;
        }
        if (f.first != (f.opcode != WsOpcode::Continuation) || f.first == in_message) abort();
        if (f.first) {
            message_type = f.opcode;
            message.clear();
        }
        if (f.message_type != message_type) abort();
        if (message_type != WsOpcode::Text && message_type != WsOpcode::Binary) abort();
        if (cfg.limits.max_frame && f.payload.size() > cfg.limits.max_frame) abort();
        message += f.payload;
        if (cfg.limits.max_message && message.size() > cfg.limits.max_message) abort();
        in_message = !f.fin;
        if (f.fin && message_type == WsOpcode::Text && !is_valid_utf8(message)) abort();
    }
};

std::string run(std::string_view input, int mode, uint64_t seed, const Config& cfg, Trace& trace) {
    FrameParser parser(trace, cfg.role, cfg.limits);
    trace.parser = &parser;
    std::string rest =
        gripd::fuzz::drive<FrameParser, FrameParser::State::Stopped>(parser, input, mode, seed);
    auto state = parser.state();
    if (state == FrameParser::State::Error) {
        int code = parser.error_code();
        if (code != kCloseProtocolError && code != kCloseInvalidData && code != kCloseTooBig) abort();
        if (code == kCloseTooBig && !cfg.limits.max_frame && !cfg.limits.max_message) abort();
    }
    if (state == FrameParser::State::Closed &&
        (trace.frames.empty() || trace.frames.back().opcode != WsOpcode::Close))
        abort();
    if (state == FrameParser::State::Ok && parser.in_message() != trace.in_message) abort();
    if (state == FrameParser::State::Closed || state == FrameParser::State::Error) {
        if (parser.feed("\x81\x80", 2) != 0) abort(); // nothing may follow
    }
    return trace.log + "\nend " + std::to_string(static_cast<int>(state)) + ' ' +
           std::to_string(parser.error_code()) + ' ' + parser.error_message() + " rest=" + rest;
}

// Renders the frames again and parses them in one piece without stops: the same frames, and no error.
void round_trip(const Config& cfg, const Trace& original) {
    std::string wire;
    uint8_t mask[4] = {0x5a, 0x01, 0xff, 0x80};
    for (const auto& f : original.frames)
        append_frame(wire, f.opcode, f.payload, f.fin,
                     cfg.role == FrameParser::Role::Server ? mask : nullptr);
    Config again = cfg;
    again.stop_bits = 0;
    Trace t(again);
    FrameParser parser(t, cfg.role, cfg.limits);
    t.parser = &parser;
    size_t n = parser.feed(wire.data(), wire.size());
    bool closed = !original.frames.empty() && original.frames.back().opcode == WsOpcode::Close;
    auto want = closed ? FrameParser::State::Closed : FrameParser::State::Ok;
    if (n != wire.size() || parser.state() != want || t.log != original.log) abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    Config cfg = config_of(data[0]);
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    uint64_t seed = gripd::fuzz::hash_bytes(data, size);
    Trace a(cfg), b(cfg), c(cfg);
    std::string one = run(input, 0, seed, cfg, a);
    std::string bytes = run(input, 1, seed, cfg, b);
    std::string random = run(input, 2, seed, cfg, c);
    if (one != bytes || one != random) abort();
    round_trip(cfg, a);
    return 0;
}
