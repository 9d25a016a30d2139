"""Hostile HTTP/1.1 clients (issue 10): request-smuggling vectors and malformed requests that
test_proxy_errors.py does not cover yet, pipelining after a hostile request, slow clients
(slowloris, a stalled body, a client that never reads), and file-descriptor exhaustion.

The rule for every hostile request: the connection is closed, nothing is forwarded to the backend
(for pipelining: nothing after the last good request), and gripd answers 400 or 431 first
(gripd_only: pushpin 1.36's condure closes without an answer or, for some, stalls; its
observed behaviour is noted per table)."""

import os
import resource
import socket
import threading
import time

import pytest

from harness import raw
from harness.backend import Response
from harness.proxy import IS_PUSHPIN


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def post(headers: bytes, body: bytes, version=b"1.1") -> bytes:
    return b"POST /front HTTP/" + version + b"\r\nHost: x\r\n" + headers + b"\r\n" + body + SMUGGLED


# Framing ambiguities: each must be refused with 400 (or 501 for a transfer coding gripd does not
# know) and nothing forwarded. Pushpin 1.36 closes or stalls on these (never forwards them), except
# the ones in PUSHPIN_FORWARDS.
SMUGGLING = {
    "te-twice": post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-chunked-comma-x": post(b"Transfer-Encoding: chunked, x\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-xchunked-with-cl": post(b"Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n", b"hello"),
    "te-quoted": post(b'Transfer-Encoding: "chunked"\r\n', b"5\r\nhello\r\n0\r\n\r\n"),
    "te-vertical-tab": post(b"Transfer-Encoding:\x0bchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-obs-fold": post(b"Transfer-Encoding:\r\n chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-cl-split-by-bare-lf": post(b"X-A: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                                   b"0\r\n\r\n"),
    "te-http10": post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n", version=b"1.0"),
    "cl-te-http10": post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n", version=b"1.0"),
    "cl-different-comma-joined-reversed": post(b"Content-Length: 41, 5\r\n", b"hello"),
    "cl-hex": post(b"Content-Length: 0x5\r\n", b"hello"),
    "cl-space-inside": post(b"Content-Length: 1 0\r\n", b"hello"),
    "cl-overflow": post(b"Content-Length: 99999999999999999999999\r\n", b"hello"),
}

# Malformed requests (each closed with 400 by gripd; pushpin closes silently).
MALFORMED = {
    "obs-fold": b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "obs-fold-tab": b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
    "bare-cr-line-end": b"GET /a HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n",
    "bare-cr-in-request-line": b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul-in-header-name": b"GET /a HTTP/1.1\r\nHost: x\r\nX-\x00A: 1\r\n\r\n",
    "nul-in-target": b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    "del-in-target": b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",
    "method-not-a-token": b"G(T /a HTTP/1.1\r\nHost: x\r\n\r\n",
    "method-with-colon": b"G:T /a HTTP/1.1\r\nHost: x\r\n\r\n",
    "method-non-ascii": b"G\x80T /a HTTP/1.1\r\nHost: x\r\n\r\n",
    "version-lowercase": b"GET /a http/1.1\r\nHost: x\r\n\r\n",
    "version-no-minor": b"GET /a HTTP/1\r\nHost: x\r\n\r\n",
    "version-trailing-garbage": b"GET /a HTTP/1.1x\r\nHost: x\r\n\r\n",
    "tab-in-request-line": b"GET\t/a HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-name-with-slash": b"GET /a HTTP/1.1\r\nHost: x\r\nX/A: 1\r\n\r\n",
}

# Hostile chunked bodies (after a valid chunked head).
BAD_CHUNKS = {
    "chunk-ext-overlong": b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk-ext-nul": b"5;a=\x00\r\nhello\r\n0\r\n\r\n",
    "chunk-ext-bare-lf": b"5;a=b\nhello\r\n0\r\n\r\n",
    "chunk-size-0x-prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-leading-space": b" 5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-empty": b"\r\nhello\r\n0\r\n\r\n",
    "chunk-size-2-pow-64": b"10000000000000000\r\nhello\r\n0\r\n\r\n",
    "chunk-data-longer-than-size": b"3\r\nhello\r\n0\r\n\r\n",
    "chunk-last-with-bare-lf": b"5\r\nhello\r\n0\n\n",
}

GOOD = b"GET /good HTTP/1.1\r\nHost: x\r\n\r\n"


def _exchange(proxy, data, timeout=3.0):
    """Send data on a fresh connection; return (bytes received, closed?)."""
    with raw.RawConn(proxy.port, timeout=timeout) as c:
        try:
            c.send(data)
        except OSError:
            pass  # closed while we were still sending
        out = c.read_until_close(timeout)
        return out, c.eof


def _assert_400_and_close(out, closed, statuses=(400,)):
    assert closed, "connection left open after a hostile request"
    rs = raw.parse_responses(out)
    assert len(rs) == 1 and rs[0].status in statuses, out[:300]


def _assert_refused(out, closed):
    """What gripd and pushpin share: no success, and the connection does not stay usable."""
    for r in raw.parse_responses(out):
        assert r.status >= 400, "a hostile request was answered with success"
    assert closed or out == b"", "connection left open after answering a hostile request"


# --- smuggling and malformed requests ---------------------------------------------------------

# Pushpin 1.36 forwards these (it is plainly wrong: RFC 9112 6.1 and 6.3).
PUSHPIN_FORWARDS = {
    "te-twice": "pushpin 1.36 accepts chunked applied twice and forwards the request and the next one",
    "te-http10": "pushpin 1.36 accepts Transfer-Encoding on an HTTP/1.0 request and forwards it",
}


def _params(names, pushpin_wrong):
    return [pytest.param(n, marks=pytest.mark.gripd_only(pushpin_wrong[n])) if n in pushpin_wrong else n
            for n in sorted(names)]


@pytest.mark.parametrize("name", _params(SMUGGLING, PUSHPIN_FORWARDS))
def test_smuggling_vector_never_forwarded(proxy, backend, name):
    """Neither gripd nor pushpin forwards any part of these (pushpin 1.36 closes or stalls)."""
    with raw.RawConn(proxy.port, timeout=3) as c:
        try:
            c.send(SMUGGLING[name])
        except OSError:
            pass
        out = c.read_until_close(2)
    _assert_refused(out, True)
    assert raw.get(proxy.port, "/after").status == 200
    assert [r.path for r in backend.requests] == ["/after"]


@pytest.mark.gripd_only("pushpin 1.36 closes without answering or stalls; RFC 9112 6.3 asks for 400 and close")
@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_vector_gets_400_and_close(proxy, backend, name):
    out, closed = _exchange(proxy, SMUGGLING[name])
    _assert_400_and_close(out, closed, statuses=(400, 501))
    assert backend.requests == []


@pytest.mark.parametrize("name", _params(MALFORMED, {
    "method-not-a-token": "pushpin 1.36 forwards a method with a '(' in it",
    "method-with-colon": "pushpin 1.36 forwards a method with a ':' in it"}))
def test_malformed_request_never_forwarded(proxy, backend, name):
    out, closed = _exchange(proxy, MALFORMED[name])
    _assert_refused(out, closed)
    assert backend.requests == []


@pytest.mark.gripd_only("pushpin 1.36 closes without answering; gripd answers 400 first")
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_gets_400(proxy, backend, name):
    out, closed = _exchange(proxy, MALFORMED[name])
    _assert_400_and_close(out, closed, statuses=(400, 505) if name.startswith("version") else (400,))
    assert backend.requests == []


@pytest.mark.parametrize("name", _params(BAD_CHUNKS, {
    "chunk-ext-nul": "pushpin 1.36 accepts a NUL in a chunk extension and forwards the body",
    "chunk-ext-overlong": "pushpin 1.36 accepts a 5000-byte chunk extension and forwards the body"}))
def test_hostile_chunked_body_never_completes_upstream(proxy, backend, name):
    data = b"POST /chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + BAD_CHUNKS[name]
    out, closed = _exchange(proxy, data + SMUGGLED)
    _assert_refused(out, closed)
    # The backend may have seen the head, but never a complete request with a body, nor the next one.
    assert [r for r in backend.requests if r.body] == []
    assert "/smuggled" not in [r.path for r in backend.requests]


@pytest.mark.gripd_only("pushpin 1.36 closes without answering; gripd answers 400 first")
@pytest.mark.parametrize("name", sorted(BAD_CHUNKS))
def test_hostile_chunked_body_gets_400(proxy, backend, name):
    data = b"POST /chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + BAD_CHUNKS[name]
    out, closed = _exchange(proxy, data)
    _assert_400_and_close(out, closed)


@pytest.mark.gripd_only("pushpin 1.36 closes without answering; gripd answers 431 beyond 100 fields")
def test_too_many_headers_within_the_size_limit_gets_431(proxy, backend):
    data = b"GET /many HTTP/1.1\r\nHost: x\r\n" + b"".join(b"a%d:\r\n" % i for i in range(1000)) + b"\r\n"
    assert len(data) < 8192
    out, closed = _exchange(proxy, data)
    _assert_400_and_close(out, closed, statuses=(431,))
    assert backend.requests == []


def test_sixty_headers_are_fine(proxy, backend):
    data = b"GET /hundred HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(60)) + b"\r\n"
    with raw.RawConn(proxy.port) as c:
        c.send(data)
        assert c.recv_response().status == 200
    assert backend.last.header("X-H59") == "v"


@pytest.mark.gripd_only("pushpin 1.36 mis-parses absolute-form targets (see README); RFC 9112 3.2.2 "
                        "makes the target's authority win over Host, so a mismatch is refused rather "
                        "than routed by one and forwarded by the other")
@pytest.mark.parametrize("target,host", [
    (b"http://evil.example/x", b"x"),
    (b"http://user@x/x", b"x"),
    (b"ftp://x/x", b"x"),
    (b"x/relative", b"x"),
    (b"*", b"x"),
])
def test_absolute_form_host_mismatch_and_odd_targets_get_400(proxy, backend, target, host):
    out, closed = _exchange(proxy, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    _assert_400_and_close(out, closed)
    assert backend.requests == []


@pytest.mark.gripd_only("pushpin 1.36 mis-parses absolute-form targets (see README)")
def test_absolute_form_matching_host_is_forwarded_in_origin_form(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET http://X.example:80/p?q=1 HTTP/1.1\r\nHost: x.example:80\r\n\r\n")
        assert c.recv_response().status == 200
    assert backend.last.target == "/p?q=1"


# --- pipelining after a hostile request --------------------------------------------------------

PIPELINED_HOSTILE = {
    "cl-te": b"POST /front HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n",
    "two-different-cl": b"POST /front HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "obs-fold": MALFORMED["obs-fold"],
    "bad-chunk": b"POST /front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("name", _params(PIPELINED_HOSTILE, {
    "two-different-cl": "pushpin 1.36 frames the body by one Content-Length and forwards the rest by the "
                        "other: the smuggled request reaches the origin"}))
def test_pipelined_good_then_hostile_only_the_good_one_forwarded(proxy, backend, name):
    data = GOOD + PIPELINED_HOSTILE[name] + SMUGGLED
    out, closed = _exchange(proxy, data)
    rs = raw.parse_responses(out)
    assert rs and rs[0].status == 200
    for r in rs[1:]:
        assert r.status >= 400
    assert closed or len(rs) == 1
    assert [r.path for r in backend.requests] == ["/good"]


# --- slow clients -----------------------------------------------------------------------------

@pytest.mark.gripd_only("[gripd] header_timeout is gripd's key; pushpin 1.36 has no header timeout")
@pytest.mark.proxy(conf={"gripd": {"header_timeout": "2"}})
def test_slowloris_one_byte_per_second_is_cut_at_the_header_timeout(proxy, backend):
    """A header trickled at one byte a second never completes: the connection is closed once
    header_timeout (2 s here) has passed since its first byte, long before the 40 bytes are in,
    and other clients are served meanwhile."""
    head = b"GET /slowloris HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    cut_at = None
    try:
        for i, b in enumerate(head):
            try:
                s.sendall(bytes([b]))
            except OSError:
                cut_at = i
                break
            if i == 1:
                assert raw.get(proxy.port, "/meanwhile").status == 200
            s.settimeout(1.0)
            try:
                if s.recv(4096) == b"":
                    cut_at = i
                    break
            except (socket.timeout, TimeoutError):
                pass
            except ConnectionResetError:
                cut_at = i
                break
    finally:
        s.close()
    assert cut_at is not None and cut_at < len(head) - 1, "the slow header was never cut off"
    assert [r.path for r in backend.requests] == ["/meanwhile"]


@pytest.mark.gripd_only("[gripd] body_timeout is gripd's key; pushpin 1.36 waits for a stalled body "
                        "(observed: still open after 150 s)")
@pytest.mark.proxy(conf={"gripd": {"body_timeout": "2"}})
def test_stalled_request_body_is_cut_at_the_body_timeout(proxy, backend):
    """A body that stops coming (10 of 100 bytes sent): after body_timeout without a byte the
    client connection and the backend request are closed; the backend never gets a complete body
    and other clients are served meanwhile."""
    with raw.RawConn(proxy.port, timeout=10) as c:
        c.send(b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"0123456789")
        assert raw.get(proxy.port, "/meanwhile").status == 200
        out = c.read_until_close(8)
        assert c.eof, "a stalled request body was waited for forever"
    for r in raw.parse_responses(out):
        assert r.status in (408, 400, 502), out[:200]
    assert [r for r in backend.requests if r.path == "/stall"] == []


@pytest.mark.gripd_only("[gripd] body_timeout is gripd's key")
@pytest.mark.proxy(conf={"gripd": {"body_timeout": "2"}})
def test_slow_but_steady_body_is_not_cut(proxy, backend):
    """The body timeout is an inactivity bound: a body that keeps coming (a byte every 0.5 s for
    3 s, longer than body_timeout in total) is delivered."""
    with raw.RawConn(proxy.port, timeout=10) as c:
        c.send(b"POST /steady HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        for b in b"abcdef":
            time.sleep(0.5)
            c.send(bytes([b]))
        assert c.recv_response().status == 200
    assert backend.last.body == b"abcdef"


@pytest.mark.gripd_only("[gripd] send_timeout is gripd's key; pushpin 1.36 keeps a client that never "
                        "reads (observed: still open after 150 s)")
@pytest.mark.proxy(conf={"gripd": {"send_timeout": "2"}})
def test_client_that_never_reads_a_big_response_is_cut_off(proxy, backend):
    """A 64 MB response to a client that never reads: gripd buffers a bounded amount (its write
    queue stops the backend above 256 KiB), and once nothing could be written for send_timeout the
    client is cut off and the backend connection dropped. Another client is served meanwhile."""
    backend.route("/huge", Response(200, b"x" * (64 << 20), chunk_size=1 << 20))
    def rss_kb():
        return int([l for l in open(f"/proc/{proxy.pid}/status") if l.startswith("VmRSS")][0].split()[1])

    # Growth, not an absolute figure: a sanitizer build starts far higher than a release build.
    rss_before = rss_kb()
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        s.sendall(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
        backend.wait_requests(1)
        time.sleep(0.5)
        assert raw.get(proxy.port, "/meanwhile").status == 200
        grown = rss_kb() - rss_before
        assert grown < 32 << 10, f"the response was buffered instead of held back (RSS +{grown} KiB)"
        deadline = time.monotonic() + 15
        cut = False
        got = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            # the proxy no longer has the connection once it cut it off
            if not _proxy_has_peer(proxy.pid, s.getsockname()[1]):
                cut = True
                break
        assert cut, "a client that never reads was kept forever"
        s.settimeout(5)
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except (ConnectionResetError, socket.timeout, TimeoutError):
            pass
        assert got < 64 << 20, "the client got a complete response after being cut off"
    finally:
        s.close()


def _proxy_has_peer(pid: int, port: int) -> bool:
    """Whether the process has an open TCP socket whose peer is 127.0.0.1:port."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    want = ":%04X" % port
    with open(f"/proc/{pid}/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[2].endswith(want) and parts[9] in inodes:
                return True
    return False


# --- file-descriptor exhaustion ------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.gripd_only("asserts on the gripd process's CPU time, descriptors and log; pushpin's "
                        "accepting process is condure, a child of the runner")
@pytest.mark.proxy(routes="* {backend}", args=["--workers", "2"])
@pytest.mark.fd_exhaustion
def test_fd_exhaustion_does_not_spin_logs_once_and_recovers(proxy, backend):
    pid = proxy.pid
    open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    limit = open_fds + 16
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    held = []
    try:
        # More connections than descriptors left: accept fails with EMFILE while they are held.
        for _ in range(40):
            held.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=5))
        waiting = raw.RawConn(proxy.port, timeout=10)  # in the backlog, unanswered for now
        waiting.send(b"GET /waited HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while len(os.listdir(f"/proc/{pid}/fd")) < limit and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir(f"/proc/{pid}/fd")) >= limit - 1, "never saturated"
        time.sleep(0.3)
        # A loop retrying accept burns ~2 s of CPU in 2 s; a paused listener close to nothing.
        before = _cpu_seconds(pid)
        time.sleep(2)
        used = _cpu_seconds(pid) - before
        assert used < 0.5, f"gripd burned {used:.2f} s of CPU in 2 s while out of descriptors"
        warnings = [l for l in proxy.log().splitlines() if "accept failed" in l]
        assert 1 <= len(warnings) <= 2, warnings[:5]  # once per interval, not once per failure
        assert "Too many open files" in warnings[0]
    finally:
        for s in held:
            s.close()
    # Descriptors are free again: the waiting client is served and new ones too.
    r = waiting.recv_response(timeout=8)
    waiting.close()
    assert r.status == 200
    assert raw.get(proxy.port, "/later", timeout=5).status == 200
    assert [q.path for q in backend.requests] == ["/waited", "/later"]
    assert proxy.alive()


def test_http10_request_without_host_reaches_the_backend_with_one(proxy, backend):
    """An HTTP/1.0 client may omit Host; the backend gets an HTTP/1.1 request, which needs one."""
    out = raw.send_raw(proxy.port, b"GET /nohost HTTP/1.0\r\n\r\n")
    rs = raw.parse_responses(out)
    assert rs and rs[0].status == 200
    assert backend.last.path == "/nohost"
    assert len(backend.last.header_all("Host")) == 1 and backend.last.header("Host")
