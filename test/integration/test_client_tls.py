"""TLS for clients: `[runner] https_ports`, certificates in `runner/certs` next to the config file,
laid out as Pushpin lays them out and chosen as Pushpin chooses: the SNI name's `<name>.crt`, else
the one-level wildcard `_.<parent>.crt`, else (and without SNI) `default_<port>.crt`; no match and
no default is a failed handshake. Also: requests, WebSockets (passthrough and WebSocket-over-HTTP)
over TLS, `ssl=yes|no` routes, X-Forwarded-Proto, session resumption, reload on change and on
SIGHUP, and what a slow or garbage client costs.

Certificates are made here with the openssl command: a CA and leaf certificates signed by it, each
with its own CN so a test can tell which one the server chose."""

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import websockets

from harness.backend import Backend
from harness.proxy import IS_PUSHPIN, port_accepts, unique_free_port
from wsutil import WohBackend, WsBackend, close_content, publish, recv, run, ws_item, SETTLE

NODE_DIR = Path(__file__).resolve().parent / "node"
WAIT = 15  # seconds a bounded wait may take at most


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    d = tmp_path_factory.mktemp("clienttls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=gripd test CA"],
                   cwd=d, check=True, capture_output=True)
    return d


def make_cert(ca: Path, out_dir: Path, file_name: str, cn: str, sans: str):
    """Writes <out_dir>/<file_name>.crt/.key: a leaf for `sans` with CN `cn`, signed by the test CA."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = ca / f"{file_name}-{time.monotonic_ns()}"
    tmp.mkdir()

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "leaf.key",
            "-out", "leaf.csr", "-subj", f"/CN={cn}")
    (tmp / "san.ext").write_text(f"subjectAltName={sans}\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", str(ca / "ca.pem"), "-CAkey", str(ca / "ca.key"),
            "-CAcreateserial", "-out", "leaf.crt", "-days", "2", "-extfile", "san.ext")
    # Replace atomically: a reload never sees half a file.
    for ext in ("key", "crt"):
        shutil.copy(tmp / f"leaf.{ext}", out_dir / f".{file_name}.{ext}.tmp")
        (out_dir / f".{file_name}.{ext}.tmp").rename(out_dir / f"{file_name}.{ext}")


class Tls:
    """A proxy with one HTTP port and two TLS ports: `port` has a default certificate
    (default_<port>), `bare_port` has none (only names)."""

    def __init__(self, proxy, port, bare_port, certs_dir, ca):
        self.proxy, self.port, self.bare_port, self.certs, self.ca = proxy, port, bare_port, certs_dir, ca

    def context(self, verify=True, **kw) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca / "ca.pem"))
        if not verify:
            ctx.check_hostname = False
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def connect(self, server_name=None, port=None, ctx=None, session=None) -> ssl.SSLSocket:
        """A finished handshake (raises ssl.SSLError if it fails). server_name=None: no SNI."""
        ctx = ctx or self.context(verify=False)
        raw = socket.create_connection(("127.0.0.1", port or self.port), timeout=WAIT)
        try:
            return ctx.wrap_socket(raw, server_hostname=server_name, session=session)
        except Exception:
            raw.close()
            raise

    def peer_cn(self, server_name=None, port=None) -> str:
        with self.connect(server_name, port) as s:
            der = s.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der)
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline"], input=pem,
                             capture_output=True, text=True, check=True).stdout
        return [line.split("=", 1)[1].strip() for line in out.splitlines() if "commonName" in line][0]


def request(s: ssl.SSLSocket, path="/", host="localhost", headers=()) -> tuple:
    """One keep-alive GET on an open TLS socket: (status, headers dict lower-case, body)."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"closed before a response head: {buf!r}"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(body) < n:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return status, hdrs, body[:n]


