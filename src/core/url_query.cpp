#include "gripd/core/url_query.hpp"

#include "gripd/core/strings.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

namespace gripd::core {

namespace {
struct Byte {
    uint8_t value;
    bool escaped; // came from a %XX escape
};

void append_escape(std::string& out, uint8_t b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    out.push_back('%');
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
}

// Characters Qt leaves escaped when pretty-decoding a query item: the URL delimiters other than the
// query's own `&`, `=` and `#` (which QUrlQuery decodes once it has split the query), and `%`.
bool stays_escaped(uint8_t b) {
    return b < 0x20 || b == 0x7f || (b != 0 && std::strchr("%:/?[]@!$'()*+,;", b) != nullptr);
}

// Length of the valid UTF-8 sequence starting at bytes[i] (a non-ASCII byte), or 0 if invalid.
size_t utf8_sequence(const std::vector<Byte>& bytes, size_t i) {
    uint8_t lead = bytes[i].value;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; // range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
        len = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        len = 3;
        if (lead == 0xe0) lo = 0xa0;
        if (lead == 0xed) hi = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        len = 4;
        if (lead == 0xf0) lo = 0x90;
        if (lead == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (i + len > bytes.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
        uint8_t b = bytes[i + k].value;
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
    }
    return len;
}
} // namespace

std::string query_decode(std::string_view text) {
    std::vector<Byte> bytes;
    bytes.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
            hex_digit(text[i + 2]) >= 0) {
            bytes.push_back(
                {static_cast<uint8_t>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2])), true});
            i += 2;
        } else {
            bytes.push_back({static_cast<uint8_t>(text[i]), false});
        }
    }
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < bytes.size(); ++i) {
        const Byte& b = bytes[i];
        if (b.value >= 0x80) {
            size_t len = utf8_sequence(bytes, i);
            if (len == 0) {
                append_escape(out, b.value);
                continue;
            }
            for (size_t k = 0; k < len; ++k)
                out.push_back(static_cast<char>(bytes[i + k].value));
            i += len - 1;
        } else if (b.value == '%' && !b.escaped) {
            out += "%25"; // a '%' that starts no escape
        } else if (b.escaped && stays_escaped(b.value)) {
            append_escape(out, b.value);
        } else {
            out.push_back(static_cast<char>(b.value));
        }
    }
    return out;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    size_t q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view query = target.substr(q + 1);
    query = query.substr(0, query.find('#'));
    while (true) {
        size_t amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        size_t eq = item.find('=');
        if (!item.empty() && query_decode(item.substr(0, eq)) == name)
            return eq == std::string_view::npos ? std::string() : query_decode(item.substr(eq + 1));
        if (amp == std::string_view::npos) return std::nullopt;
        query.remove_prefix(amp + 1);
    }
}

} // namespace gripd::core
