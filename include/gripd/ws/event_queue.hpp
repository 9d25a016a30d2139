// EventQueue: client messages waiting for a WebSocket-over-HTTP backend (PROTOCOL.md §5.2), kept
// as the encoded bytes a POST body carries (`TYPE\r\n` or `TYPE <hex>\r\n<content>\r\n`) and
// consumed from the front by offset. Sans-I/O.
//
// Why encoded: every byte of every event is what the buffer limit counts, framing included, so a
// flood of empty messages weighs what it sends; a request body is a view of the front, not a copy
// built message by message; and there is no per-event object to allocate or erase (O(1) per event).
#pragma once

#include "gripd/ws/events.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace gripd::ws {

class EventQueue {
  public:
    // Appends one event: `TYPE\r\n` when `content` is empty (as Pushpin sends an empty message),
    // else `TYPE <hex>\r\n<content>\r\n`.
    void push(EventType type, std::string_view content);

    size_t bytes() const { return buf_.size() - head_; } // encoded bytes waiting
    size_t events() const { return events_; }
    size_t content_bytes() const { return content_; } // their content alone
    bool empty() const { return events_ == 0; }
    // Bytes held, consumed ones included (what the queue costs until it compacts).
    size_t capacity() const { return buf_.capacity(); }

    struct Batch {
        std::string_view bytes; // valid until the next push/consume/clear
        size_t events = 0;
        size_t content = 0;
    };
    // The whole events at the front that fit in `max_bytes`, at most `max_events` of them. The
    // first event is always taken, whatever its size (a message may be as large as the buffer).
    Batch front(size_t max_bytes, size_t max_events) const;

    // The backend accepted `content` bytes of content: among the first `max_events` events, each
    // one whose content is covered goes (an empty one as soon as it is reached); one covered in
    // part keeps the rest, re-encoded in place. Returns how many events went.
    size_t consume(size_t max_events, size_t content);

    // Drops everything and frees the storage (an idle session keeps no buffer).
    void clear();

  private:
    struct Head {
        size_t name_len = 0;
        size_t head_len = 0; // the event line with its CRLF
        size_t content_len = 0;
        bool has_content = false;
        size_t total() const { return head_len + (has_content ? content_len + 2 : 0); }
    };
    Head parse_head(size_t at) const; // the event at `at` (written by push: well formed)
    void compact();

    std::string buf_;
    size_t head_ = 0; // offset of the first event not consumed
    size_t events_ = 0;
    size_t content_ = 0;
};

} // namespace gripd::ws
