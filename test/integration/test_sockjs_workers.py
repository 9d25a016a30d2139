"""SockJS's HTTP transports (xhr and jsonp polling with their sends) when the requests of one session
arrive on different connections, as a browser's do. Pushpin 1.36 keeps every session in one manager
(src/proxy/sockjsmanager.cpp), so any request finds its session. gripd runs one event loop per
worker and every worker accepts (SO_REUSEPORT), so a session's requests land on any worker; the
session lives on one owner worker (a hash of its id) and the others relay its requests there and
the answers back (src/sockjs/relay.cpp). Each request here is on a fresh connection, so with 2 or 4
workers most sessions have requests on several workers: without the relay they get 404 there.

These run against pushpin too (its one manager: the worker count is gripd's)."""

import socket
import time

import pytest

from harness import raw
from harness.proxy import IS_PUSHPIN
from wsutil import woh  # noqa: F401 (fixture)

pytestmark = pytest.mark.crossloop

WORKER_COUNTS = [2, 4]


def start(start_proxy, woh, workers):
    woh.on_open = lambda r: [("TEXT", "m:hello")]
    woh.on_text = lambda t, r: [("TEXT", "m:echo:" + t)]
    return start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http",
                       args=[] if IS_PUSHPIN else ["--workers", str(workers)])


