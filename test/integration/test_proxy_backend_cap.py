"""[gripd] max_backend_conns_per_target: open connections to one target per worker are capped;
requests beyond the cap wait for a connection to come back (FIFO, up to connect_timeout), then
fail like a connect failure (the next target, else 502). gripd's own key: Pushpin has none."""

import threading

import pytest

from harness.backend import Response
from harness.raw import get

pytestmark = pytest.mark.gripd_only("[gripd] max_backend_conns_per_target is gripd's own key")


def parallel(n, fn):
    out = [None] * n
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, fn(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_requests_beyond_the_cap_wait_and_share_one_connection(start_proxy, backend):
    backend.handler = lambda req: Response(200, b"slow", delay=0.3)
    proxy = start_proxy(routes=f"* {backend.addr}", args=["--workers", "1"],
                        conf={"gripd": {"max_backend_conns_per_target": "1"}})
    statuses = parallel(4, lambda i: get(proxy.port, "/r%d" % i, timeout=15).status)
    assert statuses == [200] * 4
    paths = sorted(r.path for r in backend.requests if r.path.startswith("/r"))
    assert paths == ["/r0", "/r1", "/r2", "/r3"]
    # one connection at a time, kept alive and handed from one request to the next
    assert len({r.conn_id for r in backend.requests if r.path.startswith("/r")}) == 1


def test_a_request_that_waits_longer_than_connect_timeout_gets_502(start_proxy, backend):
    release = threading.Event()
    backend.route("/hold", Response(200, b"held", wait=release))
    backend.route("/other", Response(200, b"other"))
    proxy = start_proxy(routes=f"* {backend.addr}", args=["--workers", "1"],
                        conf={"gripd": {"max_backend_conns_per_target": "1", "connect_timeout": "1"}})
    holder = threading.Thread(target=lambda: get(proxy.port, "/hold", timeout=20))
    holder.start()
    try:
        backend.wait_requests(1)
        r = get(proxy.port, "/other", timeout=10)
        assert r.status == 502
        assert r.body == b"Error while proxying to origin.\n"
        assert not any(q.path == "/other" for q in backend.requests)
    finally:
        release.set()
        holder.join(20)
    # the connection came back: the next request goes through
    assert get(proxy.port, "/other").status == 200


def test_a_full_target_falls_over_to_the_next_target(start_proxy, backend, make_backend):
    release = threading.Event()
    backend.route("/hold", Response(200, b"held", wait=release))
    second = make_backend()
    second.handler = lambda req: Response(200, b"second")
    proxy = start_proxy(routes=f"* {backend.addr} {second.addr}", args=["--workers", "1"],
                        conf={"gripd": {"max_backend_conns_per_target": "1", "connect_timeout": "1"}})
    holder = threading.Thread(target=lambda: get(proxy.port, "/hold", timeout=20))
    holder.start()
    try:
        backend.wait_requests(1)
        r = get(proxy.port, "/x", timeout=10)
        assert (r.status, r.body) == (200, b"second")
    finally:
        release.set()
        holder.join(20)