@pytest.fixture
def tls(start_proxy, ca):
    """Starts a proxy with TLS; tls(routes=..., conf=..., certs=[(file, cn, sans)...], args=[...])."""

    def _start(routes, conf=None, certs=None, args=None):
        port, bare_port = unique_free_port(), unique_free_port()
        holder = {}

        def setup(d: Path):
            cdir = d / "runner" / "certs"
            make_cert(ca, cdir, f"default_{port}", "default", "DNS:default.test")
            for name, cn, sans in certs or []:
                make_cert(ca, cdir, name, cn, sans)
            holder["certs"] = cdir
        c = {"runner": {"https_ports": f"127.0.0.1:{port},127.0.0.1:{bare_port}"}}
        for sec, kv in (conf or {}).items():
            c.setdefault(sec, {}).update(kv)
        p = start_proxy(routes=routes, conf=c, args=args, before_start=setup)
        deadline = time.monotonic() + WAIT
        while not (port_accepts(port) and port_accepts(bare_port)):
            assert time.monotonic() < deadline, "TLS ports never accepted"
            time.sleep(0.05)
        return Tls(p, port, bare_port, holder["certs"], ca)
    return _start


HOSTS = [("host.test", "exact host", "DNS:host.test"), ("_.wild.test", "wildcard", "DNS:*.wild.test")]


def test_certificate_chosen_by_sni_as_pushpin(tls, backend):
    t = tls(f"* {backend.addr}", certs=HOSTS)
    assert t.peer_cn("host.test") == "exact host"
    assert t.peer_cn("HOST.test") == "exact host"          # names are matched lower-case
    assert t.peer_cn("a.wild.test") == "wildcard"          # _.wild.test serves *.wild.test
    assert t.peer_cn("a.b.wild.test") == "default"         # one level only, else the port's default
    assert t.peer_cn("wild.test") == "default"             # the wildcard does not cover its parent
    assert t.peer_cn("other.test") == "default"            # unknown name: default_<port>
    assert t.peer_cn(None) == "default"                    # no SNI: default_<port>
    # The port without a default_<port>: names still work, anything else is refused.
    assert t.peer_cn("host.test", port=t.bare_port) == "exact host"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        t.connect("other.test", port=t.bare_port)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        t.connect(None, port=t.bare_port)
    # The certificate verifies against the CA for its name (the whole chain was sent).
    with t.connect("host.test", ctx=t.context()) as s:
        assert request(s, host="host.test")[0] == 200


def test_https_request_reaches_backend_with_forwarded_proto(tls, backend):
    t = tls(f"* {backend.addr}")
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(t.ca / "ca.pem"), "--resolve",
                          f"default.test:{t.port}:127.0.0.1", f"https://default.test:{t.port}/over-tls?x=1",
                          "-H", "X-Forwarded-Proto: spoofed"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["target"] == "/over-tls?x=1"
    hdrs = [(k.lower(), v) for k, v in seen["headers"]]
    assert ("x-forwarded-proto", "https") in hdrs          # Debian's set_x_forwarded_protocol=proto-only
    assert ("x-forwarded-proto", "spoofed") not in hdrs
    # Plain HTTP on the same proxy: no X-Forwarded-Proto.
    out = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{t.proxy.port}/plain"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "x-forwarded-proto" not in [k.lower() for k, _ in json.loads(out.stdout)["headers"]]


def test_ssl_route_condition(tls, make_backend):
    secure, plain = make_backend(), make_backend()
    secure.handler = lambda req: b"secure"
    plain.handler = lambda req: b"plain"
    t = tls(f"*,ssl=yes {secure.addr}\n*,ssl=no {plain.addr}\n")
    with t.connect("default.test") as s:
        assert request(s)[2] == b"secure"
        assert request(s)[2] == b"secure"  # keep-alive over TLS
    out = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{t.proxy.port}/"],
                         capture_output=True, text=True)
    assert out.stdout == "plain"


@pytest.mark.parametrize("version", [
    "TLSv1_2",
    pytest.param("TLSv1_3", marks=pytest.mark.gripd_only("pushpin 1.36 speaks TLS 1.2 only (a TLS 1.3-only client "
                                                         "gets a protocol_version alert); gripd takes 1.2 and 1.3"))])
def test_tls_versions(tls, backend, version):
    t = tls(f"* {backend.addr}")
    for version in (getattr(ssl.TLSVersion, version),):
        ctx = t.context(verify=False, minimum_version=version, maximum_version=version)
        with t.connect("default.test", ctx=ctx) as s:
            assert s.version() == version.name.replace("v1_", "v1.")
            assert request(s)[0] == 200


