"""RFC 6455 on the client side of gripd: masking rules, reserved bits and opcodes, control frame
rules, fragmentation, UTF-8, close codes, size limits, the output cap for clients that do not
read, and memory per idle WebSocket. Frames are built by hand (wsutil.RawWs).
Pushpin 1.36 (condure) answers violations differently (noted per test); those are gripd_only."""

import asyncio
import socket
import struct
import time

import pytest

from harness.proxy import IS_PUSHPIN
from wsutil import RawWs, SETTLE, WohBackend, connect, publish, recv, rss, run, sanitized, ws_item


@pytest.fixture
def woh():
    b = WohBackend()
    b.on_text = lambda t, r: [("TEXT", "m:" + t)]
    b.on_binary = lambda d, r: [("BINARY", b"m:" + d)]
    yield b
    b.stop()


@pytest.fixture
def woh_proxy(woh, start_proxy):
    return start_proxy(routes=f"* {woh.addr},over_http")


def open_raw(proxy) -> RawWs:
    raw = RawWs(proxy.port, "/")
    assert raw.status == 101, raw.head
    return raw


@pytest.mark.gripd_only("pushpin 1.36 fails the connection when a ping comes between fragments")
def test_fragmented_text_with_interleaved_ping(woh, woh_proxy):
    woh.on_ping = lambda d, r: [("PONG", d)]
    raw = open_raw(woh_proxy)
    raw.send_frame(1, b"he", fin=False)
    raw.send_frame(9, b"p1")
    raw.send_frame(0, b"ll", fin=False)
    raw.send_frame(0, b"o")
    got = set()
    for _ in range(2):
        got.add(raw.read_frame())
    assert (1, True, b"hello") in got
    assert (10, True, b"p1") in got
    raw.close()


def test_utf8_split_across_frames_is_accepted(woh, woh_proxy):
    raw = open_raw(woh_proxy)
    euro = "€".encode()
    raw.send_frame(1, euro[:1], fin=False)
    raw.send_frame(0, euro[1:])
    assert raw.read_frame() == (1, True, euro)
    raw.close()


def test_empty_and_binary_frames(woh, woh_proxy):
    raw = open_raw(woh_proxy)
    raw.send_frame(2, b"\x00\xff")
    assert raw.read_frame() == (2, True, b"\x00\xff")
    raw.send_frame(1, b"")
    assert raw.read_frame() == (1, True, b"")
    raw.close()


