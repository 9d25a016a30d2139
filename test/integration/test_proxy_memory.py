"""Large bodies stream through the proxy with bounded memory: a client or backend that is slower
than the other side is flow-controlled, never buffered whole. gripd only (pushpin's RSS is spread
over several processes and is not what is asserted here)."""

import socket
import threading
import time

import pytest

from harness.backend import Response

MiB = 1024 * 1024
TOTAL = 96 * MiB
ALLOWED_GROWTH = 32 * MiB  # far below TOTAL: only bounded buffers may grow


@pytest.fixture
def proxy_wait_publish():
    return False


def sanitized(pid: int) -> bool:
    """ASan/TSan keep freed memory in quarantine and shadow it: RSS says nothing there."""
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.gripd_only("asserts on the gripd process's memory")
def test_large_download_to_slow_client_keeps_memory_bounded(proxy, backend):
    if sanitized(proxy.pid):
        pytest.skip("RSS is meaningless under a sanitizer")
    block = b"x" * MiB
    backend.route("/big", Response(200, b"", framing="chunked", chunks=[block] * (TOTAL // MiB)))
    before = rss(proxy.pid)
    peak = before
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data = s.recv(256 * 1024)
        if not data:
            break
        got += len(data)
        if got % (4 * MiB) < 256 * 1024:
            peak = max(peak, rss(proxy.pid))
            time.sleep(0.1)  # a slow reader: the backend must be paused, not buffered
    s.close()
    assert got > TOTAL  # body plus chunk framing
    assert peak - before < ALLOWED_GROWTH, f"RSS grew by {(peak - before) // MiB} MiB"


@pytest.mark.gripd_only("asserts on the gripd process's memory")
def test_large_upload_to_slow_backend_keeps_memory_bounded(proxy, backend):
    if sanitized(proxy.pid):
        pytest.skip("RSS is meaningless under a sanitizer")
    received = []

    def sink(req):
        received.append(len(req.body))
        return Response(200, b"ok")

    backend.handler = sink
    before = rss(proxy.pid)
    peaks = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peaks.append(rss(proxy.pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=60)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % TOTAL)
    block = b"y" * MiB
    for _ in range(TOTAL // MiB):
        s.sendall(block)
    resp = b""
    while b"\r\n\r\nok" not in resp:
        data = s.recv(65536)
        if not data:
            break
        resp += data
    s.close()
    stop.set()
    t.join()
    assert resp.startswith(b"HTTP/1.1 200")
    assert received == [TOTAL]
    assert max(peaks) - before < ALLOWED_GROWTH, f"RSS grew by {(max(peaks) - before) // MiB} MiB"