@pytest.mark.gripd_only("pushpin 1.36 speaks TLS 1.2 only")
def test_tls13_suite_is_chosen_by_the_server_aes128_first_unless_the_client_puts_chacha_first(tls, backend):
    # An OpenSSL client (Python here, curl, Node) lists TLS_AES_256_GCM_SHA384 first; gripd picks
    # AES-128-GCM, whose handshake runs SHA-256 (in hardware on current CPUs) instead of SHA-384.
    t = tls(f"* {backend.addr}")
    ctx = t.context(verify=False, minimum_version=ssl.TLSVersion.TLSv1_3)
    with t.connect("default.test", ctx=ctx) as s:
        assert s.cipher()[0] == "TLS_AES_128_GCM_SHA256"
        assert request(s)[0] == 200

    def s_client_cipher(suites):
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{t.port}", "-servername",
                              "default.test", "-tls1_3", "-ciphersuites", suites], input="",
                             capture_output=True, text=True, timeout=WAIT).stdout
        return [line.split()[-1] for line in out.splitlines() if line.startswith("New, TLSv1.3, Cipher is")]
    # A client that puts ChaCha20 first (one without AES hardware) gets it; one that offers only
    # AES-256 gets that.
    assert s_client_cipher("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256") == ["TLS_CHACHA20_POLY1305_SHA256"]
    assert s_client_cipher("TLS_AES_256_GCM_SHA384") == ["TLS_AES_256_GCM_SHA384"]
    assert s_client_cipher("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256") == ["TLS_AES_128_GCM_SHA256"]


@pytest.mark.gripd_only("pushpin 1.36 (condure) negotiates no ALPN; gripd says http/1.1 so h2 can be added")
def test_alpn_http11(tls, backend, target):
    t = tls(f"* {backend.addr}")
    ctx = t.context(verify=False)
    ctx.set_alpn_protocols(["http/1.1"])
    with t.connect("default.test", ctx=ctx) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert request(s)[0] == 200
    # A client offering both gets HTTP/2 from gripd (issue 16; test_h2.py) and HTTP/1.1 from
    # pushpin 1.36, which serves HTTP/1.1 only.
    ctx = t.context(verify=False)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with t.connect("default.test", ctx=ctx) as s:
        assert s.selected_alpn_protocol() == ("http/1.1" if target == "pushpin" else "h2")
    ctx = t.context(verify=False)
    ctx.set_alpn_protocols(["spdy/3.1"])  # nothing in common: the handshake goes on without ALPN
    with t.connect("default.test", ctx=ctx) as s:
        assert s.selected_alpn_protocol() is None
        assert request(s)[0] == 200


@pytest.mark.gripd_only("pushpin 1.36 resumes no session: every connection is a full handshake")
@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_session_resumption(tls, backend, version):
    t = tls(f"* {backend.addr}")
    v = getattr(ssl.TLSVersion, version)
    ctx = t.context(verify=False, minimum_version=v, maximum_version=v)
    with t.connect("default.test", ctx=ctx) as s:
        request(s)  # TLS 1.3 tickets arrive after the handshake: read a response first
        session = s.session
        assert not s.session_reused
    assert session is not None
    # Several times: with more than one worker the new connections land on different loops.
    for _ in range(6):
        with t.connect("default.test", ctx=ctx, session=session) as s:
            assert s.session_reused
            assert request(s)[0] == 200
            if version == "TLSv1_3" and s.session is not None:
                session = s.session


@pytest.mark.gripd_only("pushpin 1.36 resumes no session: every connection is a full handshake")
def test_resumption_with_openssl_s_client(tls, backend, tmp_path):
    t = tls(f"* {backend.addr}")
    sess = tmp_path / "sess.pem"

    def s_client(*extra):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{t.port}", "-servername",
                               "default.test", "-tls1_2", *extra], input="", capture_output=True, text=True,
                              timeout=WAIT).stdout
    assert "New," in s_client("-sess_out", str(sess))
    assert "Reused," in s_client("-sess_in", str(sess))


def test_wss_passthrough(tls):
    ws_backend = WsBackend()
    try:
        t = tls(f"* {ws_backend.addr}")
        ctx = t.context()

        async def go():
            async with websockets.connect(f"wss://default.test:{t.port}/ws", host="127.0.0.1", port=t.port,
                                          ssl=ctx, server_hostname="default.test", ping_interval=None,
                                          compression=None, open_timeout=10) as ws:
                await ws.send("over tls")
                assert await recv(ws) == "over tls"
                big = "x" * 100000  # more than one TLS record each way
                await ws.send(big)
                assert await recv(ws) == big
        run(go())
        assert ws_backend.connections[0][1].get("X-Forwarded-Proto") == "wss"  # as Pushpin: the client's scheme
    finally:
        ws_backend.stop()


