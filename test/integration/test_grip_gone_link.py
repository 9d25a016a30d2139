"""Gone links: `Grip-Link: <URL>; rel=gone` (PROTOCOL.md 3.2, 3.5). Added in Pushpin 1.41
(fastly/pushpin commit c5a9b0c1, PR #48067 "add support for gone links": src/handler/httpsession.cpp
resolves the gone link of the first instructions against the request URI, and when the session
finishes, doFinish() sends `POST <gone URL>` with no body through the same outbound path as next
links, so routed and signed like them). Pushpin 1.36, the reference here, has no gone links, so
every test is gripd_only. gripd sends it when the hold ends whichever way the client leaves (close,
reset, timeout, cut off as slow, server stop), retries a failure or 5xx (bounded), and signs it
with Grip-Sig like every backend request (src/proxy/gone_notifier.hpp states the bounds).
"""

import signal
import socket
import struct
import threading
import time

import pytest

from harness import jwt, raw
from harness.backend import Response
from griputil import StreamClient, hs_item, publish, publish_raw, sync_stream

pytestmark = pytest.mark.gripd_only("gone links came with pushpin 1.41; 1.36 never requests them")

GONE = ("Grip-Link", "</gone?u=7>; rel=gone")
SIG = {"proxy.sig_key": "gone-key"}


def stream(channel):
    return Response(200, b"init\n", [("Grip-Hold", "stream"), ("Grip-Channel", channel),
                                     ("Content-Type", "text/plain"), GONE])


def gone_requests(backend):
    return [r for r in backend.requests if r.path == "/gone"]


def wait_gone(backend, n=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = gone_requests(backend)
        if len(got) >= n:
            return got
        time.sleep(0.02)
    raise AssertionError(f"{len(gone_requests(backend))} gone requests, wanted {n}")


def check_gone_request(r, key="gone-key"):
    assert (r.method, r.target, r.body) == ("POST", "/gone?u=7", b"")
    assert r.header("Content-Length") == "0"
    assert r.header("Host") == "example.com"
    claims = jwt.verify_hs256(r.header("Grip-Sig"), key)
    assert claims["iss"] == "pushpin" and claims["exp"] > time.time()


def open_stream(proxy, path="/s"):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
    got = b""
    while b"init\n" not in got:
        d = s.recv(4096)
        assert d, "closed before the initial response"
        got += d
    return s


def test_client_close_requests_the_gone_link(start_proxy, backend):
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-close"))
    s = open_stream(proxy)
    time.sleep(0.3)
    assert gone_requests(backend) == []  # not while the client is there
    s.close()
    (r,) = wait_gone(backend)
    check_gone_request(r)
    time.sleep(0.3)
    assert len(gone_requests(backend)) == 1  # once


def test_client_reset_requests_the_gone_link(start_proxy, backend):
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-reset"))
    s = open_stream(proxy)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST
    (r,) = wait_gone(backend)
    check_gone_request(r)


def test_long_poll_timeout_requests_the_gone_link(start_proxy, backend):
    """A response hold that times out: the client has its timeout answer and the hold is over."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/lp", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "g-lp"),
                                                       ("Grip-Timeout", "5"), GONE]))
    t0 = time.monotonic()
    r = raw.get(proxy.port, "/lp", host="example.com", timeout=15)
    assert (r.status, r.body) == (200, b"timeout\n")
    assert time.monotonic() - t0 >= 4  # answered by the timeout, not at once
    (g,) = wait_gone(backend)
    check_gone_request(g)


def test_client_idle_timeout_of_a_stream_requests_the_gone_link(start_proxy, backend):
    """A stream client that stops reading while the proxy has bytes for it is closed after
    [gripd] send_timeout: its gone link is requested."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf={**SIG, "gripd.send_timeout": "2"})
    backend.route("/s", stream("g-send"))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", proxy.port))
    s.sendall(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
    backend.wait_requests(1)
    time.sleep(0.3)
    for _ in range(100):  # 6.4 MB: more than the kernel's buffers take, less than the slow-client cap
        publish_raw(proxy, [hs_item("g-send", "x" * 65536)])
    (g,) = wait_gone(backend, timeout=15)
    check_gone_request(g)
    s.close()


def test_slow_client_cut_off_requests_the_gone_link(start_proxy, backend):
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-slow"))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", proxy.port))
    s.sendall(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
    backend.wait_requests(1)
    time.sleep(0.3)
    for _ in range(200):  # 12.5 MB unread: past the 8 MiB a stream client may fall behind
        publish_raw(proxy, [hs_item("g-slow", "y" * 65536)])
        if gone_requests(backend):
            break
    (g,) = wait_gone(backend, timeout=15)
    check_gone_request(g)
    s.close()


def test_server_stop_requests_the_gone_links_before_exit(start_proxy, backend):
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-stop"))
    backend.route("/lp", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "g-stop"),
                                                       ("Grip-Link", "</gone?u=7>; rel=gone")]))
    s = open_stream(proxy)
    lp = StreamClient(proxy.port, "/lp")
    backend.wait_requests(2)
    time.sleep(0.3)
    proxy.signal(signal.SIGTERM)
    proxy.proc.wait(timeout=15)
    assert proxy.proc.returncode == 0
    got = gone_requests(backend)
    assert len(got) == 2, [r.target for r in backend.requests]
    for r in got:
        check_gone_request(r)
    s.close()
    lp.close()


