// WebSocket-over-HTTP events (PROTOCOL.md §5.2), sans-I/O: the body of every request to and
// response from an over_http backend is a list of `TYPE <hex-len>\r\n<bytes>\r\n` (or `TYPE\r\n`
// without content) events.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::ws {

enum class EventType : uint8_t { Open, Text, Binary, Ping, Pong, Close, Disconnect, Unknown };

struct Event {
    EventType type = EventType::Unknown;
    std::string content;
    bool has_content = false; // `TYPE <len>` form (content may still be empty)
    std::string name;         // the type as sent (useful for Unknown)
};

// "OPEN", "TEXT", ... ("" for Unknown).
std::string_view event_name(EventType type);
// The type for a name (case-sensitive, as Pushpin); Unknown otherwise.
EventType event_type(std::string_view name);

// Appends one event: `TYPE\r\n` when has_content is false, else `TYPE <hex>\r\n<content>\r\n`.
void append_event(std::string& out, EventType type, std::string_view content, bool has_content);
inline void append_event(std::string& out, EventType type) {
    append_event(out, type, {}, false);
}
inline void append_event(std::string& out, EventType type, std::string_view content) {
    append_event(out, type, content, true);
}

// One event as read from a body: views into it (valid while the body is).
struct EventView {
    EventType type = EventType::Unknown;
    std::string_view name;
    std::string_view content;
    bool has_content = false;
};

// Reads a body one event at a time, without copying: a backend's 1,000,000-byte answer of tiny
// events costs no per-event allocation.
class EventReader {
  public:
    explicit EventReader(std::string_view body) : body_(body) {}
    // The next event; false at the end of the body or at a malformed event (error() then says why).
    bool next(EventView* out);
    const char* error() const { return error_; }

  private:
    std::string_view body_;
    size_t pos_ = 0;
    const char* error_ = nullptr;
};

// Parses a whole body. Unknown event types are kept (as Unknown) for the caller to skip, as Pushpin
// does. Returns false (with a short reason) on a malformed body: a line without CRLF, a bad hex
// length, content shorter than announced or not followed by CRLF.
bool parse_events(std::string_view body, std::vector<Event>* out, std::string* error);

// Bytes append_event adds for `content_size` bytes of content (with has_content).
size_t event_size(EventType type, size_t content_size);

} // namespace gripd::ws