def test_wss_websocket_over_http(tls):
    woh = WohBackend()
    woh.on_open = lambda r: [("TEXT", 'c:{"type":"subscribe","channel":"tlsch"}')]
    woh.on_text = lambda text, r: [("TEXT", "m:echo " + text)]
    try:
        t = tls(f"* {woh.addr},over_http")
        ctx = t.context()

        async def go():
            async with websockets.connect(f"wss://default.test:{t.port}/woh", host="127.0.0.1", port=t.port,
                                          ssl=ctx, server_hostname="default.test", ping_interval=None,
                                          compression=None, open_timeout=10) as ws:
                await ws.send("hi")
                assert await recv(ws) == "echo hi"
                await asyncio.sleep(SETTLE)
                publish(t.proxy, ws_item("tlsch", "published over tls"))
                assert await recv(ws) == "published over tls"
        run(go())
        first = woh.requests[0]
        assert first.header("X-Forwarded-Proto") == "wss"
    finally:
        woh.stop()


def node_ready() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "ws").is_dir()


@pytest.mark.skipif(not node_ready(), reason="node or npm `ws` missing: run `npm ci` in test/integration/node")
def test_node_ws_client_over_wss(tls):
    woh = WohBackend()
    woh.on_open = lambda r: [("TEXT", 'c:{"type":"subscribe","channel":"node"}')]
    woh.on_text = lambda text, r: [("TEXT", "m:echo " + text)]
    woh.on_binary = lambda d, r: [("BINARY", b"m:" + d[::-1])]
    woh.on_ping = lambda d, r: [("PONG", d)]
    try:
        t = tls(f"* {woh.addr},over_http", certs=[("localhost", "localhost", "DNS:localhost")])
        env = {"NODE_EXTRA_CA_CERTS": str(t.ca / "ca.pem"), "PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen(["node", str(NODE_DIR / "ws_check.js"), f"wss://localhost:{t.port}/node"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=NODE_DIR, env=env)
        steps = {}
        try:
            for line in proc.stdout:
                msg = json.loads(line)
                steps[msg["step"]] = msg
                if msg["step"] == "ready":
                    time.sleep(SETTLE)
                    publish(t.proxy, ws_item("node", "to node"))
                if msg["step"] in ("closed", "error"):
                    break
            proc.wait(WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert "error" not in steps, steps
        assert steps["text"]["got"] == {"binary": False, "data": "echo hello from node"}
        assert steps["binary"]["got"] == {"binary": True, "data": "ff020100"}
        assert steps["published"]["got"] == {"binary": False, "data": "to node"}
        assert (steps["closed"]["code"], steps["closed"]["reason"]) == (4000, "node bye")
        woh.wait(1, pred=lambda r: ("CLOSE", close_content(4000, "node bye")) in r.events)
    finally:
        woh.stop()


def wait_closed(s: socket.socket, timeout=WAIT) -> bool:
    """Reads (discarding) until the peer closes; False if it is still open after `timeout`."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


@pytest.mark.gripd_only("pushpin 1.36 keeps a connection that never completes its handshake open")
def test_unfinished_handshake_is_cut_after_header_timeout(tls, backend):
    t = tls(f"* {backend.addr}", conf={"gripd": {"header_timeout": "2"}}, args=["--loglevel", "3"])
    silent = socket.create_connection(("127.0.0.1", t.port), timeout=WAIT)
    # A ClientHello trickled a byte at a time never gets more time than the header timeout.
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = t.context(verify=False).wrap_bio(hello[0], hello[1], server_hostname="default.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    ch = hello[1].read()
    slow = socket.create_connection(("127.0.0.1", t.port), timeout=WAIT)
    closed = False
    for b in ch[:-1]:
        try:
            slow.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        slow.settimeout(0.2)
        try:
            if slow.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
            break
    assert closed or wait_closed(slow), "a trickled handshake was never cut off"
    assert wait_closed(silent), "a silent TLS client was never cut off"
    # Log lines reach the logdir files through gripd's writer thread: allow it a moment.
    deadline = time.monotonic() + 5
    while "TLS handshake from 127.0.0.1 timed out" not in t.proxy.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS handshake from 127.0.0.1 timed out" in t.proxy.log()
    # The proxy still serves.
    with t.connect("default.test") as s:
        assert request(s)[0] == 200


def test_garbage_on_tls_port_is_closed(tls, backend):
    t = tls(f"* {backend.addr}", args=[] if IS_PUSHPIN else ["--loglevel", "3"])
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello", bytes(range(256)) * 8):
        s = socket.create_connection(("127.0.0.1", t.port), timeout=WAIT)
        s.sendall(junk)
        data = b""
        s.settimeout(WAIT)
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        s.close()
        assert not data.startswith(b"HTTP/")  # never a plaintext answer
    with t.connect("default.test") as s:
        assert request(s)[0] == 200
    if not IS_PUSHPIN:
        deadline = time.monotonic() + 5
        while t.proxy.log().count("failed while shaking hands") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = [line for line in t.proxy.log().splitlines() if "failed while shaking hands" in line]
        assert len(lines) == 3 and all(line.startswith("[DEBUG]") for line in lines), lines


def test_certificates_reload_on_change_and_sighup_keep_open_connections(tls, backend):
    t = tls(f"* {backend.addr}", certs=[("host.test", "first", "DNS:host.test")])
    kept = t.connect("host.test")
    assert request(kept, host="host.test")[0] == 200
    assert t.peer_cn("host.test") == "first"
    # A changed file is picked up without a signal.
    make_cert(t.ca, t.certs, "host.test", "second", "DNS:host.test")
    deadline = time.monotonic() + WAIT
    while t.peer_cn("host.test") != "second":
        assert time.monotonic() < deadline, "a changed certificate was never picked up"
        time.sleep(0.2)
    # A new name appears.
    make_cert(t.ca, t.certs, "new.test", "new name", "DNS:new.test")
    deadline = time.monotonic() + WAIT
    while t.peer_cn("new.test") != "new name":
        assert time.monotonic() < deadline, "an added certificate was never picked up"
        time.sleep(0.2)
    # SIGHUP reloads too.
    make_cert(t.ca, t.certs, "host.test", "third", "DNS:host.test")
    t.proxy.signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while t.peer_cn("host.test") != "third":
        assert time.monotonic() < deadline, "SIGHUP did not reload the certificate"
        time.sleep(0.2)
    # The connection opened before all this still works.
    assert request(kept, host="host.test")[0] == 200
    kept.close()


@pytest.mark.gripd_only("gripd-only startup check: pushpin starts with no certificate and fails each handshake")
def test_https_only_config_starts_and_serves(start_proxy, ca, backend):
    # https_ports alone used to be refused at startup.
    port = unique_free_port()
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner": {"https_ports": f"127.0.0.1:{port}", "http_port": ""}},
                    before_start=lambda d: make_cert(ca, d / "runner" / "certs", f"default_{port}", "only",
                                                     "DNS:only.test"),
                    wait=False)
    deadline = time.monotonic() + WAIT
    while not port_accepts(port):
        assert p.alive() and time.monotonic() < deadline, p.log()
        time.sleep(0.05)
    ctx = ssl.create_default_context(cafile=str(ca / "ca.pem"))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=WAIT),
                         server_hostname="only.test") as s:
        assert request(s, host="only.test")[0] == 200


@pytest.mark.gripd_only("asserts on the gripd process's memory (pushpin's condure keeps ~34 KiB per idle TLS "
                        "connection, see test/bench/tls_bench.sh)")
def test_a_tls_port_is_one_accept_queue_for_every_worker(tls, backend):
    # gripd's plain ports are one SO_REUSEPORT socket per worker (the kernel hashes each connection
    # to one of them); a TLS port is one socket the workers share, so a handshake waits for the first
    # free worker rather than behind another on the worker its hash chose. Pushpin (condure) listens
    # on one socket too.
    t = tls(f"* {backend.addr}", conf={"gripd": {"workers": "2"}})
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    listening = [r for r in rows if r[3] == "0A" and r[1].endswith(f":{t.port:04X}")]  # 0A: LISTEN
    assert len(listening) == 1, listening
    for _ in range(20):  # and it serves, whichever worker takes each connection
        s = t.connect("default.test")
        assert request(s)[0] == 200
        s.close()


@pytest.mark.gripd_only("asserts on the gripd process's descriptors and log; pushpin's TLS is condure's")
@pytest.mark.fd_exhaustion
def test_a_tls_port_out_of_descriptors_pauses_and_comes_back(tls, backend):
    """Each worker waits on the shared TLS socket with an exclusive wakeup (one idle worker is woken
    per connection); out of descriptors, it stops waiting for a moment, and starts again: the
    clients that waited meanwhile, and new ones, are served."""
    import resource
    t = tls(f"* {backend.addr}", conf={"gripd": {"workers": "2"}})
    pid = t.proxy.pid
    # The ports accept before startup is over (the ZeroMQ sockets come after them): a descriptor
    # limit set earlier would fail the start, not the accepts.
    deadline = time.monotonic() + WAIT
    while "started 2 workers" not in t.proxy.log():
        assert time.monotonic() < deadline, "startup never finished"
        time.sleep(0.05)
    open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    limit = open_fds + 16
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    held = []
    try:
        for _ in range(40):  # more than the descriptors left: accept fails with EMFILE meanwhile
            held.append(socket.create_connection(("127.0.0.1", t.port), timeout=WAIT))
        deadline = time.monotonic() + WAIT
        while len(os.listdir(f"/proc/{pid}/fd")) < limit - 1:
            assert time.monotonic() < deadline, "never saturated"
            time.sleep(0.05)
        deadline = time.monotonic() + WAIT
        while "accept failed" not in t.proxy.log():
            assert time.monotonic() < deadline, "no accept failure logged"
            time.sleep(0.05)
    finally:
        for s in held:
            s.close()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    for _ in range(20):
        s = t.connect("default.test")
        assert request(s)[0] == 200
        s.close()
    assert t.proxy.alive()


def test_idle_tls_connections_stay_small(tls, backend):
    from wsutil import rss, sanitized
    from harness.backend import Response
    backend.route("/big", Response(200, b"x" * 100000))  # full 16 KiB records each way through OpenSSL
    t = tls(f"* {backend.addr}")
    if sanitized(t.proxy.pid):
        pytest.skip("RSS is meaningless under a sanitizer")
    warm = [t.connect("default.test") for _ in range(20)]
    for s in warm:
        request(s, "/big")
    before = rss(t.proxy.pid)
    n = 400
    held = []
    try:
        for _ in range(n):
            s = t.connect("default.test")
            status, _, body = request(s, "/big")
            assert status == 200 and len(body) == 100000
            held.append(s)
        per_conn = (rss(t.proxy.pid) - before) / n
        # OpenSSL's session state is ~15 KiB; record buffers kept while idle would add 2 x 16 KiB.
        assert per_conn < 28 * 1024, f"{per_conn:.0f} bytes per idle TLS connection"
        for s in held[:10]:  # they still work
            assert request(s)[0] == 200
    finally:
        for s in held + warm:
            s.close()


@pytest.mark.parametrize("mode", ["true", "proto-only"])
def test_forwarded_protocol_headers_over_tls(tls, backend, mode):
    ws_backend = WsBackend()
    try:
        t = tls(f"*,proto=http {backend.addr}\n*,proto=ws {ws_backend.addr}\n",
                conf={"proxy": {"set_x_forwarded_protocol": mode}})
        with t.connect("default.test") as s:
            seen = json.loads(request(s)[2])
        hdrs = {k.lower(): v for k, v in seen["headers"]}
        assert hdrs.get("x-forwarded-proto") == "https"
        assert hdrs.get("x-forwarded-protocol") == ("https" if mode == "true" else None)

        async def go():
            async with websockets.connect(f"wss://default.test:{t.port}/ws", host="127.0.0.1", port=t.port,
                                          ssl=t.context(), server_hostname="default.test", ping_interval=None,
                                          compression=None, open_timeout=10) as ws:
                await ws.send("x")
                assert await recv(ws) == "x"
        run(go())
        ws_hdrs = ws_backend.connections[0][1]
        assert ws_hdrs.get("X-Forwarded-Proto") == "wss"
        assert ws_hdrs.get("X-Forwarded-Protocol") == ("wss" if mode == "true" else None)
    finally:
        ws_backend.stop()
