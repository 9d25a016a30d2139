// RapidJSON helpers shared by the publish and instruct parsers (private; header-only). They make
// RapidJSON read JSON the way Pushpin's Qt code does: duplicate keys resolve to the last one, and
// integer fields accept what QVariant::canConvert<int> accepts.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gripd/core/strings.hpp"

namespace gripd::pubsub::json {

// Parses a whole document: iterative (no recursion on deep nesting), UTF-8 validated, nothing but
// whitespace after the root. Returns false on any error.
inline bool parse(std::string_view text, rapidjson::Document& doc) {
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
    doc.Parse<kFlags>(text.data(), text.size());
    return !doc.HasParseError();
}

inline std::string_view str(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

// The last member named `key` of an object (Qt keeps the last duplicate), or nullptr.
inline const rapidjson::Value* find_last(const rapidjson::Value& obj, std::string_view key) {
    if (!obj.IsObject()) return nullptr;
    const rapidjson::Value* found = nullptr;
    for (const auto& m : obj.GetObject())
        if (str(m.name) == key) found = &m.value;
    return found;
}

// Calls f(name, value) for each member in document order, skipping members overridden by a later
// duplicate of the same name. Linear time.
template <class F> void for_each_unique_member(const rapidjson::Value& obj, F&& f) {
    size_t n = obj.MemberCount();
    if (n <= 1) {
        for (const auto& m : obj.GetObject())
            f(str(m.name), m.value);
        return;
    }
    std::unordered_map<std::string_view, size_t> last;
    last.reserve(n);
    size_t i = 0;
    for (const auto& m : obj.GetObject())
        last[str(m.name)] = i++;
    i = 0;
    for (const auto& m : obj.GetObject()) {
        if (last[str(m.name)] == i) f(str(m.name), m.value);
        ++i;
    }
}

// Reads a `headers` value the way Pushpin does: an object (duplicate names resolve to the last one)
// or a list of [name, value] pairs. Calls add(name, value) for each header, in order; `add` may
// drop some (the framing ones, say). Returns false with Pushpin's error text in `err` on a malformed
// value; `parent` names the enclosing object in the wrong-type message.
template <class Add>
bool parse_headers(const rapidjson::Value& v, std::string_view parent, Add&& add, std::string& err) {
    if (v.IsArray()) {
        for (const auto& h : v.GetArray()) {
            if (!h.IsArray()) {
                err = "headers contains element with wrong type";
                return false;
            }
            if (h.Size() != 2) {
                err = "headers contains list with wrong number of elements";
                return false;
            }
            if (!h[0].IsString()) {
                err = "header contains name element with wrong type";
                return false;
            }
            if (!h[1].IsString()) {
                err = "header contains value element with wrong type";
                return false;
            }
            add(str(h[0]), str(h[1]));
        }
        return true;
    }
    if (v.IsObject()) {
        bool ok = true;
        for_each_unique_member(v, [&](std::string_view name, const rapidjson::Value& val) {
            if (!ok) return;
            if (!val.IsString()) {
                err = "headers contains '" + std::string(name) + "' with wrong type";
                ok = false;
                return;
            }
            add(name, str(val));
        });
        return ok;
    }
    err = std::string(parent) + " contains 'headers' with wrong type";
    return false;
}

// An integer the way Qt converts a JSON value to int: numbers (doubles rounded half away from zero),
// bools (0/1), strings (parsed; unparsable => 0). nullopt for null, arrays and objects (wrong type).
// Values beyond int64 saturate.
inline std::optional<int64_t> to_int_like(const rapidjson::Value& v) {
    if (v.IsInt64()) return v.GetInt64();
    if (v.IsUint64()) return INT64_MAX;
    if (v.IsNumber()) {
        double d = v.GetDouble();
        if (std::isnan(d)) return 0;
        if (d >= 9.2e18) return INT64_MAX;
        if (d <= -9.2e18) return INT64_MIN;
        return static_cast<int64_t>(d >= 0 ? d + 0.5 : d - 0.5);
    }
    if (v.IsBool()) return v.GetBool() ? 1 : 0;
    if (v.IsString()) return core::parse_int(core::trim(str(v))).value_or(0);
    return std::nullopt;
}

inline std::string to_compact_json(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
}

} // namespace gripd::pubsub::json
