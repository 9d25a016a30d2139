#include "gripd/pubsub/message.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace gripd;
using namespace gripd::pubsub;

namespace {

MessageRef from_json(const char* body) {
    auto r = parse_publish_body(body);
    REQUIRE(r.ok);
    REQUIRE(r.items.size() == 1);
    return Message::create(std::move(r.items[0]));
}

} // namespace

TEST_CASE("message: meta lookup and shared across threads read-only", "[pubsub][message]") {
    auto m = from_json(
        R"({"items":[{"channel":"c","meta":{"sender":"u1"},"formats":{"http-stream":{"content":"x"}}}]})");
    REQUIRE(m->meta_value("sender"));
    CHECK(*m->meta_value("sender") == "u1");
    CHECK(m->meta_value("nope") == nullptr);

    std::vector<std::thread> threads;
    std::vector<size_t> sizes(4);
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([m, &sizes, i] {
            size_t total = 0;
            for (int k = 0; k < 10000; ++k) {
                MessageRef copy = m;
                total += copy->http_stream()->chunk.size();
            }
            sizes[i] = total;
        });
    for (auto& t : threads)
        t.join();
    for (auto s : sizes)
        CHECK(s == 10000 * m->http_stream()->chunk.size());
}

namespace {

// Renderers that count their calls and render a marker around the content, so the test sees what
// pubsub does with them without any HTTP or WebSocket bytes.
int g_calls[3];

void mark(std::string_view content, Rendered& out) {
    out.bytes = "<" + std::string(content) + ">";
    out.span_offset = 1;
    out.span_size = content.size();
}

} // namespace

TEST_CASE("message: each format is rendered once, by the installed renderer", "[pubsub][message]") {
    const Renderers saved = renderers();
    g_calls[0] = g_calls[1] = g_calls[2] = 0;
    set_renderers({[](const HttpResponseFormat& f, Rendered& out) { ++g_calls[0], mark(f.body, out); },
                   [](const HttpStreamFormat& f, Rendered& out) { ++g_calls[1], mark(f.content, out); },
                   [](const WsMessageFormat& f, Rendered& out) { ++g_calls[2], mark(f.content, out); }});
    auto m = from_json(R"({"items":[{"channel":"c","formats":{"http-response":{"body":"r"},
        "http-stream":{"content":"st"},"ws-message":{"content":"wsm"}}}]})");
    auto s = from_json(R"({"items":[{"channel":"c","formats":{"http-stream":{"action":"close"}}}]})");
    set_renderers(saved);

    CHECK(g_calls[0] == 1);
    CHECK(g_calls[1] == 2); // a format's renderer is called whatever the action (close: nothing to send)
    CHECK(g_calls[2] == 1);
    CHECK(m->http_response()->head == "<r>");
    CHECK(m->http_response()->status_line() == "<");
    CHECK(m->http_response()->header_lines() == "r>");
    CHECK(m->http_stream()->chunk == "<st>");
    CHECK(m->http_stream()->content() == "st");
    CHECK(m->ws_message()->frame == "<wsm>");
    CHECK(m->ws_message()->payload() == "wsm");
    CHECK(s->http_stream()->chunk == "<>");
    // Delivering reads the stored bytes: no renderer runs again, however many subscribers read them.
    for (int i = 0; i < 3; ++i)
        CHECK(m->http_stream()->chunk == "<st>");
    CHECK(g_calls[1] == 2);
}

TEST_CASE("message: made_on_this_thread, and copies of another thread's message", "[pubsub][message]") {
    const char* body = R"({"items":[{"channel":"c","formats":{"http-stream":{"content":"data: x\n\n"},)"
                       R"("http-response":{"body":"b"},"ws-message":{"content":"w"}}}]})";
    MessageRef mine = from_json(body);
    CHECK(mine->made_on_this_thread());
    MessageRef theirs;
    std::thread([&] { theirs = from_json(body); }).join();
    CHECK_FALSE(theirs->made_on_this_thread());

    // A copy is this thread's, with every part as it was.
    auto copy = std::make_shared<const Message>(*theirs);
    CHECK(copy->made_on_this_thread());
    REQUIRE(copy->http_response());
    REQUIRE(copy->ws_message());
    CHECK(copy->http_response()->body == "b");
    CHECK(copy->ws_message()->payload() == "w");
    CHECK(copy->http_stream()->chunk == theirs->http_stream()->chunk);
    CHECK(copy->http_response() != theirs->http_response()); // its own parts, not shared ones

    // with_assigned_id changes this thread's only reference in place, but copies another thread's.
    const Message* before = mine.get();
    MessageRef mine_id = Message::with_assigned_id(std::move(mine), "1-0");
    CHECK(mine_id.get() == before);
    before = theirs.get();
    MessageRef theirs_id = Message::with_assigned_id(std::move(theirs), "1-1");
    CHECK(theirs_id.get() != before);
    CHECK(theirs_id->made_on_this_thread());
    CHECK(*theirs_id->id() == "1-1");
    CHECK(theirs_id->http_stream()->content() == "id: 1-1\ndata: x\n\n");
    CHECK(theirs_id->ws_message()->payload() == "w");
}

TEST_CASE("assign_id gives an item its id and, for one SSE event without an id, an id line first",
          "[pubsub]") {
    auto stream_item = [](std::string content, Action action = Action::Send) {
        PublishItem item;
        item.channel = "c";
        HttpStreamFormat f;
        f.action = action;
        f.content = std::move(content);
        item.http_stream = std::move(f);
        return item;
    };
    PublishItem sse = stream_item("data: x\n\n");
    Message::assign_id(sse, "5-0");
    CHECK(*sse.id == "5-0");
    CHECK(sse.http_stream->content == "id: 5-0\ndata: x\n\n");
    // Rendered once, as with_assigned_id renders it again later.
    MessageRef m = Message::create(std::move(sse));
    CHECK(m->http_stream()->content() == "id: 5-0\ndata: x\n\n");
    CHECK(*m->id() == "5-0");

    PublishItem own_id = stream_item("id: 7\ndata: x\n\n"); // its own id line stays the only one
    Message::assign_id(own_id, "5-1");
    CHECK(own_id.http_stream->content == "id: 7\ndata: x\n\n");
    PublishItem plain = stream_item("hello\n"); // not SSE: not ours to change
    Message::assign_id(plain, "5-2");
    CHECK(plain.http_stream->content == "hello\n");
    PublishItem closing = stream_item("", Action::Close);
    Message::assign_id(closing, "5-3");
    CHECK(*closing.id == "5-3");
    CHECK(closing.http_stream->content.empty());
}
