#include "gripd/ws/event_queue.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/strings.hpp"

#include <cstdio>
#include <cstring>

namespace gripd::ws {

namespace {
// Consumed bytes are dropped from the front only once there are this many and at least as many as
// remain: each byte is moved at most once on average.
constexpr size_t kCompactMin = 64 * 1024;

} // namespace

void EventQueue::push(EventType type, std::string_view content) {
    append_event(buf_, type, content, !content.empty());
    ++events_;
    content_ += content.size();
}

EventQueue::Head EventQueue::parse_head(size_t at) const {
    Head h;
    std::string_view rest(buf_.data() + at, buf_.size() - at);
    size_t eol = rest.find("\r\n");
    GRIPD_ASSERT(eol != std::string_view::npos);
    std::string_view line = rest.substr(0, eol);
    h.head_len = eol + 2;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
        h.name_len = line.size();
        return h;
    }
    h.name_len = sp;
    h.has_content = true;
    h.content_len = static_cast<size_t>(core::parse_hex(line.substr(sp + 1)).value_or(0)); // our own encoding
    return h;
}

EventQueue::Batch EventQueue::front(size_t max_bytes, size_t max_events) const {
    Batch b;
    size_t at = head_;
    while (b.events < events_ && b.events < max_events) {
        Head h = parse_head(at);
        if (b.events > 0 && (at - head_) + h.total() > max_bytes) break;
        at += h.total();
        b.content += h.content_len;
        ++b.events;
    }
    b.bytes = std::string_view(buf_.data() + head_, at - head_);
    return b;
}

size_t EventQueue::consume(size_t max_events, size_t content) {
    size_t removed = 0;
    while (removed < max_events && events_ > 0) {
        Head h = parse_head(head_);
        if (h.content_len > content) {
            if (content > 0) {
                // Part of this event was accepted: re-encode the rest in place. The new event line
                // is never longer than the old one, so it ends where the remaining content starts.
                char line[48];
                int n = std::snprintf(line, sizeof(line), " %zx\r\n", h.content_len - content);
                size_t line_len = h.name_len + static_cast<size_t>(n);
                size_t start = head_ + h.head_len + content - line_len;
                std::memmove(&buf_[start], &buf_[head_], h.name_len);
                std::memcpy(&buf_[start + h.name_len], line, static_cast<size_t>(n));
                head_ = start;
                content_ -= content;
            }
            break;
        }
        content -= h.content_len;
        content_ -= h.content_len;
        head_ += h.total();
        --events_;
        ++removed;
    }
    compact();
    return removed;
}

void EventQueue::compact() {
    if (events_ == 0) {
        clear();
        return;
    }
    if (head_ >= kCompactMin && head_ >= bytes()) {
        buf_.erase(0, head_);
        head_ = 0;
    }
}

void EventQueue::clear() {
    std::string().swap(buf_);
    head_ = events_ = content_ = 0;
}

} // namespace gripd::ws
