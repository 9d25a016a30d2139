// libFuzzer target: the WebSocket-over-HTTP event codec (PROTOCOL.md §5.2) on arbitrary bodies.
// A body that parses is encoded again (append_event for known types, the same layout by hand for
// unknown names, which parse_events keeps), parsed again to the same events, and encoded again to the
// same bytes; event_size must match what append_event writes. A body that does not parse must say why.
#include "gripd/ws/events.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace gripd::ws;

namespace {

std::string encode(const std::vector<Event>& events) {
    std::string out;
    for (const auto& e : events) {
        if (e.type != EventType::Unknown) {
            size_t before = out.size();
            append_event(out, e.type, e.content, e.has_content);
            if (e.has_content && out.size() - before != event_size(e.type, e.content.size())) abort();
            continue;
        }
        out += e.name;
        if (e.has_content) {
            char len[24];
            out.append(len,
                       static_cast<size_t>(std::snprintf(len, sizeof(len), " %zx\r\n", e.content.size())));
            out += e.content;
        }
        out += "\r\n";
    }
    return out;
}

bool same(const Event& a, const Event& b) {
    return a.type == b.type && a.name == b.name && a.content == b.content && a.has_content == b.has_content;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    std::vector<Event> events;
    std::string error;
    if (!parse_events(body, &events, &error)) {
        if (error.empty()) abort();
        return 0;
    }
    for (const auto& e : events) {
        if (e.type != event_type(e.name)) abort();
        if (e.type != EventType::Unknown && event_name(e.type) != e.name) abort();
        if (!e.has_content && !e.content.empty()) abort();
    }
    std::string wire = encode(events);
    std::vector<Event> again;
    if (!parse_events(wire, &again, &error) || again.size() != events.size()) abort();
    for (size_t i = 0; i < events.size(); ++i)
        if (!same(events[i], again[i])) abort();
    if (encode(again) != wire) abort();
    return 0;
}
