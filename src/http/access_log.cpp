#include "gripd/http/access_log.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"

namespace gripd::http {

namespace {

bool needs_encoding(unsigned char c) {
    if (c <= 0x20 || c >= 0x7f) return true;
    switch (c) {
    case '"':
    case '<':
    case '>':
    case '\\':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
        return true;
    default:
        return false;
    }
}

// A client-given value shown as text (User-Agent): control bytes become \xNN so one request is one line.
void append_escaped(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += ch;
        }
    }
}

} // namespace

void append_url_encoded(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if (needs_encoding(c)) {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += ch;
        }
    }
}

AccessLog::AccessLog(const RequestHead& head, std::string_view scheme, std::string_view peer,
                     const config::Settings& settings)
    : over_http_scheme_(scheme != "http" && scheme != "https") {
    request_ = head.method;
    request_ += ' ';
    std::string_view target = head.target;
    if (target.empty() || target.front() == '/') {
        // Origin form: Pushpin shows the URI it rebuilt from the Host header (host lower-cased).
        request_ += scheme;
        request_ += "://";
        if (const std::string* host = head.headers.get("Host"))
            for (char c : *host)
                request_ += core::ascii_lower(c);
    }
    append_url_encoded(request_, target);
    if (settings.log_from) from_ = std::string(peer);
    if (const std::string* ref = head.headers.get("Referer"); ref && !ref->empty())
        append_url_encoded(ref_, *ref);
    if (settings.log_user_agent)
        if (const std::string* ua = head.headers.get("User-Agent")) append_escaped(ua_, *ua);
}

std::string AccessLog::format(std::string_view target, bool over_http, std::string_view route_id,
                              Outcome outcome, int code, int64_t body_bytes, bool retry) const {
    std::string line = request_;
    if (!target.empty()) {
        line += " -> ";
        line += target;
        if (over_http_scheme_ && over_http) line += "[http]";
    }
    if (!from_.empty()) line += " from=" + from_;
    if (!ref_.empty()) line += " ref=" + ref_;
    if (!route_id.empty()) {
        line += " route=";
        line += route_id;
    }
    switch (outcome) {
    case Outcome::Response:
        line += " code=" + std::to_string(code) + " " + std::to_string(body_bytes);
        break;
    case Outcome::Accept:
        line += " accept";
        break;
    case Outcome::Error:
        line += " error";
        break;
    }
    if (retry) line += " retry";
    if (!ua_.empty()) line += " ua=" + ua_;
    return line;
}

void AccessLog::write(const char* log_target, std::string_view target, bool over_http,
                      std::string_view route_id, Outcome outcome, int code, int64_t body_bytes,
                      bool retry) const {
    if (!core::log_enabled(core::LogLevel::Info)) return;
    std::string line = format(target, over_http, route_id, outcome, code, body_bytes, retry);
    LOG_INFO(log_target, "%s", line.c_str());
}

} // namespace gripd::http
