"""A stream subscriber that stops reading must not hold up the others or grow the proxy's
memory without bound: gripd cuts it off (closes the connection) while a reading
subscriber on the same channel gets every byte.

Pushpin 1.36 (observed) cannot serve as the reference here: publishing 20 MB in 64 KB
http-stream items at full speed, even a single subscriber that reads everything gets only
the first ~100-120 items (6-8 MB) and then nothing more (the stream stalls, the connection
stays open); a subscriber that never reads gets a few KB and is never closed. Hence
gripd_only.
"""

import socket
import time

import pytest

from harness.backend import Response
from griputil import hold, hs_item, publish, publish_raw, sync_stream

ITEM = 64 * 1024
TOTAL = 20 * 1024 * 1024
N = TOTAL // ITEM
READ_AHEAD = 2 * 1024 * 1024  # how far publishing may run ahead of the reading subscriber


def piece(i: int) -> str:
    return ("%08d" % i) * (ITEM // 8)


@pytest.mark.crossloop
@pytest.mark.gripd_only("pushpin 1.36 stalls even a reading subscriber when 20 MB are published in 64 KB items "
                        "at full speed, and never closes a subscriber that does not read")
def test_slow_stream_subscriber_is_cut_off(proxy, backend):
    backend.route("/s", Response(200, b"init\n", [("Grip-Hold", "stream"), ("Grip-Channel", "slow"),
                                                  ("Content-Type", "text/plain")]))
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(10)
    slow.connect(("127.0.0.1", proxy.port))
    slow.sendall(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
    fast = hold(proxy, backend, "/s", stream=True, timeout=60)
    try:
        backend.wait_requests(2)
        sync_stream(proxy, "slow", [fast])
        base = len(fast.body)  # everything up to the sync marker
        t0 = time.monotonic()
        for i in range(N):
            r = publish_raw(proxy, [hs_item("slow", piece(i))])
            assert r.status == 200, (i, r.status, r.body)
            # The reader keeps up within READ_AHEAD (well under the 8 MiB cut-off), however slowly
            # a loaded machine runs its thread; the other subscriber never reads at all.
            deadline = time.monotonic() + 40
            while (i + 1) * ITEM - (len(fast.body) - base) > READ_AHEAD:
                assert time.monotonic() < deadline and not fast.closed, f"the reader fell behind at item {i}"
                time.sleep(0.005)
        took = time.monotonic() - t0
        # the reader gets every item, in order, although the other subscriber stalls
        fast.wait_body(lambda b: b.endswith(piece(N - 1).encode()), timeout=40)
        body = fast.body.rpartition(b"~sync~\n")[2]
        assert len(body) == TOTAL
        assert body == b"".join(piece(i).encode() for i in range(N))
        # the stalled subscriber is disconnected (within the deadline below)
        got, closed = 0, False
        deadline = time.monotonic() + 15
        slow.settimeout(1)
        while time.monotonic() < deadline:
            try:
                d = slow.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            got += len(d)
        assert closed, f"slow subscriber still connected (read {got} bytes after publishing {took:.1f}s)"
        assert got < TOTAL
        # the proxy still serves the channel
        publish(proxy, [hs_item("slow", "after\n")])
        fast.wait_body(b"after\n")
    finally:
        slow.close()
        fast.close()
