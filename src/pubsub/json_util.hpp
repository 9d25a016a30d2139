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
