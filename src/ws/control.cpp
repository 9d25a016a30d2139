#include "gripd/ws/control.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <rapidjson/document.h>

namespace gripd::ws {

namespace {
using Value = rapidjson::Value;

// Reads an optional string member: false if present with another type.
bool get_string(const Value& obj, const char* key, std::optional<std::string>* out) {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd()) return true;
    if (!it->value.IsString()) return false;
    *out = std::string(it->value.GetString(), it->value.GetStringLength());
    return true;
}

std::optional<ControlMessage> fail(std::string* error, std::string why) {
    *error = std::move(why);
    return std::nullopt;
}
} // namespace

std::optional<ControlMessage> parse_control_message(std::string_view json, std::string* error) {
    // Pushpin's handler ignores a message that Qt cannot parse (too deep included) and keeps the
    // connection; so does gripd (the caller logs `error`).
    rapidjson::Document doc;
    if (core::json::ParseResult parsed = core::json::parse(json, doc); !parsed) {
        if (parsed.error != core::json::Error::NotContainer)
            return fail(error, core::json::describe(parsed.error));
        return fail(error, "grip control packet is not an object");
    }
    if (!doc.IsObject()) return fail(error, "grip control packet is not an object");
    std::optional<std::string> type;
    if (!get_string(doc, "type", &type) || !type) return fail(error, "missing 'type'");

    ControlMessage m;
    const std::string& t = *type;
    if (t == "subscribe")
        m.type = ControlMessage::Type::Subscribe;
    else if (t == "unsubscribe")
        m.type = ControlMessage::Type::Unsubscribe;
    else if (t == "detach")
        m.type = ControlMessage::Type::Detach;
    else if (t == "session")
        m.type = ControlMessage::Type::Session;
    else if (t == "set-meta")
        m.type = ControlMessage::Type::SetMeta;
    else if (t == "keep-alive")
        m.type = ControlMessage::Type::KeepAlive;
    else if (t == "send-delayed")
        m.type = ControlMessage::Type::SendDelayed;
    else if (t == "flush-delayed")
        m.type = ControlMessage::Type::FlushDelayed;
    else
        return fail(error, "'type' contains unknown value: " + t);

    switch (m.type) {
    case ControlMessage::Type::Subscribe:
    case ControlMessage::Type::Unsubscribe: {
        std::optional<std::string> channel;
        if (!get_string(doc, "channel", &channel) || !channel || channel->empty())
            return fail(error, "invalid 'channel'");
        m.channel = std::move(*channel);
        if (m.type == ControlMessage::Type::Subscribe) {
            auto it = doc.FindMember("filters");
            if (it != doc.MemberEnd()) {
                if (!it->value.IsArray()) return fail(error, "'filters' is not a list");
                for (const auto& f : it->value.GetArray()) {
                    if (!f.IsString()) return fail(error, "filters contains value with wrong type");
                    m.filters.emplace_back(f.GetString(), f.GetStringLength());
                }
            }
        }
        break;
    }
    case ControlMessage::Type::Session:
        if (!get_string(doc, "id", &m.value)) return fail(error, "invalid 'id'");
        break;
    case ControlMessage::Type::SetMeta: {
        std::optional<std::string> name;
        if (!get_string(doc, "name", &name) || !name || name->empty()) return fail(error, "invalid 'name'");
        m.name = std::move(*name);
        if (!get_string(doc, "value", &m.value)) return fail(error, "invalid 'value'");
        break;
    }
    case ControlMessage::Type::KeepAlive:
    case ControlMessage::Type::SendDelayed: {
        std::optional<std::string> mt;
        if (!get_string(doc, "message-type", &mt)) return fail(error, "invalid 'message-type'");
        if (mt) {
            if (*mt == "text")
                m.message_type = pubsub::WsType::Text;
            else if (*mt == "binary")
                m.message_type = pubsub::WsType::Binary;
            else if (*mt == "ping")
                m.message_type = pubsub::WsType::Ping;
            else if (*mt == "pong")
                m.message_type = pubsub::WsType::Pong;
            else
                return fail(error, "'message-type' with unknown value");
        }
        auto bin = doc.FindMember("content-bin");
        if (bin != doc.MemberEnd()) {
            if (!bin->value.IsString()) return fail(error, "'content-bin' with wrong type");
            auto decoded =
                core::base64_decode(std::string_view(bin->value.GetString(), bin->value.GetStringLength()));
            if (!decoded) return fail(error, "'content-bin' is not base64");
            m.content = std::move(*decoded);
            if (!mt) m.message_type = pubsub::WsType::Binary;
        } else if (!get_string(doc, "content", &m.content)) {
            return fail(error, "'content' with wrong type");
        }
        if (m.content) {
            auto it = doc.FindMember("timeout");
            if (it != doc.MemberEnd()) {
                if (!it->value.IsNumber()) return fail(error, "'timeout' with wrong type");
                double v = it->value.GetDouble();
                if (v < 0 || v > 1e9) return fail(error, "'timeout' with invalid value");
                m.timeout = static_cast<int>(v);
            }
        }
        if (m.type == ControlMessage::Type::KeepAlive) {
            std::optional<std::string> mode;
            if (!get_string(doc, "mode", &mode)) return fail(error, "invalid 'mode'");
            m.interval = mode && *mode == "interval";
        }
        break;
    }
    default:
        break;
    }
    return m;
}

} // namespace gripd::ws
