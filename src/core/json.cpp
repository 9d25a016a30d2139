#include "gripd/core/json.hpp"

#include "gripd/core/strings.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_map>
#include <vector>

namespace gripd::core::json {

namespace {

using rapidjson::SizeType;
using rapidjson::Value;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The value of the four hex digits at `p`, or -1.
int hex4(std::string_view p) {
    if (p.size() < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

// Qt reads each \uXXXX escape as one UTF-16 unit, so an unpaired surrogate escape ("\udc00", or
// "\ud800" not followed by a low one) stays in its string, and pushpin writes it out as '?'.
// RapidJSON 1.1 refuses an unpaired high surrogate and turns an unpaired low one into bytes that
// are not UTF-8. So before parsing, each unpaired surrogate escape becomes a literal '?' (an
// ordinary character inside a string; outside one a backslash was invalid and '?' is too).
// Returns false, without copying, when the text has none (the common case).
bool replace_lone_surrogates(std::string_view text, std::string* out) {
    bool copying = false;
    size_t done = 0; // text[0, done) is in *out when copying
    for (size_t i = text.find('\\'); i != std::string_view::npos; i = text.find('\\', i)) {
        if (i + 1 >= text.size() || text[i + 1] != 'u') {
            i += 2; // any other escape, "\\" included
            continue;
        }
        int v = hex4(text.substr(i + 2));
        bool high = v >= 0xD800 && v <= 0xDBFF, low = v >= 0xDC00 && v <= 0xDFFF;
        if (high && text.substr(i + 6, 2) == "\\u") {
            int next = hex4(text.substr(i + 8));
            if (next >= 0xDC00 && next <= 0xDFFF) {
                i += 12; // a proper pair
                continue;
            }
        }
        if (!high && !low) {
            i += 2;
            continue;
        }
        if (!copying) {
            out->clear();
            out->reserve(text.size());
            copying = true;
        }
        out->append(text.substr(done, i - done));
        *out += '?';
        done = i + 6;
        i = done;
    }
    if (!copying) return false;
    out->append(text.substr(done));
    return true;
}

// Counts nesting while forwarding every SAX event to the Document that is being built, and stops
// the reader (Termination) at the first array/object past the limit (at most kMaxDepth). The Document never
// holds more than kMaxDepth levels, so its destructor and every later walk stay shallow.
class DepthLimiter {
  public:
    DepthLimiter(rapidjson::Document& doc, int max_depth) : doc_(doc), max_depth_(max_depth) {}

    bool is_too_deep() const { return too_deep_; }

    bool Null() { return doc_.Null(); }
    bool Bool(bool b) { return doc_.Bool(b); }
    bool Int(int i) { return doc_.Int(i); }
    bool Uint(unsigned i) { return doc_.Uint(i); }
    bool Int64(int64_t i) { return doc_.Int64(i); }
    bool Uint64(uint64_t i) { return doc_.Uint64(i); }
    bool Double(double d) { return doc_.Double(d); }
    bool RawNumber(const char* s, SizeType n, bool copy) { return doc_.RawNumber(s, n, copy); }
    bool String(const char* s, SizeType n, bool copy) { return doc_.String(s, n, copy); }
    bool Key(const char* s, SizeType n, bool copy) { return doc_.Key(s, n, copy); }
    bool StartObject() { return enter() && doc_.StartObject(); }
    bool EndObject(SizeType n) {
        --depth_;
        return doc_.EndObject(n);
    }
    bool StartArray() { return enter() && doc_.StartArray(); }
    bool EndArray(SizeType n) {
        --depth_;
        return doc_.EndArray(n);
    }

  private:
    bool enter() {
        if (++depth_ > max_depth_) {
            too_deep_ = true;
            return false;
        }
        return true;
    }

    rapidjson::Document& doc_;
    int max_depth_;
    int depth_ = 0;
    bool too_deep_ = false;
};

// True if member i of `obj` is overridden by a later member of the same name.
bool is_overridden(const Value& obj, SizeType i) {
    auto mb = obj.MemberBegin();
    std::string_view name = str(mb[i].name);
    for (SizeType j = i + 1; j < obj.MemberCount(); ++j)
        if (str(mb[j].name) == name) return true;
    return false;
}

// Moves the members flagged in `keep` to the front, in order, and erases the rest.
void compact_members(Value& obj, const bool* keep) {
    auto mb = obj.MemberBegin();
    SizeType w = 0;
    for (SizeType r = 0; r < obj.MemberCount(); ++r) {
        if (!keep[r]) continue;
        if (w != r) {
            mb[w].name.Swap(mb[r].name);
            mb[w].value.Swap(mb[r].value);
        }
        ++w;
    }
    obj.EraseMember(obj.MemberBegin() + w, obj.MemberEnd());
}

// Keeps only the last member of each name, in document order (Qt keeps the last duplicate). Small
// objects, the common case, are compared pairwise without allocating; larger ones go through a map,
// so the whole pass stays linear in the document's size.
void remove_duplicates(Value& obj) {
    constexpr SizeType kSmall = 16;
    SizeType n = obj.MemberCount();
    if (n < 2) return;
    if (n <= kSmall) {
        bool keep[kSmall];
        bool any = false;
        for (SizeType i = 0; i < n; ++i) {
            keep[i] = !is_overridden(obj, i);
            any = any || !keep[i];
        }
        if (any) compact_members(obj, keep);
        return;
    }
    std::unordered_map<std::string_view, SizeType> last;
    last.reserve(n);
    auto mb = obj.MemberBegin();
    for (SizeType i = 0; i < n; ++i)
        last[str(mb[i].name)] = i;
    if (last.size() == n) return;
    auto keep = std::make_unique<bool[]>(n);
    for (SizeType i = 0; i < n; ++i)
        keep[i] = last[str(mb[i].name)] == i;
    compact_members(obj, keep.get());
}

// Walks the document without recursion and removes duplicate names from every object.
void remove_all_duplicates(Value& root) {
    std::vector<Value*> todo{&root};
    while (!todo.empty()) {
        Value* v = todo.back();
        todo.pop_back();
        if (v->IsObject()) {
            remove_duplicates(*v);
            for (auto& m : v->GetObject())
                if (m.value.IsObject() || m.value.IsArray()) todo.push_back(&m.value);
        } else if (v->IsArray()) {
            for (auto& e : v->GetArray())
                if (e.IsObject() || e.IsArray()) todo.push_back(&e);
        }
    }
}

} // namespace

const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::Syntax:
        return "not valid JSON";
    case Error::Encoding:
        return "a string is not valid UTF-8";
    case Error::TooDeep:
        return "nested too deeply";
    case Error::Trailing:
        return "garbage after the JSON value";
    case Error::NotContainer:
        return "not a JSON object or array";
    }
    return "not valid JSON";
}

ParseResult parse(std::string_view text, rapidjson::Document& doc, int max_depth) {
    doc.SetNull();
    std::string rewritten;
    if (replace_lone_surrogates(text, &rewritten)) text = rewritten;
    size_t at = 0;
    // A UTF-8 byte order mark is skipped, as Qt does (whole, never a part of one).
    if (text.substr(0, 3) == "\xEF\xBB\xBF") at = 3;
    while (at < text.size() && is_space(text[at]))
        ++at;
    if (at == text.size()) return {Error::Syntax, at};
    if (text[at] != '{' && text[at] != '[') return {Error::NotContainer, at};

    // Not kParseFullPrecisionFlag: Debian's RapidJSON 1.1 then hits undefined behaviour on a zero
    // significand with a large exponent ("0e92"); the default may be one unit off in the last place.
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                                rapidjson::kParseStopWhenDoneFlag;
    rapidjson::MemoryStream in(text.data() + at, text.size() - at);
    ParseResult result;
    auto generate = [&](rapidjson::Document& target) {
        DepthLimiter limiter(target, std::min(max_depth, kMaxDepth));
        rapidjson::Reader reader;
        reader.Parse<kFlags>(in, limiter);
        if (!reader.HasParseError()) return true;
        result.offset = at + reader.GetErrorOffset();
        if (limiter.is_too_deep())
            result.error = Error::TooDeep;
        else if (reader.GetParseErrorCode() == rapidjson::kParseErrorStringInvalidEncoding)
            result.error = Error::Encoding;
        else
            result.error = Error::Syntax;
        return false;
    };
    doc.Populate(generate);
    if (!result) return result;
    // The reader stopped after the root (it would take an embedded NUL for the end of the text):
    // only whitespace may follow.
    for (size_t i = at + in.Tell(); i < text.size(); ++i) {
        if (!is_space(text[i])) {
            doc.SetNull();
            return {Error::Trailing, i};
        }
    }
    remove_all_duplicates(doc);
    return result;
}

const Value* find_member(const Value& obj, std::string_view key) {
    if (!obj.IsObject()) return nullptr;
    for (const auto& m : obj.GetObject())
        if (str(m.name) == key) return &m.value;
    return nullptr;
}

std::optional<int64_t> to_int_like(const Value& v) {
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
    if (v.IsString()) return parse_int(trim(str(v))).value_or(0);
    return std::nullopt;
}

std::string to_compact_json(const Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
}

int utf8_sequence(std::string_view s) {
    auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char c = b(0);
    if (c < 0x80) return 1;
    int len;
    unsigned char lo = 0x80, hi = 0xBF; // the second byte's range (no overlong forms, no surrogates)
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (int i = 1; i < len; ++i) {
        if (static_cast<size_t>(i) >= s.size()) return -i;
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (b(static_cast<size_t>(i)) < lo_i || b(static_cast<size_t>(i)) > hi_i) return 0;
    }
    return len;
}

size_t append_string_chars(std::string& out, std::string_view s, StringStyle style, bool partial) {
    static const char kHex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            if (!style.replace_invalid_utf8) {
                out += static_cast<char>(c);
                ++i;
                continue;
            }
            int n = utf8_sequence(s.substr(i));
            if (n < 0 && partial) return s.size() - i;
            if (n <= 0) {
                out += "\xEF\xBF\xBD"; // U+FFFD
                ++i;
            } else {
                out.append(s.substr(i, static_cast<size_t>(n)));
                i += static_cast<size_t>(n);
            }
            continue;
        }
        ++i;
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            continue;
        }
        if (c >= 0x20) {
            out += static_cast<char>(c);
            continue;
        }
        if (style.short_escapes) {
            const char* short_form = nullptr;
            switch (c) {
            case '\b':
                short_form = "\\b";
                break;
            case '\f':
                short_form = "\\f";
                break;
            case '\n':
                short_form = "\\n";
                break;
            case '\r':
                short_form = "\\r";
                break;
            case '\t':
                short_form = "\\t";
                break;
            default:
                break;
            }
            if (short_form) {
                out += short_form;
                continue;
            }
        }
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return 0;
}

void append_string(std::string& out, std::string_view s, StringStyle style) {
    out += '"';
    append_string_chars(out, s, style);
    out += '"';
}

} // namespace gripd::core::json
