"""Helpers for the WebSocket integration tests (test_ws_*.py).

    from wsutil import WohBackend, WsBackend, connect, run, recv, publish, ws_item, RawWs

    woh = WohBackend()                          # a WebSocket-over-HTTP origin (events in, events out)
    woh.on_text = lambda text, req: [("TEXT", "m:" + text)]
    p = start_proxy(routes=f"* {woh.addr},over_http")
    async def main():
        ws = await connect(p, "/chat")
        await ws.send("hi")
        assert await recv(ws) == "hi"
    run(main())

WohBackend answers OPEN with OPEN (+ `Sec-WebSocket-Extensions: grip` unless grip=False) and calls
hooks for the other events; every request is recorded as a WohRequest (headers, events).
WsBackend is a real WebSocket origin (python3-websockets) for passthrough routes.
RawWs is a socket-level client for protocol violations and frame-exact checks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
import time
import urllib.request
from typing import Callable, List, Optional, Tuple, Union

import pytest
import websockets

from harness.backend import Backend, Response
from harness.proxy import IS_PUSHPIN

# Pushpin's handler learns about subscriptions over ZeroMQ: give it a moment before publishing.
SETTLE = 1.0 if IS_PUSHPIN else 0.2

EVENTS_TYPE = "application/websocket-events"


def control(obj) -> str:
    """A GRIP control message: `c:` + JSON."""
    return "c:" + json.dumps(obj)


# --- WebSocket-over-HTTP events -------------------------------------------------------

def encode_events(events) -> bytes:
    """events: [(TYPE, content-or-None)], content str or bytes."""
    out = b""
    for t, c in events:
        if c is None:
            out += t.encode() + b"\r\n"
        else:
            if isinstance(c, str):
                c = c.encode()
            out += b"%s %x\r\n" % (t.encode(), len(c)) + c + b"\r\n"
    return out


def decode_events(body: bytes) -> list:
    out = []
    i = 0
    while i < len(body):
        j = body.index(b"\r\n", i)
        line = body[i:j].decode()
        i = j + 2
        if " " in line:
            t, n = line.split(" ", 1)
            n = int(n, 16)
            out.append((t, body[i:i + n]))
            assert body[i + n:i + n + 2] == b"\r\n"
            i += n + 2
        else:
            out.append((line, None))
    return out


def close_content(code: int, reason: str = "") -> bytes:
    return struct.pack(">H", code) + reason.encode()


class WohRequest:
    def __init__(self, req, events):
        self.req = req
        self.events = events
        self.time = time.monotonic()

    def header(self, name, default=None):
        return self.req.header(name, default)

    def header_all(self, name):
        return self.req.header_all(name)

    @property
    def types(self) -> list:
        return [t for t, _ in self.events]

    def __repr__(self):
        return f"WohRequest({self.req.method} {self.req.target} {self.events!r})"


class WohBackend:
    """A WebSocket-over-HTTP origin. Hooks return lists of events to answer with:
    on_open(req) -> events after OPEN; on_text(text, req), on_binary(data, req), on_ping(data, req),
    on_pong(data, req), on_close(content, req), on_empty(req). Default: nothing more.
    respond(req, events) -> Response may be replaced entirely (set .responder).
    headers: extra response headers (list) for every answer; open_headers only for the OPEN answer."""

    def __init__(self, grip: bool = True):
        self.grip = grip
        self.requests: List[WohRequest] = []
        self.headers: list = []
        self.open_headers: list = []
        self.on_open: Optional[Callable] = None
        self.on_text: Optional[Callable] = None
        self.on_binary: Optional[Callable] = None
        self.on_ping: Optional[Callable] = None
        self.on_pong: Optional[Callable] = None
        self.on_close: Optional[Callable] = lambda content, req: [("CLOSE", content)]  # echo
        self.on_empty: Optional[Callable] = None
        self.responder: Optional[Callable] = None
        self.delay: float = 0.0
        self._cond = threading.Condition()
        self.backend = Backend(self._handle)

    @property
    def addr(self) -> str:
        return self.backend.addr

    @property
    def port(self) -> int:
        return self.backend.port

    def stop(self):
        self.backend.stop()

    def _handle(self, req):
        events = decode_events(req.body)
        wr = WohRequest(req, events)
        with self._cond:
            self.requests.append(wr)
            self._cond.notify_all()
        if self.delay:
            time.sleep(self.delay)
        if self.responder is not None:
            return self.responder(wr)
        out = []
        extra = list(self.headers)
        for t, c in events:
            hook = None
            arg = c
            if t == "OPEN":
                out.append(("OPEN", None))
                extra += self.open_headers
                hook = self.on_open
                arg = None
            elif t == "TEXT":
                hook, arg = self.on_text, (c or b"").decode("utf-8", "replace")
            elif t == "BINARY":
                hook, arg = self.on_binary, c or b""
            elif t == "PING":
                hook = self.on_ping
            elif t == "PONG":
                hook = self.on_pong
            elif t == "CLOSE":
                hook = self.on_close
            if hook is not None:
                r = hook(wr) if arg is None and t == "OPEN" else hook(arg, wr)
                out += r or []
        if not events and self.on_empty is not None:
            out += self.on_empty(wr) or []
        return self.answer(out, extra)

    def answer(self, events, headers=()) -> Response:
        h = [("Content-Type", EVENTS_TYPE)]
        if self.grip:
            h.append(("Sec-WebSocket-Extensions", "grip"))
        h += list(headers)
        return Response(200, encode_events(events), h)

    def wait(self, n: int = 1, timeout: float = 10.0, pred: Optional[Callable] = None) -> List[WohRequest]:
        """Wait until n requests (matching pred, if given) arrived; return those."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if pred is None or pred(r)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"WOH backend got {self.requests!r}, wanted {n} matching")
                self._cond.wait(left)

    async def async_wait(self, n: int = 1, timeout: float = 10.0, pred: Optional[Callable] = None):
        """wait() for asyncio code (the client's event loop keeps running meanwhile)."""
        return await asyncio.to_thread(self.wait, n, timeout, pred)

    async def async_wait_event(self, type_: str, timeout: float = 10.0) -> WohRequest:
        return await asyncio.to_thread(self.wait_event, type_, timeout)

    def wait_event(self, type_: str, timeout: float = 10.0) -> WohRequest:
        return self.wait(1, timeout, lambda r: type_ in r.types)[0]

    def all_events(self) -> list:
        with self._cond:
            return [e for r in self.requests for e in r.events]


