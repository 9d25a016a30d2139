"""mTLS to backends: the target options client_cert=FILE and client_key=FILE (PEM) make gripd present
that certificate to an `ssl` target that asks for one. The files are read when the routes are loaded;
one that cannot be read, or only one of the two options, fails the route line (as Pushpin does).

Pushpin gained these options after 1.36 (commit 871ed735, "add client_cert and client_key target params
for mtls"); Debian's 1.36 ignores them, so every test here is gripd_only.

The certificates are made with the openssl command: a CA, a server certificate for 127.0.0.1 and
localhost, and two client certificates (one signed by the CA, one self-signed)."""

import ssl
import subprocess
import time

import pytest

from harness.backend import Backend, Response
from harness import raw

pytestmark = pytest.mark.gripd_only("client_cert/client_key are newer than Pushpin 1.36 (commit 871ed735), "
                                    "which ignores them")

BAD_GATEWAY_BODY = b"Error while proxying to origin.\n"


@pytest.fixture
def proxy_wait_publish():
    return False


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("mtls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=gripd mtls test CA")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "stranger.key", "-out", "stranger.pem", "-days", "2", "-subj", "/CN=stranger")
    return d


@pytest.fixture
def mtls_backend(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(certs / "ca.pem")
    b = Backend(tls=ctx)
    b.route("/who", Response(200, b"hello client", [("Content-Type", "text/plain")]))
    yield b
    b.stop()


def target(b, certs, cert="client.pem", key="client.key"):
    return f"127.0.0.1:{b.port},ssl,insecure,client_cert={certs / cert},client_key={certs / key}"


def test_client_certificate_is_presented(mtls_backend, certs, start_proxy):
    p = start_proxy(routes=f"* {target(mtls_backend, certs)}")
    for _ in range(2):  # the second one on the pooled connection
        r = raw.get(p.port, "/who", host="example.com")
        assert (r.status, r.body) == (200, b"hello client")
    assert [q.path for q in mtls_backend.requests] == ["/who", "/who"]
    assert mtls_backend.tls_errors == []


def test_without_client_certificate_the_backend_refuses(mtls_backend, start_proxy):
    p = start_proxy(routes=f"* 127.0.0.1:{mtls_backend.port},ssl,insecure")
    r = raw.get(p.port, "/who", host="example.com")
    assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    assert mtls_backend.requests == []


def test_a_certificate_the_backend_does_not_trust_is_refused(mtls_backend, certs, start_proxy):
    p = start_proxy(routes=f"* {target(mtls_backend, certs, 'stranger.pem', 'stranger.key')}")
    r = raw.get(p.port, "/who", host="example.com")
    assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    assert mtls_backend.requests == []


def test_targets_with_different_certificates_do_not_share_connections(mtls_backend, certs, start_proxy):
    # Same backend, one target with the trusted certificate, one with a stranger's: each request uses
    # its own target's certificate, whatever the pool holds.
    p = start_proxy(routes=f"good.example {target(mtls_backend, certs)}\n"
                           f"bad.example {target(mtls_backend, certs, 'stranger.pem', 'stranger.key')}\n")
    assert raw.get(p.port, "/who", host="good.example").status == 200
    assert raw.get(p.port, "/who", host="bad.example").status == 502
    assert raw.get(p.port, "/who", host="good.example").status == 200


def test_a_key_that_does_not_match_fails_with_one_warning(mtls_backend, certs, start_proxy):
    p = start_proxy(routes=f"* {target(mtls_backend, certs, 'client.pem', 'stranger.key')}")
    r = raw.get(p.port, "/who", host="example.com")
    assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    deadline = time.monotonic() + 10  # log lines are written by gripd's log thread, a moment later
    while "client_key does not match client_cert" not in p.log():
        assert time.monotonic() < deadline, p.log()
        time.sleep(0.1)


@pytest.mark.parametrize("props,message", [
    ("client_cert={d}/client.pem", "client_cert and client_key must be given together"),
    ("client_key={d}/client.key", "client_cert and client_key must be given together"),
    ("client_cert={d}/missing.pem,client_key={d}/client.key", "missing.pem"),
])
def test_a_bad_option_fails_the_route_line(mtls_backend, certs, start_proxy, props, message):
    # A bad routes line at startup stops gripd with FILE:LINE: message (exit status 2).
    line = f"* 127.0.0.1:{mtls_backend.port},ssl,insecure," + props.format(d=certs)
    p = start_proxy(routes=f"# mTLS\n{line}\n", wait=False)
    assert p.proc.wait(timeout=10) == 2
    assert f"{p.routes_path}:2: " in p.log() and message in p.log(), p.log()


def test_client_certificate_on_a_plain_target_warns(certs, backend, start_proxy):
    p = start_proxy(routes=f"* {backend.addr},client_cert={certs}/client.pem,client_key={certs}/client.key")
    assert raw.get(p.port, "/", host="example.com").status == 200
    deadline = time.monotonic() + 10  # log lines are written by gripd's log thread, a moment later
    while not [l for l in p.stdout_path.read_text().splitlines() if "[WARN]" in l and
               f"{p.routes_path}:1:" in l and "client_cert" in l and "not ssl" in l]:
        assert time.monotonic() < deadline, p.log()
        time.sleep(0.1)
