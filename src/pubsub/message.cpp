#include "gripd/pubsub/message.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/pubsub/filters.hpp"

namespace gripd::pubsub {

namespace {

// Written once by set_renderers() before any worker starts, read by every Message::create.
Renderers g_renderers;

} // namespace

void set_renderers(const Renderers& renderers) {
    g_renderers = renderers;
}

const Renderers& renderers() {
    return g_renderers;
}

const void* Message::thread_tag() {
    static thread_local const char tag = 0;
    return &tag;
}

Message::Message(const Message& other)
    : maker_(thread_tag()), channel_(other.channel_), id_(other.id_), prev_id_(other.prev_id_),
      meta_(other.meta_), size_(other.size_), no_seq_(other.no_seq_),
      response_(other.response_ ? std::make_unique<ResponsePart>(*other.response_) : nullptr),
      stream_(other.stream_), ws_(other.ws_ ? std::make_unique<WsPart>(*other.ws_) : nullptr) {}

MessageRef Message::create(PublishItem&& item) {
    const Renderers& render = g_renderers;
    auto m = std::make_shared<Message>();
    m->channel_ = std::move(item.channel);
    m->id_ = std::move(item.id);
    m->prev_id_ = std::move(item.prev_id);
    m->meta_ = std::move(item.meta);
    m->size_ = item.size;
    m->no_seq_ = item.no_seq;

    if (item.http_response) {
        HttpResponseFormat& f = *item.http_response;
        GRIPD_ASSERT(render.http_response);
        Rendered r;
        if (render.http_response) render.http_response(f, r);
        m->response_ = std::make_unique<ResponsePart>();
        ResponsePart& p = *m->response_;
        p.action = f.action;
        p.code = f.code;
        p.reason = std::move(f.reason);
        p.headers = std::move(f.headers);
        p.body = std::move(f.body);
        p.body_patch = std::move(f.body_patch);
        p.content_filters = std::move(f.content_filters);
        p.head = std::move(r.bytes);
        p.header_lines_offset_ = r.span_offset;
    }
    if (item.http_stream) {
        HttpStreamFormat& f = *item.http_stream;
        GRIPD_ASSERT(render.http_stream);
        // emplace(T{}) rather than emplace(): clang cannot yet see the nested parts as default
        // constructible inside Message, where their member initializers are not complete.
        StreamPart& p = m->stream_.emplace(StreamPart{});
        Rendered r;
        if (render.http_stream) render.http_stream(f, r);
        p.action = f.action;
        p.content_filters = std::move(f.content_filters);
        p.connection_id = std::move(f.connection_id);
        p.chunk = std::move(r.bytes);
        p.content_offset_ = r.span_offset;
        p.content_size_ = r.span_size;
    }
    if (item.ws_message) {
        WsMessageFormat& f = *item.ws_message;
        GRIPD_ASSERT(render.ws_message);
        m->ws_ = std::make_unique<WsPart>();
        WsPart& p = *m->ws_;
        Rendered r;
        if (render.ws_message) render.ws_message(f, r);
        p.action = f.action;
        p.type = f.type;
        p.close_code = f.close_code;
        p.close_reason = std::move(f.close_reason);
        p.connection_id = std::move(f.connection_id);
        p.content_filters = std::move(f.content_filters);
        p.frame = std::move(r.bytes);
        p.payload_offset_ = r.span_offset;
        p.payload_size_ = r.span_size;
    }
    return m;
}

namespace {
// One SSE event: field lines (data:, event:, retry: or a comment) ending with a blank line, and no id
// of its own. Other stream content is left as published (it is not ours to change).
bool is_sse_event_without_id(std::string_view c) {
    if (c.size() < 2 || c.substr(c.size() - 2) != "\n\n") return false;
    if (!(c.starts_with("data:") || c.starts_with("event:") || c.starts_with("retry:") || c.starts_with(":")))
        return false;
    return !c.starts_with("id:") && c.find("\nid:") == std::string_view::npos;
}

// The event with `id: <id>` as its first line.
std::string with_id_line(std::string_view id, std::string_view event) {
    std::string out;
    out.reserve(id.size() + 5 + event.size());
    out.append("id: ").append(id).append("\n").append(event);
    return out;
}
} // namespace

MessageRef Message::with_assigned_id(const MessageRef& ref, std::string id) {
    // Nobody else holds it (the owner took it from the publisher's batch): give it its id in place,
    // before it is shared, rather than copying every format (the publish path's cost). One another
    // worker made is copied, so the owner, which keeps it in history, frees its own memory later.
    std::shared_ptr<Message> out = ref.use_count() == 1 && ref->made_on_this_thread()
                                       ? std::const_pointer_cast<Message>(ref)
                                       : std::make_shared<Message>(*ref);
    const Message& m = *out;
    if (out->stream_ && out->stream_->action == Action::Send &&
        is_sse_event_without_id(m.stream_->content()) && g_renderers.http_stream) {
        HttpStreamFormat f;
        f.content = with_id_line(id, m.stream_->content()); // m is *out: read before it is replaced
        Rendered r;
        g_renderers.http_stream(f, r);
        out->stream_->chunk = std::move(r.bytes);
        out->stream_->content_offset_ = r.span_offset;
        out->stream_->content_size_ = r.span_size;
    }
    out->id_ = std::move(id);
    return out;
}

void Message::assign_id(PublishItem& item, std::string id) {
    if (item.http_stream && item.http_stream->action == Action::Send &&
        is_sse_event_without_id(item.http_stream->content))
        item.http_stream->content = with_id_line(id, item.http_stream->content);
    item.id = std::move(id);
}

const std::string* Message::meta_value(std::string_view name) const {
    return find_meta(meta_, name);
}

} // namespace gripd::pubsub