@pytest.fixture
def woh():
    """A WohBackend stopped after the test (a test module imports it to use it)."""
    b = WohBackend()
    yield b
    b.stop()


# --- a real WebSocket origin (passthrough) --------------------------------------------

class WsBackend:
    """A python3-websockets server in its own thread. handler(ws, path) is an async function; the
    default echoes every message. `process_request(path, headers)` may refuse the handshake
    (websockets' hook). extra_headers: added to the 101. Connections are recorded (request headers)."""

    def __init__(self, handler=None, extra_headers=None, process_request=None, select_subprotocol=None,
                 subprotocols=None, tls=None):
        self.handler = handler or self.echo
        self.tls = tls  # a server-side ssl.SSLContext: wss
        self.extra_headers = extra_headers or []
        self.process_request = process_request
        self.subprotocols = subprotocols
        self.connections: list = []  # (path, request headers)
        self.received: list = []
        self.closed: list = []  # (code, reason) seen by the server
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def echo(self, ws, path):
        async for m in ws:
            await ws.send(m)

    async def _serve(self, ws, path):
        self.connections.append((path, ws.request_headers))
        try:
            await self.handler(ws, path)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.append((ws.close_code, ws.close_reason))

    def _run(self):
        asyncio.set_event_loop(self._loop)

        async def start():
            kw = {}
            if self.subprotocols:
                kw["subprotocols"] = self.subprotocols
            if self.tls is not None:
                kw["ssl"] = self.tls
            self._server = await websockets.serve(
                self._serve, "127.0.0.1", 0, extra_headers=self.extra_headers, compression=None,
                process_request=self.process_request, ping_interval=None, max_size=None, **kw)
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def call(self, coro, timeout=5):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self):
        async def shutdown():
            self._server.close()
            await self._server.wait_closed()
        try:
            self.call(shutdown())
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


# --- clients -------------------------------------------------------------------------

