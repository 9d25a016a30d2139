"""Hostile input against every queue that a client or backend can grow (test/LIMITS.md lists them):
each test pushes one queue past its bound and asserts what LIMITS.md says happens there. Run
against pushpin 1.36 too, except where marked gripd_only (why is given)."""

import socket
import threading
import time

import pytest

from harness.proxy import IS_PUSHPIN
from wsutil import (SETTLE, RawWs, WohBackend, connect, publish, recv, rss, run, sanitized, ws_item)

MiB = 1024 * 1024
WOH_BUFFER = 200000  # PROTOCOL.md §5.2: bytes of events buffered out / one POST body at most


@pytest.fixture
def woh():
    b = WohBackend()
    yield b
    b.stop()


def _subscribe_side(r):
    """/side clients subscribe to channel "side"; others get nothing back."""
    if r.req.path == "/side":
        return [("TEXT", 'c:{"type":"subscribe","channel":"side"}')]
    return []


class Flooder(threading.Thread):
    """Sends `data` to a socket as fast as the proxy reads it (in a thread: a paused reader blocks
    sendall). `error` is the exception that ended it early (the proxy closed), if any."""

    def __init__(self, sock, data: bytes, chunk: int = 65536):
        super().__init__(daemon=True)
        self.sock, self.data, self.chunk = sock, data, chunk
        self.sent = 0
        self.error = None

    def run(self):
        try:
            for i in range(0, len(self.data), self.chunk):
                self.sock.sendall(self.data[i:i + self.chunk])
                self.sent = i + self.chunk
        except OSError as e:
            self.error = e


# --- WebSocket-over-HTTP: events waiting for the backend -----------------------------------

FLOOD_FRAMES = 150000


def test_woh_empty_message_flood_is_bounded(woh, start_proxy):
    """A client sends 150k empty messages as fast as it can to a slow backend. Every byte of every
    event counts against the buffer: no POST body exceeds 200,000 bytes, gripd's memory stays
    bounded, all messages arrive in order (the client was paused, nothing dropped), and meanwhile
    the control API and another client's stream keep working."""
    woh.on_open = _subscribe_side
    woh.delay = 0.05  # a backend slower than the client
    p = start_proxy(routes=f"* {woh.addr},over_http")
    measure = not IS_PUSHPIN and not sanitized(p.pid)  # pushpin's proxy.pid is its runner
    before = rss(p.pid) if measure else 0

    async def main():
        side = await connect(p, "/side")
        await woh.async_wait(1, pred=lambda r: "OPEN" in r.types)
        raw = RawWs(p.port, "/flood", timeout=60)
        assert raw.status == 101
        await woh.async_wait(2, pred=lambda r: "OPEN" in r.types)
        # alternating text and binary empty messages: 6 bytes each on the wire
        frames = (RawWs.frame(1, b"") + RawWs.frame(2, b"")) * (FLOOD_FRAMES // 2)
        flood = Flooder(raw.sock, frames)
        flood.start()
        peak = before
        delivered = 0
        while flood.is_alive():
            publish(p, ws_item("side", f"during {delivered}"))  # the control API answers...
            assert await recv(side, 20) == f"during {delivered}"  # ...and the other client gets it
            delivered += 1
            if measure:
                peak = max(peak, rss(p.pid))
        flood.join(5)
        assert flood.error is None, flood.error
        got = 0
        deadline = time.monotonic() + 40
        while got < FLOOD_FRAMES and time.monotonic() < deadline:
            got = sum(1 for r in list(woh.requests) if r.req.path == "/flood" for t, _ in r.events
                      if t in ("TEXT", "BINARY"))
            if measure:
                peak = max(peak, rss(p.pid))
            publish(p, ws_item("side", "after"))
            assert await recv(side, 20) == "after"
        raw.close()
        await side.close()
        return peak, delivered

    peak, delivered = run(main(), timeout=55)
    flood_reqs = [r for r in woh.requests if r.req.path == "/flood"]
    events = [t for r in flood_reqs for t, _ in r.events if t in ("TEXT", "BINARY")]
    assert len(events) == FLOOD_FRAMES
    assert events[:4] == ["TEXT", "BINARY", "TEXT", "BINARY"] and events[-1] == "BINARY"
    biggest = max(len(r.req.body) for r in flood_reqs)
    assert biggest <= WOH_BUFFER, f"a POST body of {biggest} bytes"
    if measure:
        assert peak - before < 16 * MiB, f"RSS grew by {(peak - before) / MiB:.1f} MiB"
