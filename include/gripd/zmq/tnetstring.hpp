// TNetStrings (tnetstrings.info), the encoding of Pushpin's ZeroMQ messages: publish items on the
// PULL and SUB inputs, ZRPC requests and replies on the command socket, and stats events.
//
// A value is `<length>:<payload><type>`, type one of `,` (bytes) `#` (integer) `^` (float) `!`
// (true/false) `~` (null, empty payload) `}` (dict: key, value, ...; keys are byte strings) `]`
// (list). parse() reads one value that spans the whole input, without copying: the tree's strings
// point into the input, which must outlive it. Input is untrusted: lengths are checked against
// what is left, nesting is capped (kMaxDepth), and every error is a false return with a reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::zmq::tnet {

// Deeper input is refused; publish items nest 4 deep (item, formats, format, headers).
inline constexpr int kMaxDepth = 64;

enum class Type : uint8_t { String, Int, Float, Bool, Null, Dict, List };

struct Member;

struct Value {
    Type type = Type::Null;
    std::string_view text; // String: the bytes; Int, Float: the number as written
    bool boolean = false;
    // In input order. (A vector of a type completed below: std::pair<..., Value> would need Value
    // complete here, which clang's library checks.)
    std::vector<Member> dict;
    std::vector<Value> list;

    bool is_string() const { return type == Type::String; }
    // The value under `key` in a dict (the last one when repeated), or nullptr.
    const Value* find(std::string_view key) const;
};

// One entry of a dict.
struct Member {
    Member(std::string_view k, Value v) : key(k), value(std::move(v)) {}
    std::string_view key;
    Value value;
};

// Parses `in` (exactly one value, nothing after it). On failure `error` says why.
bool parse(std::string_view in, Value& out, std::string* error);

// Encoders: each appends one value to `out`.
void put_string(std::string& out, std::string_view bytes);
void put_int(std::string& out, int64_t n);
void put_bool(std::string& out, bool b);
void put_null(std::string& out);
// A dict or list whose already encoded members are `body`.
void put_dict(std::string& out, std::string_view body);
void put_list(std::string& out, std::string_view body);
// Any parsed value, re-encoded.
void put_value(std::string& out, const Value& v);

// A publish item as JSON text, for the publish path that HTTP publishes take (pubsub/publish.hpp).
// Byte strings become JSON strings; they must be UTF-8, except that `content`/`body` bytes that are
// not become `content-bin`/`body-bin` (base64), and `content-bin`/`body-bin` bytes are always base64
// (JSON carries those fields in base64, TNetStrings raw). `channel`, when not empty, replaces the
// item's own (the SUB input takes it from the first part). False with a reason on input JSON cannot
// carry (a non-UTF-8 string elsewhere, a malformed number, a non-dict item).
bool item_to_json(const Value& item, std::string_view channel, std::string& out, std::string* error);

} // namespace gripd::zmq::tnet
