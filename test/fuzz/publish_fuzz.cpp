// libFuzzer target: the control API's publish body parser and the rendering of what it accepts (by
// the renderers app::Server installs: grip's for http-response and http-stream, ws's for ws-message).
// Checks: a rejected body always says why; every accepted item renders without failing, and what it
// renders is well formed: an http-stream chunk's size line matches its content, a ws-message frame's
// header matches its payload, and an http-response answer parses back as exactly one complete HTTP
// response with the published code and body.
#include "gripd/grip/render.hpp"
#include "gripd/http/response_parser.hpp"
#include "gripd/pubsub/message.hpp"
#include "gripd/pubsub/publish.hpp"
#include "gripd/pubsub/render.hpp"
#include "gripd/ws/render.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace gripd;

namespace {

void check_chunk(const pubsub::Message::StreamPart& s) {
    if (s.chunk.empty()) {
        if (!s.content().empty()) abort();
        return;
    }
    size_t crlf = s.chunk.find("\r\n");
    if (crlf == std::string::npos) abort();
    size_t size = std::strtoul(s.chunk.substr(0, crlf).c_str(), nullptr, 16);
    if (size == 0 || size != s.content().size()) abort(); // an empty chunk would end the response
    if (s.chunk.size() != crlf + 2 + size + 2 || s.chunk.compare(s.chunk.size() - 2, 2, "\r\n") != 0) abort();
}

void check_frame(const pubsub::Message::WsPart& w) {
    if (w.frame.empty()) return; // hint / refresh
    const auto* b = reinterpret_cast<const uint8_t*>(w.frame.data());
    if (w.frame.size() < 2 || !(b[0] & 0x80) || (b[1] & 0x80)) abort(); // FIN set, unmasked
    uint64_t len = b[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
        len = (uint64_t{b[2]} << 8) | b[3];
        hdr = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i)
            len = (len << 8) | b[2 + i];
        hdr = 10;
    }
    if (hdr + len != w.frame.size()) abort();
    if (w.action == pubsub::Action::Send && w.payload().size() != len) abort(); // close: code + reason
    if ((b[0] & 0x08) && len > 125) abort();                                    // control frames are short
}

struct OneResponse final : http::ResponseParser::Handler {
    int heads = 0, completes = 0, code = 0;
    std::string body;
    void on_response_head(http::ResponseHead& head) override {
        ++heads;
        code = head.status;
    }
    void on_response_body(std::string_view data) override { body += data; }
    void on_response_complete() override { ++completes; }
};

void check_response(const pubsub::Message& m) {
    const auto* r = m.http_response();
    if (r->action != pubsub::Action::Send) return;
    std::string out;
    grip::append_held_response(*r, http::Headers{}, grip::ResponseOptions{}, out);
    OneResponse h;
    http::ResponseParser parser(h, http::ResponseParser::Limits{});
    size_t used = parser.feed(out.data(), out.size());
    bool bodiless = r->code < 200 || r->code == 204 || r->code == 304;
    if (bodiless) return; // 1xx/204/304 carry neither length nor body: nothing more to compare
    if (used != out.size() || h.heads != 1 || h.completes != 1 || h.code != r->code || h.body != r->body)
        abort();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    pubsub::set_renderers({&grip::render_http_response, &grip::render_http_stream, &ws::render_ws_message});
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    pubsub::PublishParseResult res = pubsub::parse_publish_body(body);
    if (!res.ok) {
        if (res.error.empty()) abort();
        return 0;
    }
    for (auto& item : res.items) {
        pubsub::MessageRef m = pubsub::Message::create(std::move(item));
        if (m->http_stream()) check_chunk(*m->http_stream());
        if (m->ws_message()) check_frame(*m->ws_message());
        if (m->http_response()) check_response(*m);
    }
    return 0;
}
