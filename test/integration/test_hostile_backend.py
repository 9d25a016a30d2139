"""Hostile or broken backends (issue 10): resets mid-head, garbage and ambiguous responses, a
backend that never answers, one that sends 10 MB of headers, a GRIP backend that resets mid-body.
Refused connections and resets mid-body (Content-Length and chunked) are covered by
test_proxy_routes.py and test_proxy_connections.py.

Rule: the client never sees a response that looks complete unless the backend sent a complete
one; a backend fault before the response head is a 502 (504 when gripd gave up waiting)."""

import socket
import threading
import time

import pytest

from harness import raw
from harness.backend import Response, grip_hold

ORIGIN_ERROR_BODY = b"Error while proxying to origin.\n"


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only


class RawOrigin:
    """An origin that answers every connection with fixed bytes (sent in pieces of `piece` bytes,
    errors ignored) and records how many connections it got."""

    def __init__(self, answer: bytes = b"", piece: int = 65536, close: bool = True, reset: bool = False):
        self.answer, self.piece, self.close, self.reset = answer, piece, close, reset
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = 0
        self.sent = 0
        self.conns = []
        self._stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            for i in range(0, len(self.answer), self.piece):
                c.sendall(self.answer[i:i + self.piece])
                self.sent += len(self.answer[i:i + self.piece])
            if self.reset:
                import struct
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if self.close or self.reset:
                c.close()
        except OSError:
            pass

    def stop(self):
        self._stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def raw_origin():
    made = []

    def _make(*a, **kw):
        o = RawOrigin(*a, **kw)
        made.append(o)
        return o

    yield _make
    for o in made:
        o.stop()


def _one_response(port, target="/x", timeout=10):
    with raw.RawConn(port, timeout=timeout) as c:
        c.send(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        return c.recv_response(timeout=timeout)


# --- resets and garbage before or in the head ---------------------------------------------------

@pytest.mark.parametrize("answer", [
    b"",
    b"HTTP/1.1 200 OK\r\nContent-Le",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
], ids=["nothing", "inside-a-header", "before-the-blank-line"])
def test_backend_reset_before_the_head_ends_is_502(start_proxy, raw_origin, backend, answer):
    o = raw_origin(answer, reset=True)
    p = start_proxy(routes=f"* {o.addr}\n")
    r = _one_response(p.port)
    assert r.status == 502 and r.body == ORIGIN_ERROR_BODY


GARBAGE = {
    "not-http": b"garbage\r\n\r\n",
    "binary": bytes(range(256)) * 4,
    "bad-status-code": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nX-A b\r\nContent-Length: 0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-different-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "negative-cl": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}

# Pushpin 1.36 relays these two with a 200 (plainly wrong: the framing is ambiguous, RFC 9112 6.3);
# gripd answers 502.
PUSHPIN_RELAYS = {
    "cl-and-te": "pushpin 1.36 (zurl) relays a response with both Content-Length and Transfer-Encoding",
    "two-different-cl": "pushpin 1.36 (zurl) relays a response with two different Content-Length values",
}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.gripd_only(PUSHPIN_RELAYS[n])) if n in PUSHPIN_RELAYS else n
    for n in sorted(GARBAGE)])
def test_garbage_or_ambiguous_response_is_502(start_proxy, raw_origin, name):
    o = raw_origin(GARBAGE[name], close=True)
    p = start_proxy(routes=f"* {o.addr}\n")
    r = _one_response(p.port)
    assert r.status == 502 and r.body == ORIGIN_ERROR_BODY
    assert p.alive()


# --- a backend that never answers ---------------------------------------------------------------

@pytest.mark.gripd_only("pushpin 1.36 waits for an origin that accepted the request and never answers "
                        "(observed: no answer after 400 s); gripd bounds it with [gripd] response_timeout")
