// Message: one published item, validated and rendered once, then shared read-only by every worker
// and every subscriber that delivers it (DESIGN.md "The publish path").
//
// A Message is immutable after create() and held through MessageRef (std::shared_ptr<const Message>,
// atomically refcounted), so it may cross threads. Delivery writes the pre-rendered bytes:
//   - http-stream: the chunk-framed bytes "<hex>\r\n<content>\r\n" (empty content renders to nothing,
//     since an empty chunk would end the response);
//   - ws-message: the complete unmasked server frame (text/binary/ping/pong, or close with code+reason);
//   - http-response: the status line and the publish headers, pre-serialized; render_http_response()
//     merges them with a hold's timeout-response headers (publish headers win) and adds framing.
// Content filters that rewrite content (var-subst, build-id) need the raw content; it is available as
// a view into the rendered bytes (no second copy).
#pragma once

#include "gripd/http/headers.hpp"
#include "gripd/pubsub/publish.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::pubsub {

class Message;
using MessageRef = std::shared_ptr<const Message>;

// How a long-poll answer is framed for the client connection it goes to.
struct ResponseOptions {
    bool keep_alive = true; // false: add "Connection: close"
    bool http10 = false;    // HTTP/1.0 client: keep-alive must be announced ("Connection: keep-alive")
    bool head = false;      // HEAD request: headers only (Content-Length still describes the body)
};

class Message {
  public:
    struct ResponsePart {
        Action action = Action::Send;
        int code = 200;
        std::string reason;
        http::Headers headers; // as published (framing headers included; they are dropped on render)
        std::string body;
        std::optional<std::string> body_patch; // JSON Patch text; the hold applies it to its own body
        std::optional<std::vector<std::string>> content_filters;
        std::string status_line;   // "HTTP/1.1 <code> <reason>\r\n"
        std::string headers_block; // publish headers minus framing/hop-by-hop, "Name: value\r\n" each
    };
    struct StreamPart {
        Action action = Action::Send;
        std::string chunk; // "<hex>\r\n<content>\r\n", or empty if there is no content
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

    // Takes the item apart and renders every format present. Never fails.
    static MessageRef create(PublishItem&& item);

    const std::string& channel() const { return channel_; }
    const std::optional<std::string>& id() const { return id_; }
    const std::optional<std::string>& prev_id() const { return prev_id_; }
    bool no_seq() const { return no_seq_; }
    int size() const { return size_; } // the item's "size", or -1
    const std::vector<std::pair<std::string, std::string>>& meta() const { return meta_; }
    const std::string* meta_value(std::string_view name) const;

    // nullptr when the item has no such format.
    const ResponsePart* http_response() const { return response_ ? &*response_ : nullptr; }
    const StreamPart* http_stream() const { return stream_ ? &*stream_ : nullptr; }
    const WsPart* ws_message() const { return ws_ ? &*ws_ : nullptr; }

    // Appends the complete HTTP/1.1 response answering a held long-poll to `out`: status line,
    // `hold_headers` (the hold's timeout-response headers) except those the publish overrides and
    // framing ones, the publish headers, Connection as `opts` needs, Content-Length, then the body
    // (`patched_body` if given, for body-patch items). 1xx/204/304 get neither length nor body.
    // Precondition: http_response() != nullptr.
    void render_http_response(const http::Headers& hold_headers, const ResponseOptions& opts,
                              std::string& out,
                              std::optional<std::string_view> patched_body = std::nullopt) const;

    // Use create().
    Message() = default;

  private:
    std::string channel_;
    std::optional<std::string> id_;
    std::optional<std::string> prev_id_;
    std::vector<std::pair<std::string, std::string>> meta_;
    int size_ = -1;
    bool no_seq_ = false;
    std::optional<ResponsePart> response_;
    std::optional<StreamPart> stream_;
    std::optional<WsPart> ws_;
};

// WebSocket framing (RFC 6455 §5.2), server side: FIN set, no mask.
enum class WsOpcode : uint8_t {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA
};
// Appends one frame carrying `payload` (control frames' payloads are cut to 125 bytes).
void append_ws_frame(std::string& out, WsOpcode opcode, std::string_view payload);
// Appends a close frame: no payload when code < 0 (and no reason), else a 2-byte code plus the reason
// (a reason without a code gets 1000). Control payloads are cut to 125 bytes.
void append_ws_close_frame(std::string& out, int code, std::string_view reason);

// True for headers a published or instruct response must not carry to the client as-is because the
// server sets them (framing and connection management): Content-Length, Transfer-Encoding,
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade.
bool is_framing_header(std::string_view name);

} // namespace gripd::pubsub
