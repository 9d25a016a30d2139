// The http-response and http-stream formats in HTTP bytes. grip answers held requests with these
// formats, so it is their renderer for pubsub (pubsub/render.hpp); every byte comes from http's
// serializer and header rules, as for any other response gripd writes.
//  - render_http_response / render_http_stream: installed in pubsub::Renderers, called once per
//    message (not per subscriber) when the message is created.
//  - append_held_response: completes one held long-poll's answer from that pre-rendered head.
#pragma once

#include "gripd/http/headers.hpp"
#include "gripd/pubsub/message.hpp"
#include "gripd/pubsub/render.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace gripd::grip {

// Action send: the status line ("HTTP/1.1 <code> <reason>", the standard phrase when the item gives
// no reason), then a line per publish header except the framing ones (http::is_framing_header); the
// span is the header lines. Published text cannot split the answer: bad names are dropped, controls
// blanked (http/serialize.hpp). Other actions: nothing.
void render_http_response(const pubsub::HttpResponseFormat& format, pubsub::Rendered& out);

// Action send with content: one chunk "<hex>\r\n<content>\r\n", the span being the content. Nothing
// otherwise (an empty chunk would end the response).
void render_http_stream(const pubsub::HttpStreamFormat& format, pubsub::Rendered& out);

// How a long-poll answer is framed for the client connection it goes to.
struct ResponseOptions {
    bool keep_alive = true; // false: add "Connection: close"
    bool http10 = false;    // HTTP/1.0 client: keep-alive must be announced ("Connection: keep-alive")
    bool head = false;      // HEAD request: headers only (Content-Length still describes the body)
};

// Appends the complete HTTP/1.1 response answering a held long-poll with `part` to `out`: status
// line, `hold_headers` (the hold's timeout-response headers) except those the publish overrides and
// framing ones, the publish headers, Connection as `opts` needs, Content-Length, then the body
// (`patched_body` if given, for body-patch items). 1xx/204/304 get neither length nor body.
// Precondition: part.action == Send.
void append_held_response(const pubsub::Message::ResponsePart& part, const http::Headers& hold_headers,
                          const ResponseOptions& opts, std::string& out,
                          std::optional<std::string_view> patched_body = std::nullopt);

} // namespace gripd::grip