def test_stream_closed_by_publish_requests_the_gone_link(start_proxy, backend):
    """As in Pushpin 1.41, the link is requested when the hold ends, also when the publisher ends
    it: the client has gone from the hold."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-pclose"))
    with StreamClient(proxy.port, "/s") as c:
        c.wait_head()
        sync_stream(proxy, "g-pclose", [c])
        publish(proxy, [hs_item("g-pclose", action="close")])
        c.wait_complete()
    (r,) = wait_gone(backend)
    check_gone_request(r)


def test_failed_gone_request_is_retried(start_proxy, backend):
    """A 5xx answer (or a transport failure) is tried again after about a second; a 2xx ends it."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-retry"))
    answers = [Response(503, b""), Response(200, b"")]
    backend.route("/gone", lambda req: answers.pop(0) if answers else Response(200, b""))
    s = open_stream(proxy)
    s.close()
    first, second = wait_gone(backend, 2, timeout=10)
    check_gone_request(first)
    check_gone_request(second)
    time.sleep(1.8)  # no third one: the 200 was an answer
    assert len(gone_requests(backend)) == 2


def test_client_error_answer_is_not_retried(start_proxy, backend):
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", stream("g-404"))
    backend.route("/gone", Response(404, b""))
    s = open_stream(proxy)
    s.close()
    wait_gone(backend)
    time.sleep(1.8)
    assert len(gone_requests(backend)) == 1


def test_gone_link_to_another_host_is_not_requested(start_proxy, backend):
    """As next links: a backend's link cannot send the proxy to another site."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf=SIG)
    backend.route("/s", Response(200, b"init\n", [("Grip-Hold", "stream"), ("Grip-Channel", "g-host"),
                                                  ("Grip-Link", "<http://elsewhere.example/gone?u=7>; rel=gone")]))
    s = open_stream(proxy)
    s.close()
    time.sleep(1.0)
    assert gone_requests(backend) == []


def test_grip_feature_announces_gone_links(proxy, backend):
    r = raw.get(proxy.port, "/x", host="example.com")
    assert r.status == 200
    feats = {f.strip() for f in (backend.last.header("Grip-Feature") or "").split(",")}
    assert "link:gone" in feats


def test_gone_requests_out_at_once_are_capped_and_the_rest_wait(start_proxy, backend):
    """40 clients leave at once while the gone endpoint does not answer: one worker has at most
    32 gone requests out (src/proxy/gone_notifier.hpp kGoneMaxInFlight); the others wait and go
    out as answers come back, so the backend gets all 40."""
    proxy = start_proxy(routes=f"* {backend.addr}", conf={**SIG, "gripd.workers": "1"})
    backend.route("/s", stream("g-cap"))
    go = threading.Event()
    backend.route("/gone", Response(200, b"", wait=go, wait_timeout=30))
    socks = [open_stream(proxy) for _ in range(40)]
    try:
        for s in socks:
            s.close()
        wait_gone(backend, 32)
        time.sleep(1.0)  # time for more to go out, if the cap did not hold
        assert len(gone_requests(backend)) == 32
        go.set()
        got = wait_gone(backend, 40, timeout=20)
        assert len(got) == 40
    finally:
        go.set()


def scrape_gone(port):
    import re
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^gripd_gone_(\S+) ([0-9.]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def wait_metrics(port, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    got = {}
    while time.monotonic() < deadline:
        try:
            got = scrape_gone(port)
        except OSError:
            got = {}
        if all(got.get(k) == v for k, v in want.items()):
            return got
        time.sleep(0.1)
    raise AssertionError(f"gone metrics {got}, wanted {want}")


def test_gone_requests_are_counted_in_the_metrics(start_proxy, backend):
    """gripd_gone_requests_total{result=delivered|failed|dropped}, gripd_gone_retries_total and the
    gripd_gone_queued gauge (README, Metrics): a notice answered after one 503 is delivered with one
    retry; one whose link answers 503 every time fails after kGoneRetries retries (1 + 2 + 4 s)."""
    from harness.proxy import unique_free_port
    port = unique_free_port()
    proxy = start_proxy(routes=f"* {backend.addr}", conf={**SIG, "handler": {"prometheus_port": str(port)}})
    wait_metrics(port, {'requests_total{result="delivered"}': 0, 'requests_total{result="failed"}': 0,
                        'requests_total{result="dropped"}': 0, "retries_total": 0, "queued": 0})
    backend.route("/s", stream("g-metrics"))
    answers = [Response(503, b""), Response(200, b"")]
    backend.route("/gone", lambda req: answers.pop(0) if answers else Response(503, b""))
    open_stream(proxy).close()
    wait_metrics(port, {'requests_total{result="delivered"}': 1, "retries_total": 1, "queued": 0})
    # now every answer is a 503: 1 attempt + 3 retries, then it is given up
    open_stream(proxy).close()
    wait_metrics(port, {"queued": 1})
    got = wait_metrics(port, {'requests_total{result="failed"}': 1, "retries_total": 4, "queued": 0},
                       timeout=20)
    assert got['requests_total{result="delivered"}'] == 1
    assert got['requests_total{result="dropped"}'] == 0
