#include "gripd/ws/events.hpp"

#include "gripd/core/strings.hpp"

#include <cstdio>

namespace gripd::ws {

namespace {
constexpr std::string_view kNames[] = {"OPEN", "TEXT", "BINARY", "PING", "PONG", "CLOSE", "DISCONNECT"};
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

bool EventReader::next(EventView* out) {
    if (error_ || pos_ >= body_.size()) return false;
    size_t eol = body_.find("\r\n", pos_);
    if (eol == std::string_view::npos) {
        error_ = "event line without CRLF";
        return false;
    }
    std::string_view line = body_.substr(pos_, eol - pos_);
    size_t pos = eol + 2;
    EventView e;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
        e.name = line;
    } else {
        e.name = line.substr(0, sp);
        std::optional<uint64_t> parsed = core::parse_hex(line.substr(sp + 1));
        if (!parsed) {
            error_ = "bad event length";
            return false;
        }
        size_t len = static_cast<size_t>(*parsed);
        if (body_.size() - pos < len + 2 || body_.substr(pos + len, 2) != "\r\n") {
            error_ = "event content shorter than its length";
            return false;
        }
        e.content = body_.substr(pos, len);
        e.has_content = true;
        pos += len + 2;
    }
    e.type = event_type(e.name);
    pos_ = pos;
    *out = e;
    return true;
}

bool parse_events(std::string_view body, std::vector<Event>* out, std::string* error) {
    EventReader reader(body);
    EventView v;
    while (reader.next(&v)) {
        Event e;
        e.type = v.type;
        e.name = std::string(v.name);
        e.content = std::string(v.content);
        e.has_content = v.has_content;
        out->push_back(std::move(e));
    }
    if (reader.error()) {
        *error = reader.error();
        return false;
    }
    return true;
}

} // namespace gripd::ws