def run(coro, timeout: float = 50):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(proxy, path: str = "/", host: Optional[str] = None, **kw):
    """websockets client to the proxy (no automatic pings, no compression)."""
    name = host or "127.0.0.1"
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return await websockets.connect(f"ws://{name}:{proxy.port}{path}", host="127.0.0.1", port=proxy.port, **kw)


async def recv(ws, timeout: float = 5.0):
    return await asyncio.wait_for(ws.recv(), timeout)


async def no_message(ws, timeout: float = 1.0) -> bool:
    """True if nothing arrives within timeout."""
    try:
        m = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return True
    raise AssertionError(f"unexpected message {m!r}")


async def closed(ws, timeout: float = 5.0):
    """Waits until the connection is closed; returns (code, reason) as the client saw them."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        pass
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code, ws.close_reason


# --- publishing ------------------------------------------------------------------------

def ws_item(channel: str, content: Optional[Union[str, bytes]] = None, **fmt) -> dict:
    f = dict(fmt)
    if isinstance(content, bytes):
        f["content-bin"] = base64.b64encode(content).decode()
    elif content is not None:
        f["content"] = content
    return {"channel": channel, "formats": {"ws-message": f}}


def publish(proxy, *items) -> None:
    data = json.dumps({"items": list(items)}).encode()
    req = urllib.request.Request(proxy.publish_url + "/publish/", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


# --- raw socket client -----------------------------------------------------------------

class RawWs:
    """Socket-level WebSocket client: handshake, then frames built by hand (masked or not)."""

    def __init__(self, port: int, path: str = "/", host: str = "example.com", headers=(), timeout: float = 5.0,
                 key: str = "dGhlIHNhbXBsZSBub25jZQ=="):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        for k, v in headers:
            req += f"{k}: {v}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1]) if self.head.startswith("HTTP/") else 0

    @staticmethod
    def frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: Optional[bytes] = b"\x11\x22\x33\x44",
              rsv: int = 0) -> bytes:
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask is not None else 0
        if n < 126:
            h = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            h = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            h = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask is None:
            return h + payload
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return h + mask + masked

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **kw):
        self.send(self.frame(opcode, payload, **kw))

    def _fill(self) -> bool:
        try:
            d = self.sock.recv(262144)
        except socket.timeout:
            return False
        except OSError:
            return False
        if not d:
            return False
        self.buf += d
        return True

    def read_frame(self) -> Optional[Tuple[int, bool, bytes]]:
        """(opcode, fin, payload) or None when the connection ended (or timed out)."""
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n = b1 & 0x7F
                off = 2
                if n == 126:
                    if len(self.buf) >= 4:
                        n = struct.unpack("!H", self.buf[2:4])[0]
                        off = 4
                    else:
                        n = None
                elif n == 127:
                    if len(self.buf) >= 10:
                        n = struct.unpack("!Q", self.buf[2:10])[0]
                        off = 10
                    else:
                        n = None
                if n is not None and b1 & 0x80:
                    raise AssertionError("server frame is masked")
                if n is not None and len(self.buf) >= off + n:
                    payload = self.buf[off:off + n]
                    self.buf = self.buf[off + n:]
                    return b0 & 0x0F, bool(b0 & 0x80), payload
            if not self._fill():
                return None

    def read_close(self) -> Optional[Tuple[int, bytes]]:
        """Reads frames until a close frame: (code or None, reason); None if the connection ended first."""
        while True:
            f = self.read_frame()
            if f is None:
                return None
            op, _, payload = f
            if op == 8:
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0], payload[2:]
                return (None, b"")

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the server ends the TCP connection within timeout (frames are discarded)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = self.sock.recv(262144)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not d:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Forwarder:
    """A TCP forwarder in front of a backend that can be taken down (connections refused and the open
    ones cut) and brought back on the same port: for retry tests."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self._conns: list = []
        self._lock = threading.Lock()
        self._lsock = None
        self.up()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._lsock = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def down(self):
        ls, self._lsock = self._lsock, None
        if ls:
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, ls):
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                c.close()
                continue
            with self._lock:
                self._conns += [c, b]
            for src, dst in ((c, b), (b, c)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.down()


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def sanitized(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps
