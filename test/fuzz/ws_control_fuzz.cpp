// libFuzzer target: the GRIP control-message parser (PROTOCOL.md §5.3) on arbitrary text after `c:`.
// A message that parses must be consistent (required fields present, timeouts in range); it is then
// written back as JSON and must parse to the same message. One that does not parse must say why.
#include "gripd/core/strings.hpp"
#include "gripd/ws/control.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <string>

using namespace gripd::ws;
using Type = ControlMessage::Type;

namespace {

// Names in the order of ControlMessage::Type and of pubsub::WsType.
constexpr const char* kTypeNames[] = {"subscribe", "unsubscribe", "detach",       "session",
                                      "set-meta",  "keep-alive",  "send-delayed", "flush-delayed"};
constexpr const char* kWsTypeNames[] = {"text", "binary", "ping", "pong"};

// The message as JSON, with every field parse_control_message reads for its type.
std::string render(const ControlMessage& m) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    auto str = [&](const char* key, const std::string& v) {
        w.Key(key);
        w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    };
    w.StartObject();
    str("type", kTypeNames[static_cast<size_t>(m.type)]);
    switch (m.type) {
    case Type::Subscribe:
    case Type::Unsubscribe:
        str("channel", m.channel);
        w.Key("filters");
        w.StartArray();
        for (const auto& f : m.filters)
            w.String(f.data(), static_cast<rapidjson::SizeType>(f.size()));
        w.EndArray();
        break;
    case Type::Session:
        if (m.value) str("id", *m.value);
        break;
    case Type::SetMeta:
        str("name", m.name);
        if (m.value) str("value", *m.value);
        break;
    case Type::KeepAlive:
    case Type::SendDelayed:
        str("message-type", kWsTypeNames[static_cast<size_t>(m.message_type)]);
        // As content-bin: content from a content-bin may be any bytes, and JSON strings are UTF-8.
        if (m.content) str("content-bin", gripd::core::base64_encode(*m.content));
        if (m.timeout >= 0) {
            w.Key("timeout");
            w.Int(m.timeout);
        }
        if (m.type == Type::KeepAlive) str("mode", m.interval ? "interval" : "idle");
        break;
    default:
        break;
    }
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
}

bool same(const ControlMessage& a, const ControlMessage& b) {
    return a.type == b.type && a.channel == b.channel && a.filters == b.filters && a.name == b.name &&
           a.value == b.value && a.content == b.content && a.message_type == b.message_type &&
           a.timeout == b.timeout && a.interval == b.interval;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view json(reinterpret_cast<const char*>(data), size);
    std::string error;
    auto m = parse_control_message(json, &error);
    if (!m) {
        if (error.empty()) abort();
        return 0;
    }
    bool channel_type = m->type == Type::Subscribe || m->type == Type::Unsubscribe;
    if (channel_type == m->channel.empty()) abort();
    if (m->type != Type::Subscribe && !m->filters.empty()) abort();
    if ((m->type == Type::SetMeta) == m->name.empty()) abort();
    if (m->timeout < -1 || (m->timeout >= 0 && !m->content)) abort();
    std::string again_error;
    auto again = parse_control_message(render(*m), &again_error);
    if (!again || !same(*m, *again)) abort();
    return 0;
}
