"""The command socket's `refresh` by connection id (ZRPC on `command_spec`, PROTOCOL.md §4.3),
driven with a python3-zmq REQ client. Checked on Debian's pushpin 1.36 with the same generated config.

Observed on pushpin 1.36 (its handler hands `refresh {cid}` to the proxy, which looks the id up
among its WebSockets):
- the id is the WebSocket's: its WebSocket-over-HTTP Connection-Id, which is also the `id` of its
  `conn` stats events (gripd has two ids for a WebSocket, and either finds it);
- a WebSocket-over-HTTP session asks its backend again at once: a request without events;
- a passthrough WebSocket has nothing to refresh: success, and nothing happens;
- an id that is no open WebSocket (unknown, closed, an HTTP request's) is `item-not-found`;
- a `cid` that is not a string is `bad-request`.
"""

import asyncio

import pytest

from harness.backend import Response
from wsutil import SETTLE, WsBackend, closed, connect, no_message, recv, run, woh  # noqa: F401
from zmqutil import Command, wait_for

zmq = pytest.importorskip("zmq")
from test_zmq_stats import HOLD_PEER, FromClient, StatsReader, stats_spec  # noqa: E402


@pytest.fixture
def woh_proxy(woh, start_proxy):
    woh.on_empty = lambda r: [("TEXT", "m:refreshed")]
    return start_proxy(routes=f"* {woh.addr},over_http")


@pytest.fixture
def command(woh_proxy):
    c = Command(woh_proxy.command_spec)
    yield c
    c.close()


def refresh(command, cid):
    return command.call("refresh", {"cid": cid})


def test_refresh_by_connection_id_asks_the_backend_again(woh, woh_proxy, command):
    async def main():
        ws = await connect(woh_proxy, "/")
        cid = (await woh.async_wait_event("OPEN")).header("Connection-Id")
        await asyncio.sleep(SETTLE)
        assert await no_message(ws, 0.3)
        before = len(woh.requests)
        r = await asyncio.to_thread(refresh, command, cid)
        assert r["success"] is True and r["value"] is None
        assert await recv(ws) == "refreshed"
        again = woh.requests[before]
        assert again.events == []
        assert again.header("Connection-Id") == cid
        # and again: each refresh is one more request
        r = await asyncio.to_thread(refresh, command, cid)
        assert r["success"] is True
        assert await recv(ws) == "refreshed"
        await ws.close()
    run(main())


def test_refresh_by_the_conn_stats_id(woh, woh_proxy, command):
    reader = StatsReader(stats_spec(woh_proxy), b"conn ")
    try:
        async def main():
            ws = None
            # The SUB side joins asynchronously: WebSockets until one's `conn` event shows.
            for _ in range(20):
                ws = await connect(woh_proxy, "/")
                ev = await asyncio.to_thread(
                    reader.find, lambda t, f: f.get("type") == "ws" and not f.get("unavailable"), 1.0)
                if ev:
                    break
                await ws.close()
            assert ev, "no ws conn event"
            await asyncio.sleep(SETTLE)
            r = await asyncio.to_thread(refresh, command, ev[1]["id"])
            assert r["success"] is True
            assert await recv(ws) == "refreshed"
            await ws.close()
        run(main())
    finally:
        reader.close()


def test_unknown_and_closed_ids_are_item_not_found(woh, woh_proxy, command):
    r = refresh(command, "no-such-connection")
    assert r["success"] is False and r["condition"] == b"item-not-found"
    assert "value" not in r

    async def main():
        ws = await connect(woh_proxy, "/")
        cid = (await woh.async_wait_event("OPEN")).header("Connection-Id")
        await ws.close()
        await closed(ws)
        return cid
    cid = run(main())
    woh.wait_event("CLOSE")
    assert wait_for(lambda: refresh(command, cid).get("condition") == b"item-not-found")
    # the socket goes on answering
    assert command.call("recover")["success"] is True


def test_an_http_requests_id_is_item_not_found(proxy, backend):
    """Only WebSockets are refreshed: a held stream's `conn` id is not one."""
    reader = StatsReader(stats_spec(proxy), b"conn ")
    c = Command(proxy.command_spec)
    backend.route("/held", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "refresh-held")]))
    streams = []
    try:
        ev = None
        # The SUB side joins asynchronously: streams until one's `conn` event shows (told from
        # other requests' by its peer address).
        for _ in range(20):
            s = FromClient(HOLD_PEER, proxy.port, "/held")
            streams.append(s)
            s.wait_head()
            ev = reader.find(lambda t, f: f.get("peer-address") == HOLD_PEER and not f.get("unavailable"), 1.0)
            if ev:
                break
        assert ev, "no conn event for the held stream"
        assert ev[1]["type"] == "http"
        r = refresh(c, ev[1]["id"])
        assert r["success"] is False and r["condition"] == b"item-not-found"
    finally:
        for s in streams:
            s.close()
        c.close()
        reader.close()


def test_cid_must_be_a_string(command):
    r = command.call("refresh", {"cid": 5})
    assert r["success"] is False and r["condition"] == b"bad-request"
    r = command.call("refresh", {"cid": ["x"]})
    assert r["success"] is False and r["condition"] == b"bad-request"
    assert command.call("recover")["success"] is True


def test_refresh_of_a_passthrough_websocket_is_a_success_that_does_nothing(start_proxy):
    b = WsBackend()
    p = start_proxy(routes=f"* {b.addr}")
    reader = StatsReader(stats_spec(p), b"conn ")
    c = Command(p.command_spec)
    try:
        async def main():
            for _ in range(20):
                ws = await connect(p, "/")
                ev = await asyncio.to_thread(
                    reader.find, lambda t, f: f.get("type") == "ws" and not f.get("unavailable"), 1.0)
                if ev:
                    break
                await ws.close()
            assert ev, "no ws conn event"
            r = await asyncio.to_thread(refresh, c, ev[1]["id"])
            assert r["success"] is True
            await ws.send("still here")
            assert await recv(ws) == "still here"  # the echo backend's
            await ws.close()
        run(main())
    finally:
        c.close()
        reader.close()
        b.stop()


def test_a_flood_of_refreshes_is_answered_every_one(woh_proxy):
    """More `refresh {cid}` than gripd lets wait for the workers' answers (256), sent at once by a
    DEALER: every one is answered (item-not-found, or service-unavailable past the bound), and
    the socket goes on answering."""
    from zmqutil import tn, untn
    n = 600
    ctx = zmq.Context.instance()
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.setsockopt(zmq.RCVTIMEO, 15000)
    d.connect(woh_proxy.command_spec)
    try:
        for i in range(n):
            d.send_multipart([b"", tn({"id": str(i), "method": "refresh", "args": {"cid": f"nobody-{i}"}})])
        conditions = {}
        for _ in range(n):
            parts = d.recv_multipart()
            r, rest = untn(parts[-1])
            assert rest == b"" and r["success"] is False
            conditions[r["id"]] = r["condition"]
        assert len(conditions) == n
        assert set(conditions.values()) <= {b"item-not-found", b"service-unavailable"}
    finally:
        d.close()
    c = Command(woh_proxy.command_spec)
    try:
        assert refresh(c, "nobody")["condition"] == b"item-not-found"
    finally:
        c.close()
