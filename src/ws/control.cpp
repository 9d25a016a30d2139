#include "gripd/ws/control.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <rapidjson/document.h>
#include <string_view>
#include <utility>

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

bool fail(std::string* error, std::string why) {
    *error = std::move(why);
    return false;
}

// The `type` member's value.
bool read_type(const std::string& t, ControlMessage& m, std::string* error) {
    static constexpr std::pair<std::string_view, ControlMessage::Type> kTypes[] = {
        {"subscribe", ControlMessage::Type::Subscribe},
        {"unsubscribe", ControlMessage::Type::Unsubscribe},
        {"detach", ControlMessage::Type::Detach},
        {"session", ControlMessage::Type::Session},
        {"set-meta", ControlMessage::Type::SetMeta},
        {"keep-alive", ControlMessage::Type::KeepAlive},
        {"send-delayed", ControlMessage::Type::SendDelayed},
        {"flush-delayed", ControlMessage::Type::FlushDelayed},
    };
    for (const auto& [name, type] : kTypes)
        if (t == name) {
            m.type = type;
            return true;
        }
    return fail(error, "'type' contains unknown value: " + t);
}

// subscribe / unsubscribe: `channel`, and a subscription's optional `filters`.
bool read_channel(const Value& doc, ControlMessage& m, std::string* error) {
    std::optional<std::string> channel;
    if (!get_string(doc, "channel", &channel) || !channel || channel->empty())
        return fail(error, "invalid 'channel'");
    m.channel = std::move(*channel);
    if (m.type != ControlMessage::Type::Subscribe) return true;
    if (!get_string(doc, "last-id", &m.last_id)) return fail(error, "invalid 'last-id'");
    if (auto ids = doc.FindMember("ids"); ids != doc.MemberEnd()) {
        if (!ids->value.IsBool()) return fail(error, "invalid 'ids'");
        m.ids = ids->value.GetBool();
    }
    auto it = doc.FindMember("filters");
    if (it == doc.MemberEnd()) return true;
    if (!it->value.IsArray()) return fail(error, "'filters' is not a list");
    for (const auto& f : it->value.GetArray()) {
        if (!f.IsString()) return fail(error, "filters contains value with wrong type");
        m.filters.emplace_back(f.GetString(), f.GetStringLength());
    }
    return true;
}

// set-meta: `name` (not empty) and an optional `value` (absent: the name is removed).
bool read_set_meta(const Value& doc, ControlMessage& m, std::string* error) {
    std::optional<std::string> name;
    if (!get_string(doc, "name", &name) || !name || name->empty()) return fail(error, "invalid 'name'");
    m.name = std::move(*name);
    if (!get_string(doc, "value", &m.value)) return fail(error, "invalid 'value'");
    return true;
}

// `message-type`, if present (else *mt stays empty).
bool read_message_type(const Value& doc, ControlMessage& m, std::optional<std::string>* mt,
                       std::string* error) {
    if (!get_string(doc, "message-type", mt)) return fail(error, "invalid 'message-type'");
    if (!*mt) return true;
    static constexpr std::pair<std::string_view, pubsub::WsType> kTypes[] = {
        {"text", pubsub::WsType::Text},
        {"binary", pubsub::WsType::Binary},
        {"ping", pubsub::WsType::Ping},
        {"pong", pubsub::WsType::Pong},
    };
    for (const auto& [name, type] : kTypes)
        if (**mt == name) {
            m.message_type = type;
            return true;
        }
    return fail(error, "'message-type' with unknown value");
}

// keep-alive / send-delayed: the message (`message-type`, `content-bin` or `content`), its
// `timeout` and, for keep-alive, its `mode`.
bool read_message(const Value& doc, ControlMessage& m, std::string* error) {
    std::optional<std::string> mt;
    if (!read_message_type(doc, m, &mt, error)) return false;
    auto bin = doc.FindMember("content-bin");
    if (bin != doc.MemberEnd()) {
        if (!bin->value.IsString()) return fail(error, "'content-bin' with wrong type");
        auto decoded =
            core::base64_decode(std::string_view(bin->value.GetString(), bin->value.GetStringLength()));
        if (!decoded) return fail(error, "'content-bin' is not base64");
        // Without `message-type` the bytes still go out as text: Pushpin defaults the type to text
        // before it reads `content-bin` (observed on 1.36).
        m.content = std::move(*decoded);
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
    return true;
}

// The members that go with m.type.
bool read_members(const Value& doc, ControlMessage& m, std::string* error) {
    switch (m.type) {
    case ControlMessage::Type::Subscribe:
    case ControlMessage::Type::Unsubscribe:
        return read_channel(doc, m, error);
    case ControlMessage::Type::Session:
        return get_string(doc, "id", &m.value) || fail(error, "invalid 'id'");
    case ControlMessage::Type::SetMeta:
        return read_set_meta(doc, m, error);
    case ControlMessage::Type::KeepAlive:
    case ControlMessage::Type::SendDelayed:
        return read_message(doc, m, error);
    default:
        return true;
    }
}
} // namespace

std::optional<ControlMessage> parse_control_message(std::string_view json, std::string* error) {
    // Pushpin's handler ignores a message that Qt cannot parse (too deep included) and keeps the
    // connection; so does gripd (the caller logs `error`).
    rapidjson::Document doc;
    if (core::json::ParseResult parsed = core::json::parse(json, doc); !parsed) {
        fail(error, parsed.error != core::json::Error::NotContainer ? core::json::describe(parsed.error)
                                                                    : "grip control packet is not an object");
        return std::nullopt;
    }
    if (!doc.IsObject()) {
        fail(error, "grip control packet is not an object");
        return std::nullopt;
    }
    std::optional<std::string> type;
    if (!get_string(doc, "type", &type) || !type) {
        fail(error, "missing 'type'");
        return std::nullopt;
    }
    ControlMessage m;
    if (!read_type(*type, m, error) || !read_members(doc, m, error)) return std::nullopt;
    return m;
}

} // namespace gripd::ws
