// The one way gripd reads JSON that comes from outside: publish bodies, bus items, GRIP instruct
// bodies, `c:` control messages from WebSocket backends, Grip-Sig headers and claims. Every such
// text goes through core::json::parse(); no other RapidJSON Parse call may appear in src/ (a unit
// test greps for one).
//
// The rules are those of Pushpin 1.36's Qt 5 parser (QJsonDocument::fromJson), so that gripd refuses
// and accepts the same documents:
//   - the root is an object or an array;
//   - nesting is at most kMaxDepth arrays/objects deep; deeper input is refused wherever it sits,
//     even in a field nobody reads (Qt: "too deeply nested");
//   - strings are valid UTF-8 (no overlong forms, no encoded surrogates); an unpaired surrogate
//     escape ("\udc00", or "\ud800" without a low one after it) reads as '?', which is what pushpin
//     writes for it;
//   - nothing but whitespace after the root;
//   - duplicate names in an object: the last one wins, and the parsed document keeps only that one,
//     so every reader (FindMember, find_member, iteration) sees one member per name.
// Why a depth limit and not only an iterative parse: an iterative parse still builds a DOM as deep
// as the input, and the DOM's copy, Accept/Writer and any recursive walk would then recurse that
// deep. With the limit, every recursion over a parsed document is at most kMaxDepth frames.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gripd::core::json {

// Qt 5's QJsonPrivate::Parser nestingLimit: 1024 nested arrays/objects parse, 1025 do not.
inline constexpr int kMaxDepth = 1024;

enum class Error : uint8_t {
    None,
    Syntax,       // not JSON (or empty)
    Encoding,     // a string that is not valid UTF-8
    TooDeep,      // more than kMaxDepth nested arrays/objects
    Trailing,     // something other than whitespace after the root
    NotContainer, // the root is a number, string, true, false or null
};

struct ParseResult {
    Error error = Error::None;
    size_t offset = 0; // where the error was found (bytes into the text)
    explicit operator bool() const { return error == Error::None; }
};

// A short English phrase for logs ("nested too deeply", ...).
const char* describe(Error e);

// How a JSON string is written. The default (RapidJSON-like): `"` and `\\` escaped, every other
// control character as `\u00XX`, every other byte copied (so `s` should be UTF-8). Qt5Style() is how
// Pushpin's Qt writes one (SockJS frames, JSON-P bodies): \b \f \n \r \t in their short forms, and
// each byte that does not begin a valid UTF-8 sequence becomes U+FFFD (as QString::fromUtf8).
struct StringStyle {
    bool short_escapes = false;
    bool replace_invalid_utf8 = false;
};
constexpr StringStyle Qt5Style() {
    return StringStyle{true, true};
}

// Appends `s` as a JSON string literal (quotes included), in `style`.
void append_string(std::string& out, std::string_view s, StringStyle style = {});
// The inside of a JSON string (no quotes), in `style`. With `partial` (Qt5-style input that arrives
// in pieces) a UTF-8 sequence cut at the end of `s` is left out: returns how many bytes were.
size_t append_string_chars(std::string& out, std::string_view s, StringStyle style = {},
                           bool partial = false);
// The length of the valid UTF-8 sequence at the start of `s` (non-empty): 0 if there is none, or
// -n if `s` holds only the first n bytes of one.
int utf8_sequence(std::string_view s);

// Parses `text` into `doc` under the rules above. On failure `doc` is left null. Iterative: the
// stack used does not depend on the input. Linear time (duplicate removal included). `max_depth`
// lowers the nesting limit where Pushpin reads with a stricter parser (JWTs: serde_json's 128).
ParseResult parse(std::string_view text, rapidjson::Document& doc, int max_depth = kMaxDepth);

inline std::string_view str(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

// The member named `key` of an object (documents from parse() have one per name), or nullptr when
// `obj` is not an object or has no such member. Compares whole names, embedded NULs included.
const rapidjson::Value* find_member(const rapidjson::Value& obj, std::string_view key);

// Reads a `headers` value the way Pushpin does: an object or a list of [name, value] pairs. Calls
// add(name, value) for each header, in order; `add` may drop some (the framing ones, say). Returns
// false with Pushpin's error text in `err` on a malformed value; `parent` names the enclosing object
// in the wrong-type message.
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
        for (const auto& m : v.GetObject()) {
            if (!m.value.IsString()) {
                err = "headers contains '" + std::string(str(m.name)) + "' with wrong type";
                return false;
            }
            add(str(m.name), str(m.value));
        }
        return true;
    }
    err = std::string(parent) + " contains 'headers' with wrong type";
    return false;
}

// An integer the way Qt converts a JSON value to int: numbers (doubles rounded half away from zero),
// bools (0/1), strings (parsed; unparsable => 0). nullopt for null, arrays and objects (wrong type).
// Values beyond int64 saturate.
std::optional<int64_t> to_int_like(const rapidjson::Value& v);

// `v` as compact JSON text. Recursion is bounded by kMaxDepth for values from parse().
std::string to_compact_json(const rapidjson::Value& v);

} // namespace gripd::core::json
