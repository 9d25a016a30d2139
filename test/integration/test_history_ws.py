"""WebSocket ids (a subscribe's `ids`; README "History and resume"): a WebSocket client that opts in
gets, right before each ws-message item that has an id (its own, or gripd's with
history_assign_ids), the text message {"type":"gripd-id","channel":...,"id":...}, live and replayed
alike, so it knows where it is and resumes with that id as `last-id` by itself: every item once, in
order, also while items are published, across worker loops and across two instances on the Redis
bus. Without `ids` nothing changes (the last test runs on pushpin too).

The WebSocket-over-HTTP backend here is stateless: it turns the client's `?last=` query parameter
into the subscribe's `last-id` and always asks for `ids`."""

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
import websockets

from test_bus_redis import redis, wait_subscribed  # noqa: F401 (redis: fixture)
from wsutil import SETTLE, connect, no_message, recv, run, woh, ws_item  # noqa: F401 (woh: fixture)
from wsutil import control as ws_control
from wsutil import publish as ws_publish

GRIPD_ONLY = "pushpin 1.36 keeps no channel history and sends no ids"
HISTORY = {"gripd": {"history_size": "1000"}}
ASSIGN = {"gripd": {"history_size": "1000", "history_assign_ids": "true"}}
ASSIGNED = re.compile(r"^[0-9]+-[0-9]+$")


def subscriber(channel, ids=True):
    """on_open for a WohBackend: subscribe to `channel`, resuming from the client's ?last=."""
    def on_open(r):
        msg = {"type": "subscribe", "channel": channel}
        if ids:
            msg["ids"] = True
        last = parse_qs(urlparse(r.req.target).query).get("last")
        if last:
            msg["last-id"] = last[0]
        return [("TEXT", ws_control(msg))]
    return on_open


def gripd_id(m):
    """The gripd-id message `m` as a dict, else None."""
    if not isinstance(m, str) or not m.startswith('{"type":"gripd-id"'):
        return None
    d = json.loads(m)
    return d if d.get("type") == "gripd-id" else None