@pytest.mark.proxy(routes="* {backend}", conf={"gripd": {"response_timeout": "2"}})
def test_backend_that_never_answers_gets_504_after_response_timeout(proxy, backend):
    never = threading.Event()
    backend.route("/never", Response(200, b"late", wait=never, wait_timeout=20))
    try:
        with raw.RawConn(proxy.port, timeout=15) as c:
            c.send(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
            # meanwhile another client is served
            assert raw.get(proxy.port, "/other").status == 200
            r = c.recv_response(timeout=12)
            assert r.status == 504
            # the client connection is still usable
            c.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv_response().status == 200
    finally:
        never.set()


@pytest.mark.gripd_only("[gripd] response_timeout is gripd's key")
@pytest.mark.proxy(routes="* {backend}", conf={"gripd": {"response_timeout": "2"}})
def test_response_timeout_does_not_cut_a_slow_upload(proxy, backend):
    """The response timeout counts from the last request byte sent: a body that keeps coming
    for longer than response_timeout is not cut."""
    with raw.RawConn(proxy.port, timeout=15) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        for b in b"hello":
            time.sleep(0.8)
            c.send(bytes([b]))
        assert c.recv_response().status == 200
    assert backend.last.body == b"hello"


@pytest.mark.gripd_only("[gripd] response_timeout is gripd's key")
@pytest.mark.proxy(routes="* {backend}", conf={"gripd": {"response_timeout": "2"}})
def test_response_timeout_does_not_cut_a_streaming_response(proxy, backend):
    """Once the head is in, gaps between body bytes are the backend's business (streams)."""
    backend.route("/stream", Response(200, chunks=[b"a", 3.0, b"b"], framing="chunked"))
    r = raw.get(proxy.port, "/stream", timeout=10)
    assert r.status == 200 and r.body == b"ab"


# --- a backend that sends 10 MB of headers -----------------------------------------------------------

def _rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def test_ten_megabytes_of_response_headers_is_502(start_proxy, raw_origin):
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%07d: %s\r\n" % (i, b"v" * 90) for i in range(110000))
    assert len(head) > 10 << 20
    o = raw_origin(head + b"Content-Length: 0\r\n\r\n", close=True)
    p = start_proxy(routes=f"* {o.addr}\n")
    r = _one_response(p.port, timeout=30)
    assert r.status == 502
    assert r.body == ORIGIN_ERROR_BODY
    assert p.alive()


@pytest.mark.gripd_only("asserts on the gripd process's memory (pushpin spreads a request over processes)")
def test_ten_megabytes_of_response_headers_is_read_with_bounded_memory(start_proxy, raw_origin):
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%07d: %s\r\n" % (i, b"v" * 90) for i in range(110000))
    o = raw_origin(head + b"Content-Length: 0\r\n\r\n", close=False)
    p = start_proxy(routes=f"* {o.addr}\n")
    before = _rss_kb(p.pid)
    r = _one_response(p.port, timeout=30)
    assert r.status == 502
    # gripd stops reading at its 64 KiB head limit: it never holds the 10 MB
    assert o.sent < len(head)
    assert _rss_kb(p.pid) - before < 8 << 10


# --- a GRIP backend that resets mid-body ------------------------------------------------------------

@pytest.mark.parametrize("mode", ["response", "stream"])
def test_grip_backend_reset_mid_body_is_not_held(proxy, backend, mode):
    """A GRIP response whose body is cut off by a reset is not a hold instruction: the client gets
    a 502 (gripd and pushpin alike), nothing is subscribed."""
    resp = grip_hold(mode, "hostile-chan", body=b"x" * 1000)
    resp.abort_after = 400
    resp.abort_rst = True
    backend.route("/grip", resp)
    with raw.RawConn(proxy.port, timeout=10) as c:
        c.send(b"GET /grip HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response(timeout=8)
        assert r.status == 502 and r.body == ORIGIN_ERROR_BODY
    assert raw.get(proxy.port, "/after").status == 200
