#include "gripd/pubsub/message.hpp"

#include "gripd/core/strings.hpp"
#include "gripd/http/serialize.hpp"
#include "gripd/pubsub/filters.hpp"

#include <algorithm>

namespace gripd::pubsub {

namespace {

constexpr size_t kControlPayloadMax = 125;

void append_chunk(std::string& out, std::string_view data, size_t& content_offset) {
    static constexpr char kHex[] = "0123456789abcdef";
    char buf[20];
    size_t n = data.size(), i = sizeof(buf);
    do {
        buf[--i] = kHex[n & 0xf];
        n >>= 4;
    } while (n);
    out.append(buf + i, sizeof(buf) - i);
    out += "\r\n";
    content_offset = out.size();
    out += data;
    out += "\r\n";
}

WsOpcode opcode_of(WsType t) {
    switch (t) {
    case WsType::Text:
        return WsOpcode::Text;
    case WsType::Binary:
        return WsOpcode::Binary;
    case WsType::Ping:
        return WsOpcode::Ping;
    case WsType::Pong:
        return WsOpcode::Pong;
    }
    return WsOpcode::Text;
}

bool bodyless_status(int code) {
    return (code >= 100 && code < 200) || code == 204 || code == 304;
}

} // namespace

bool is_framing_header(std::string_view name) {
    static constexpr std::string_view kNames[] = {"content-length",   "transfer-encoding",
                                                  "connection",       "keep-alive",
                                                  "proxy-connection", "te",
                                                  "trailer",          "upgrade"};
    for (auto n : kNames)
        if (core::iequals(name, n)) return true;
    return false;
}

void append_ws_frame(std::string& out, WsOpcode opcode, std::string_view payload) {
    auto op = static_cast<uint8_t>(opcode);
    if (op >= 0x8 && payload.size() > kControlPayloadMax) payload = payload.substr(0, kControlPayloadMax);
    out.push_back(static_cast<char>(0x80 | op));
    uint64_t len = payload.size();
    if (len < 126) {
        out.push_back(static_cast<char>(len));
    } else if (len <= 0xffff) {
        out.push_back(static_cast<char>(126));
        out.push_back(static_cast<char>(len >> 8));
        out.push_back(static_cast<char>(len & 0xff));
    } else {
        out.push_back(static_cast<char>(127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((len >> shift) & 0xff));
    }
    out += payload;
}

void append_ws_close_frame(std::string& out, int code, std::string_view reason) {
    if (code < 0 && reason.empty()) {
        append_ws_frame(out, WsOpcode::Close, {});
        return;
    }
    if (code < 0) code = 1000;
    std::string payload;
    payload.push_back(static_cast<char>((code >> 8) & 0xff));
    payload.push_back(static_cast<char>(code & 0xff));
    payload += reason.substr(0, kControlPayloadMax - 2);
    append_ws_frame(out, WsOpcode::Close, payload);
}

MessageRef Message::create(PublishItem&& item) {
    auto m = std::make_shared<Message>();
    m->channel_ = std::move(item.channel);
    m->id_ = std::move(item.id);
    m->prev_id_ = std::move(item.prev_id);
    m->meta_ = std::move(item.meta);
    m->size_ = item.size;
    m->no_seq_ = item.no_seq;

    if (item.http_response) {
        HttpResponseFormat& f = *item.http_response;
        // emplace(T{}) rather than emplace(): clang cannot yet see the nested parts as default
        // constructible inside Message, where their member initializers are not complete.
        ResponsePart& p = m->response_.emplace(ResponsePart{});
        p.action = f.action;
        p.code = f.code;
        p.reason = std::move(f.reason);
        p.headers = std::move(f.headers);
        p.body = std::move(f.body);
        p.body_patch = std::move(f.body_patch);
        p.content_filters = std::move(f.content_filters);
        if (p.action == Action::Send) {
            // Published text cannot split the answer: bad names are dropped, controls blanked.
            http::append_status_line(p.code, p.reason, p.status_line);
            for (const auto& h : p.headers)
                if (!is_framing_header(h.name)) http::append_header_line(h.name, h.value, p.headers_block);
        }
    }
    if (item.http_stream) {
        HttpStreamFormat& f = *item.http_stream;
        StreamPart& p = m->stream_.emplace(StreamPart{});
        p.action = f.action;
        p.content_filters = std::move(f.content_filters);
        if (p.action == Action::Send && !f.content.empty()) {
            p.chunk.reserve(f.content.size() + 20);
            append_chunk(p.chunk, f.content, p.content_offset_);
            p.content_size_ = f.content.size();
        }
    }
    if (item.ws_message) {
        WsMessageFormat& f = *item.ws_message;
        WsPart& p = m->ws_.emplace(WsPart{});
        p.action = f.action;
        p.type = f.type;
        p.close_code = f.close_code;
        p.close_reason = std::move(f.close_reason);
        p.content_filters = std::move(f.content_filters);
        if (p.action == Action::Send) {
            p.frame.reserve(f.content.size() + 10);
            append_ws_frame(p.frame, opcode_of(p.type), f.content);
            size_t sent = p.type == WsType::Text || p.type == WsType::Binary
                              ? f.content.size()
                              : std::min(f.content.size(), kControlPayloadMax);
            p.payload_offset_ = p.frame.size() - sent;
            p.payload_size_ = sent;
        } else if (p.action == Action::Close) {
            append_ws_close_frame(p.frame, p.close_code, p.close_reason);
        }
    }
    return m;
}

const std::string* Message::meta_value(std::string_view name) const {
    return find_meta(meta_, name);
}

void Message::render_http_response(const http::Headers& hold_headers, const ResponseOptions& opts,
                                   std::string& out, std::optional<std::string_view> patched_body) const {
    const ResponsePart& p = *response_;
    std::string_view body = patched_body ? *patched_body : std::string_view(p.body);
    out += p.status_line;
    for (const auto& h : hold_headers)
        if (!is_framing_header(h.name) && !p.headers.has(h.name))
            http::append_header_line(h.name, h.value, out);
    out += p.headers_block;
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

} // namespace gripd::pubsub
