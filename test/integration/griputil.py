"""Helpers for the GRIP hold / publishing integration tests (test_grip_*.py, test_publish_*.py).

    from griputil import publish, item, hs_item, hr_item, StreamClient, SSEParser

    c = StreamClient(proxy.port, "/s")          # a client reading a held response in a thread
    head = c.wait_head()                          # RawResponse-like head (status, headers)
    publish(proxy, [hs_item("ch", "x\\n")])       # POST /publish/ (asserts 200)
    c.wait_body(b"x\\n")                          # body so far contains / equals ...

Crossloop tests: mark with @pytest.mark.crossloop (registered by conftest).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import Callable, Optional, Union

from harness import raw


# --- publishing -------------------------------------------------------------------

def hr_item(channel: str, body: Optional[Union[str, bytes]] = None, code: Optional[int] = None,
            reason: Optional[str] = None, headers=None, action: Optional[str] = None, **extra) -> dict:
    """An item with an http-response format. bytes bodies go as body-bin."""
    f: dict = {}
    if action is not None:
        f["action"] = action
    if code is not None:
        f["code"] = code
    if reason is not None:
        f["reason"] = reason
    if headers is not None:
        f["headers"] = headers
    if isinstance(body, bytes):
        f["body-bin"] = base64.b64encode(body).decode()
    elif body is not None:
        f["body"] = body
    return item(channel, {"http-response": f}, **extra)


def hs_item(channel: str, content: Optional[Union[str, bytes]] = None, action: Optional[str] = None,
            **extra) -> dict:
    """An item with an http-stream format. bytes content goes as content-bin."""
    f: dict = {}
    if action is not None:
        f["action"] = action
    if isinstance(content, bytes):
        f["content-bin"] = base64.b64encode(content).decode()
    elif content is not None:
        f["content"] = content
    return item(channel, {"http-stream": f}, **extra)


def item(channel: str, formats: dict, id: Optional[str] = None, prev_id: Optional[str] = None,
         no_seq: Optional[bool] = None, meta: Optional[dict] = None) -> dict:
    it: dict = {"channel": channel, "formats": formats}
    if id is not None:
        it["id"] = id
    if prev_id is not None:
        it["prev-id"] = prev_id
    if no_seq is not None:
        it["no-seq"] = no_seq
    if meta is not None:
        it["meta"] = meta
    return it


def control(proxy, method: str, path: str, body: Optional[bytes] = None, headers=(),
            timeout: float = 5.0, content_length: bool = True) -> raw.RawResponse:
    """One raw request to the control API (publish port) on a fresh connection.
    content_length=False omits Content-Length even with a body (sends no body then)."""
    req = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    for k, v in headers:
        req += f"{k}: {v}\r\n"
    if body is not None and content_length:
        req += f"Content-Length: {len(body)}\r\n"
    req += "\r\n"
    with raw.RawConn(proxy.publish_port, host=getattr(proxy, "host", "127.0.0.1"), timeout=timeout) as c:
        c.send(req.encode("latin-1") + (body if (body is not None and content_length) else b""))
        return c.recv_response(head_request=(method == "HEAD"))


def publish_raw(proxy, items_or_body, headers=(("Content-Type", "application/json"),),
                path: str = "/publish/") -> raw.RawResponse:
    """POST a publish; items_or_body: a list of items, a dict (sent as JSON) or bytes."""
    if isinstance(items_or_body, (bytes, bytearray)):
        body = bytes(items_or_body)
    elif isinstance(items_or_body, dict):
        body = json.dumps(items_or_body).encode()
    else:
        body = json.dumps({"items": list(items_or_body)}).encode()
    return control(proxy, "POST", path, body, headers)


def publish(proxy, items, path: str = "/publish/") -> raw.RawResponse:
    """Publish items (list of dicts); asserts 200 Published."""
    r = publish_raw(proxy, items, path=path)
    assert r.status == 200, (r.status, r.body)
    assert r.body.strip() == b"Published", r.body
    return r


# --- streaming client ---------------------------------------------------------------

class StreamClient:
    """A client whose response is read by a background thread, incrementally.

    The head is parsed once; the body is de-chunked (or read by Content-Length or
    until close) as it arrives. `events` holds (monotonic time, bytes) per decoded
    piece, `body` everything so far, `closed` is set at EOF."""

    def __init__(self, port: int, target: str = "/", host: str = "example.com", headers=(),
                 method: str = "GET", body: bytes = b"", timeout: float = 30.0, connect: bool = True):
        self.port = port
        self.target = target
        self.host = host
        self.headers = list(headers)
        self.method = method
        self.req_body = body
        self.timeout = timeout
        self.head: Optional[raw.RawResponse] = None
        self.body = b""
        self.events: list = []
        self.closed = False
        self.complete = False      # the response ended by its framing (0-chunk / length)
        self.error: Optional[BaseException] = None
        self._raw = b""
        self._cond = threading.Condition()
        self._stop = False
        self.sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        if connect:
            self.start()

    def request_bytes(self) -> bytes:
        req = f"{self.method} {self.target} HTTP/1.1\r\nHost: {self.host}\r\n"
        for k, v in self.headers:
            req += f"{k}: {v}\r\n"
        if self.req_body:
            req += f"Content-Length: {len(self.req_body)}\r\n"
        req += "\r\n"
        return req.encode("latin-1") + self.req_body

    def start(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(self.request_bytes())
        self.t_sent = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"stream-{self.target}")
        self._thread.start()
        return self

    # reader thread
    def _run(self):
        mode = None          # "chunked" | "length" | "close"
        left = 0             # bytes left in the current chunk / body
        try:
            while not self._stop:
                try:
                    data = self.sock.recv(262144)
                except socket.timeout:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                with self._cond:
                    self._raw += data
                    while True:
                        if self.head is None:
                            if b"\r\n\r\n" not in self._raw:
                                break
                            h, self._raw = self._raw.split(b"\r\n\r\n", 1)
                            resp = raw.parse_responses(h + b"\r\n\r\n", head_requests=(0,))
                            self.head = resp[0]
                            self.t_head = time.monotonic()
                            if 100 <= self.head.status < 200:
                                self.head = None
                                continue
                            te = (self.head.header("Transfer-Encoding") or "").lower()
                            if "chunked" in te:
                                mode, left = "chunked", -1
                            elif self.head.header("Content-Length") is not None:
                                mode, left = "length", int(self.head.header("Content-Length"))
                                if left == 0:
                                    self.complete = True
                            else:
                                mode = "close"
                            self._cond.notify_all()
                            continue
                        if self.complete:
                            break
                        if mode == "close" or mode == "length":
                            piece = self._raw if mode == "close" else self._raw[:left]
                            if not piece:
                                break
                            self._raw = self._raw[len(piece):]
                            if mode == "length":
                                left -= len(piece)
                                if left == 0:
                                    self.complete = True
                            self._add(piece)
                            continue
                        # chunked
                        if left == -1:
                            if b"\r\n" not in self._raw:
                                break
                            line, rest = self._raw.split(b"\r\n", 1)
                            size = int(line.split(b";", 1)[0].strip(), 16)
                            if size == 0:
                                if not rest.startswith(b"\r\n"):
                                    # trailers (not expected); wait for the blank line
                                    if b"\r\n\r\n" not in rest:
                                        break
                                    rest = rest.split(b"\r\n\r\n", 1)[1]
                                else:
                                    rest = rest[2:]
                                self._raw = rest
                                self.complete = True
                                self._cond.notify_all()
                                continue
                            self._raw = rest
                            left = size
                            self._chunk = b""
                            continue
                        if left > 0:
                            take = self._raw[:left]
                            if not take:
                                break
                            self._raw = self._raw[len(take):]
                            left -= len(take)
                            self._chunk += take
                            continue
                        # left == 0: chunk data done, expect CRLF
                        if len(self._raw) < 2:
                            break
                        assert self._raw[:2] == b"\r\n", f"bad chunk terminator {self._raw[:10]!r}"
                        self._raw = self._raw[2:]
                        left = -1
                        self._add(self._chunk, chunk=True)
        except BaseException as e:  # pragma: no cover - surfaced via .error
            self.error = e
        finally:
            with self._cond:
                self.closed = True
                self.t_closed = time.monotonic()
                self._cond.notify_all()

    def _add(self, piece: bytes, chunk: bool = False):
        self.body += piece
        self.events.append((time.monotonic(), piece))
        self._cond.notify_all()

    # waiting
    def _wait(self, pred: Callable[[], bool], timeout: Optional[float], what: str, raise_: bool = True) -> bool:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not pred()):
                    if raise_:
                        raise AssertionError(f"{what}: not seen within {timeout}s (closed={self.closed}, "
                                             f"head={self.head.status if self.head else None}, "
                                             f"body={self.body[-300:]!r}, error={self.error!r})")
                    return False
                self._cond.wait(min(left, 0.5))
            return True

    def wait_head(self, timeout: Optional[float] = 5.0) -> raw.RawResponse:
        self._wait(lambda: self.head is not None, timeout, "response head")
        return self.head

    def wait_body(self, want: Union[bytes, int, Callable[[bytes], bool]], timeout: Optional[float] = 5.0,
                  raise_: bool = True) -> bool:
        """want: bytes (the body contains it), int (at least that many body bytes)
        or a predicate on the body."""
        if isinstance(want, (bytes, bytearray)):
            pred = lambda: bytes(want) in self.body  # noqa: E731
        elif isinstance(want, int):
            pred = lambda: len(self.body) >= want  # noqa: E731
        else:
            pred = lambda: want(self.body)  # noqa: E731
        return self._wait(pred, timeout, f"body {want!r}", raise_=raise_)

    def wait_complete(self, timeout: Optional[float] = 5.0) -> bytes:
        self._wait(lambda: self.complete, timeout, "end of response")
        return self.body

    def wait_closed(self, timeout: Optional[float] = 5.0, raise_: bool = True) -> bool:
        return self._wait(lambda: self.closed, timeout, "connection close", raise_=raise_)

    def quiet(self, seconds: float) -> bytes:
        """Sleep, then return whatever body arrived in that time."""
        n = len(self.body)
        time.sleep(seconds)
        with self._cond:
            return self.body[n:]

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class H2StreamClient(StreamClient):
    """StreamClient over HTTP/2 (h2c with prior knowledge, one connection per client): the same
    head/body/events/complete/closed, where `complete` is the server's END_STREAM and `closed` is
    the stream's end by reset or the connection's end."""

    def start(self):
        from harness.h2client import H2Conn
        self.h2conn = H2Conn(self.port, timeout=self.timeout)
        self.sock = self.h2conn.sock
        self._cond = self.h2conn.cond
        with self._cond:
            self.t_sent = time.monotonic()
            self.stream = self.h2conn.request(self.target, method=self.method, host=self.host,
                                              headers=self.headers, body=self.req_body)
            self.stream.listeners.append(self._sync)
            self._sync()
        return self

    def _sync(self):  # under self._cond (the connection's reader calls it)
        st = self.stream
        if st.head is not None and self.head is None:
            self.head = st.head
        while len(self.events) < len(st.events):
            self._add(st.events[len(self.events)][1])
        if st.complete:
            self.complete = True
        if st.reset is not None or self.h2conn.closed:
            self.closed = True
            self.t_closed = time.monotonic()
        self._cond.notify_all()

    def close(self):
        self.h2conn.close()


# The protocol hold() clients speak: "h1" or "h2" (set per test by the client_proto fixture).
CLIENT_PROTO = "h1"


def client(port: int, target: str = "/", **kw) -> StreamClient:
    """A StreamClient speaking CLIENT_PROTO."""
    return (H2StreamClient if CLIENT_PROTO == "h2" else StreamClient)(port, target, **kw)


# --- SSE ----------------------------------------------------------------------------

class SSEParser:
    """Incremental text/event-stream parser (WHATWG HTML, "event stream interpretation").
    feed(bytes) -> list of dispatched events {"event", "data", "id"}; comments are counted."""

    def __init__(self):
        self.buf = b""
        self.data: list = []
        self.event = ""
        self.last_id = ""
        self.retry: Optional[int] = None
        self.comments: list = []
        self.events: list = []
        self._first = True

    def feed(self, data: bytes) -> list:
        self.buf += data
        out = []
        while True:
            # a line ends at CRLF, LF or CR (a CR at the very end may be followed by LF: wait)
            idx = -1
            for i, ch in enumerate(self.buf):
                if ch == 0x0A:
                    idx, n = i, 1
                    break
                if ch == 0x0D:
                    if i + 1 < len(self.buf):
                        idx, n = i, (2 if self.buf[i + 1] == 0x0A else 1)
                        break
                    idx = -2
                    break
            if idx < 0:
                break
            line, self.buf = self.buf[:idx], self.buf[idx + n:]
            text = line.decode("utf-8", "replace")
            if self._first:
                self._first = False
                if text.startswith("\ufeff"):
                    text = text[1:]
            ev = self._line(text)
            if ev is not None:
                out.append(ev)
        self.events += out
        return out

    def _line(self, text: str):
        if text == "":
            if not self.data:
                self.event = ""
                return None
            ev = {"event": self.event or "message", "data": "\n".join(self.data), "id": self.last_id}
            self.data = []
            self.event = ""
            return ev
        if text.startswith(":"):
            self.comments.append(text[1:])
            return None
        name, sep, value = text.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry":
            if value.isdigit():
                self.retry = int(value)
        return None


def sse_event(data: str, event: Optional[str] = None, id: Optional[str] = None) -> str:
    out = ""
    if event is not None:
        out += f"event: {event}\n"
    if id is not None:
        out += f"id: {id}\n"
    for line in data.split("\n"):
        out += f"data: {line}\n"
    return out + "\n"


# --- holding clients ----------------------------------------------------------------

SETTLE = 0.3  # after the origin answered a response hold: time for the proxy to subscribe

# pushpin 1.36 re-requests a response hold ~1.0-1.15 s after it made its channel's first
# subscription (its ZeroMQ SUB "subscribed delay" recovery); a publish landing while that
# retry is in flight is lost. So tests publish to a fresh response hold well within ~0.8 s,
# or keep the channel subscribed first with keeper().


def hold(proxy, backend, target: str, stream: bool = False, settle: float = SETTLE, **kw) -> StreamClient:
    """A client whose request the origin answers with a hold. stream=True waits for
    the initial response head; otherwise waits until the origin got the request,
    then `settle` seconds (a response hold shows nothing to the client; pushpin
    subscribes ~50 ms after the origin answered)."""
    n = len(backend.requests)
    c = client(proxy.port, target, **kw)
    if stream:
        c.wait_head()
    else:
        backend.wait_requests(n + 1)
        time.sleep(settle * _settle_factor(proxy))
    return c


def _settle_factor(proxy) -> float:
    """3 for a sanitizer build (ASan/TSan run several times slower, and CI runs four tests at
    once: 0.3 s was once too short under ASan for the subscription to reach its owner), else 1."""
    from wsutil import sanitized
    try:
        return 3.0 if sanitized(proxy.pid) else 1.0
    except (OSError, AttributeError):
        return 1.0


def keeper(proxy, backend, channel: str, path: str = None) -> StreamClient:
    """A stream hold that keeps `channel` subscribed (so later holds on it do not make a
    new subscription; see above). Waits until pushpin's 1 s re-request window is over."""
    from harness.backend import Response
    path = path or "/keeper-" + channel
    backend.route(path, Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel)]))
    c = hold(proxy, backend, path, stream=True)
    sync_stream(proxy, channel, [c])
    time.sleep(1.3)
    return c


def sync_stream(proxy, channel: str, clients, marker: str = "~sync~\n", timeout: float = 10.0):
    """Publish `marker` on channel (every 0.2 s) until every stream client has it:
    afterwards each is certainly subscribed. Use after_sync(c) for what follows."""
    deadline = time.monotonic() + timeout
    m = marker.encode()
    while True:
        publish(proxy, [hs_item(channel, marker)])
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            if all(m in c.body for c in clients):
                return
            time.sleep(0.01)
        if time.monotonic() > deadline:
            missing = [c.target for c in clients if m not in c.body]
            raise AssertionError(f"stream clients never saw the sync marker: {missing[:5]}")


def after_sync(c: StreamClient, marker: str = "~sync~\n") -> bytes:
    """The body that followed the last sync marker."""
    return c.body.rpartition(marker.encode())[2]


def grip_header_names(headers) -> list:
    return [k for k, _ in headers if k.lower().startswith("grip-")]
