#include "gripd/ws/frame.hpp"

#include "wslay_util.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace gripd::ws;
using wstest::wslay_read;
using wstest::wslay_render;

namespace {

struct Got {
    WsOpcode opcode;
    WsOpcode type;
    bool fin;
    bool first;
    std::string payload;
};

struct Collector : FrameParser::Handler {
    std::vector<Got> frames;
    bool stop_each = false;
    FrameParser* parser = nullptr;
    void on_frame(const Frame& f) override {
        frames.push_back({f.opcode, f.message_type, f.fin, f.first, std::string(f.payload)});
        if (stop_each) parser->stop();
    }
};

// Feeds `bytes` in pieces of `step` bytes (every split position is exercised by the callers).
size_t feed_in_steps(FrameParser& p, std::string_view bytes, size_t step) {
    size_t used = 0;
    for (size_t i = 0; i < bytes.size(); i += step) {
        size_t n = std::min(step, bytes.size() - i);
        size_t u = p.feed(bytes.data() + i, n);
        used += u;
        if (u < n) break;
    }
    return used;
}

std::string client_frame(uint8_t op, std::string_view payload, bool fin = true) {
    return wslay_render(op, payload, fin, true);
}

std::string masked_frame(WsOpcode op, std::string_view payload) {
    std::string out;
    uint8_t mask[4] = {9, 8, 7, 6};
    append_frame(out, op, payload, true, mask);
    return out;
}

} // namespace

TEST_CASE("frame: masked client frames from wslay, any split", "[ws][frame]") {
    std::string stream = client_frame(1, "hello") + client_frame(2, std::string(300, '\xff')) +
                         client_frame(9, "ping!") + client_frame(2, std::string(70000, 'b')) +
                         client_frame(1, "");
    for (size_t step : {1, 2, 3, 7, 64, 1000, 100000}) {
        Collector c;
        FrameParser p(c, FrameParser::Role::Server, {});
        CAPTURE(step);
        CHECK(feed_in_steps(p, stream, step) == stream.size());
        REQUIRE(c.frames.size() == 5);
        CHECK(c.frames[0].payload == "hello");
        CHECK(c.frames[0].type == WsOpcode::Text);
        CHECK(c.frames[1].payload == std::string(300, '\xff'));
        CHECK(c.frames[2].opcode == WsOpcode::Ping);
        CHECK(c.frames[2].payload == "ping!");
        CHECK(c.frames[3].payload.size() == 70000);
        CHECK(c.frames[4].payload.empty());
        CHECK(p.is_idle());
        CHECK(p.state() == FrameParser::State::Ok);
    }
}

TEST_CASE("frame: fragmented message keeps its type; control frames in between", "[ws][frame]") {
    std::string stream = client_frame(1, "ab", false) + client_frame(9, "p") + client_frame(0, "cd", false) +
                         client_frame(0, "ef", true);
    Collector c;
    FrameParser p(c, FrameParser::Role::Server, {});
    REQUIRE(p.feed(stream.data(), stream.size()) == stream.size());
    REQUIRE(c.frames.size() == 4);
    CHECK(c.frames[0].first);
    CHECK_FALSE(c.frames[0].fin);
    CHECK(c.frames[1].opcode == WsOpcode::Ping);
    CHECK(c.frames[2].opcode == WsOpcode::Continuation);
    CHECK(c.frames[2].type == WsOpcode::Text);
    CHECK_FALSE(c.frames[2].first);
    CHECK(c.frames[3].fin);
    CHECK_FALSE(p.in_message());
}

TEST_CASE("frame: protocol violations", "[ws][frame]") {
    struct Case {
        const char* name;
        std::string bytes;
        int code;
        FrameParser::Role role = FrameParser::Role::Server;
    };
    std::vector<Case> cases = {
        {"unmasked client frame", wslay_render(1, "x", true, false), kCloseProtocolError},
        {"masked server frame", wslay_render(1, "x", true, true), kCloseProtocolError,
         FrameParser::Role::Client},
        {"rsv1", wslay_render(1, "x", true, true, 4), kCloseProtocolError},
        {"reserved opcode 3", client_frame(3, "x"), kCloseProtocolError},
        {"reserved control opcode 0xB", client_frame(0xB, "x"), kCloseProtocolError},
        {"fragmented ping", client_frame(9, "x", false), kCloseProtocolError},
        {"long ping", masked_frame(WsOpcode::Ping, std::string(126, 'p')), kCloseProtocolError},
        {"lone continuation", client_frame(0, "x"), kCloseProtocolError},
        {"new message inside one", client_frame(1, "a", false) + client_frame(2, "b"), kCloseProtocolError},
        {"bad utf-8", client_frame(1, "\xc3\x28"), kCloseInvalidData},
        {"surrogate", client_frame(1, "\xed\xa0\x80"), kCloseInvalidData},
        {"truncated utf-8 at end", client_frame(1, "\xe2\x82"), kCloseInvalidData},
        {"one-byte close", client_frame(8, "\x03"), kCloseProtocolError},
        {"close code 1005", client_frame(8, "\x03\xed"), kCloseProtocolError},
        {"close code 999", client_frame(8, "\x03\xe7"), kCloseProtocolError},
        {"close reason not utf-8", client_frame(8, "\x03\xe8\xff"), kCloseInvalidData},
    };
    for (auto& k : cases) {
        CAPTURE(k.name);
        Collector c;
        FrameParser p(c, k.role, {});
        p.feed(k.bytes.data(), k.bytes.size());
        CHECK(p.state() == FrameParser::State::Error);
        CHECK(p.error_code() == k.code);
    }
}

