"""Channel history and resume ([gripd] history_size / history_ttl, route history_size /
history_ttl; README "History and resume"). Pushpin has no history: every test that relies on it is
gripd_only. The last test checks that with history off a Last-Event-ID changes nothing, as on
pushpin.

What a resuming client must see: the items after the id it names, once each, in publish order,
then live items; where history cannot reach back, a signal (a `gripd-gap` SSE event or WebSocket
message, Grip-Last for long-polls), never a silent gap."""

import asyncio
import json
import threading
import time

import pytest

from griputil import SSEParser, StreamClient, control, hold, hr_item, hs_item, publish
from harness.backend import Response
from wsutil import connect, no_message, recv, run, woh, ws_item  # noqa: F401 (woh: fixture)
from wsutil import control as ws_control
from wsutil import publish as ws_publish

GRIPD_ONLY = "pushpin 1.36 keeps no channel history"
HISTORY = {"gripd": {"history_size": "100"}}


def sse_route(backend, path="/events", channel="feed"):
    backend.route(path, Response(200, b":ok\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", channel)]))


def ev(n, channel="feed"):
    return hs_item(channel, f"id: {n}\ndata: item {n}\n\n", id=str(n))


def events_of(body: bytes):
    p = SSEParser()
    return p.feed(body)


def ids_of(body: bytes):
    return [e.get("id") for e in events_of(body) if e.get("event", "message") == "message"]


def wait_ids(c: StreamClient, want, timeout=10.0):
    c.wait_body(lambda b: ids_of(b)[-len(want):] == want if len(ids_of(b)) >= len(want) else False,
                timeout=timeout)
    return ids_of(c.body)


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf=HISTORY)
def test_sse_last_event_id_replays_missed_items_then_live(proxy, backend):
    sse_route(backend)
    publish(proxy, [ev(n) for n in range(1, 6)])
    c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "2")])
    wait_ids(c, ["3", "4", "5"])
    publish(proxy, [ev(6)])
    assert wait_ids(c, ["3", "4", "5", "6"]) == ["3", "4", "5", "6"]
    c.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf=HISTORY)
def test_sse_last_event_id_query_parameter(proxy, backend):
    sse_route(backend)
    publish(proxy, [ev(n) for n in range(1, 4)])
    c = StreamClient(proxy.port, "/events?lastEventID=1")
    assert wait_ids(c, ["2", "3"]) == ["2", "3"]
    c.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf={"gripd": {"history_size": "3"}})
def test_sse_gap_is_signalled_then_history_follows(proxy, backend):
    sse_route(backend)
    publish(proxy, [ev(n) for n in range(1, 7)])  # only 4, 5, 6 are kept
    c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "1")])
    c.wait_body(lambda b: ids_of(b) == ["4", "5", "6"])
    evs = events_of(c.body)
    gap = [e for e in evs if e.get("event") == "gripd-gap"]
    assert len(gap) == 1 and json.loads(gap[0]["data"]) == {"channel": "feed", "reason": "gap"}
    assert evs.index(gap[0]) < [e.get("id") for e in evs].index("4")  # the signal comes first
    c.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf=HISTORY)
def test_sse_resume_at_the_last_id_gets_only_live_items(proxy, backend):
    sse_route(backend)
    publish(proxy, [ev(n) for n in range(1, 4)])
    c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "3")])
    c.wait_head()
    time.sleep(0.3)
    assert ids_of(c.body) == []
    publish(proxy, [ev(4)])
    assert wait_ids(c, ["4"]) == ["4"]
    assert b"gripd-gap" not in c.body
    c.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(routes="*,history_size=2 {backend}")
def test_route_history_size_overrides_the_default_off(proxy, backend):
    sse_route(backend)
    # The route turns history on for the channels its clients resume on: the first resume finds
    # nothing kept (signalled), later ones are served, within the route's bound of 2.
    c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "0")])
    c.wait_body(b"gripd-gap")
    assert json.loads([e for e in events_of(c.body) if e.get("event") == "gripd-gap"][0]["data"])["reason"] == \
        "unknown"
    c.close()
    publish(proxy, [ev(n) for n in range(1, 5)])
    d = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "3")])
    assert wait_ids(d, ["4"]) == ["4"]
    d.close()
    e = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "1")])
    e.wait_body(lambda b: ids_of(b) == ["3", "4"])
    assert b"gripd-gap" in e.body  # 2 is gone: only 3 and 4 were kept
    e.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf=HISTORY)
