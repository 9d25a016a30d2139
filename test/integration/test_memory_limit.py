"""[gripd] memory_limit: near its memory ceiling gripd sheds load instead of growing until the OOM
killer ends it. Order: at 85% of the limit new client connections get 503 ("Memory limit
reached"); at 95% it also cuts the clients with the most output queued, largest first, until it is
back under 80%, when it accepts connections again. Publishes (the control API) are never refused:
refusing them would take items from every subscriber, the well-behaved ones too, and what a publish
adds is bounded by push_in_http_max_body_size and released by cutting its slow receivers.

The test fills memory on purpose: stream subscribers that never read (a 4 KiB receive buffer, so
the kernel absorbs little) each get distinct large items (one channel each, so nothing is shared
between them), while one subscriber reads everything. gripd_only: pushpin has no memory ceiling.
"""

import socket
import threading
import time

import pytest

from harness import raw
from harness.backend import Response
from griputil import hold, hs_item, publish, sync_stream
from wsutil import rss, sanitized

MiB = 1024 * 1024
LIMIT = 64 * MiB
# RSS may pass the limit by what arrives between two samples (100 ms) plus transient publish
# buffers (a parsed publish body and its rendered item): bounded, stated here.
MARGIN = 16 * MiB
SLOW = 24
ITEM = 160 * 1024
MAX_ROUNDS = 80  # 80 x 24 x 160 KiB = 300 MiB: far more than the limit if nothing were shed


