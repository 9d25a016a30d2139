#include "gripd/grip/render.hpp"

#include "gripd/http/serialize.hpp"

namespace gripd::grip {

namespace {

bool bodyless_status(int code) {
    return (code >= 100 && code < 200) || code == 204 || code == 304;
}

} // namespace

void render_http_response(const pubsub::HttpResponseFormat& f, pubsub::Rendered& out) {
    if (f.action != pubsub::Action::Send) return;
    http::append_status_line(f.code, f.reason, out.bytes);
    out.span_offset = out.bytes.size();
    for (const auto& h : f.headers)
        if (!http::is_framing_header(h.name)) http::append_header_line(h.name, h.value, out.bytes);
    out.span_size = out.bytes.size() - out.span_offset;
}

void render_http_stream(const pubsub::HttpStreamFormat& f, pubsub::Rendered& out) {
    if (f.action != pubsub::Action::Send || f.content.empty()) return;
    out.span_offset = http::append_chunk(out.bytes, f.content);
    out.span_size = f.content.size();
}

void append_held_response(const pubsub::Message::ResponsePart& p, const http::Headers& hold_headers,
                          const ResponseOptions& opts, std::string& out,
                          std::optional<std::string_view> patched_body) {
    std::string_view body = patched_body ? *patched_body : std::string_view(p.body);
    out += p.status_line();
    for (const auto& h : hold_headers)
        if (!http::is_framing_header(h.name) && !pubsub::find_header(p.headers, h.name))
            http::append_header_line(h.name, h.value, out);
    out += p.header_lines();
    if (!opts.keep_alive)
        out += "Connection: close\r\n";
    else if (opts.http10)
        out += "Connection: keep-alive\r\n";
    if (bodyless_status(p.code)) {
        out += "\r\n";
        return;
    }
    out += "Content-Length: ";
    out += std::to_string(body.size());
    out += "\r\n\r\n";
    if (!opts.head) out += body;
}

} // namespace gripd::grip
