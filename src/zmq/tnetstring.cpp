#include "gripd/zmq/tnetstring.hpp"

#include "gripd/core/strings.hpp"
#include "gripd/ws/frame.hpp"

#include <cstdio>

namespace gripd::zmq::tnet {

namespace {

// Lengths have at most 9 digits (the TNetString spec's limit; ZeroMQ messages we read are smaller).
constexpr size_t kMaxLengthDigits = 9;

bool fail(std::string* error, const char* why) {
    if (error) *error = why;
    return false;
}

bool is_number(std::string_view s, bool allow_float) {
    if (s.empty()) return false;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i == s.size()) return false;
    bool digit = false;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digit = true;
            continue;
        }
        if (!allow_float || (c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+')) return false;
    }
    return digit;
}

// One value at the front of `in`; `used` is how many bytes it took.
bool parse_one(std::string_view in, Value& out, size_t& used, int depth, std::string* error) {
    if (depth > kMaxDepth) return fail(error, "nested too deeply");
    size_t colon = in.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > kMaxLengthDigits)
        return fail(error, "bad length prefix");
    size_t len = 0;
    for (size_t i = 0; i < colon; ++i) {
        char c = in[i];
        if (c < '0' || c > '9') return fail(error, "bad length prefix");
        len = len * 10 + static_cast<size_t>(c - '0');
    }
    if (in.size() - colon - 1 < len + 1) return fail(error, "length past the end of the message");
    std::string_view payload = in.substr(colon + 1, len);
    char type = in[colon + 1 + len];
    used = colon + 2 + len;
    out = Value{};
    switch (type) {
    case ',':
        out.type = Type::String;
        out.text = payload;
        return true;
    case '#':
        out.type = Type::Int;
        out.text = payload;
        return is_number(payload, false) || fail(error, "bad integer");
    case '^':
        out.type = Type::Float;
        out.text = payload;
        return is_number(payload, true) || fail(error, "bad float");
    case '!':
        out.type = Type::Bool;
        if (payload == "true")
            out.boolean = true;
        else if (payload != "false")
            return fail(error, "bad boolean");
        return true;
    case '~':
        out.type = Type::Null;
        return payload.empty() || fail(error, "bad null");
    case '}':
        out.type = Type::Dict;
        while (!payload.empty()) {
            Value key;
            size_t n = 0;
            if (!parse_one(payload, key, n, depth + 1, error)) return false;
            if (key.type != Type::String) return fail(error, "dict key is not a string");
            payload.remove_prefix(n);
            if (payload.empty()) return fail(error, "dict key without a value");
            Value v;
            if (!parse_one(payload, v, n, depth + 1, error)) return false;
            payload.remove_prefix(n);
            out.dict.emplace_back(key.text, std::move(v));
        }
        return true;
    case ']':
        out.type = Type::List;
        while (!payload.empty()) {
            Value v;
            size_t n = 0;
            if (!parse_one(payload, v, n, depth + 1, error)) return false;
            payload.remove_prefix(n);
            out.list.push_back(std::move(v));
        }
        return true;
    default:
        return fail(error, "unknown type");
    }
}

void put(std::string& out, std::string_view payload, char type) {
    out += std::to_string(payload.size());
    out += ':';
    out.append(payload);
    out += type;
}

void json_string(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}

bool to_json(const Value& v, std::string& out, int depth, std::string* error) {
    switch (v.type) {
    case Type::String:
        if (!ws::is_valid_utf8(v.text)) return fail(error, "a string is not UTF-8");
        json_string(out, v.text);
        return true;
    case Type::Int:
    case Type::Float:
        out.append(v.text[0] == '+' ? v.text.substr(1) : v.text);
        return true;
    case Type::Bool:
        out += v.boolean ? "true" : "false";
        return true;
    case Type::Null:
        out += "null";
        return true;
    case Type::List: {
        out += '[';
        bool first = true;
        for (const auto& e : v.list) {
            if (!first) out += ',';
            first = false;
            if (!to_json(e, out, depth + 1, error)) return false;
        }
        out += ']';
        return true;
    }
    case Type::Dict: {
        out += '{';
        bool first = true;
        for (const auto& [key, e] : v.dict) {
            if (!ws::is_valid_utf8(key)) return fail(error, "a dict key is not UTF-8");
            if (!first) out += ',';
            first = false;
            // JSON carries binary bodies in base64 under the `-bin` names; TNetStrings carry bytes.
            bool bin_key = key == "content-bin" || key == "body-bin";
            bool text_key = key == "content" || key == "body";
            if (e.is_string() && (bin_key || (text_key && !ws::is_valid_utf8(e.text)))) {
                json_string(out, bin_key ? key : std::string(key) + "-bin");
                out += ':';
                json_string(out, core::base64_encode(e.text));
                continue;
            }
            json_string(out, key);
            out += ':';
            if (!to_json(e, out, depth + 1, error)) return false;
        }
        out += '}';
        return true;
    }
    }
    return fail(error, "unknown type");
}

} // namespace

const Value* Value::find(std::string_view key) const {
    const Value* found = nullptr;
    for (const auto& [k, v] : dict)
        if (k == key) found = &v;
    return found;
}

bool parse(std::string_view in, Value& out, std::string* error) {
    size_t used = 0;
    if (!parse_one(in, out, used, 0, error)) return false;
    if (used != in.size()) return fail(error, "data after the value");
    return true;
}

void put_string(std::string& out, std::string_view bytes) {
    put(out, bytes, ',');
}
void put_int(std::string& out, int64_t n) {
    put(out, std::to_string(n), '#');
}
void put_bool(std::string& out, bool b) {
    put(out, b ? "true" : "false", '!');
}
void put_null(std::string& out) {
    out += "0:~";
}
void put_dict(std::string& out, std::string_view body) {
    put(out, body, '}');
}
void put_list(std::string& out, std::string_view body) {
    put(out, body, ']');
}

void put_value(std::string& out, const Value& v) {
    switch (v.type) {
    case Type::String:
        put_string(out, v.text);
        return;
    case Type::Int:
        put(out, v.text, '#');
        return;
    case Type::Float:
        put(out, v.text, '^');
        return;
    case Type::Bool:
        put_bool(out, v.boolean);
        return;
    case Type::Null:
        put_null(out);
        return;
    case Type::Dict: {
        std::string body;
        for (const auto& [k, e] : v.dict) {
            put_string(body, k);
            put_value(body, e);
        }
        put_dict(out, body);
        return;
    }
    case Type::List: {
        std::string body;
        for (const auto& e : v.list)
            put_value(body, e);
        put_list(out, body);
        return;
    }
    }
}

bool item_to_json(const Value& item, std::string_view channel, std::string& out, std::string* error) {
    if (item.type != Type::Dict) return fail(error, "item is not a dict");
    if (channel.empty()) return to_json(item, out, 0, error);
    // The SUB input's channel (its first part) replaces any in the item, as in Pushpin.
    Value copy;
    copy.type = Type::Dict;
    for (const auto& [k, v] : item.dict)
        if (k != "channel") copy.dict.emplace_back(k, v);
    Value ch;
    ch.type = Type::String;
    ch.text = channel;
    copy.dict.emplace_back("channel", std::move(ch));
    return to_json(copy, out, 0, error);
}

} // namespace gripd::zmq::tnet