TEST_CASE("frame: utf-8 split across fragments is fine", "[ws][frame]") {
    std::string euro = "\xe2\x82\xac";
    std::string stream = client_frame(1, euro.substr(0, 1), false) + client_frame(0, euro.substr(1), true);
    Collector c;
    FrameParser p(c, FrameParser::Role::Server, {});
    p.feed(stream.data(), stream.size());
    CHECK(p.state() == FrameParser::State::Ok);
    CHECK(c.frames.size() == 2);
}

TEST_CASE("frame: size limits answer 1009", "[ws][frame]") {
    {
        Collector c;
        FrameParser p(c, FrameParser::Role::Server, {1000, 0});
        std::string f = client_frame(2, std::string(1001, 'x'));
        p.feed(f.data(), f.size());
        CHECK(p.state() == FrameParser::State::Error);
        CHECK(p.error_code() == kCloseTooBig);
    }
    {
        Collector c;
        FrameParser p(c, FrameParser::Role::Server, {1000, 1500});
        std::string f =
            client_frame(2, std::string(1000, 'x'), false) + client_frame(0, std::string(501, 'x'));
        p.feed(f.data(), f.size());
        CHECK(p.state() == FrameParser::State::Error);
        CHECK(p.error_code() == kCloseTooBig);
        CHECK(c.frames.size() == 1);
    }
}

TEST_CASE("frame: the payload buffer follows the bytes received, not the announced length", "[ws][frame]") {
    // Found by test/fuzz/ws_frame_fuzz: the parser reserved the announced length on the first
    // payload byte, so a header announcing a huge frame with no frame limit threw, and one announcing
    // max_frame bytes made an idle connection hold max_frame bytes.
    auto header = [](uint64_t len) {
        std::string h = "\x82\xff"; // final binary frame, masked, 64-bit length
        for (int i = 7; i >= 0; --i)
            h.push_back(static_cast<char>(len >> (8 * i)));
        return h + "\x01\x02\x03\x04" + "abc"; // mask, then 3 payload bytes
    };
    {
        Collector c;
        FrameParser p(c, FrameParser::Role::Server, {0, 0}); // no limits
        std::string f = header(uint64_t(1) << 62);
        CHECK(p.feed(f.data(), f.size()) == f.size());
        CHECK(p.state() == FrameParser::State::Ok);
        CHECK(p.buffer_capacity_for_test() < 1024);
    }
    {
        Collector c;
        FrameParser p(c, FrameParser::Role::Server, {});
        std::string f = header(1 << 20); // the default max_frame
        CHECK(p.feed(f.data(), f.size()) == f.size());
        CHECK(p.state() == FrameParser::State::Ok);
        CHECK(p.buffer_capacity_for_test() < 1024);
        std::string rest(size_t(1 << 20) - 3, 'x');
        CHECK(p.feed(rest.data(), rest.size()) == rest.size());
        CHECK(c.frames.size() == 1);
        CHECK(c.frames[0].payload.size() == size_t(1 << 20));
        CHECK(p.buffer_capacity_for_test() == std::string().capacity()); // released after the frame
    }
}

TEST_CASE("frame: close stops the parser", "[ws][frame]") {
    std::string stream = client_frame(8, "\x0f\xa1"
                                         "bye") +
                         client_frame(1, "after");
    Collector c;
    FrameParser p(c, FrameParser::Role::Server, {});
    size_t used = p.feed(stream.data(), stream.size());
    CHECK(p.state() == FrameParser::State::Closed);
    CHECK(used < stream.size());
    REQUIRE(c.frames.size() == 1);
    ClosePayload cp;
    int code = 0;
    REQUIRE(parse_close_payload(c.frames[0].payload, &cp, &code));
    CHECK(cp.code == 4001);
    CHECK(cp.reason == "bye");
}

