"""Connection handling: keep-alive both sides, pipelining, HTTP/1.0, origin
failure mid-response, shutdown. Observed on Debian's pushpin 1.36.0."""

import json
import signal
import threading
import time

import pytest

from harness import raw
from harness.backend import ABORT, ABORT_RST, Response


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only: do not wait for the control API port


def req(path, host="x", extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def test_client_keep_alive_several_requests(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        for i in range(5):
            c.send(req(f"/ka{i}"))
            r = c.recv_response()
            assert r.status == 200
            assert json.loads(r.body)["target"] == f"/ka{i}"
            assert (r.header("Connection") or "").lower() != "close"
        assert not c.is_closed(0.3)
    assert [r.target for r in backend.requests] == [f"/ka{i}" for i in range(5)]


def test_client_keep_alive_mixed_methods_and_bodies(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert c.recv_response().status == 200
        c.send(b"PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n")
        assert c.recv_response().status == 200
        c.send(b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv_response(head_request=True).status == 200
        c.send(b"DELETE /d HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv_response().status == 200
    assert [(r.method, r.body) for r in backend.requests] == [
        ("POST", b"abc"), ("PUT", b"de"), ("HEAD", b""), ("DELETE", b"")]


def test_backend_connection_reused_across_sequential_requests(proxy, backend):
    # separate client connections, one after the other
    for i in range(6):
        assert raw.get(proxy.port, f"/seq{i}").status == 200
    assert len(backend.requests) == 6
    assert len(backend.peer_ports()) < 6, "origin saw one new connection per request"


def test_backend_connection_reused_on_one_client_connection(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        for i in range(6):
            c.send(req(f"/one{i}"))
            assert c.recv_response().status == 200
    assert len(backend.peer_ports()) < 6


def test_backend_close_does_not_close_client_connection(proxy, backend):
    backend.route("/bc", Response(200, b"x", [("Connection", "close"), ("Keep-Alive", "timeout=1")], close=True))
    with raw.RawConn(proxy.port) as c:
        c.send(req("/bc"))
        r = c.recv_response()
        assert r.status == 200 and r.body == b"x"
        assert r.header("Keep-Alive") is None
        # the origin's Connection: close is hop-by-hop: the client connection stays open
        c.send(req("/after"))
        r2 = c.recv_response()
        assert json.loads(r2.body)["target"] == "/after"


def test_pipelining_three_requests_one_write(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(req("/p0") + req("/p1?x=1") + req("/p2"))
        targets = [json.loads(c.recv_response().body)["target"] for _ in range(3)]
        assert targets == ["/p0", "/p1?x=1", "/p2"]
        assert not c.is_closed(0.3)


def test_pipelining_order_kept_when_first_is_slow(proxy, backend):
    backend.route("/slow", Response(200, b"slow", [("Content-Type", "text/plain")], delay=0.5))
    with raw.RawConn(proxy.port) as c:
        c.send(req("/slow") + b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + req("/p3"))
        r1 = c.recv_response()
        r2 = c.recv_response()
        r3 = c.recv_response()
        assert r1.body == b"slow"
        assert json.loads(r2.body)["target"] == "/p2"
        assert json.loads(r2.body)["body"] == "abc"
        assert json.loads(r3.body)["target"] == "/p3"


def test_pipelining_split_across_writes(proxy, backend):
    data = req("/s0") + req("/s1") + req("/s2")
    with raw.RawConn(proxy.port) as c:
        # cut in the middle of a request line and of a header
        for piece in (data[:10], data[10:45], data[45:]):
            c.send(piece)
            time.sleep(0.02)
        targets = [json.loads(c.recv_response().body)["target"] for _ in range(3)]
        assert targets == ["/s0", "/s1", "/s2"]


def test_connection_close_request_is_honoured(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(req("/x", extra="Connection: close\r\n"))
        r = c.recv_response()
        assert r.status == 200
        assert (r.header("Connection") or "").lower() == "close"
        assert c.is_closed(2)


def test_http10_request(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /ten HTTP/1.0\r\nHost: x\r\n\r\n")
        r = c.recv_response()
        assert r.status == 200
        # pushpin answers "HTTP/1.0"; RFC 9110 6.2 also allows the server's own 1.1
        assert r.version in ("HTTP/1.0", "HTTP/1.1")
        assert json.loads(r.body)["target"] == "/ten"
        assert c.is_closed(2)


def test_http10_client_never_gets_chunked(proxy, backend):
    backend.route("/ch", Response(200, b"", [("Content-Type", "text/plain")], framing="chunked",
                                  chunks=[b"one-", 0.1, b"two"]))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /ch HTTP/1.0\r\nHost: x\r\n\r\n")
        r = c.recv_response()
        assert r.status == 200
        assert r.header("Transfer-Encoding") is None
        assert r.body == b"one-two"


def test_http10_keep_alive(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /ten HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        r = c.recv_response()
        assert r.status == 200
        assert (r.header("Connection") or "").lower() == "keep-alive"
        c.send(b"GET /ten2 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        assert json.loads(c.recv_response().body)["target"] == "/ten2"


def test_concurrent_clients(proxy, backend):
    backend.route("/slow", lambda r: Response(200, r.query.encode(), delay=0.3))
    results = {}

    def client(i):
        results[i] = raw.get(proxy.port, f"/slow?{i}", timeout=10)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert {i: r.body for i, r in results.items()} == {i: str(i).encode() for i in range(10)}
    assert time.monotonic() - t0 < 2.5, "requests were served one at a time"


def _dying(kind):
    end = ABORT_RST if kind.endswith("rst") else ABORT
    if kind.startswith("length"):
        return Response(200, b"A" * 100000, [("Content-Type", "text/plain")], chunks=[b"A" * 20000, 0.3, end])
    return Response(200, headers=[("Content-Type", "text/plain")], framing="chunked",
                    chunks=[b"A" * 20000, 0.3, end])


def _check_truncated(proxy, kind):
    """The client must never see the dying response as a complete success. Usually
    it gets the 200 head and part of the body; if the origin's failure is noticed
    before anything was relayed (e.g. an RST discarding unread bytes), a 502 is fine."""
    with raw.RawConn(proxy.port, timeout=10) as c:
        c.send(req("/die"))
        assert c.wait_for(b"\r\n\r\n", timeout=5)
        data = c.read_until_close(timeout=2.5)
        complete = raw.parse_responses(data)
        if data.startswith(b"HTTP/1.1 200"):
            assert complete == [], "a truncated response must not look complete"
            assert 20000 <= len(data) < 100000 + 500
        else:
            assert len(complete) == 1 and complete[0].status == 502, data[:200]


@pytest.mark.parametrize("kind", ["length", "length-rst"])
def test_backend_dies_mid_response_only_that_client(proxy, backend, kind):
    """The origin sends the head (Content-Length: 100000) and 20000 body bytes,
    then drops the connection. That client's response never completes; a
    concurrent client on another connection is unaffected."""
    backend.route("/die", _dying(kind))
    backend.route("/steady", Response(200, b"steady-body", chunks=[b"steady-", 0.8, b"body"]))
    steady = {}

    def other():
        steady["r"] = raw.get(proxy.port, "/steady", timeout=10)

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.1)
    _check_truncated(proxy, kind)
    t.join(10)
    assert steady["r"].status == 200 and steady["r"].body == b"steady-body"
    # the proxy still serves new requests
    assert raw.get(proxy.port, "/after").status == 200


@pytest.mark.gripd_only("pushpin 1.36 ends the client's chunked response with a terminating 0-chunk "
                        "when the origin dropped mid-body, so a truncated body looks complete")
@pytest.mark.parametrize("kind", ["chunked", "chunked-rst"])
def test_backend_dies_mid_chunked_response_not_completed(proxy, backend, kind):
    backend.route("/die", _dying(kind))
    _check_truncated(proxy, kind)


@pytest.mark.gripd_only("pushpin 1.36 leaves the client connection open for 60 s after the origin "
                        "dropped mid-body (the truncated response just stalls); gripd must close it "
                        "so the client learns the response is incomplete")
@pytest.mark.parametrize("kind", ["length", "chunked"])
def test_backend_dies_mid_response_client_connection_closed(proxy, backend, kind):
    backend.route("/die", _dying(kind))
    with raw.RawConn(proxy.port, timeout=10) as c:
        c.send(req("/die"))
        assert c.wait_for(b"\r\n\r\n", timeout=5)
        assert c.is_closed(3), "client connection left open after the origin died"


@pytest.mark.parametrize("abort_after", [0, 10])
def test_backend_dies_before_response_head_gives_502(proxy, backend, abort_after):
    backend.route("/die", Response(200, b"A" * 1000, abort_after=abort_after))
    with raw.RawConn(proxy.port) as c:
        c.send(req("/die"))
        r = c.recv_response()
        assert r.status == 502
        assert r.body == b"Error while proxying to origin.\n"
        assert r.header("Content-Type") == "text/plain"
        # pushpin keeps the client connection after a 502
        c.send(req("/after"))
        assert c.recv_response().status == 200


def test_sigterm_exits_zero(proxy, backend):
    with raw.RawConn(proxy.port) as idle:
        idle.send(req("/x"))
        assert idle.recv_response().status == 200
        t0 = time.monotonic()
        rc = proxy.stop(timeout=10, sig=signal.SIGTERM)
        assert rc == 0
        assert time.monotonic() - t0 < 10
        # an idle keep-alive client connection is closed, not left dangling
        assert idle.is_closed(2)


def test_sigint_exits_zero(proxy, backend):
    assert raw.get(proxy.port, "/x").status == 200
    rc = proxy.stop(timeout=10, sig=signal.SIGINT)
    assert rc == 0
