// Publish items: what a POST /publish/ body (or a bus/ZMQ item) asks gripd to deliver.
//
// parse_publish_body() validates a whole body all-or-nothing (one bad item rejects the body, nothing
// is published) and reports errors with Pushpin 1.36's exact texts (PROTOCOL.md §4.1, observed
// against the running reference). Parsing is pure: no I/O, no allocation beyond the result.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::pubsub {

// `action` of a format. Pushpin 1.36 knows send/hint/close; refresh is 1.38+ (accepted for every
// format, meaningful for ws-message only).
enum class Action : uint8_t { Send, Hint, Close, Refresh };

enum class WsType : uint8_t { Text, Binary, Ping, Pong };

// A published header (http-response `headers`). pubsub keeps headers as plain name/value pairs in
// item order, duplicates included; HTTP's rules for them belong to the renderer (pubsub/render.hpp).
struct Header {
    std::string name;
    std::string value;
};
using HeaderList = std::vector<Header>;

// The first value of `name` (case-insensitive, as header names are), or nullptr.
const std::string* find_header(const HeaderList& headers, std::string_view name);

struct HttpResponseFormat {
    Action action = Action::Send;
    int code = 200;
    std::string reason; // empty when the item gives none (the status line then has the standard phrase)
    HeaderList headers; // in item order (object or [[name, value]] form)
    std::string body;   // body, or base64-decoded body-bin
    // body-patch: the JSON Patch array as compact JSON text, applied by the hold to its own body.
    std::optional<std::string> body_patch;
    std::optional<std::vector<std::string>> content_filters; // present => must match the subscription's
};

struct HttpStreamFormat {
    Action action = Action::Send;
    std::string content; // content, or base64-decoded content-bin
    // close (gripd): only the stream whose Grip-Connection-Id this is ends; absent: every one.
    std::optional<std::string> connection_id;
    std::optional<std::vector<std::string>> content_filters;
};

struct WsMessageFormat {
    Action action = Action::Send;
    WsType type = WsType::Text; // content => text, content-bin => binary, unless `type` says otherwise
    std::string content;
    int close_code = -1; // action close: -1 when absent
    std::string close_reason;
    // close (gripd): only the WebSocket-over-HTTP session with this Connection-Id closes.
    std::optional<std::string> connection_id;
    std::optional<std::vector<std::string>> content_filters;
};

struct PublishItem {
    std::string channel;
    std::optional<std::string> id;
    std::optional<std::string> prev_id;
    std::vector<std::pair<std::string, std::string>> meta; // unique names
    int size = -1;                                         // -1 when absent
    bool no_seq = false;
    std::optional<HttpResponseFormat> http_response;
    std::optional<HttpStreamFormat> http_stream;
    std::optional<WsMessageFormat> ws_message;
    std::string json; // the item as JSON text, kept only when a bus carries it (parse_publish_body)
};

struct PublishParseResult {
    bool ok = false;
    std::vector<PublishItem> items; // when ok
    // When !ok: Pushpin's text without the trailing newline (the HTTP 400 body is error + "\n"),
    // e.g. "Body is not valid JSON.", "Invalid format: object does not contain 'items'",
    // "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'".
    std::string error;
    int error_item = -1; // index of the offending item (for logs; Pushpin's text does not name it)
};

// Parses a POST /publish/ body: {"items": [item, ...]}. With keep_json, each item also keeps its
// JSON text (what a bus carries).
PublishParseResult parse_publish_body(std::string_view body, bool keep_json = false);

// parse_publish_body() in steps, for bodies too big to validate in one loop turn: begin() parses
// the JSON and checks the envelope, then each next(max) validates up to `max` more items (appended
// to `out`), with the same errors and all-or-nothing rule (the caller publishes nothing until
// done()). Keeps the parsed document until done().
class PublishBodyParser {
  public:
    PublishBodyParser();
    ~PublishBodyParser();
    PublishBodyParser(const PublishBodyParser&) = delete;
    PublishBodyParser& operator=(const PublishBodyParser&) = delete;

    bool begin(std::string_view body, bool keep_json, std::string& error);
    size_t size() const; // items in the body (after a successful begin())
    // The string `channel`s of the items (sorted, unique), before they are validated: every item
    // that will be published is on one of them.
    std::vector<std::string> channels() const;
    bool next(size_t max, std::vector<PublishItem>& out, std::string& error, int& error_item);
    bool done() const { return !doc_ || next_ >= size(); }

  private:
    struct Doc;
    std::unique_ptr<Doc> doc_;
    size_t next_ = 0;
    bool keep_json_ = false;
};

struct PublishItemResult {
    bool ok = false;
    PublishItem item;
    std::string error; // the detail alone, e.g. "no formats specified" (no "Invalid format: " prefix)
};

// Parses one item given as JSON object text (bus and ZMQ inputs). A non-empty `channel` replaces the
// item's own (ZMQ SUB input carries the channel separately).
PublishItemResult parse_publish_item(std::string_view json, std::string_view channel = {});

} // namespace gripd::pubsub
