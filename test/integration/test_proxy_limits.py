"""Connection limits and timeouts: client_maxconn and gripd's [gripd] header/idle timeouts."""

import socket
import time

import pytest

from harness import raw


@pytest.fixture
def proxy_wait_publish():
    return False


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


@pytest.mark.gripd_only("[gripd] idle_timeout is gripd's key")
@pytest.mark.proxy(conf={"gripd": {"idle_timeout": "1"}})
def test_idle_keepalive_connection_closed_after_idle_timeout(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv_response().status == 200
        start = time.monotonic()
        assert c.is_closed(timeout=5)
        assert time.monotonic() - start >= 0.8


@pytest.mark.gripd_only("[gripd] header_timeout is gripd's key")
@pytest.mark.proxy(conf={"gripd": {"header_timeout": "1"}})
def test_slow_request_header_is_cut_off(proxy, backend):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")  # never finishes its header
    assert _closed_within(s, 5)
    s.close()
    assert backend.requests == []
    # others are still served
    assert raw.get(proxy.port, "/fine").status == 200


@pytest.mark.gripd_only("pushpin's condure refuses differently; gripd answers 503 and closes")
@pytest.mark.proxy(conf={"runner": {"client_maxconn": "4"}})
def test_client_maxconn_refuses_extra_connections_cleanly(proxy, backend):
    held = []
    try:
        for _ in range(4):
            c = raw.RawConn(proxy.port)
            c.send(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv_response().status == 200
            held.append(c)
        extra = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        extra.sendall(b"GET /over HTTP/1.1\r\nHost: x\r\n\r\n")
        extra.settimeout(5)
        data = b""
        while True:
            chunk = extra.recv(4096)
            if not chunk:
                break
            data += chunk
        extra.close()
        assert data.startswith(b"HTTP/1.1 503")
        # the connections already open keep working
        held[0].send(b"GET /k2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held[0].recv_response().status == 200
    finally:
        for c in held:
            c.close()
    # once they are gone, new connections are accepted again
    deadline = time.monotonic() + 5
    while True:
        try:
            if raw.get(proxy.port, "/again").status == 200:
                break
        except Exception:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)