def xhr(p, sid, transport, body=b""):
    return raw.get(p.port, f"/sock/000/{sid}/{transport}", method="POST", body=body, timeout=10)


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_xhr_session_requests_on_any_worker(start_proxy, woh, workers):
    p = start(start_proxy, woh, workers)
    for n in range(6):
        sid = f"x{workers}-{n}"
        r = xhr(p, sid, "xhr")
        assert (r.status, r.body) == (200, b"o\n"), sid
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert xhr(p, sid, "xhr").body == b'a["hello"]\n', sid
        for i in range(5):
            r = xhr(p, sid, "xhr_send", f'["m{i}"]'.encode())
            assert (r.status, r.body) == (200, b"ok"), (sid, i)
            assert xhr(p, sid, "xhr").body == f'a["echo:m{i}"]\n'.encode(), (sid, i)
    # one WebSocket-over-HTTP session per SockJS session, however its requests were spread
    ids = {w.req.header("Connection-Id") for w in woh.requests}
    assert len(ids) == 6


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_jsonp_session_requests_on_any_worker(start_proxy, woh, workers):
    p = start(start_proxy, woh, workers)
    for n in range(4):
        sid = f"j{workers}-{n}"
        assert raw.get(p.port, f"/sock/000/{sid}/jsonp?c=cb").body == b'/**/cb("o");\n', sid
        assert raw.get(p.port, f"/sock/000/{sid}/jsonp?c=cb", timeout=10).body == b'/**/cb("a[\\"hello\\"]");\n'
        for i in range(4):
            r = raw.get(p.port, f"/sock/000/{sid}/jsonp_send", method="POST", body=f"d=%5B%22g{i}%22%5D".encode(),
                        headers=[("Content-Type", "application/x-www-form-urlencoded")])
            assert (r.status, r.body) == (200, b"ok"), (sid, i)
            r = raw.get(p.port, f"/sock/000/{sid}/jsonp?callback=f", timeout=10)
            assert r.body == f'/**/f("a[\\"echo:g{i}\\"]");\n'.encode(), (sid, i)


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_a_waiting_poll_is_answered_across_workers(start_proxy, woh, workers):
    """A poll waits (at the owner) while a send comes in on another connection: the poll gets the
    echo, the send its ok, and a second poll meanwhile the 2010 close frame."""
    p = start(start_proxy, woh, workers)
    for n in range(4):
        sid = f"w{workers}-{n}"
        assert xhr(p, sid, "xhr").body == b"o\n"
        assert xhr(p, sid, "xhr").body == b'a["hello"]\n'
        with raw.RawConn(p.port, timeout=10) as waiting:
            waiting.send(f"POST /sock/000/{sid}/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
            time.sleep(1.0)  # read and installed (relayed) before the next one
            assert xhr(p, sid, "xhr").body == b'c[2010,"Another connection still open"]\n'
            assert xhr(p, sid, "xhr_send", b'["late"]').body == b"ok"
            r = waiting.recv_response()
            assert (r.status, r.body) == (200, b'a["echo:late"]\n'), sid


def closed_sessions(woh):
    return {w.req.header("Connection-Id") for w in woh.requests if "CLOSE" in w.types or "DISCONNECT" in w.types}


@pytest.mark.gripd_only("pushpin 1.36 does not see a waiting poll's client leave (seen by hand: the backend gets no "
                        "close, and every later poll of the session is answered c[2010,\"Another connection still "
                        "open\"]); gripd closes the session (README, SockJS), as one worker does in gripd")
@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_a_poll_whose_client_leaves_ends_its_session(start_proxy, woh, workers):
    """A client that goes away while its poll waits (at the owner, maybe relayed from another worker)
    closes the session, as one worker does (Pushpin's peerClosed): the backend sees it close, and
    the session's next request gets a close frame. Closed with a reset half the time. Neither worker
    keeps anything of it: gripd still serves new sessions and stops cleanly (sanitizer builds check
    for leaks at exit)."""
    p = start(start_proxy, woh, workers)
    sessions = [f"g{workers}-{n}" for n in range(8)]
    for n, sid in enumerate(sessions):
        assert xhr(p, sid, "xhr").body == b"o\n"
        assert xhr(p, sid, "xhr").body == b'a["hello"]\n'
        c = socket.create_connection(("127.0.0.1", p.port))
        c.sendall(f"POST /sock/000/{sid}/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        time.sleep(0.2)
        if n % 2:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(closed_sessions(woh)) < len(sessions):
        time.sleep(0.1)
    assert len(closed_sessions(woh)) == len(sessions), woh.requests
    for sid in sessions:
        r = xhr(p, sid, "xhr")
        assert r.status == 200 and r.body.startswith(b"c["), (sid, r.body)
    # a new session still works on every worker
    assert xhr(p, "after", "xhr").body == b"o\n"
    assert xhr(p, "after", "xhr").body == b'a["hello"]\n'


@pytest.mark.gripd_only("pushpin 1.36 loses some sends whose client left before the answer (seen here: the polls "
                        "then wait for messages that never come); gripd delivers every send it read in full")
@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_a_send_whose_client_leaves_before_the_answer(start_proxy, woh, workers):
    """Sends that leave at once (their answers come back to a worker that has forgotten them) and
    polls cut at once, many times over: nothing breaks, the sessions still answer."""
    p = start(start_proxy, woh, workers)
    sid = f"s{workers}"
    assert xhr(p, sid, "xhr").body == b"o\n"
    assert xhr(p, sid, "xhr").body == b'a["hello"]\n'
    for i in range(30):
        c = socket.create_connection(("127.0.0.1", p.port))
        body = f'["drop{i}"]'.encode()
        c.sendall(f"POST /sock/000/{sid}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode() + body)
        c.close()
    # every send reached the backend (each was read in full before its client left), in order
    deadline = time.monotonic() + 15
    got = []
    while time.monotonic() < deadline and len(got) < 30:
        r = xhr(p, sid, "xhr")
        assert r.status == 200 and r.body.startswith(b"a["), r.body
        got += [m for m in r.body[1:].decode().strip().strip("[]").split(",") if m]
    assert len(got) == 30
    assert set(got) == {f'"echo:drop{i}"' for i in range(30)}


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_server_stop_with_polls_waiting_across_workers(start_proxy, woh, workers):
    """SIGTERM while polls wait at their sessions' workers (most relayed from another one): gripd
    exits 0 within its grace period (a sanitizer build also checks its exit for leaks); the waiting
    clients get an answer or see their connections end."""
    import signal
    p = start(start_proxy, woh, workers)
    conns = []
    for n in range(8):
        sid = f"t{workers}-{n}"
        assert xhr(p, sid, "xhr").body == b"o\n"
        assert xhr(p, sid, "xhr").body == b'a["hello"]\n'
        c = socket.create_connection(("127.0.0.1", p.port), timeout=20)
        c.sendall(f"POST /sock/000/{sid}/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        conns.append(c)
    time.sleep(0.5)
    p.signal(signal.SIGTERM)
    p.proc.wait(timeout=20)
    assert p.proc.returncode == 0 or IS_PUSHPIN  # pushpin 1.36's runner exits 1 on SIGTERM (seen here)
    for c in conns:
        c.recv(4096)  # an answer or the end: not a hang (timeout 20 s)
        c.close()
