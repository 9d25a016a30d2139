// libFuzzer target: RequestParser on arbitrary bytes. The same input is parsed in one piece, byte by
// byte and in random pieces; the events must be identical. Each parsed request is serialized again and
// must parse back to the same head and body.
#include "gripd/http/request_parser.hpp"
#include "gripd/http/serialize.hpp"

#include "fuzz_util.hpp"

#include <cstdlib>
#include <string>

using namespace gripd::http;

namespace {

struct Trace final : RequestParser::Handler {
    std::string log;
    std::string body;
    std::vector<RequestHead> heads;
    std::vector<std::string> bodies;
    void on_request_head(RequestHead& head) override {
        log += "\nH " + head.method + ' ' + head.target + ' ' + std::to_string(head.version_major) + '.' +
               std::to_string(head.version_minor) + " cl=" + std::to_string(head.content_length) +
               " ch=" + std::to_string(head.chunked) + " ka=" + std::to_string(head.keep_alive) +
               " ec=" + std::to_string(head.expect_continue) + " up=" + std::to_string(head.upgrade);
        for (const auto& h : head.headers)
            log += '\n' + h.name + ": " + h.value;
        heads.push_back(std::move(head));
        body.clear();
    }
    void on_request_body(std::string_view data) override {
        if (data.empty()) abort();
        body += data;
    }
    void on_request_complete() override {
        log += "\nB " + body + "\nC";
        bodies.push_back(body);
        body.clear();
    }
};

std::string run(std::string_view input, int mode, uint64_t seed, RequestParser::Limits limits, Trace& trace) {
    RequestParser parser(trace, limits);
    std::string rest = gripd::fuzz::drive(parser, input, mode, seed);
    auto state = parser.state();
    if (state == RequestParser::State::Error) {
        if (parser.error_message() == "message framing mismatch") abort(); // scanner and llhttp disagree
        int s = parser.error_status();
        if (s != 400 && s != 414 && s != 431 && s != 501 && s != 505) abort();
    }
    bool in_msg = parser.in_message();
    bool fin = parser.finish();
    if (state == RequestParser::State::Error ? fin : fin == in_msg) abort();
    return trace.log + "\nend " + std::to_string(static_cast<int>(state)) + ' ' +
           std::to_string(parser.error_status()) + ' ' + std::string(parser.error_message()) +
           " partial=" + trace.body + " rest=" + rest + " in=" + std::to_string(in_msg);
}

void round_trip(const RequestHead& head, const std::string& body, bool require_host) {
    if (head.version_minor != 1 || head.upgrade) return;
    std::string wire;
    serialize_request_head(head.method, head.target, head.headers, wire);
    if (head.chunked) {
        append_chunk(wire, body);
        append_last_chunk(wire);
    } else {
        wire += body;
    }
    Trace t;
    RequestParser parser(t, {65536, require_host});
    size_t n = parser.feed(wire.data(), wire.size());
    if (n != wire.size() || parser.state() != RequestParser::State::Paused || t.heads.size() != 1) abort();
    const RequestHead& h = t.heads[0];
    if (h.method != head.method || h.target != head.target || h.content_length != head.content_length ||
        h.chunked != head.chunked || h.keep_alive != head.keep_alive ||
        h.headers.size() != head.headers.size() || t.bodies[0] != body)
        abort();
    for (size_t i = 0; i < h.headers.size(); ++i)
        if (h.headers.items()[i].name != head.headers.items()[i].name ||
            h.headers.items()[i].value != head.headers.items()[i].value)
            abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    uint64_t seed = gripd::fuzz::hash_bytes(data, size);
    RequestParser::Limits limits;
    limits.max_header_bytes = (seed & 1) != 0 ? 8192 : 64 + (seed >> 8) % 512;
    limits.require_host = (seed & 2) != 0;
    Trace a, b, c;
    std::string one = run(input, 0, seed, limits, a);
    std::string bytes = run(input, 1, seed, limits, b);
    std::string random = run(input, 2, seed, limits, c);
    if (one != bytes || one != random) abort();
    for (size_t i = 0; i < a.bodies.size() && i < a.heads.size(); ++i)
        round_trip(a.heads[i], a.bodies[i], limits.require_host);
    return 0;
}
