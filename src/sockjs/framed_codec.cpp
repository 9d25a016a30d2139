// SockJS's framed WebSocket transport (Pushpin 1.36's SockJsSession, mode WebSocketFramed).
#include "gripd/core/json.hpp"
#include "gripd/sockjs/sockjs.hpp"

#include <rapidjson/document.h>

namespace gripd::sockjs {

namespace {

constexpr size_t kOutFrameMax = 16384; // as the sessions' own messages

std::string text_frame(std::string_view payload) {
    std::string out;
    ws::append_message(out, ws::WsOpcode::Text, payload, kOutFrameMax);
    return out;
}

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_len(std::string_view s, size_t i) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

class FramedCodec final : public ws::ClientCodec, ws::FrameParser::Handler {
  public:
    FramedCodec() : parser_(*this, ws::FrameParser::Role::Client, {kMaxMessage, kMaxMessage}) {}

    std::string opening() override { return text_frame("o"); }
    uint64_t heartbeat_ms() const override { return kHeartbeatMs; }
    std::string heartbeat() override { return text_frame("h"); }

    bool encode(std::string_view frames, std::string& out) override {
        out_ = &out;
        while (!frames.empty()) {
            size_t n = parser_.feed(frames.data(), frames.size());
            if (parser_.state() == ws::FrameParser::State::Closed) break; // close frames are not ours
            if (parser_.state() != ws::FrameParser::State::Ok) {
                out_ = nullptr;
                return false;
            }
            if (n == 0) break;
            frames.remove_prefix(n);
        }
        out_ = nullptr;
        return true;
    }

    bool decode(const ws::Frame& f, std::vector<std::string>& messages) override {
        if (f.first) in_.clear();
        if (in_.size() + f.payload.size() > kMaxMessage) return false;
        in_.append(f.payload);
        if (!f.fin) return true;
        bool ok = decode_messages(in_, messages);
        in_ = std::string();
        return ok;
    }

  private:
    void on_frame(const ws::Frame& f) override {
        // Pings and pongs have no SockJS form: Pushpin drops them too.
        if (f.opcode == ws::WsOpcode::Ping || f.opcode == ws::WsOpcode::Pong) return;
        if (f.first) message_.clear();
        message_.append(f.payload);
        if (!f.fin) return;
        std::string payload = "a[";
        append_json_string(payload, message_);
        payload += ']';
        message_ = std::string();
        ws::append_message(*out_, ws::WsOpcode::Text, payload, kOutFrameMax);
    }

    ws::FrameParser parser_;
    std::string* out_ = nullptr;
    std::string message_; // a backend message being re-framed (bounded by kMaxMessage)
    std::string in_;      // a client message arriving in fragments
};

} // namespace

std::unique_ptr<ws::ClientCodec> make_framed_codec() {
    return std::make_unique<FramedCodec>();
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = utf8_len(s, i);
        if (n == 0) {
            out += "\xef\xbf\xbd"; // U+FFFD
            ++i;
            continue;
        }
        if (n > 1) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        ++i;
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 15];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
}

bool decode_messages(std::string_view json, std::vector<std::string>& out) {
    rapidjson::Document doc;
    if (!core::json::parse(json, doc) || !doc.IsArray()) return false;
    for (const auto& v : doc.GetArray()) {
        if (!v.IsString()) return false;
        out.emplace_back(v.GetString(), v.GetStringLength());
    }
    return true;
}

} // namespace gripd::sockjs
