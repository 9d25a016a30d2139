"""Stream holds (HTTP streaming and SSE, PROTOCOL.md 3.5, 6.1), observed on Debian's
pushpin 1.36.0.

Observed pushpin details encoded here:
- the initial response goes out at once: the origin's status/headers (minus Grip-*),
  Transfer-Encoding: chunked, no Content-Length, the origin's body as the first chunk.
  (pushpin also adds a stray `Connection: Transfer-Encoding` header; not asserted.)
- http-stream `content`/`content-bin` are appended in publish order; `close` ends the
  chunked body with the 0-chunk and the connection stays usable (keep-alive).
- http-response items do not reach stream holds.
"""

import json
import time

from harness import raw
from harness.backend import Response
from griputil import (SSEParser, StreamClient, after_sync, grip_header_names, hold, hr_item, hs_item,
                      publish, sse_event, sync_stream)


def stream_route(backend, path, channel, body=b"", headers=(), **grip):
    h = [("Grip-Hold", "stream"), ("Grip-Channel", channel)]
    for k, v in grip.items():
        h.append(("Grip-" + "-".join(p.capitalize() for p in k.split("_")), str(v)))
    backend.route(path, Response(200, body, h + list(headers)))


def test_initial_response_is_chunked_and_immediate(proxy, backend):
    stream_route(backend, "/s", "s", b"hello\n", [("Content-Type", "text/plain"), ("X-A", "1")])
    t0 = time.monotonic()
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert c.wait_for(b"hello\n\r\n", timeout=3)
        assert time.monotonic() - t0 < 3
        head, _, rest = c.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 200 OK"
        names = [ln.split(b":", 1)[0].lower() for ln in lines[1:]]
        assert b"content-length" not in names
        assert not [n for n in names if n.startswith(b"grip-")]
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"x-a: 1" in head.lower()
        assert rest == b"6\r\nhello\n\r\n"  # the origin's body is the first chunk


def test_content_and_content_bin_appended_in_order_then_close(proxy, backend):
    stream_route(backend, "/s", "s", b"init\n")
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert c.wait_for(b"init\n\r\n")
        publish(proxy, [hs_item("s", "text\n")])
        publish(proxy, [hs_item("s", b"\x00\x01bin\xff\n")])
        publish(proxy, [hs_item("s", "a\n"), hs_item("s", "b\n"), hs_item("s", "c\n")])
        publish(proxy, [hs_item("s", "unicode \u00e9\u20ac\n")])
        publish(proxy, [hs_item("s", action="close")])
        r = c.recv_response()
        assert r.chunked
        assert r.body == b"init\ntext\n\x00\x01bin\xff\na\nb\nc\nunicode \xc3\xa9\xe2\x82\xac\n"
        # after close the connection is still usable
        c.send(b"GET /plain HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert c.recv_response().status == 200


def test_close_stops_delivery(proxy, backend, client_proto):
    stream_route(backend, "/s", "s", b"")
    a = hold(proxy, backend, "/s", stream=True)
    b = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "s", [a, b])
    publish(proxy, [hs_item("s", "1\n"), hs_item("s", action="close")])
    assert a.wait_complete().endswith(b"1\n")
    assert b.wait_complete().endswith(b"1\n")
    publish(proxy, [hs_item("s", "late\n")])
    time.sleep(0.3)
    assert b"late" not in a.body and b"late" not in b.body
    a.close()
    b.close()


def test_http_response_items_do_not_reach_streams(proxy, backend, client_proto):
    stream_route(backend, "/s", "s", b"init\n")
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "s", [c])
    publish(proxy, [hr_item("s", "response only")])
    publish(proxy, [hs_item("s", "stream only\n")])
    c.wait_body(b"stream only\n")
    assert after_sync(c) == b"stream only\n"
    c.close()