TEST_CASE("frame: stop and resume", "[ws][frame]") {
    std::string stream = client_frame(1, "a") + client_frame(1, "b");
    Collector c;
    FrameParser p(c, FrameParser::Role::Server, {});
    c.parser = &p;
    c.stop_each = true;
    size_t used = p.feed(stream.data(), stream.size());
    CHECK(p.state() == FrameParser::State::Stopped);
    CHECK(c.frames.size() == 1);
    p.resume();
    used += p.feed(stream.data() + used, stream.size() - used);
    CHECK(used == stream.size());
    CHECK(c.frames.size() == 2);
}

TEST_CASE("frame: rendering is read back by wslay", "[ws][frame]") {
    std::string out;
    append_frame(out, WsOpcode::Text, "hi");
    append_frame(out, WsOpcode::Binary, std::string(200, 'z'));
    append_frame(out, WsOpcode::Binary, std::string(70000, 'q'));
    uint8_t mask[4] = {1, 2, 3, 4};
    append_frame(out, WsOpcode::Ping, "masked", true, mask);
    append_message(out, WsOpcode::Text, std::string(40000, 'm'), 16384);
    auto frames = wslay_read(out);
    REQUIRE(frames.size() == 7);
    CHECK(frames[0].payload == "hi");
    CHECK(frames[1].payload.size() == 200);
    CHECK(frames[2].payload.size() == 70000);
    CHECK(frames[3].masked);
    CHECK(frames[3].payload == "masked");
    CHECK(frames[4].opcode == 1);
    CHECK_FALSE(frames[4].fin);
    CHECK(frames[4].payload.size() == 16384);
    CHECK(frames[5].opcode == 0);
    CHECK(frames[6].fin);
    CHECK(frames[6].payload.size() == 40000 - 2 * 16384);
}

TEST_CASE("frame: client role parses server frames without copying", "[ws][frame]") {
    std::string out;
    append_message(out, WsOpcode::Binary, std::string(50000, 'k'), 16384);
    Collector c;
    FrameParser p(c, FrameParser::Role::Client, {});
    CHECK(feed_in_steps(p, out, 4096) == out.size());
    REQUIRE(c.frames.size() == 4);
    CHECK(c.frames[3].fin);
}

TEST_CASE("frame: close payload helpers", "[ws][frame]") {
    CHECK(close_payload(-1, "x").empty());
    CHECK(close_payload(1000, "") == std::string("\x03\xe8", 2));
    std::string long_reason(200, 'r');
    CHECK(close_payload(1000, long_reason).size() == 125);
    CHECK(is_valid_close_code(1000));
    CHECK(is_valid_close_code(4999));
    CHECK_FALSE(is_valid_close_code(1006));
    CHECK_FALSE(is_valid_close_code(2000));
    CHECK(is_valid_utf8("h\xc3\xa9llo"));
    CHECK_FALSE(is_valid_utf8("\xc0\xaf"));
    CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));
}

TEST_CASE("frame: a close payload is built and read in one place", "[ws][frame]") {
    // The reason is cut to 123 bytes on a character boundary: a 2-byte character straddling byte
    // 123 is left out whole.
    std::string reason = std::string(122, 'r') + "\xc3\xa9" + "tail";
    std::string p = close_payload(4000, reason);
    CHECK(p.size() == 2 + 122);
    ClosePayload cp;
    int err = 0;
    REQUIRE(parse_close_payload(p, &cp, &err));
    CHECK(cp.code == 4000);
    CHECK(cp.reason == std::string(122, 'r'));
    // A reason that is not UTF-8 is left out, so the peer never has to fail the connection on it.
    CHECK(close_payload(1000, "bad\xff") == std::string("\x03\xe8", 2));
    // The frame carries exactly that payload; no code means an empty close frame.
    std::string f;
    append_close_frame(f, 1001, "bye");
    CHECK(f == std::string("\x88\x05\x03\xe9"
                           "bye",
                           7));
    f.clear();
    append_close_frame(f, -1, "ignored");
    CHECK(f == std::string("\x88\x00", 2));
    // Read back: a 1-byte payload and an unsendable code are refused with 1002, bad UTF-8 with 1007.
    CHECK_FALSE(parse_close_payload(std::string("\x03", 1), &cp, &err));
    CHECK(err == kCloseProtocolError);
    CHECK_FALSE(parse_close_payload(std::string("\x03\xed", 2), &cp, &err)); // 1005
    CHECK(err == kCloseProtocolError);
    CHECK_FALSE(parse_close_payload(std::string("\x03\xe8\xff", 3), &cp, &err));
    CHECK(err == kCloseInvalidData);
    REQUIRE(parse_close_payload("", &cp, &err));
    CHECK(cp.code == kCloseNoStatus);
}
