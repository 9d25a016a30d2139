"""Content filters `var-subst` and `build-id` (PROTOCOL.md 4.5) rewriting what a subscriber gets,
as Pushpin 1.36 does (src/handler/filter.cpp, format.cpp, idformat.cpp, httpsession.cpp):

- var-subst: `%(name)s` is the subscriber's meta value (Grip-Set-Meta, WebSocket set-meta); `%%`
  is `%`; an unknown variable or a `%` that starts no directive is a filter error.
- build-id: `%I` is the subscriber's ID, its meta `id_format` rendered with `%(channel)s` = the
  channel's prev-id (a response hold's channel takes the published item's id first);
  `id_encoding=hex` hex-encodes it; `%(text)I` is `text` (hex-encoded too). It also rewrites the initial response
  of a stream hold, where there is no ID (`%I` is an error there).
- a filter error answers a response hold `502 Error while proxying to origin.`; a stream ends
  (after its head); a WebSocket subscriber does not get the item.
- subscribers without the filter get the content as published.
"""

import asyncio
import json

import pytest

from harness.backend import Response
from griputil import after_sync, hold, item, publish, sync_stream
from test_ws_filters import deliveries, set_meta, start_woh, subscribe  # noqa: F401
from wsutil import woh  # noqa: F401

BAD_GATEWAY_BODY = b"Error while proxying to origin.\n"


def stream_item(channel, content, **kw):
    return item(channel, {"http-stream": {"content": content}}, **kw)


def response_item(channel, body, **kw):
    return item(channel, {"http-response": {"body": body}}, **kw)


def stream_route(backend, path, channel_header, meta=(), body=b""):
    headers = [("Grip-Hold", "stream"), ("Grip-Channel", channel_header)]
    headers += [("Grip-Set-Meta", m) for m in meta]
    backend.route(path, Response(200, body, headers))


def test_var_subst_on_a_stream(proxy, backend):
    stream_route(backend, "/vs", "vs; filter=var-subst", ["user=alice", "room=r1"])
    stream_route(backend, "/plain", "vs", ["user=bob"])
    vs = hold(proxy, backend, "/vs", stream=True)
    plain = hold(proxy, backend, "/plain", stream=True)
    sync_stream(proxy, "vs", [vs, plain])
    publish(proxy, [stream_item("vs", "hi %(user)s in %(room)s, 100%%\n")])
    publish(proxy, [stream_item("vs", "end\n")])
    vs.wait_body(lambda b: b.endswith(b"end\n"))
    plain.wait_body(lambda b: b.endswith(b"end\n"))
    assert after_sync(vs) == b"hi alice in r1, 100%\nend\n"
    assert after_sync(plain) == b"hi %(user)s in %(room)s, 100%%\nend\n"


def test_var_subst_error_ends_the_stream(proxy, backend):
    stream_route(backend, "/vs", "vs; filter=var-subst", ["user=alice"])
    stream_route(backend, "/plain", "vs")
    vs = hold(proxy, backend, "/vs", stream=True)
    plain = hold(proxy, backend, "/plain", stream=True)
    sync_stream(proxy, "vs", [vs, plain])
    publish(proxy, [stream_item("vs", "hi %(nobody)s\n")])
    vs.wait_complete()
    publish(proxy, [stream_item("vs", "after\n")])
    plain.wait_body(lambda b: b.endswith(b"after\n"))
    assert after_sync(vs) == b""
    assert after_sync(plain) == b"hi %(nobody)s\nafter\n"


def test_var_subst_on_a_response_hold(proxy, backend):
    backend.route("/r", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "vr; filter=var-subst"),
                                            ("Grip-Set-Meta", "user=carol")]))
    backend.route("/bad", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "vr2; filter=var-subst")]))
    r = hold(proxy, backend, "/r")
    bad = hold(proxy, backend, "/bad")
    publish(proxy, [response_item("vr", '{"to": "%(user)s"}')])
    publish(proxy, [response_item("vr2", "50% off")])
    assert json.loads(r.wait_complete()) == {"to": "carol"}
    assert r.head.status == 200 and r.head.header("Content-Length") == str(len(r.body))
    assert bad.wait_complete() == BAD_GATEWAY_BODY
    assert bad.head.status == 502


def test_build_id_on_a_response_hold(proxy, backend):
    """The channel's prev-id is replaced by the item's id before the ID is built."""
    backend.route("/b", Response(200, b"", [
        ("Grip-Hold", "response"), ("Grip-Channel", "bid; prev-id=5; filter=build-id"),
        ("Grip-Set-Meta", "id_format=id-%(bid)s")]))
    backend.route("/h", Response(200, b"", [
        ("Grip-Hold", "response"), ("Grip-Channel", "bid; prev-id=5; filter=build-id"),
        ("Grip-Set-Meta", "id_format=%(bid)s"), ("Grip-Set-Meta", "id_encoding=hex")]))
    b = hold(proxy, backend, "/b")
    h = hold(proxy, backend, "/h")
    publish(proxy, [response_item("bid", "next=%I lit=%(x y)I 1%%", id="6", prev_id="5")])
    assert b.wait_complete() == b"next=id-6 lit=x y 1%"
    assert h.wait_complete() == b"next=36 lit=782079 1%"  # hex applies to %(text)I too


def test_build_id_without_id_format_fails(proxy, backend):
    backend.route("/b", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "nofmt; filter=build-id")]))
    b = hold(proxy, backend, "/b")
    publish(proxy, [response_item("nofmt", "no directive at all")])
    assert b.wait_complete() == BAD_GATEWAY_BODY


def test_build_id_rewrites_the_initial_stream_body(proxy, backend):
    stream_route(backend, "/ok", "ib; filter=build-id", ["id_format=x"], body=b"start %(lit)I 5%%\n")
    stream_route(backend, "/noid", "ib; filter=build-id", ["id_format=x"], body=b"start %I\n")
    ok = hold(proxy, backend, "/ok", stream=True)
    noid = hold(proxy, backend, "/noid", stream=True)
    ok.wait_body(b"start lit 5%\n")
    assert noid.wait_complete() == b""
    assert noid.head.status == 200


def test_var_subst_does_not_rewrite_the_initial_stream_body(proxy, backend):
    stream_route(backend, "/vs", "iv; filter=var-subst", ["user=u"], body=b"raw %(user)s 5%\n")
    c = hold(proxy, backend, "/vs", stream=True)
    c.wait_body(b"raw %(user)s 5%\n")


def test_var_subst_on_websocket(woh, start_proxy):
    p = start_woh(woh, start_proxy, set_meta("user", "alice"), subscribe("room", "var-subst"))
    ws_item = lambda content: item("room", {"ws-message": {"content": content}})  # noqa: E731
    deliveries(p, [ws_item("hi %(user)s"), ws_item("dropped %(nobody)s"), ws_item("100%%")],
               ["hi alice", "100%"])
