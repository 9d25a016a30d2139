// Renderers: how a published format becomes the bytes its clients get.
//
// pubsub keeps messages and subscriptions and knows no HTTP or WebSocket bytes: each format is
// rendered by its owner, through the one table below, installed once at startup (app::Server) before
// any worker runs:
//   - http-response and http-stream: grip, which answers held requests with them, using http's
//     serializer (grip/render.hpp);
//   - ws-message: ws, with its frame codec (ws/render.hpp).
// Message::create calls a format's renderer once per message, on the publishing worker; every
// subscriber on every worker then writes those same bytes, so fan-out never renders again.
#pragma once

#include "gripd/pubsub/publish.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace gripd::pubsub {

// What a renderer produces for one format of one message: the bytes, and the span of them that the
// format's deliverer needs on its own (a view, no second copy): the raw content of an http-stream
// chunk or of a ws-message frame (content filters, clients that take the content unframed), the
// header lines after the status line of an http-response head.
struct Rendered {
    std::string bytes;
    size_t span_offset = 0;
    size_t span_size = 0;
};

// One function per format. Each is called for every item that has the format, whatever its action,
// and renders nothing where the action sends no bytes. Plain function pointers: no state, no
// allocation, callable from any thread.
struct Renderers {
    void (*http_response)(const HttpResponseFormat& format, Rendered& out) = nullptr;
    void (*http_stream)(const HttpStreamFormat& format, Rendered& out) = nullptr;
    void (*ws_message)(const WsMessageFormat& format, Rendered& out) = nullptr;
};

// Installs the renderers. Call once, before any thread creates a Message (workers read the table
// without synchronization: starting a thread orders this write before its reads).
void set_renderers(const Renderers& renderers);
// The installed renderers (all null before set_renderers).
const Renderers& renderers();

} // namespace gripd::pubsub
