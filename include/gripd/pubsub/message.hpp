// Message: one published item, validated and rendered once, then shared read-only by every worker
// and every subscriber that delivers it (DESIGN.md "The publish path").
//
// A Message is immutable after create() and held through MessageRef (std::shared_ptr<const Message>,
// atomically refcounted), so it may cross threads. create() has each format rendered by the format's
// owner (pubsub/render.hpp; pubsub itself knows no HTTP or WebSocket bytes), and delivery writes those
// bytes as they are:
//   - http-stream: `chunk`, the chunk-framed content (empty when there is nothing to send);
//   - ws-message: `frame`, the complete server frame for send and close (empty for hint/refresh);
//   - http-response: `head`, the status line and the publish headers, which the hold completes with
//     its own headers and the framing (grip/render.hpp).
// Content filters that rewrite content (var-subst, build-id) need the raw content; it is available as
// a view into the rendered bytes (no second copy).
#pragma once

#include "gripd/pubsub/publish.hpp"
#include "gripd/pubsub/render.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::pubsub {

class Message;
using MessageRef = std::shared_ptr<const Message>;

class Message {
  public:
    struct ResponsePart {
        Action action = Action::Send;
        int code = 200;
        std::string reason; // empty: the standard phrase for `code`
        HeaderList headers; // as published (framing headers included; they are dropped on render)
        std::string body;
        std::optional<std::string> body_patch; // JSON Patch text; the hold applies it to its own body
        std::optional<std::vector<std::string>> content_filters;
        std::string head; // action send: the status line, then the publish headers' lines
        std::string_view status_line() const {
            return std::string_view(head).substr(0, header_lines_offset_);
        }
        std::string_view header_lines() const { return std::string_view(head).substr(header_lines_offset_); }

      private:
        friend class Message;
        size_t header_lines_offset_ = 0;
    };
    struct StreamPart {
        Action action = Action::Send;
        std::string chunk; // the content framed as one chunk, or empty if there is nothing to send
        std::optional<std::string> connection_id; // close: only this connection (gripd)
        std::optional<std::vector<std::string>> content_filters;
        std::string_view content() const {
            return std::string_view(chunk).substr(content_offset_, content_size_);
        }

      private:
        friend class Message;
        size_t content_offset_ = 0;
        size_t content_size_ = 0;
    };
    struct WsPart {
        Action action = Action::Send;
        WsType type = WsType::Text;
        int close_code = -1; // action close
        std::string close_reason;
        std::optional<std::string> connection_id; // close: only this connection (gripd)
        std::string frame; // the whole server frame for send and close; empty for hint/refresh
        std::optional<std::vector<std::string>> content_filters;
        std::string_view payload() const {
            return std::string_view(frame).substr(payload_offset_, payload_size_);
        }

      private:
        friend class Message;
        size_t payload_offset_ = 0;
        size_t payload_size_ = 0;
    };

    // Takes the item apart and has every format present rendered (once) by the installed renderers.
    // Never fails.
    static MessageRef create(PublishItem&& item);
    // A copy of `m` with the id the channel's owner assigned ([gripd] history_assign_ids). An
    // http-stream content shaped as one SSE event with no `id:` line of its own gets `id: <id>` as
    // its first line, so an EventSource resumes from it (Last-Event-ID).
    // Given the only reference (the channel's owner, before delivery), it is changed in place.
    static MessageRef with_assigned_id(const MessageRef& m, std::string id);
    // The same done to an item before create(), so its formats are rendered once: the owner's
    // own items under history_assign_ids (with_assigned_id is for ids a message gets later).
    static void assign_id(PublishItem& item, std::string id);

    const std::string& channel() const { return channel_; }
    const std::optional<std::string>& id() const { return id_; }
    const std::optional<std::string>& prev_id() const { return prev_id_; }
    bool no_seq() const { return no_seq_; }
    int size() const { return size_; } // the item's "size", or -1
    const std::vector<std::pair<std::string, std::string>>& meta() const { return meta_; }
    const std::string* meta_value(std::string_view name) const;

    // nullptr when the item has no such format.
    const ResponsePart* http_response() const { return response_.get(); }
    const StreamPart* http_stream() const { return stream_ ? &*stream_ : nullptr; }
    const WsPart* ws_message() const { return ws_.get(); }
    // Whether this thread made it (create() or a copy). A worker that keeps a message for long
    // (history) keeps its own copy of one made by another worker: freeing another thread's cold
    // memory later, under its allocator arena's lock, cost more than the copy (history_bench.py).
    bool made_on_this_thread() const { return maker_ == thread_tag(); }

    // Use create().
    Message() = default;
    Message(const Message& other); // every part copied (with_assigned_id of a shared message)
    Message& operator=(const Message&) = delete;

  private:
    static const void* thread_tag();

    const void* maker_ = thread_tag();
    std::string channel_;
    std::optional<std::string> id_;
    std::optional<std::string> prev_id_;
    std::vector<std::pair<std::string, std::string>> meta_;
    int size_ = -1;
    bool no_seq_ = false;
    // The http-stream part (the common one) is kept inline; the other two only when present, so
    // a history of SSE items keeps 300 bytes a message rather than 660 (and a publish fills fewer
    // cache lines).
    std::unique_ptr<ResponsePart> response_;
    std::optional<StreamPart> stream_;
    std::unique_ptr<WsPart> ws_;
};

} // namespace gripd::pubsub