async def read_item(ws, timeout=10.0):
    """(id, channel, content) of the next item: its gripd-id message, then the item itself."""
    m = await recv(ws, timeout)
    d = gripd_id(m)
    assert d is not None, f"expected a gripd-id message, got {m!r}"
    item = await recv(ws, timeout)
    assert gripd_id(item) is None, f"two gripd-id messages in a row: {m!r}, {item!r}"
    return d["id"], d["channel"], item


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_ids_come_before_replayed_and_live_items(woh, start_proxy):  # noqa: F811
    woh.on_open = subscriber("room")
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=HISTORY)
    for n in range(1, 5):
        ws_publish(p, dict(ws_item("room", f"m{n}"), id=str(n)))

    async def main():
        ws = await connect(p, "/?last=2")
        assert [await read_item(ws) for _ in range(2)] == [("3", "room", "m3"), ("4", "room", "m4")]
        # live: text, binary, and an item without an id (no gripd-id before it)
        ws_publish(p, dict(ws_item("room", "m5"), id="5"))
        ws_publish(p, dict(ws_item("room", b"\x00\x01"), id="6"))
        ws_publish(p, ws_item("room", "no id"))
        ws_publish(p, dict(ws_item("room", "m7"), id='7 "q"'))
        assert await read_item(ws) == ("5", "room", "m5")
        assert await read_item(ws) == ("6", "room", b"\x00\x01")
        assert await recv(ws) == "no id"
        assert await read_item(ws) == ('7 "q"', "room", "m7")
        await no_message(ws, 0.3)
        await ws.close()
    run(main())


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_ids_per_subscription_and_resubscribe_turns_them_off(woh, start_proxy):  # noqa: F811
    """`ids` belongs to one subscription; a second subscribe to the channel changes only `ids`."""
    woh.on_open = lambda r: [("TEXT", ws_control({"type": "subscribe", "channel": "a", "ids": True})),
                             ("TEXT", ws_control({"type": "subscribe", "channel": "b"}))]
    woh.on_text = lambda t, r: [("TEXT", ws_control({"type": "subscribe", "channel": "a", "ids": t == "on"})),
                                ("TEXT", "m:ok " + t)]
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=HISTORY)

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        ws_publish(p, dict(ws_item("b", "b1"), id="1"))
        assert await recv(ws) == "b1"
        ws_publish(p, dict(ws_item("a", "a1"), id="1"))
        assert await read_item(ws) == ("1", "a", "a1")
        await ws.send("off")
        assert await recv(ws) == "ok off"
        ws_publish(p, dict(ws_item("a", "a2"), id="2"))
        assert await recv(ws) == "a2"
        await ws.send("on")
        assert await recv(ws) == "ok on"
        ws_publish(p, dict(ws_item("a", "a3"), id="3"))
        assert await read_item(ws) == ("3", "a", "a3")
        await ws.close()
    run(main())


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_channel_is_named_without_the_route_prefix(woh, start_proxy):  # noqa: F811
    woh.on_open = subscriber("room")
    p = start_proxy(routes=f"*,prefix=pre- {woh.addr},over_http", conf=HISTORY)
    ws_publish(p, dict(ws_item("pre-room", "m1"), id="1"))
    ws_publish(p, dict(ws_item("pre-room", "m2"), id="2"))

    async def main():
        ws = await connect(p, "/?last=1")
        assert await read_item(ws) == ("2", "room", "m2")
        ws_publish(p, dict(ws_item("pre-room", "m3"), id="3"))
        assert await read_item(ws) == ("3", "room", "m3")
        await ws.close()
        ws = await connect(p, "/?last=nope")
        assert json.loads(await recv(ws)) == {"type": "gripd-gap", "channel": "room", "reason": "gap"}
        assert [await read_item(ws) for _ in range(3)] == [(str(n), "room", f"m{n}") for n in (1, 2, 3)]
        await ws.close()
    run(main())


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_assigned_ids_are_sent_and_resumed_from(woh, start_proxy):  # noqa: F811
    woh.on_open = subscriber("room")
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=ASSIGN)

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        for n in range(3):
            ws_publish(p, ws_item("room", f"m{n}"))
        got = [await read_item(ws) for _ in range(3)]
        await ws.close()
        assert [c for _, _, c in got] == ["m0", "m1", "m2"]
        assert all(ASSIGNED.match(i) for i, _, _ in got) and len({i for i, _, _ in got}) == 3
        ws_publish(p, ws_item("room", "m3"))
        ws = await connect(p, f"/?last={got[0][0]}")
        again = [await read_item(ws) for _ in range(3)]
        assert again[:2] == got[1:] and again[2][2] == "m3"
        await ws.close()
    run(main())


def first_id(p, channel):
    from griputil import control
    return json.loads(control(p, "GET", f"/history/{channel}").body)["items"][0]["id"]


def reconnecting_client(ports, channel, last, total, per_connection=7, hops_cb=None):
    """A client that resumes after `last`, reads `per_connection` items, closes, and reconnects (to
    the next of `ports`) with the last id it saw, until it has `total` items; returns [(id,
    content)] and the number of connections."""
    async def main():
        nonlocal last
        got, hops = [], 0
        while len(got) < total:
            port = ports[hops % len(ports)]
            # max_queue=None: the client keeps reading while it closes (else the flood fills its
            # queue, it stops reading and never sees the close frame).
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/?last={quote(last)}", open_timeout=10,
                                          max_queue=None)
            for _ in range(per_connection):
                if len(got) >= total:
                    break
                i, ch, content = await read_item(ws, timeout=15)
                assert ch == channel
                got.append((i, content))
                last = i
            if hops % 2:
                ws.transport.abort()  # cut off, as a dropped network would
            else:
                await ws.close()
            hops += 1
            if hops_cb:
                hops_cb(hops)
        return got, hops
    return run(main(), timeout=90)


