"""WebSocket-over-HTTP (over_http targets, PROTOCOL.md §5.2): the event protocol both ways, the
handshake relayed from the OPEN answer, meta, keep-alive intervals, batching, closing, failures.
Every expectation was checked on pushpin 1.36 unless marked gripd_only."""

import asyncio
import re
import time

import pytest
import websockets

from harness.backend import Response
from wsutil import (EVENTS_TYPE, RawWs, SETTLE, WohBackend, close_content, closed, connect, decode_events,
                    encode_events, no_message, publish, recv, run, woh, ws_item, Forwarder)


@pytest.fixture
def woh_proxy(woh, start_proxy):
    return start_proxy(routes=f"* {woh.addr},over_http")


def echo_text(text, req):
    return [("TEXT", "m:" + text)]


# --- opening ----------------------------------------------------------------------------

def test_open_request(woh, start_proxy):
    p = start_proxy(routes=f"* {woh.addr},over_http", conf={"proxy": {"sig_key": "secret"}})

    async def main():
        ws = await connect(p, "/chat/room?x=1", extra_headers={"X-Client": "yes", "Meta-Evil": "1",
                                                                "Connection-Id": "forged"})
        await ws.close()
    run(main())
    r = woh.wait_event("OPEN")
    assert r.req.method == "POST"
    assert r.req.target == "/chat/room?x=1"
    assert r.events == [("OPEN", None)]
    assert r.header("Content-Type") == EVENTS_TYPE
    assert r.header("Accept") == EVENTS_TYPE
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", r.header("Connection-Id"))
    assert r.header_all("Connection-Id") == [r.header("Connection-Id")]
    assert r.header("Sec-WebSocket-Extensions") == "grip"
    assert r.header("X-Client") == "yes"
    assert r.header("Meta-Evil") is None
    assert r.header("Upgrade") is None
    assert r.header("Sec-WebSocket-Key")
    assert r.header("Sec-WebSocket-Version") == "13"
    assert r.header("Grip-Sig")
    assert r.header("Content-Length") == "6"


def test_first_response_headers_go_on_the_101(woh, woh_proxy):
    woh.open_headers = [("X-Foo", "bar"), ("Set-Meta-User", "alice"), ("Keep-Alive-Interval", "30")]

    async def main():
        ws = await connect(woh_proxy, "/")
        h = ws.response_headers
        assert h.get("X-Foo") == "bar"
        assert h.get("Set-Meta-User") is None
        assert h.get("Keep-Alive-Interval") is None
        assert h.get("Content-Type") is None
        assert h.get("Sec-WebSocket-Extensions") is None  # grip is between pushpin and the origin
        await ws.close()
    run(main())


def test_open_refused_is_relayed(woh, woh_proxy):
    woh.responder = lambda r: (Response(403, b"go away\n", [("Content-Type", "text/plain"), ("X-Why", "nope")])
                               if r.types == ["OPEN"] else woh.answer([]))

    async def main():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await connect(woh_proxy, "/")
        assert e.value.status_code == 403
        assert e.value.headers.get("X-Why") == "nope"
    run(main())
    raw = RawWs(woh_proxy.port, "/")
    assert raw.status == 403
    body = raw.buf
    while len(body) < 8 and raw._fill():
        body = raw.buf
    assert raw.buf.startswith(b"go away\n")
    raw.close()


def test_open_answered_without_events_type_is_relayed(woh, woh_proxy):
    woh.responder = lambda r: Response(200, b"OPEN\r\n", [("Content-Type", "text/plain")])

    async def main():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await connect(woh_proxy, "/")
        assert e.value.status_code == 200
    run(main())


def test_open_answered_with_other_event_is_502(woh, woh_proxy):
    woh.responder = lambda r: woh.answer([("TEXT", "hi")])

    async def main():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await connect(woh_proxy, "/")
        assert e.value.status_code == 502
    run(main())


def test_backend_down_is_502(start_proxy):
    from harness.proxy import dead_port
    p = start_proxy(routes=f"* 127.0.0.1:{dead_port()},over_http")
    raw = RawWs(p.port, "/")
    assert raw.status == 502
    while b"\n" not in raw.buf and raw._fill():
        pass
    assert raw.buf.startswith(b"Error while proxying to origin.")
    raw.close()


