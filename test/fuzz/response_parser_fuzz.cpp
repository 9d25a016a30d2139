// libFuzzer target: ResponseParser on arbitrary bytes. The same input is parsed in one piece, byte by
// byte and in random pieces, then finish() is called; the events must be identical.
#include "gripd/http/response_parser.hpp"
#include "gripd/http/serialize.hpp"

#include "fuzz_util.hpp"

#include <cstdlib>
#include <string>

using namespace gripd::http;

namespace {

struct Trace final : ResponseParser::Handler {
    std::string log;
    std::string body;
    std::vector<ResponseHead> heads;
    std::vector<std::string> bodies;
    void on_response_head(ResponseHead& head) override {
        log += "\nH " + std::to_string(head.status) + ' ' + head.reason + ' ' +
               std::to_string(head.version_major) + '.' + std::to_string(head.version_minor) +
               " cl=" + std::to_string(head.content_length) + " ch=" + std::to_string(head.chunked) +
               " ka=" + std::to_string(head.keep_alive) + " nb=" + std::to_string(head.no_body);
        for (const auto& h : head.headers)
            log += '\n' + h.name + ": " + h.value;
        if (head.status < 100 || (head.status < 200 && head.status != 101)) abort(); // 1xx are skipped
        heads.push_back(std::move(head));
        body.clear();
    }
    void on_response_body(std::string_view data) override {
        if (data.empty()) abort();
        if (!heads.empty() && heads.back().no_body) abort();
        body += data;
    }
    void on_response_complete() override {
        log += "\nB " + body + "\nC";
        bodies.push_back(body);
        body.clear();
    }
};

std::string run(std::string_view input, int mode, uint64_t seed, Trace& trace) {
    ResponseParser::Limits limits;
    limits.max_header_bytes = (seed & 1) != 0 ? 65536 : 64 + (seed >> 8) % 512;
    ResponseParser parser(trace, limits);
    parser.expect_no_body((seed & 2) != 0);
    std::string rest = gripd::fuzz::drive(parser, input, mode, seed);
    auto state = parser.state();
    if (state == ResponseParser::State::Error && parser.error_message() == "message framing mismatch")
        abort();
    bool in_msg = parser.in_message();
    bool fin = parser.finish();
    return trace.log + "\nend " + std::to_string(static_cast<int>(state)) + ' ' +
           std::string(parser.error_message()) + " partial=" + trace.body + " rest=" + rest +
           " in=" + std::to_string(in_msg) + " fin=" + std::to_string(fin);
}

void round_trip(const ResponseHead& head, const std::string& body) {
    if (head.version_minor != 1 || head.no_body || head.status == 101) return;
    if (!head.chunked && head.content_length < 0) return; // close-delimited: needs EOF
    std::string wire;
    serialize_response_head(head.status, head.reason, head.headers, wire);
    if (head.chunked) {
        append_chunk(wire, body);
        append_last_chunk(wire);
    } else {
        wire += body;
    }
    Trace t;
    ResponseParser parser(t, {});
    size_t n = parser.feed(wire.data(), wire.size());
    if (n != wire.size() || parser.state() != ResponseParser::State::Paused || t.heads.size() != 1 ||
        t.heads[0].status != head.status || t.heads[0].headers.size() != head.headers.size() ||
        t.bodies[0] != body)
        abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    uint64_t seed = gripd::fuzz::hash_bytes(data, size);
    Trace a, b, c;
    std::string one = run(input, 0, seed, a);
    std::string bytes = run(input, 1, seed, b);
    std::string random = run(input, 2, seed, c);
    if (one != bytes || one != random) abort();
    for (size_t i = 0; i < a.bodies.size() && i < a.heads.size(); ++i)
        round_trip(a.heads[i], a.bodies[i]);
    return 0;
}