@pytest.mark.crossloop
@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.parametrize("conf", [HISTORY, ASSIGN], ids=["own-ids", "assigned-ids"])
def test_reconnecting_client_gets_every_item_once_in_order_during_a_flood(woh, start_proxy, conf):  # noqa: F811
    """Two publishers flood the channel while the client keeps reconnecting with the last id its
    gripd-id messages gave: every item once, in the channel's order (the publishers' items each in
    their own order), with no gap."""
    woh.on_open = subscriber("flood")
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=conf)
    own = conf is HISTORY
    ws_publish(p, dict(ws_item("flood", "start"), id="start") if own else ws_item("flood", "start"))
    per = 150
    published = [0]
    at_hops = []  # how many items were published when the client hopped

    def publisher(name):
        for n in range(per):
            item = ws_item("flood", f"{name}{n}")
            ws_publish(p, dict(item, id=f"{name}{n}") if own else item)
            published[0] += 1
            if n % 10 == 0:
                time.sleep(0.01)
    threads = [threading.Thread(target=publisher, args=(x,), daemon=True) for x in "ab"]
    for t in threads:
        t.start()
    got, hops = reconnecting_client([p.port], "flood", first_id(p, "flood"), 2 * per, per_connection=23,
                                    hops_cb=lambda h: at_hops.append(published[0]))
    for t in threads:
        t.join(30)
    contents = [c for _, c in got]
    assert sorted(contents) == sorted(f"{x}{n}" for x in "ab" for n in range(per))  # each once
    for x in "ab":
        assert [c for c in contents if c[0] == x] == [f"{x}{n}" for n in range(per)]
    ids = [i for i, _ in got]
    assert len(set(ids)) == len(ids)
    if own:
        assert ids == contents
    else:
        assert all(ASSIGNED.match(i) for i in ids)
        assert ids == sorted(ids, key=lambda i: tuple(int(x) for x in i.split("-")))
    # the channel's order is history's order
    from griputil import control
    hist = json.loads(control(p, "GET", "/history/flood").body)["items"]
    assert [i["id"] for i in hist][1:] == ids
    assert hops > 5
    assert [n for n in at_hops if 0 < n < 2 * per], at_hops  # it did reconnect mid-flood