def test_long_poll_prev_id_covered_answers_at_once(proxy, backend):
    backend.route("/lp", Response(200, b"timeout\n", [
        ("Grip-Hold", "response"), ("Grip-Channel", "lp; prev-id=1"), ("Grip-Timeout", "20")]))
    publish(proxy, [hr_item("lp", f"body {n}\n", id=str(n), prev_id=str(n - 1) if n > 1 else None)
                    for n in range(1, 4)])
    c = StreamClient(proxy.port, "/lp")
    assert c.wait_complete(timeout=5) == b"body 2\n"
    assert len(backend.requests) == 1  # no round trip to the backend
    c.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf={"gripd": {"history_size": "2"}})
def test_long_poll_prev_id_beyond_history_asks_backend_with_grip_last(proxy, backend):
    calls = []

    def lp(req):
        calls.append(req)
        if len(calls) == 1:
            return Response(200, b"timeout\n", [
                ("Grip-Hold", "response"), ("Grip-Channel", "lp; prev-id=1"), ("Grip-Timeout", "20")])
        return Response(200, b"from backend\n")
    backend.route("/lp", lp)
    publish(proxy, [hr_item("lp", f"body {n}\n", id=str(n)) for n in range(1, 6)])
    c = StreamClient(proxy.port, "/lp")
    assert c.wait_complete(timeout=5) == b"from backend\n"
    assert calls[1].header("Grip-Last") == "lp; last-id=1"
    c.close()


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf=HISTORY)
def test_long_poll_loop_gets_every_item_once(proxy, backend):
    """A long-poll client that asks with the id it saw last gets every item exactly once, while
    items are published faster than it polls."""
    def lp(req):
        last = req.query.get("last", "0") if isinstance(req.query, dict) else "0"
        return Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", f"lp; prev-id={last}"),
                                   ("Grip-Timeout", "10")])

    def handler(req):
        from urllib.parse import parse_qs, urlparse
        last = parse_qs(urlparse(req.target).query).get("last", ["0"])[0]
        return Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", f"lp; prev-id={last}"),
                                   ("Grip-Timeout", "10")])
    backend.route("/lp", handler)
    publish(proxy, [hr_item("lp", "1", id="1")])
    n_items = 40
    done = threading.Event()

    def publisher():
        for n in range(2, n_items + 1):
            publish(proxy, [hr_item("lp", str(n), id=str(n), prev_id=str(n - 1))])
            time.sleep(0.005)
        done.set()
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    got, last = [], "1"
    got.append("1")
    while last != str(n_items):
        c = StreamClient(proxy.port, f"/lp?last={last}")
        body = c.wait_complete(timeout=10).decode()
        c.close()
        got.append(body)
        last = body
    t.join(10)
    assert got == [str(n) for n in range(1, n_items + 1)]


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_websocket_subscribe_last_id_replays_then_live(woh, start_proxy):  # noqa: F811
    woh.on_open = lambda r: [("TEXT", ws_control({"type": "subscribe", "channel": "room", "last-id": "2"}))]
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=HISTORY)
    for n in range(1, 5):
        ws_publish(p, dict(ws_item("room", f"m{n}"), id=str(n)))

    async def main():
        ws = await connect(p, "/")
        assert [await recv(ws) for _ in range(2)] == ["m3", "m4"]
        ws_publish(p, dict(ws_item("room", "m5"), id="5"))
        assert await recv(ws) == "m5"
        await no_message(ws, 0.3)
        await ws.close()
    run(main())


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_websocket_gap_message(woh, start_proxy):  # noqa: F811
    woh.on_open = lambda r: [("TEXT", ws_control({"type": "subscribe", "channel": "room", "last-id": "x"}))]
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=HISTORY)
    ws_publish(p, dict(ws_item("room", "m1"), id="1"))

    async def main():
        ws = await connect(p, "/")
        assert json.loads(await recv(ws)) == {"type": "gripd-gap", "channel": "room", "reason": "gap"}
        assert await recv(ws) == "m1"
        await ws.close()
    run(main())


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf=HISTORY)
def test_control_get_history(proxy, backend):
    publish(proxy, [ev(n, "h") for n in range(1, 6)])
    r = control(proxy, "GET", "/history/h?after=2&limit=2")
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["status"] == "covered"
    assert [i["id"] for i in doc["items"]] == ["3", "4"]
    assert doc["items"][0]["formats"]["http-stream"]["content"] == "id: 3\ndata: item 3\n\n"
    doc = json.loads(control(proxy, "GET", "/history/h").body)
    assert [i["id"] for i in doc["items"]] == ["1", "2", "3", "4", "5"]
    doc = json.loads(control(proxy, "GET", "/history/h?after=zz").body)
    assert doc["status"] == "gap"
    doc = json.loads(control(proxy, "GET", "/history/none").body)
    assert doc == {"channel": "none", "status": "unknown", "items": []}
    assert control(proxy, "GET", "/history/h?limit=x").status == 400


@pytest.mark.proxy(routes="* {backend}")
def test_history_off_last_event_id_changes_nothing(proxy, backend):
    """As on pushpin: without history, a Last-Event-ID reaches the backend and the stream starts
    with live items only."""
    sse_route(backend)
    publish(proxy, [ev(n) for n in range(1, 4)])
    c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "1")])
    c.wait_head()
    backend.wait_requests(1)
    assert backend.requests[-1].header("Last-Event-ID") == "1"
    time.sleep(0.5)
    assert ids_of(c.body) == [] and b"gripd-gap" not in c.body
    c.close()


@pytest.mark.crossloop
@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf={"gripd": {"history_size": "5000", "workers": "2"}})
def test_reconnecting_sse_clients_get_every_item_once_in_order_under_concurrent_publishers(proxy, backend):
    """Two publishers on one channel (their requests reach both workers), clients that cut their
    stream every few items and resume with Last-Event-ID (reconnects land on either worker): each
    client's items are exactly the channel's items after the start, in the owner's order."""
    sse_route(backend)
    publish(proxy, [hs_item("feed", "id: start\ndata: start\n\n", id="start")])
    per_publisher, n_clients = 150, 4
    stop = threading.Event()

    def publisher(name):
        for n in range(per_publisher):
            publish(proxy, [hs_item("feed", f"id: {name}{n}\ndata: {n}\n\n", id=f"{name}{n}")])

    got = {i: [] for i in range(n_clients)}
    errors = []

    def client(i):
        last, cut = "start", 3 + i
        try:
            while True:
                c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", last)])
                parser = SSEParser()
                seen = 0
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    with c._cond:
                        data = c.body[seen:]
                    seen += len(data)
                    for e in parser.feed(data):
                        if e.get("event") == "gripd-gap":
                            errors.append(f"client {i}: gap after {last}")
                        elif e.get("event", "message") == "message":
                            got[i].append(e["id"])
                            last = e["id"]
                    if len(got[i]) >= cut or (stop.is_set() and len(got[i]) >= 2 * per_publisher):
                        break
                    time.sleep(0.002)
                c.close()
                cut = len(got[i]) + 3 + i
                if stop.is_set() and len(got[i]) >= 2 * per_publisher:
                    return
                if stop.is_set() and time.monotonic() > deadline:
                    return
        except Exception as ex:  # reported below
            errors.append(f"client {i}: {ex!r}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n_clients)]
    for t in threads:
        t.start()
    pubs = [threading.Thread(target=publisher, args=(p,), daemon=True) for p in "ab"]
    for t in pubs:
        t.start()
    for t in pubs:
        t.join(40)
    stop.set()
    for t in threads:
        t.join(40)
    assert not errors, errors[:5]
    order = [i["id"] for i in json.loads(control(proxy, "GET", "/history/feed?after=start").body)["items"]]
    assert len(order) == 2 * per_publisher
    for name in "ab":  # each publisher's items in its own order
        assert [x for x in order if x[0] == name] == [f"{name}{n}" for n in range(per_publisher)]
    for i in range(n_clients):
        assert got[i] == order, (i, len(got[i]))


@pytest.mark.crossloop
@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.proxy(conf={"gripd": {"history_size": "100", "workers": "2"}})
def test_busy_channels_that_keep_dropping_their_oldest_items_stay_intact(proxy, backend):
    """Channels that keep 100 items get thousands, so the memory of what they keep is reused many
    times over (a busy channel's messages are made in pages of its own, which come free as its
    oldest items go: core/page_arena.hpp). A live subscriber still gets every item byte for byte,
    and each channel's history is exactly its newest 100, intact. Contents run from a few bytes to
    past the arena's 1 KiB bound (those go to the heap), on channels owned by both workers."""
    sse_route(backend, channel="busy0")
    c = StreamClient(proxy.port, "/events")
    c.wait_body(lambda b: b.startswith(b":ok"))

    def content(ch, n):
        return f"id: {n}\ndata: {ch} {n} " + "x" * ((n * 37) % 1500) + "\n\n"
    total, channels, kept = 2000, 3, 100
    for start in range(0, total, 100):
        publish(proxy, [hs_item(f"busy{k}", content(f"busy{k}", n), id=str(n))
                        for n in range(start, start + 100) for k in range(channels)])
    want = (":ok\n\n" + "".join(content("busy0", n) for n in range(total))).encode()
    c.wait_body(lambda b: len(b) >= len(want), timeout=30)
    assert c.body == want
    c.close()
    for k in range(channels):
        items = json.loads(control(proxy, "GET", f"/history/busy{k}").body)["items"]
        assert [i["id"] for i in items] == [str(n) for n in range(total - kept, total)]
        assert [i["formats"]["http-stream"]["content"] for i in items] == \
            [content(f"busy{k}", n) for n in range(total - kept, total)]


@pytest.mark.crossloop
@pytest.mark.gripd_only(GRIPD_ONLY)
def test_reconnecting_websocket_client_gets_every_item_once(woh, start_proxy):  # noqa: F811
    """The client reconnects every few messages with the last id it saw (here in the URL, which the
    backend turns into the subscribe's `last-id`) while items are published: every item once, in
    order."""
    from urllib.parse import parse_qs, urlparse

    def on_open(r):
        last = parse_qs(urlparse(r.req.target).query).get("last", ["start"])[0]
        return [("TEXT", ws_control({"type": "subscribe", "channel": "wsr", "last-id": last}))]
    woh.on_open = on_open
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=HISTORY)
    ws_publish(p, dict(ws_item("wsr", "start"), id="start"))
    total = 40

    def publisher():
        for n in range(total):
            ws_publish(p, dict(ws_item("wsr", f"m{n}"), id=f"m{n}"))
            time.sleep(0.02)
    t = threading.Thread(target=publisher, daemon=True)
    t.start()

    async def main():
        got, last = [], "start"
        while len(got) < total:
            ws = await connect(p, f"/?last={last}")
            for _ in range(5):
                if len(got) >= total:
                    break
                m = await recv(ws, timeout=10)
                assert not m.startswith("{"), m  # no gripd-gap
                got.append(m)
                last = m
            await ws.close()
        return got
    got = run(main())
    t.join(20)
    assert got == [f"m{n}" for n in range(total)]


@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.parametrize("bytes_key", ["history_channel_bytes", "history_max_bytes"])
@pytest.mark.parametrize("value", ["off", "0"])
def test_history_byte_bound_off_keeps_items_by_count_only(start_proxy, backend, bytes_key, value):
    """`off` (or 0) for a history byte bound means no byte bound, as for memory_limit: the channel
    still keeps history_size items (it once kept nothing, 0 bytes being taken literally)."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf={"gripd": {"history_size": "3", bytes_key: value}})
    publish(proxy, [ev(n, "h") for n in range(1, 6)])
    doc = json.loads(control(proxy, "GET", "/history/h").body)
    assert [i["id"] for i in doc["items"]] == ["3", "4", "5"]
