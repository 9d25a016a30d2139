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
    core::json::append_string(out, s, core::json::Qt5Style());
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