class RssWatch(threading.Thread):
    """Samples the proxy's RSS every 10 ms and keeps the largest figure."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss(self.pid))
            except OSError:
                return
            time.sleep(0.01)


def new_conn_status(port: int) -> raw.RawResponse:
    return raw.get(port, "/probe", timeout=5)


def slow_subscriber(port: int, i: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /slow/{i} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
    return s


def is_cut(s: socket.socket, timeout: float = 5.0) -> bool:
    """Reads what the proxy sent until it closes or resets the connection (True) or goes quiet."""
    s.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not s.recv(1 << 20):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def route_subscribers(backend) -> None:
    """/probe answers plainly; /good and /slow/<i> are stream holds on a channel each."""
    backend.route("/probe", Response(200, b"ok"))
    backend.route("/good", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "good"),
                                               ("Content-Type", "text/plain")]))
    for i in range(SLOW):
        backend.route(f"/slow/{i}", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", f"slow{i}"),
                                                        ("Content-Type", "text/plain")]))


class Fill:
    """Drives the proxy into its memory ceiling and back out. A round publishes a large item to
    each slow subscriber's channel and a small one to the reading subscriber's ("good"); `sent` is
    what the reader must receive, in order."""

    def __init__(self, proxy):
        self.proxy, self.sent, self.round = proxy, [], 0

    def one_round(self, stop_at: float = 2.0) -> bool:
        """Returns True early once RSS reaches `stop_at` x the limit."""
        for i in range(SLOW):
            publish(self.proxy, [hs_item(f"slow{i}", ("%07d\n" % self.round) * (ITEM // 8))])
            g = "g%06d-%02d\n" % (self.round, i)
            publish(self.proxy, [hs_item("good", g)])
            self.sent.append(g)
            if rss(self.proxy.pid) >= LIMIT * stop_at:
                return True
        return False

    def until_refused(self) -> raw.RawResponse:
        """Fills into the refusing band (85-95%) and returns the 503 a new connection gets."""
        while self.round < MAX_ROUNDS and not self.one_round(stop_at=0.88):
            self.round += 1
        assert self.round < MAX_ROUNDS, f"RSS never neared the limit ({rss(self.proxy.pid) >> 20} MiB)"
        deadline = time.monotonic() + 3
        refused = new_conn_status(self.proxy.port)
        while refused.status != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
            refused = new_conn_status(self.proxy.port)
        assert refused.status == 503, (rss(self.proxy.pid) >> 20, refused.status, refused.body)
        return refused

    def until_recovered(self) -> raw.RawResponse:
        """Keeps publishing while the ceiling cuts the slowest consumers; returns the first answer
        a new connection gets once RSS is back under 80%."""
        recovered = None
        while self.round < MAX_ROUNDS and recovered is None:
            self.round += 1
            self.one_round()
            deadline = time.monotonic() + 1.5
            while recovered is None and time.monotonic() < deadline:
                time.sleep(0.1)
                if rss(self.proxy.pid) < LIMIT * 0.8:
                    probe = new_conn_status(self.proxy.port)
                    if probe.status == 200:
                        recovered = probe
        assert recovered is not None, f"never accepted again (RSS {rss(self.proxy.pid) >> 20} MiB)"
        return recovered


@pytest.mark.gripd_only("pushpin has no memory ceiling")
@pytest.mark.proxy(conf={"gripd": {"memory_limit": "64M"}})
def test_memory_limit_refuses_then_cuts_slow_consumers(proxy, backend):
    if sanitized(proxy.pid):
        pytest.skip("RSS is meaningless under a sanitizer")
    base = rss(proxy.pid)
    assert base < LIMIT * 0.6, f"idle RSS {base >> 20} MiB leaves no room under a 64 MiB limit"
    route_subscribers(backend)
    good = hold(proxy, backend, "/good", stream=True, timeout=60)
    slow = [slow_subscriber(proxy.port, i) for i in range(SLOW)]
    watch = RssWatch(proxy.pid)
    fill = Fill(proxy)
    try:
        backend.wait_requests(SLOW + 1)
        sync_stream(proxy, "good", [good])
        time.sleep(0.5)  # the slow ones answered by the origin are subscribed by now

        # 1. Fill into the refusing band (85-95%): new client connections get 503.
        assert fill.until_refused().body == b"Memory limit reached"
        # 2. Keep publishing: the slowest consumers are cut, RSS stays near the limit, and once it
        # is back under 80% new connections are accepted again.
        assert fill.until_recovered().body == b"ok"
        watch.stop.set()
        watch.join()
        assert watch.peak <= LIMIT + MARGIN, f"peak RSS {watch.peak / MiB:.1f} MiB"

        # The reader got every item, in order, while others were cut around it.
        want = "".join(fill.sent).encode()
        good.wait_body(lambda b: b.endswith(want[-64:]), timeout=30)
        assert good.body.rpartition(b"~sync~\n")[2] == want
        cut = sum(1 for s in slow if is_cut(s, timeout=2))
        assert cut >= 1
        assert "cut" in proxy.log() and "slow clients" in proxy.log()
    finally:
        watch.stop.set()
        for s in slow:
            s.close()
        good.close()


@pytest.mark.gripd_only("pushpin has no memory ceiling and serves HTTP/1.1 only")
@pytest.mark.proxy(conf={"gripd": {"memory_limit": "64M", "send_timeout": "600"}})
def test_memory_limit_cuts_slow_http2_streams_and_spares_the_others(proxy, backend):
    """The same fill over HTTP/2: SLOW streams that get no flow-control window (their output waits
    in gripd's per-stream queues, not in the connection's) share one connection with a stream that
    reads. The ceiling must see those queues: it cuts the largest streams with RST_STREAM(CANCEL)
    and the reading stream on the same connection gets every item. (send_timeout is long so that
    the stall sweep cannot be what cuts them.)"""
    import h2.errors
    from harness.h2client import H2Conn

    if sanitized(proxy.pid):
        pytest.skip("RSS is meaningless under a sanitizer")
    base = rss(proxy.pid)
    assert base < LIMIT * 0.6, f"idle RSS {base >> 20} MiB leaves no room under a 64 MiB limit"
    route_subscribers(backend)
    watch = None
    with H2Conn(proxy.port, window=0) as c:
        good = c.request("/good")
        c.open_window(good, 1 << 30)
        slow = [c.request(f"/slow/{i}") for i in range(SLOW)]
        c.wait(lambda: good.head is not None and all(s.head is not None for s in slow), 20, "heads")
        # Subscribed once a publish reaches the reading stream (the slow ones were answered first).
        deadline = time.monotonic() + 20
        while b"~sync~\n" not in good.body:
            assert time.monotonic() < deadline, "the reading stream got no publish"
            publish(proxy, [hs_item("good", "~sync~\n")])
            time.sleep(0.2)
        good.body = good.body.rpartition(b"~sync~\n")[2]
        time.sleep(0.5)
        watch = RssWatch(proxy.pid)
        fill = Fill(proxy)
        # 1. Into the refusing band: new client connections get 503.
        fill.until_refused()
        # 2. Keep publishing: the streams with the most output waiting are reset, memory comes back
        # under 80% and new connections are accepted again.
        fill.until_recovered()
        watch.stop.set()
        watch.join()
        assert watch.peak <= LIMIT + MARGIN, f"peak RSS {watch.peak / MiB:.1f} MiB"

        cut = [s for s in slow if s.reset is not None]
        assert cut and all(s.reset == h2.errors.ErrorCodes.CANCEL for s in cut)
        assert all(s.body == b"" for s in slow)  # they never had a window
        want = "".join(fill.sent).encode()
        c.wait(lambda: good.body.endswith(want[-64:]), 30, "every item on the reading stream")
        assert good.body == want
        assert not c.closed and good.reset is None
        assert "cut" in proxy.log() and "slow clients" in proxy.log()
