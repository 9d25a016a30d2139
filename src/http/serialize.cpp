#include "gripd/http/serialize.hpp"

#include "http/h1_internal.hpp"

namespace gripd::http {

namespace {

// Appends `s` with control characters (CR, LF, NUL...) replaced by a space.
void append_clean(std::string& out, std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        out += (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : ch;
    }
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!detail::is_tchar(static_cast<unsigned char>(c))) return false;
    return true;
}

void append_headers(const Headers& headers, std::string& out) {
    serialize_headers(headers, out);
    out += "\r\n";
}

size_t hex_digits(size_t n) {
    size_t d = 1;
    while (n >>= 4)
        ++d;
    return d;
}

} // namespace

void append_status_line(int status, std::string_view reason, std::string& out) {
    if (status < 100 || status > 999) {
        status = 500;
        reason = {};
    }
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    append_clean(out, reason.empty() ? reason_phrase(status) : reason);
    out += "\r\n";
}

void append_header_line(std::string_view name, std::string_view value, std::string& out) {
    if (!is_token(name)) return;
    out += name;
    out += ": ";
    append_clean(out, value);
    out += "\r\n";
}

void serialize_headers(const Headers& headers, std::string& out) {
    for (const auto& h : headers)
        append_header_line(h.name, h.value, out);
}

void serialize_request_head(std::string_view method, std::string_view target, const Headers& headers,
                            std::string& out) {
    append_clean(out, method);
    out += ' ';
    // The request-target has no spaces or controls (RFC 9112 §3.2): percent-encode them.
    for (char ch : target) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f) {
            static constexpr char kHex[] = "0123456789ABCDEF";
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += ch;
        }
    }
    out += " HTTP/1.1\r\n";
    append_headers(headers, out);
}

void serialize_response_head(int status, std::string_view reason, const Headers& headers, std::string& out) {
    append_status_line(status, reason, out);
    append_headers(headers, out);
}

size_t append_chunk(std::string& out, std::string_view data) {
    if (data.empty()) return out.size();
    static constexpr char kHex[] = "0123456789abcdef";
    size_t n = data.size();
    size_t digits = hex_digits(n);
    out.reserve(out.size() + data.size() + digits + 4);
    for (size_t i = digits; i-- > 0;)
        out += kHex[(n >> (4 * i)) & 15];
    out += "\r\n";
    size_t at = out.size();
    out += data;
    out += "\r\n";
    return at;
}

void append_last_chunk(std::string& out) {
    out += "0\r\n\r\n";
}

size_t chunk_overhead(size_t len) {
    return len == 0 ? 0 : hex_digits(len) + 4;
}

} // namespace gripd::http