# (name, frames, close code gripd answers with)
VIOLATIONS = [
    ("unmasked frame", lambda: RawWs.frame(1, b"hi", mask=None), 1002),
    ("rsv1 without extension", lambda: RawWs.frame(1, b"hi", rsv=4), 1002),
    ("reserved opcode", lambda: RawWs.frame(3, b"hi"), 1002),
    ("fragmented ping", lambda: RawWs.frame(9, b"p", fin=False), 1002),
    ("ping over 125 bytes", lambda: RawWs.frame(9, b"p" * 126), 1002),
    ("continuation first", lambda: RawWs.frame(0, b"x"), 1002),
    ("new message inside a fragmented one", lambda: RawWs.frame(1, b"a", fin=False) + RawWs.frame(1, b"b"), 1002),
    ("invalid utf-8", lambda: RawWs.frame(1, b"\xc3\x28"), 1007),
    ("close with one byte", lambda: RawWs.frame(8, b"\x03"), 1002),
    ("close with code 1005", lambda: RawWs.frame(8, struct.pack("!H", 1005)), 1002),
    ("close reason not utf-8", lambda: RawWs.frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
]


# Pushpin 1.36 relays these instead of failing the connection (gripd follows RFC 6455).
PUSHPIN_TOLERATES = {"unmasked frame", "invalid utf-8"}


@pytest.mark.gripd_only("pushpin 1.36 (condure) drops such clients without a close frame")
@pytest.mark.parametrize("name,frames,code", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_protocol_violation_is_closed_with_code(woh, woh_proxy, name, frames, code):
    raw = open_raw(woh_proxy)
    raw.send(frames())
    got = raw.read_close()
    assert got is not None and got[0] == code
    assert raw.is_closed()
    raw.close()
    # the backend is told the connection is gone
    woh.wait_event("DISCONNECT")


@pytest.mark.parametrize("name,frames,code", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_protocol_violation_ends_the_connection(woh, woh_proxy, name, frames, code):
    if IS_PUSHPIN and name in PUSHPIN_TOLERATES:
        pytest.skip("pushpin 1.36 (condure) accepts this and relays it")
    raw = open_raw(woh_proxy)
    raw.send(frames())
    assert raw.is_closed(10)
    raw.close()


@pytest.mark.gripd_only("pushpin 1.36 drops the connection without a close frame")
def test_message_over_the_woh_buffer_is_1009(woh, woh_proxy):
    raw = open_raw(woh_proxy)
    raw.send_frame(2, b"x" * 200001)
    got = raw.read_close()
    assert got is not None and got[0] == 1009
    raw.close()


def test_message_of_200000_bytes_is_fine(woh, woh_proxy):
    raw = open_raw(woh_proxy)
    raw.send_frame(2, b"x" * 150000, fin=False)
    raw.send_frame(0, b"y" * 50000)
    woh.wait(1, pred=lambda r: ("BINARY", b"x" * 150000 + b"y" * 50000) in r.events)
    raw.close()


def test_close_handshake_initiated_by_client(woh, woh_proxy):
    raw = open_raw(woh_proxy)
    raw.send_frame(8, struct.pack("!H", 1000) + b"done")
    assert raw.read_close() == (1000, b"done")
    assert raw.is_closed()
    raw.close()


def test_close_without_code(woh, woh_proxy):
    raw = open_raw(woh_proxy)
    raw.send_frame(8, b"")
    got = raw.read_close()
    assert got is not None
    assert raw.is_closed()
    raw.close()
    woh.wait(1, pred=lambda r: ("CLOSE", None) in r.events)


@pytest.mark.gripd_only("asserts gripd's output cap for clients that never read")
def test_client_that_does_not_read_is_cut_off(woh, start_proxy):
    woh.on_open = lambda r: [("TEXT", 'c:{"type":"subscribe","channel":"flood"}')]
    p = start_proxy(routes=f"* {woh.addr},over_http")
    raw = RawWs(p.port, "/")
    assert raw.status == 101
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    time.sleep(SETTLE)
    block = "z" * 60000
    for _ in range(200):  # 12 MB published, nothing read
        publish(p, ws_item("flood", block))
    # gripd closes the connection: reading everything now ends well before 12 MB. Widen the
    # receive window first: draining megabytes through a 4 KiB window is paced by delayed ACKs.
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    raw.sock.settimeout(10)
    total, ended = 0, None
    while True:
        try:
            d = raw.sock.recv(1 << 20)
        except (socket.timeout, OSError) as e:
            ended = type(e).__name__
            break
        if not d:
            ended = "EOF"
            break
        total += len(d)
    assert total < 10 * 1024 * 1024
    # a reset, not a FIN after the kernel's backlog: what it held for the client is dropped too
    assert ended == "ConnectionResetError", ended
    raw.close()


IDLE_SOCKETS = 2000
IDLE_BUDGET = 2048  # DESIGN.md "Memory per held connection": at most 2 KiB per idle WebSocket


@pytest.mark.gripd_only("asserts on the gripd process's memory (pushpin spreads a connection over processes)")
def test_idle_websockets_are_small(woh, start_proxy):
    """2000 idle WebSocket-over-HTTP clients, each subscribed to a channel: RSS grows by at most
    2 KiB per socket (the HTTP parser and the write buffers are gone once the 101 is sent)."""
    woh.on_open = lambda r: [("TEXT", 'c:{"type":"subscribe","channel":"idle"}')]
    p = start_proxy(routes=f"* {woh.addr},over_http")
    if sanitized(p.pid):
        pytest.skip("RSS is meaningless under a sanitizer")

    async def open_many(first, n):
        out = []
        for i in range(first, first + n, 100):  # 100 handshakes in flight: the backend is threaded
            out += await asyncio.gather(*[
                connect(p, f"/c{j}", extra_headers={"User-Agent": "test-client/1.0"})
                for j in range(i, min(i + 100, first + n))])
        return out

    async def main():
        warm = await open_many(0, 100)  # allocator arenas and pools settle first
        await asyncio.sleep(0.5)
        before = rss(p.pid)
        clients = await open_many(100, IDLE_SOCKETS)
        await asyncio.sleep(1.0)
        after = rss(p.pid)
        publish(p, ws_item("idle", "still alive"))
        for ws in clients[:10] + clients[-10:]:
            assert await recv(ws) == "still alive"
        for ws in clients + warm:
            ws.transport.abort()
        return (after - before) / IDLE_SOCKETS
    per_conn = run(main(), timeout=55)
    print(f"RSS growth per idle WebSocket-over-HTTP connection: {per_conn:.0f} bytes")
    assert per_conn <= IDLE_BUDGET
