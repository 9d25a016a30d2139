#include "gripd/ws/events.hpp"

#include <cstdio>

namespace gripd::ws {

namespace {
constexpr std::string_view kNames[] = {"OPEN", "TEXT", "BINARY", "PING", "PONG", "CLOSE", "DISCONNECT"};

bool parse_hex(std::string_view s, size_t* out) {
    if (s.empty() || s.size() > 15) return false;
    size_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return false;
        v = v * 16 + static_cast<size_t>(d);
    }
    *out = v;
    return true;
}
} // namespace

std::string_view event_name(EventType type) {
    auto i = static_cast<size_t>(type);
    return i < std::size(kNames) ? kNames[i] : std::string_view();
}

EventType event_type(std::string_view name) {
    for (size_t i = 0; i < std::size(kNames); ++i)
        if (kNames[i] == name) return static_cast<EventType>(i);
    return EventType::Unknown;
}

void append_event(std::string& out, EventType type, std::string_view content, bool has_content) {
    out.append(event_name(type));
    if (has_content) {
        char len[24];
        int n = std::snprintf(len, sizeof(len), " %zx\r\n", content.size());
        out.append(len, static_cast<size_t>(n));
        out.append(content);
    }
    out.append("\r\n");
}

size_t event_size(EventType type, size_t content_size) {
    char len[24];
    int n = std::snprintf(len, sizeof(len), " %zx\r\n", content_size);
    return event_name(type).size() + static_cast<size_t>(n) + content_size + 2;
}

bool parse_events(std::string_view body, std::vector<Event>* out, std::string* error) {
    size_t pos = 0;
    while (pos < body.size()) {
        size_t eol = body.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            *error = "event line without CRLF";
            return false;
        }
        std::string_view line = body.substr(pos, eol - pos);
        pos = eol + 2;
        Event e;
        size_t sp = line.find(' ');
        if (sp == std::string_view::npos) {
            e.name = std::string(line);
        } else {
            e.name = std::string(line.substr(0, sp));
            size_t len = 0;
            if (!parse_hex(line.substr(sp + 1), &len)) {
                *error = "bad event length";
                return false;
            }
            if (body.size() - pos < len + 2 || body.substr(pos + len, 2) != "\r\n") {
                *error = "event content shorter than its length";
                return false;
            }
            e.content = std::string(body.substr(pos, len));
            e.has_content = true;
            pos += len + 2;
        }
        e.type = event_type(e.name);
        out->push_back(std::move(e));
    }
    return true;
}

} // namespace gripd::ws
