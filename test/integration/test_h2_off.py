"""[gripd] http2 = false: gripd serves HTTP/1.1 only, as Pushpin 1.36 does. TLS ports offer only
`http/1.1` in ALPN, and an h2c connection preface on the HTTP port is a bad HTTP/1.1 request:
the connection is closed with nothing sent (observed on pushpin 1.36, which never speaks HTTP/2).
These tests run on both: pushpin ignores the [gripd] section and behaves so always."""

import socket
import subprocess

from harness import raw
from test_client_tls import ca, tls  # noqa: F401 (fixtures)

import pytest

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = bytes.fromhex("000000040000000000")  # an empty SETTINGS frame, as a client sends next
OFF = {"gripd": {"http2": "false"}}


def read_all(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            d = s.recv(65536)  # socket.timeout fails the test: the proxy must close
            if not d:
                return out
            out += d
    finally:
        s.close()


@pytest.mark.proxy(conf=OFF)
def test_h2c_preface_with_http2_off_is_closed_without_an_answer(proxy, backend):
    assert read_all(proxy.port, PREFACE + SETTINGS) == b""
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
                          f"http://127.0.0.1:{proxy.port}/c"], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and out.stdout == "000"
    # HTTP/1.1 on the same port is served as always.
    r = raw.get(proxy.port, "/plain", timeout=10)
    assert r.status == 200 and backend.last.target == "/plain"


def test_alpn_with_http2_off_offers_http11_only(tls, backend):  # noqa: F811
    t = tls(f"* {backend.addr}", conf=OFF)
    ctx = t.context(verify=False)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with t.connect("default.test", ctx=ctx) as s:
        # gripd says http/1.1; pushpin 1.36 (condure) negotiates no ALPN at all. Never h2.
        assert s.selected_alpn_protocol() in ("http/1.1", None)
    ctx = t.context(verify=False)
    ctx.set_alpn_protocols(["h2"])  # nothing in common: the handshake goes on without ALPN
    with t.connect("default.test", ctx=ctx) as s:
        assert s.selected_alpn_protocol() is None
    out = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          f"https://127.0.0.1:{t.port}/c"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "1.1 200"