def test_second_target_used_when_first_is_down(woh, start_proxy):
    from harness.proxy import dead_port
    p = start_proxy(routes=f"* 127.0.0.1:{dead_port()},over_http {woh.addr},over_http")
    woh.on_text = echo_text

    async def main():
        ws = await connect(p, "/")
        await ws.send("x")
        assert await recv(ws) == "x"
        await ws.close()
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 closes the connection without a response")
def test_bad_handshakes_get_400_or_426(woh_proxy):
    def ask(extra, method="GET"):
        from harness import raw
        return raw.send_raw(woh_proxy.port, (f"{method} /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                             f"Connection: Upgrade\r\n{extra}Content-Length: 0\r\n\r\n").encode())
    assert ask("Sec-WebSocket-Version: 13\r\n").startswith(b"HTTP/1.1 400")
    assert ask("Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n").startswith(b"HTTP/1.1 400")
    r = ask("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n")
    assert r.startswith(b"HTTP/1.1 426")
    assert b"Sec-WebSocket-Version: 13\r\n" in r
    assert ask("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
               method="POST").startswith(b"HTTP/1.1 400")


def test_accept_key(woh_proxy):
    raw = RawWs(woh_proxy.port, "/")
    assert raw.status == 101
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in raw.head
    raw.close()


def test_plain_http_client_may_not_send_events(woh_proxy):
    from harness import raw
    r = raw.send_raw(woh_proxy.port, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: application/websocket-events\r\n"
                                     b"Content-Length: 6\r\n\r\nOPEN\r\n")
    assert r.startswith(b"HTTP/1.1 403")
    assert r.endswith(b"Client not allowed to send WebSocket events directly.\n")


# --- messages ---------------------------------------------------------------------------

def test_messages_both_ways(woh, woh_proxy):
    woh.on_text = lambda t, r: [("TEXT", "m:got " + t)]
    woh.on_binary = lambda b, r: [("BINARY", b"m:" + b[::-1])]

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("hello")
        assert await recv(ws) == "got hello"
        await ws.send(b"\x00\x01\x02")
        assert await recv(ws) == b"\x02\x01\x00"
        await ws.send("")
        assert await recv(ws) == "got "
        await ws.close()
    run(main())
    cids = {r.header("Connection-Id") for r in woh.requests}
    assert len(cids) == 1
    assert ("TEXT", b"hello") in woh.all_events()
    assert ("BINARY", b"\x00\x01\x02") in woh.all_events()
    assert ("TEXT", None) in woh.all_events()  # an empty message has no content part


def test_fragmented_client_message_is_one_event(woh, woh_proxy):
    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send(["frag1", "frag2", "frag3"])
        await woh.async_wait_event("TEXT")
        await ws.close()
    run(main())
    assert ("TEXT", b"frag1frag2frag3") in woh.all_events()


def test_large_client_message(woh, woh_proxy):
    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("x" * 70000)
        await woh.async_wait_event("TEXT")
        await ws.close()
    run(main())
    assert ("TEXT", b"x" * 70000) in woh.all_events()


def test_backend_message_of_16384_bytes(woh, woh_proxy):
    woh.on_text = lambda t, r: [("TEXT", "m:" + "y" * 16384)]

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("go")
        assert await recv(ws) == "y" * 16384
        await ws.close()
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 holds back the last frame of a message over 16384 bytes until the next one")
def test_large_backend_message_is_fragmented_at_16384(woh, woh_proxy):
    woh.on_text = lambda t, r: [("TEXT", "m:" + "z" * 40000)]
    raw = RawWs(woh_proxy.port, "/")
    raw.send_frame(1, b"go")
    frames = [raw.read_frame() for _ in range(3)]
    assert [(op, fin, len(p)) for op, fin, p in frames] == [(1, False, 16384), (0, False, 16384), (0, True, 7232)]
    raw.close()


def test_pings_and_pongs(woh, woh_proxy):
    woh.on_text = lambda t, r: [("PING", "srv")] if t == "ping me" else [("PONG", "unsolicited")]

    async def main():
        ws = await connect(woh_proxy, "/")
        ping = await ws.ping(b"cli")
        await woh.async_wait(1, pred=lambda r: ("PING", b"cli") in r.events)
        await ws.send("ping me")  # the client answers the backend's ping with a pong
        await woh.async_wait(1, pred=lambda r: ("PONG", b"srv") in r.events)
        ping.cancel()
        await ws.close()
    run(main())


def test_client_ping_is_for_the_backend_to_answer(woh, woh_proxy):
    woh.on_ping = lambda data, r: [("PONG", data)]

    async def main():
        ws = await connect(woh_proxy, "/")
        waiter = await ws.ping(b"abc")
        await asyncio.wait_for(waiter, 5)
        await ws.close()
    run(main())


def test_batching_while_a_request_is_in_flight(woh, woh_proxy):
    async def main():
        ws = await connect(woh_proxy, "/")
        woh.delay = 1.0
        await ws.send("first")
        await asyncio.sleep(0.3)
        for i in range(3):
            await ws.send(f"next{i}")
        await woh.async_wait(1, pred=lambda r: ("TEXT", b"next2") in r.events, timeout=10)
        woh.delay = 0
        await ws.close()
    run(main())
    texts = [r.events for r in woh.requests if any(t == "TEXT" for t, _ in r.events)]
    assert texts[0] == [("TEXT", b"first")]
    assert texts[1] == [("TEXT", b"next0"), ("TEXT", b"next1"), ("TEXT", b"next2")]


def test_one_event_per_request(woh, start_proxy):
    p = start_proxy(routes=f"* {woh.addr},over_http,one_event")

    async def main():
        ws = await connect(p, "/")
        woh.delay = 1.0
        await ws.send("first")
        await asyncio.sleep(0.3)
        for i in range(3):
            await ws.send(f"next{i}")
        await woh.async_wait(1, pred=lambda r: ("TEXT", b"next2") in r.events, timeout=15)
        woh.delay = 0
        await ws.close()
    run(main())
    for r in woh.requests:
        assert len(r.events) <= 1


# --- meta, keep-alive --------------------------------------------------------------------

def test_set_meta(woh, woh_proxy):
    def on_text(t, r):
        if t == "set":
            return [("TEXT", "m:ok")]
        if t == "clear":
            return [("TEXT", "m:ok")]
        return [("TEXT", "m:ok")]
    woh.on_text = on_text
    woh.open_headers = [("Set-Meta-User", "alice"), ("Set-Meta-Room", "r1")]

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("a")
        await recv(ws)
        woh.headers = [("Set-Meta-Room", "")]
        await ws.send("b")
        await recv(ws)
        woh.headers = []
        await ws.send("c")
        await recv(ws)
        await ws.close()
    run(main())
    by_text = {r.events[0][1]: r for r in woh.requests if r.types == ["TEXT"]}
    assert by_text[b"a"].header("Meta-User") == "alice"
    assert by_text[b"a"].header("Meta-Room") == "r1"
    assert by_text[b"c"].header("Meta-User") == "alice"
    assert by_text[b"c"].header("Meta-Room") is None


def test_keep_alive_interval(woh, woh_proxy):
    woh.open_headers = [("Keep-Alive-Interval", "5")]  # raised to 20

    async def main():
        ws = await connect(woh_proxy, "/")
        t0 = time.monotonic()
        r = (await woh.async_wait(1, timeout=30, pred=lambda r: r.events == []))[0]
        assert 18 <= r.time - t0 <= 25
        assert r.req.body == b""
        await ws.close()
    run(main(), timeout=40)


def test_open_deferred_by_keep_alive_interval(woh, woh_proxy):
    # An empty answer with Keep-Alive-Interval keeps the client waiting: OPEN is asked again later.
    def responder(r):
        if r.types == ["OPEN"]:
            opens = [q for q in woh.requests if q.types == ["OPEN"]]
            if len(opens) == 1:
                return woh.answer([], [("Keep-Alive-Interval", "1")])
            return woh.answer([("OPEN", None), ("TEXT", "m:welcome")])
        return woh.answer([e for e in r.events if e[0] == "CLOSE"])  # echo the close: no close timeout
    woh.responder = responder

    async def main():
        t0 = time.monotonic()
        ws = await connect(woh_proxy, "/", open_timeout=40)
        assert 18 <= time.monotonic() - t0 <= 25
        assert await recv(ws) == "welcome"
        await ws.close()
    run(main())
    opens = [r for r in woh.requests if r.types == ["OPEN"]]
    assert len(opens) == 2
    assert opens[0].header("Connection-Id") == opens[1].header("Connection-Id")


# --- closing -------------------------------------------------------------------------------

def test_client_close_goes_to_backend_and_back(woh, woh_proxy):
    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.close(4001, "bye")
        assert (ws.close_code, ws.close_reason) == (4001, "bye")
    run(main())
    assert ("CLOSE", close_content(4001, "bye")) in woh.all_events()


def test_client_close_without_backend_answer_ends_the_connection(woh, woh_proxy):
    woh.on_close = None

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.close(4001, "bye")
        await asyncio.wait_for(ws.wait_closed(), 5)
    run(main())
    assert ("CLOSE", close_content(4001, "bye")) in woh.all_events()


def test_backend_close(woh, woh_proxy):
    woh.on_text = lambda t, r: [("CLOSE", close_content(4002, "srv"))]
    woh.on_close = None

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("close please")
        assert await closed(ws) == (4002, "srv")
    run(main())
    woh.wait(1, pred=lambda r: ("CLOSE", close_content(4002, "srv")) in r.events)


def test_backend_close_without_code_is_1000(woh, woh_proxy):
    woh.on_text = lambda t, r: [("CLOSE", None)]
    woh.on_close = None

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("close please")
        assert (await closed(ws))[0] == 1000
    run(main())


def test_backend_disconnect_drops_the_client(woh, woh_proxy):
    woh.on_text = lambda t, r: [("DISCONNECT", None)]
    raw = RawWs(woh_proxy.port, "/")
    raw.send_frame(1, b"bye")
    assert raw.read_close() is None  # no close frame, just the end of the connection
    raw.close()


def test_client_vanishing_sends_disconnect(woh, woh_proxy):
    raw = RawWs(woh_proxy.port, "/")
    woh.wait_event("OPEN")
    raw.close()
    r = woh.wait_event("DISCONNECT")
    assert r.events == [("DISCONNECT", None)]
    assert r.header("Connection-Id") == woh.requests[0].header("Connection-Id")


def test_client_vanishing_while_opening_sends_disconnect_after_open(woh, woh_proxy):
    woh.delay = 1.0
    raw = RawWs.__new__(RawWs)
    import socket
    s = socket.create_connection(("127.0.0.1", woh_proxy.port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    woh.wait_event("OPEN")
    s.close()
    woh.delay = 0
    woh.wait_event("DISCONNECT", timeout=10)


# --- failures ----------------------------------------------------------------------------

def test_backend_error_after_open_closes_the_client(woh, woh_proxy):
    woh.responder = lambda r: (woh.answer([("OPEN", None)]) if r.types == ["OPEN"] else Response(500, b"oops"))

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("hi")
        code, _ = await closed(ws, timeout=10)
        assert code in (1006, 1011)
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 drops the client without a close frame (1006)")
def test_backend_error_closes_with_1011(woh, woh_proxy):
    woh.responder = lambda r: (woh.answer([("OPEN", None)]) if r.types == ["OPEN"] else Response(500, b"oops"))

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("hi")
        assert (await closed(ws, timeout=10))[0] == 1011
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 leaves the client hanging")
def test_garbage_response_closes_with_1011(woh, woh_proxy):
    woh.responder = lambda r: (woh.answer([("OPEN", None)]) if r.types == ["OPEN"] else
                               Response(200, b"TEXT 5\r\nxx", [("Content-Type", EVENTS_TYPE)]))

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("hi")
        assert (await closed(ws, timeout=10))[0] == 1011
    run(main())


def test_transport_errors_are_retried(woh, start_proxy):
    fwd = Forwarder(woh.port)
    p = start_proxy(routes=f"* {fwd.addr},over_http")
    woh.on_text = echo_text
    try:
        async def main():
            ws = await connect(p, "/")
            await ws.send("one")
            assert await recv(ws) == "one"
            fwd.down()
            await ws.send("two")
            await asyncio.sleep(1.5)
            fwd.up()
            assert await recv(ws, timeout=15) == "two"
            await ws.close()
        run(main())
    finally:
        fwd.stop()


# --- Content-Bytes-Accepted (1.41+) ------------------------------------------------------

@pytest.mark.gripd_only("Content-Bytes-Accepted is Pushpin 1.41+; Debian ships 1.36")
def test_partial_acceptance_is_replayed(woh, woh_proxy):
    def responder(r):
        if r.types == ["OPEN"]:
            return woh.answer([("OPEN", None)])
        if r.events == [("TEXT", b"hello")]:
            return woh.answer([], [("Content-Bytes-Accepted", "3")])
        return woh.answer([])
    woh.responder = responder

    async def main():
        ws = await connect(woh_proxy, "/")
        await ws.send("hello")
        await woh.async_wait(1, pred=lambda r: r.events == [("TEXT", b"hello")])
        await ws.send("world")
        r = (await woh.async_wait(1, pred=lambda r: ("TEXT", b"world") in r.events))[0]
        assert r.events == [("TEXT", b"lo"), ("TEXT", b"world")]
        assert r.header("Content-Bytes-Replayed") == "2"
        await ws.close()
    run(main())


# --- stopping ---------------------------------------------------------------------------

@pytest.mark.gripd_only("pushpin 1.36 (through zurl) answers 502 to part of 400 simultaneous over_http "
                        "opens against this backend; the shutdown path under test is gripd's")
def test_stop_while_disconnects_are_connecting(woh, woh_proxy):
    """Clients vanish and gripd is stopped at once, while it opens backend connections for their
    DISCONNECT requests (the backend answers with Connection: close, so none is pooled). Those
    connections belong to sessions that are going away: gripd must end cleanly (it once crashed
    here, calling back into freed sessions)."""
    woh.headers = [("Connection", "close")]

    async def main():
        socks = await asyncio.gather(*(connect(woh_proxy, f"/s{i}") for i in range(400)))
        for ws in socks:
            ws.transport.abort()  # vanish: no close frame
        # Stop in the middle of the DISCONNECTs; several instants, as the window is narrow.
        await asyncio.sleep(0.01)
        return woh_proxy.stop()  # SIGTERM, then waits for the exit
    assert run(main()) == 0
