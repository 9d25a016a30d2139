"""Helpers for the deployment tests (test_deploy_*.py): the `deployment` fixture (haproxy + three
gripd instances + Redis + the test's backend, harness/deployment.py), the feed's routes and items,
and clients that go through haproxy and remember which instance served them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from griputil import SSEParser, StreamClient
from harness.backend import Response
from harness.deployment import Deployment, missing_tools

CHANNEL = "feed"
WS_PATH = f"/t/ws?channel={CHANNEL}"


def feed_routes(backend) -> str:
    # WebSockets to the built-in test target (/t/ws?channel=...: like Pushpin, the test target
    # strips path_beg less its trailing slash), everything else to the backend
    return f"*,path_beg=/t/ test\n* {backend.addr}\n"


def feed_backend(backend, channel: str = CHANNEL):
    # a keep-alive comment every second: haproxy's `timeout server` (3 s) then tells a live stream
    # from one whose instance was cut off the network
    backend.route("/events", Response(200, b":ok\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", channel),
        ("Grip-Keep-Alive", ":\\n\\n; format=cstring; timeout=1")]))
    backend.route("/poll", Response(200, b"timeout\n", [
        ("Content-Type", "text/plain"), ("Grip-Hold", "response"), ("Grip-Channel", channel),
        ("Grip-Timeout", "30")]))


def feed_item(name: str, channel: str = CHANNEL) -> dict:
    """One item in the three formats, with an id (kept in the Redis stream for resumes)."""
    return {"channel": channel, "id": name, "formats": {
        "http-stream": {"content": f"id: {name}\ndata: {name}\n\n"},
        "http-response": {"body": f"{name}\n"},
        "ws-message": {"content": name}}}


@pytest.fixture
def deployment(tmp_path, backend, request):
    if missing_tools():
        pytest.skip(f"not installed: {missing_tools()} (apt-get install haproxy redis-server)")
    feed_backend(backend)
    dep = Deployment(tmp_path, feed_routes(backend), name=request.node.name[-20:].replace("-", "_"))
    yield dep
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(dep.logs())
    dep.stop()


class SSEClient:
    """An SSE stream through haproxy: served_by (g1..g3), ids received (once each, asserted)."""

    def __init__(self, port: int, last_id: str = None):
        headers = [("Last-Event-ID", last_id)] if last_id else []
        self.c = StreamClient(port, "/events", headers=headers)
        head = self.c.wait_head()
        assert head.status == 200, head
        self.served_by = head.header("X-Served-By")
        self._parser = SSEParser()
        self._seen = 0
        self.ids: list = []
        self.gaps = 0

    def poll(self) -> list:
        with self.c._cond:
            data = self.c.body[self._seen:]
        self._seen += len(data)
        for e in self._parser.feed(data):
            if e.get("event") == "gripd-gap":
                self.gaps += 1
            elif e.get("event", "message") == "message" and "id" in e:
                self.ids.append(e["id"])
        return self.ids

    @property
    def closed(self) -> bool:
        return self.c.closed

    def close(self):
        self.c.close()


def open_spread(port: int, n: int, names=("g1", "g2", "g3")) -> list:
    """n SSE clients through haproxy; asserts that every instance serves at least one."""
    clients = [SSEClient(port) for _ in range(n)]
    assert {c.served_by for c in clients} >= set(names), [c.served_by for c in clients]
    return clients


class WSClients:
    """n WebSockets through haproxy on an asyncio loop of their own (a thread): messages[i]."""

    def __init__(self, port: int, n: int, path: str):
        import websockets
        self._ws = websockets
        self.port, self.n, self.path = port, n, path
        self.messages = [[] for _ in range(n)]
        self.served_by = [None] * n
        self._ready = threading.Event()
        self._stop = None
        self.error = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "websockets did not connect"
        assert self.error is None, self.error

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self):
        self._stop = asyncio.Event()
        conns = []
        try:
            for i in range(self.n):
                ws = await self._ws.connect(f"ws://127.0.0.1:{self.port}{self.path}", ping_interval=None,
                                            compression=None, open_timeout=5)
                self.served_by[i] = ws.response_headers.get("X-Served-By")
                conns.append(ws)
        except Exception as e:  # reported to the test thread
            self.error = e
            self._ready.set()
            return
        self._ready.set()

        async def reader(i, ws):
            try:
                async for m in ws:
                    self.messages[i].append(m)
            except Exception:
                pass
        tasks = [asyncio.ensure_future(reader(i, ws)) for i, ws in enumerate(conns)]
        await self._stop.wait()
        for ws in conns:
            await asyncio.wait_for(ws.close(), 2)
        for t in tasks:
            t.cancel()

    def close(self):
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


def wait_until(pred, timeout: float, what: str, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


class ResumingSSE:
    """An SSE client that, when its stream is closed, reconnects through haproxy with
    Last-Event-ID (history in the Redis stream fills what it missed). ids: everything received."""

    def __init__(self, port: int):
        self.port = port
        self.cur = SSEClient(port)
        self.first_served_by = self.cur.served_by
        self.ids: list = []
        self.gaps = 0
        self.reconnects = 0
        self._base = 0  # ids taken from earlier connections

    @property
    def served_by(self) -> str:
        return self.cur.served_by

    def poll(self) -> list:
        got = self.cur.poll()
        self.ids[self._base:] = got
        if self.cur.closed:
            self.gaps += self.cur.gaps
            self.cur.close()
            self.cur = SSEClient(self.port, last_id=self.ids[-1] if self.ids else None)
            self.reconnects += 1
            self._base = len(self.ids)
        return self.ids

    def close(self):
        self.gaps += self.cur.gaps
        self.cur.close()


def open_resuming(port: int, n: int, names=("g1", "g2", "g3")) -> list:
    clients = [ResumingSSE(port) for _ in range(n)]
    assert {c.served_by for c in clients} >= set(names), [c.served_by for c in clients]
    return clients


def wait_all(clients, names: list, timeout: float = 10.0):
    """Until every client holds len(names) ids; then each must be exactly `names`."""
    for c in clients:
        wait_until(lambda: len(c.poll()) >= len(names), timeout, f"client first on {c.first_served_by}")
    for c in clients:
        c.poll()
        assert c.ids == names, (c.first_served_by, c.served_by, c.ids)
        assert c.gaps == 0 if hasattr(c, "gaps") else True