@pytest.mark.crossloop
@pytest.mark.gripd_only("pushpin 1.36 has no channel history and no Redis bus")
def test_client_moving_between_two_instances_on_redis_with_assigned_ids(redis, start_proxy):  # noqa: F811
    from wsutil import WohBackend
    woh = WohBackend()
    woh.on_open = subscriber("moving")
    try:
        conf = {"gripd": {"bus": redis.url, "history_size": "1000", "history_assign_ids": "true"}}
        a = start_proxy(routes=f"* {woh.addr},over_http", conf=conf)
        b = start_proxy(routes=f"* {woh.addr},over_http", conf=conf)
        ws_publish(a, ws_item("moving", "start"))
        total = 120
        hops = 0
        hopped = threading.Condition()

        # Publishing (to either instance) races the reconnects; each batch of 20 waits for the
        # client's next hop, so the client hops mid-flood however slow the machine is.
        def publisher():
            for n in range(total):
                with hopped:
                    hopped.wait_for(lambda: hops >= n // 20, timeout=20)
                ws_publish(a if n % 2 else b, ws_item("moving", f"m{n}"))
                time.sleep(0.003)
        t = threading.Thread(target=publisher, daemon=True)
        t.start()

        def on_hop(h):
            nonlocal hops
            with hopped:
                hops = h
                hopped.notify_all()
        got, n_hops = reconnecting_client([a.port, b.port], "moving", first_id(a, "moving"), total,
                                          per_connection=13, hops_cb=on_hop)
        t.join(30)
        assert [c for _, c in got] == [f"m{n}" for n in range(total)]
        ids = [i for i, _ in got]
        assert all(ASSIGNED.match(i) for i in ids) and len(set(ids)) == len(ids)
        assert n_hops > 5
    finally:
        woh.stop()


def test_without_ids_the_client_gets_only_the_items(woh, start_proxy):  # noqa: F811
    """No `ids`: the client gets the published content alone, as from pushpin (runs on both)."""
    woh.on_open = subscriber("plain", ids=False)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        ws_publish(p, dict(ws_item("plain", "one"), id="1"))
        ws_publish(p, dict(ws_item("plain", b"\x02"), id="2"))
        assert await recv(ws) == "one"
        assert await recv(ws) == b"\x02"
        await no_message(ws, 0.5)
        await ws.close()
    run(main())


NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.mark.crossloop
@pytest.mark.gripd_only(GRIPD_ONLY)
@pytest.mark.skipif(shutil.which("node") is None or not (NODE_DIR / "node_modules" / "ws").is_dir(),
                    reason="node or npm `ws` missing: run `npm ci` in test/integration/node")
def test_node_ws_client_resumes_by_itself_during_a_flood(woh, start_proxy):  # noqa: F811
    """The same with Node's `ws` (node/ws_resume.js): it tracks its last id from gripd-id messages
    and reconnects with it every 17 items, cut off or closed, while items are published."""
    woh.on_open = subscriber("nodeflood")
    p = start_proxy(routes=f"* {woh.addr},over_http", conf=ASSIGN)
    ws_publish(p, ws_item("nodeflood", "start"))
    total = 200

    def publisher():
        for n in range(total):
            ws_publish(p, ws_item("nodeflood", f"m{n}"))
            if n % 10 == 0:
                time.sleep(0.01)
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    proc = subprocess.run(["node", str(NODE_DIR / "ws_resume.js"), f"ws://127.0.0.1:{p.port}/",
                           first_id(p, "nodeflood"), str(total), "17"],
                          capture_output=True, text=True, cwd=NODE_DIR, timeout=50)
    t.join(20)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    items = [x for x in lines if "id" in x]
    assert not [x for x in lines if "gap" in x]
    assert [x["data"] for x in items] == [f"m{n}" for n in range(total)]
    assert {x["channel"] for x in items} == {"nodeflood"}
    ids = [x["id"] for x in items]
    assert all(ASSIGNED.match(i) for i in ids) and len(set(ids)) == total
    assert lines[-1]["done"] and lines[-1]["hops"] > 5


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_passthrough_backend_with_grip_asks_for_ids(start_proxy):
    """A passthrough route whose WebSocket backend negotiates `grip` sends the same subscribe."""
    from wsutil import WsBackend

    async def handler(ws, path):
        last = parse_qs(urlparse(path).query)["last"][0]
        await ws.send(ws_control({"type": "subscribe", "channel": "pt", "ids": True, "last-id": last}))
        async for m in ws:
            await ws.send("m:" + m)
    b = WsBackend(handler=handler, extra_headers=[("Sec-WebSocket-Extensions", "grip")])
    try:
        p = start_proxy(routes=f"* {b.addr}", conf=HISTORY)
        for n in range(1, 4):
            ws_publish(p, dict(ws_item("pt", f"m{n}"), id=str(n)))

        async def main():
            ws = await connect(p, "/?last=1")
            assert [await read_item(ws) for _ in range(2)] == [("2", "pt", "m2"), ("3", "pt", "m3")]
            await ws.send("echo")
            assert await recv(ws) == "echo"
            ws_publish(p, dict(ws_item("pt", "m4"), id="4"))
            assert await read_item(ws) == ("4", "pt", "m4")
            await ws.close()
        run(main())
    finally:
        b.stop()


@pytest.mark.gripd_only(GRIPD_ONLY)
def test_sockjs_websocket_transport_gets_ids_too(woh, start_proxy):  # noqa: F811
    """SockJS's framed WebSocket transport (route `sockjs=`): each gripd-id message is one more
    string in the SockJS frames, right before its item."""
    woh.on_open = subscriber("sj")
    p = start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http",
                    conf={"gripd": {"history_size": "100"}, "proxy": {"sockjs_url": "http://127.0.0.1:9/s.js"}},
                    args=["--workers", "1"])
    for n in range(1, 4):
        ws_publish(p, dict(ws_item("sj", f"m{n}"), id=str(n)))

    async def main():
        ws = await connect(p, "/sock/000/w1/websocket?last=1")
        assert await recv(ws) == "o"
        got = []
        while len(got) < 4:
            m = await recv(ws)
            assert m.startswith("a"), m
            got += json.loads(m[1:])
        assert [gripd_id(x) or x for x in got] == [
            {"type": "gripd-id", "channel": "sj", "id": "2"}, "m2",
            {"type": "gripd-id", "channel": "sj", "id": "3"}, "m3"]
        await ws.close()
    run(main())