def test_many_publishes_arrive_in_order(proxy, backend, client_proto):
    stream_route(backend, "/s", "s", b"")
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "s", [c])
    expect = b""
    for i in range(300):
        publish(proxy, [hs_item("s", "m%03d\n" % i)])
        expect += b"m%03d\n" % i
    c.wait_body(lambda b: b.endswith(b"m299\n"), timeout=15)
    assert after_sync(c) == expect
    c.close()


def test_batched_items_arrive_in_item_order(proxy, backend, client_proto):
    stream_route(backend, "/s", "s", b"")
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "s", [c])
    items = [hs_item("s", "b%02d\n" % i) for i in range(50)]
    publish(proxy, items)
    c.wait_body(b"b49\n")
    assert after_sync(c) == b"".join(b"b%02d\n" % i for i in range(50))
    c.close()


def test_keep_alive_on_a_stream_with_traffic(proxy, backend, client_proto):
    """Idle keep-alive (timeout=2): none while items arrive every 0.5 s, then one within
    2 s of the last item."""
    stream_route(backend, "/s", "s", b"", keep_alive="KA; timeout=2")
    c = hold(proxy, backend, "/s", stream=True)
    for i in range(6):
        publish(proxy, [hs_item("s", "x%d\n" % i)])
        time.sleep(0.5)
    assert b"KA" not in c.body
    c.wait_body(lambda b: b.endswith(b"x5\nKA"), timeout=2.5)
    c.close()


# --- SSE -------------------------------------------------------------------------------

def test_sse_events_parsed(proxy, backend, client_proto):
    stream_route(backend, "/events", "news", b": welcome\n\n",
                 [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")],
                 keep_alive=r":\n\n; format=cstring; timeout=2")
    c = hold(proxy, backend, "/events", stream=True, headers=[("Accept", "text/event-stream")])
    assert c.head.header("Content-Type") == "text/event-stream"
    assert c.head.header("Cache-Control") == "no-cache"
    sync_stream(proxy, "news", [c], marker=": sync\n\n")
    publish(proxy, [hs_item("news", sse_event("hello"))])
    publish(proxy, [hs_item("news", sse_event(json.dumps({"n": 1}), event="update", id="1"))])
    publish(proxy, [hs_item("news", sse_event("line one\nline two", id="2"))])
    publish(proxy, [hs_item("news", "data: crlf\r\n\r\n")])
    publish(proxy, [hs_item("news", "event: split\n"), hs_item("news", "data: across items\n\n")])
    c.wait_body(b"across items\n\n")
    p = SSEParser()
    evs = p.feed(c.body)
    assert evs == [
        {"event": "message", "data": "hello", "id": ""},
        {"event": "update", "data": '{"n": 1}', "id": "1"},
        {"event": "message", "data": "line one\nline two", "id": "2"},
        {"event": "message", "data": "crlf", "id": "2"},
        {"event": "split", "data": "across items", "id": "2"},
    ]
    assert p.comments[:2] == [" welcome", " sync"]
    # the SSE keep-alive is a comment (":"): no event, and it comes within 2 s of quiet
    c.wait_body(lambda b: b.endswith(b"\n:\n\n"), timeout=3)
    p2 = SSEParser()
    assert p2.feed(c.body) == evs
    assert "" in p2.comments
    c.close()


def test_sse_many_events_in_order(proxy, backend, client_proto):
    stream_route(backend, "/events", "feed", b"", [("Content-Type", "text/event-stream")])
    c = hold(proxy, backend, "/events", stream=True)
    sync_stream(proxy, "feed", [c], marker=": sync\n\n")
    for i in range(100):
        publish(proxy, [hs_item("feed", sse_event("payload %d" % i, event="tick", id=str(i)))])
    c.wait_body(b"payload 99\n", timeout=10)
    evs = SSEParser().feed(c.body)
    assert [e["id"] for e in evs] == [str(i) for i in range(100)]
    assert all(e["event"] == "tick" and e["data"] == "payload " + e["id"] for e in evs)
    c.close()
