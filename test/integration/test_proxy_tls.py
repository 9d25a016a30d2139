"""Backends over TLS: targets with `ssl` (routes file). Requests, GRIP holds, WebSocket-over-HTTP
and passthrough WebSockets reach such a backend through TLS. The certificate is checked against
the system's CA store (OpenSSL's SSL_CERT_FILE applies) and, as Pushpin does, the host of the Host
header sent upstream (host= when set, else the client's), unless the target says `insecure`; a
backend that fails the check gets the client a 502 and gripd one log line.

The certificates are made here with the openssl command: a CA, and a server certificate for
localhost and 127.0.0.1 signed by it."""

import asyncio
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness.backend import Backend, Response
from harness.proxy import IS_PUSHPIN
from griputil import hold, hs_item, publish, sync_stream, after_sync
from harness import raw
from wsutil import WohBackend, WsBackend, connect, recv, run

BAD_GATEWAY_BODY = b"Error while proxying to origin.\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=gripd test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return d


@pytest.fixture
def server_tls(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    return ctx


@pytest.fixture
def tls_backend(server_tls):
    b = Backend(tls=server_tls)
    yield b
    b.stop()


@pytest.fixture
def trust_test_ca(certs, monkeypatch):
    """The proxy started next trusts the test CA (and only it)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca.pem"))


def get(p, path="/", host="example.com"):
    return raw.get(p.port, path, host=host)


def test_insecure_target_skips_the_certificate_check(tls_backend, start_proxy):
    tls_backend.route("/hello", Response(200, b"hello over tls", [("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"* {tls_backend.addr},ssl,insecure")
    r = get(p, "/hello")
    assert (r.status, r.body) == (200, b"hello over tls")
    assert tls_backend.requests[-1].path == "/hello"


def test_trusted_certificate_for_the_host_name(tls_backend, trust_test_ca, start_proxy):
    tls_backend.route("/hello", Response(200, b"verified", [("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"* 127.0.0.1:{tls_backend.port},ssl,host=localhost")
    r = get(p, "/hello")
    assert (r.status, r.body) == (200, b"verified")
    assert tls_backend.requests[-1].header("Host") == "localhost"
    assert tls_backend.tls_errors == []


def test_without_host_option_the_clients_host_is_checked(tls_backend, trust_test_ca, start_proxy):
    tls_backend.route("/hello", Response(200, b"verified", [("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"* 127.0.0.1:{tls_backend.port},ssl")
    r = get(p, "/hello", host=f"localhost:{p.port}")  # the port is not part of the name
    assert (r.status, r.body) == (200, b"verified")
    r = get(p, "/hello", host="example.com")  # the certificate is not for example.com
    assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    assert len(tls_backend.requests) == 1


def test_untrusted_certificate_is_refused(tls_backend, start_proxy, monkeypatch, tmp_path):
    # A CA store without the test CA: the backend's certificate cannot be trusted.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "empty.pem"))
    (tmp_path / "empty.pem").write_text("")
    tls_backend.route("/hello", Response(200, b"must not arrive"))
    p = start_proxy(routes=f"* localhost:{tls_backend.port},ssl")
    r = get(p, "/hello")
    assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    assert tls_backend.requests == []


def test_certificate_for_another_name_is_refused(tls_backend, trust_test_ca, start_proxy):
    tls_backend.route("/hello", Response(200, b"must not arrive"))
    p = start_proxy(routes=f"* localhost:{tls_backend.port},ssl,host=api.example.net")
    r = get(p, "/hello", host="localhost")
    assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    assert tls_backend.requests == []
    if IS_PUSHPIN:
        return
    # one log line says why (written just before the 502; allow the file a moment)
    deadline = time.monotonic() + 3
    while "certificate verify failed" not in p.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "certificate verify failed: hostname mismatch" in p.log()


def test_plain_backend_on_an_ssl_target_is_a_bad_gateway(start_proxy):
    """A backend that answers the TLS hello in plain HTTP (as a web server does)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)

    def serve():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            c.recv(65536)
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        p = start_proxy(routes=f"* 127.0.0.1:{lsock.getsockname()[1]},ssl,insecure")
        r = get(p, "/hello")
        assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    finally:
        lsock.close()


def test_keep_alive_reuses_the_tls_connection(tls_backend, start_proxy):
    tls_backend.route("/n", Response(200, b"n", [("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"* {tls_backend.addr},ssl,insecure")
    with raw.RawConn(p.port) as c:  # one client connection: one worker, one backend pool
        for _ in range(3):
            c.send(b"GET /n HTTP/1.1\r\nHost: example.com\r\n\r\n")
            r = c.recv_response()
            assert (r.status, r.body) == (200, b"n")
    assert tls_backend.connections_accepted == 1


def test_large_bodies_both_ways(tls_backend, start_proxy):
    big = bytes(range(256)) * 4096  # 1 MiB
    tls_backend.route("/echo", lambda req: Response(200, req.body[::-1], [("Content-Type", "application/octet-stream")]))
    p = start_proxy(routes=f"* {tls_backend.addr},ssl,insecure")
    r = raw.get(p.port, "/echo", method="POST", body=big, timeout=20)
    assert r.status == 200
    assert r.body == big[::-1]


def test_grip_stream_from_a_tls_backend(tls_backend, start_proxy):
    tls_backend.route("/s", Response(200, b"start\n", [("Grip-Hold", "stream"), ("Grip-Channel", "tls"),
                                                       ("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"* {tls_backend.addr},ssl,insecure")
    c = hold(p, tls_backend, "/s", stream=True)
    sync_stream(p, "tls", [c])
    publish(p, [hs_item("tls", "published\n")])
    c.wait_body(b"published\n")
    assert after_sync(c) == b"published\n"
    c.close()


def round_trip(p, text, answer):
    """A WebSocket client sends `text` and gets `answer` back."""
    async def main():
        ws = await connect(p, "/")
        await ws.send(text)
        assert await recv(ws) == answer
        await ws.close()
    run(main())


def test_websocket_over_http_to_a_tls_backend(server_tls, start_proxy):
    woh = WohBackend()
    woh.backend.stop()
    woh.backend = Backend(woh._handle, tls=server_tls)
    woh.on_text = lambda t, r: [("TEXT", "m:echo:" + t)]  # grip is on: app messages carry m:
    try:
        p = start_proxy(routes=f"* {woh.backend.addr},over_http,ssl,insecure")
        round_trip(p, "hi", "echo:hi")
        assert any(r.types == ["OPEN"] for r in woh.requests)
    finally:
        woh.backend.stop()


def test_websocket_passthrough_to_a_wss_backend(server_tls, start_proxy):
    wsb = WsBackend(tls=server_tls)
    try:
        p = start_proxy(routes=f"* {wsb.addr},ssl,insecure")
        round_trip(p, "over wss", "over wss")
        assert len(wsb.connections) == 1
    finally:
        wsb.stop()
