"""Client listeners on unix sockets ([runner] local_ports): direct clients over AF_UNIX, and Debian's
nginx in front (`proxy_pass http://unix:PATH:`) for plain requests, a GRIP stream hold and a
WebSocket.

Observed on pushpin 1.36 (condure): local_ports works for HTTP and WebSocket; an entry is taken
whole as the path (`?mode=&user=&group=` are read from 1.37 on, so `s?mode=600` names a file
"s?mode=600"); whatever is at the path is deleted first, a regular file included; the socket file
stays after exit; with `x_forwarded_for=append` a unix client adds an empty element
(the origin gets `X-Forwarded-For: 1.2.3.4, `; no header when the client sent none). gripd adds nothing for a
unix client (it has no address): the same list once empty elements are dropped, as RFC 9110 §5.6.1
asks of recipients.
"""

import asyncio
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import websockets

from harness import raw
from harness.backend import Response, grip_hold
from harness.proxy import IS_PUSHPIN, ProxyStartError, free_port, port_accepts
from griputil import StreamClient, hs_item, publish, sync_stream
from wsutil import WsBackend

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def unix_exchange(path, data: bytes, timeout: float = 5.0) -> bytes:
    """Connect to the unix socket, send data, read until the peer closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(data)
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except socket.timeout:
            pass
        return out


def unix_get(path, target: str, headers: str = "") -> raw.RawResponse:
    out = unix_exchange(path, f"GET {target} HTTP/1.1\r\nHost: example.com\r\n{headers}"
                              f"Connection: close\r\n\r\n".encode())
    responses = raw.parse_responses(out)
    assert len(responses) == 1, out
    return responses[0]


def wait_unix_answers(proxy, path, timeout: float = 20.0):
    """Until a request over the socket gets an answer (pushpin's processes need a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.proc.poll() is not None:
            raise AssertionError(f"proxy exited with {proxy.proc.returncode}\n{proxy.log()}")
        try:
            out = unix_exchange(path, b"GET / HTTP/1.1\r\nHost: localhost\r\nPushpin-Check: 1\r\n"
                                      b"Connection: close\r\n\r\n", timeout=0.5)
            if out.startswith(b"HTTP/1.1 "):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no answer on {path}\n{proxy.log()}")


def stale_socket(path):
    """A socket file nobody listens on, as a killed process leaves it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def start_failed(start_proxy, path_spec, **kw):
    """Starts gripd expecting it to refuse; returns its log."""
    p = start_proxy(conf={"runner.local_ports": path_spec}, wait=False, **kw)
    try:
        p.proc.wait(20)
    except Exception:
        raise AssertionError("gripd did not exit:\n" + p.log())
    assert p.proc.returncode != 0
    return p.log()


@pytest.fixture
def sock_dir():
    # short: sun_path holds 107 bytes
    d = Path(tempfile.mkdtemp(prefix="gl-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --- direct clients over AF_UNIX ---------------------------------------------------------

def test_plain_requests_over_unix_socket(start_proxy, backend, sock_dir):
    sock = sock_dir / "s"
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    r = unix_get(sock, "/hello?x=1")
    assert r.status == 200
    e = json.loads(r.body)
    assert (e["method"], e["target"]) == ("GET", "/hello?x=1")
    # keep-alive and pipelining over the socket, with a body
    out = unix_exchange(sock, b"POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"
                              b"GET /b HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    rs = raw.parse_responses(out)
    assert [json.loads(x.body)["target"] for x in rs] == ["/a", "/b"]
    assert json.loads(rs[0].body)["body"] == "abc"
    # the TCP port still works beside it
    assert raw.get(p.port, "/tcp").status == 200


def test_x_forwarded_for_from_a_unix_client(start_proxy, backend, sock_dir):
    sock = sock_dir / "s"
    start_proxy(routes=f"* {backend.addr}",
                conf={"runner.local_ports": str(sock), "proxy.x_forwarded_for": "append"})
    assert unix_get(sock, "/a").status == 200
    assert backend.last.header("X-Forwarded-For") in (None, "")  # no address to add
    assert unix_get(sock, "/b", "X-Forwarded-For: 1.2.3.4\r\n").status == 200
    # pushpin 1.36 sends "1.2.3.4, " (an empty element for the missing address), gripd "1.2.3.4"
    elements = [x.strip() for x in backend.last.header("X-Forwarded-For").split(",")]
    assert [x for x in elements if x] == ["1.2.3.4"]


def test_only_local_ports(start_proxy, backend, sock_dir):
    # no TCP client port at all: the unix socket alone serves
    sock = sock_dir / "s"
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock), "runner.http_port": None},
                    wait=False)
    wait_unix_answers(p, sock)
    assert not port_accepts(p.port)
    r = unix_get(sock, "/only")
    assert r.status == 200
    assert json.loads(r.body)["target"] == "/only"


def test_stale_socket_file_is_replaced(start_proxy, backend, sock_dir):
    sock = sock_dir / "s"
    stale_socket(sock)
    start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    assert unix_get(sock, "/x").status == 200


def test_websocket_over_unix_socket(start_proxy, sock_dir):
    wsb = WsBackend()
    try:
        sock = sock_dir / "s"
        start_proxy(routes=f"* {wsb.addr}", conf={"runner.local_ports": str(sock)})

        async def main():
            ws = await websockets.unix_connect(str(sock), "ws://example.com/echo", compression=None,
                                               ping_interval=None, open_timeout=10)
            await ws.send("over unix")
            assert await asyncio.wait_for(ws.recv(), 5) == "over unix"
            await ws.send(b"\x00\x01bin")
            assert await asyncio.wait_for(ws.recv(), 5) == b"\x00\x01bin"
            await ws.close()

        asyncio.run(asyncio.wait_for(main(), 30))
        assert wsb.connections and wsb.connections[0][0] == "/echo"
    finally:
        wsb.stop()


@pytest.mark.gripd_only("pushpin 1.36 leaves its socket file behind at exit")
def test_socket_file_removed_at_stop(start_proxy, backend, sock_dir):
    sock = sock_dir / "s"
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    assert unix_get(sock, "/x").status == 200
    assert p.stop() == 0
    assert not os.path.lexists(sock)


@pytest.mark.gripd_only("pushpin 1.36 leaves its socket file behind at exit")
def test_socket_file_of_another_process_is_not_removed_at_stop(start_proxy, backend, sock_dir):
    # the path was taken over while gripd ran (a newer instance): gripd's exit leaves it alone
    sock = sock_dir / "s"
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    os.unlink(sock)
    stale_socket(sock)
    ino = os.lstat(sock).st_ino
    assert p.stop() == 0
    assert os.lstat(sock).st_ino == ino


@pytest.mark.gripd_only("pushpin 1.36 takes `?mode=&user=&group=` as part of the path (read from 1.37)")
def test_mode_user_group_applied(start_proxy, backend, sock_dir):
    sock = sock_dir / "s"
    if os.getuid() == 0:
        user, group = "nobody", "nogroup"  # root: a real change of owner
    else:
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    start_proxy(routes=f"* {backend.addr}",
                conf={"runner.local_ports": f"{sock}?mode=640&user={user}&group={group}"})
    st = os.lstat(sock)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert pwd.getpwuid(st.st_uid).pw_name == user
    assert grp.getgrgid(st.st_gid).gr_name == group
    assert unix_get(sock, "/m").status == 200


@pytest.mark.gripd_only("pushpin 1.36 takes `?mode=` as part of the path (read from 1.37)")
def test_mode_and_unix_prefix(start_proxy, backend, sock_dir):
    # Pushpin reads each entry as a URL: `unix:` may come first
    a, b = sock_dir / "a", sock_dir / "b"
    start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": f"unix:{a}?mode=600, {b}?mode=666"})
    assert stat.S_IMODE(os.lstat(a).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(b).st_mode) == 0o666
    assert unix_get(a, "/a").status == 200
    assert unix_get(b, "/b").status == 200


@pytest.mark.gripd_only("pushpin 1.36 deletes whatever is at the path, a regular file included")
def test_regular_file_at_the_path_is_kept_and_refused(start_proxy, sock_dir):
    f = sock_dir / "s"
    f.write_text("precious")
    log = start_failed(start_proxy, str(f))
    assert f.read_text() == "precious"
    assert f"{f}: the path exists and is not a socket" in log


@pytest.mark.gripd_only("pushpin 1.36 deletes the socket of a process still listening on it")
def test_live_socket_of_another_process_is_refused(start_proxy, sock_dir):
    sock = sock_dir / "s"
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        other.bind(str(sock))
        other.listen(4)
        log = start_failed(start_proxy, str(sock))
        assert "another process is listening on it" in log
        # still the other process's socket
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(2)
        c.connect(str(sock))
        conn, _ = other.accept()
        conn.close()
        c.close()
    finally:
        other.close()


@pytest.mark.gripd_only("pushpin 1.36's runner logs condure's bind error and keeps running")
def test_missing_directory_is_a_clear_error(start_proxy, sock_dir):
    log = start_failed(start_proxy, f"{sock_dir}/nope/s")
    assert f"directory {sock_dir}/nope/ does not exist" in log


@pytest.mark.gripd_only("pushpin 1.36 does not read user= (1.37+)")
def test_unknown_user_is_a_clear_error(start_proxy, sock_dir):
    log = start_failed(start_proxy, f"{sock_dir}/s?user=no-such-user-gripd")
    assert "unknown user 'no-such-user-gripd'" in log
    assert not os.path.lexists(sock_dir / "s")  # the half-made socket went too


# --- nginx in front --------------------------------------------------------------------

class Nginx:
    """Debian's nginx as a user process (one process, no master), listening on loopback and
    proxying everything to `proxy_pass http://unix:SOCK:`, WebSocket upgrades included."""

    def __init__(self, sock):
        self.dir = Path(tempfile.mkdtemp(prefix="gn-", dir="/tmp"))
        self.port = free_port()
        d = self.dir
        conf = f"""
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://unix:{sock}:;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
        (d / "nginx.conf").write_text(conf)
        self.out = open(d / "stdout.log", "wb")
        self.proc = subprocess.Popen([NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("nginx did not start:\n" + self.log())
            time.sleep(0.05)

    def log(self) -> str:
        out = ""
        for name in ("stdout.log", "error.log"):
            f = self.dir / name
            if f.exists():
                out += f"--- nginx {name}\n" + f.read_text(errors="replace")[-4000:]
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def nginx_for():
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    made = []

    def _make(sock):
        n = Nginx(sock)
        made.append(n)
        return n

    yield _make
    for n in made:
        n.stop()


def test_nginx_plain_request(start_proxy, backend, sock_dir, nginx_for):
    sock = sock_dir / "s"
    start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    n = nginx_for(sock)
    r = raw.get(n.port, "/through/nginx?q=1", host="example.com", method="POST", body=b"hello")
    assert r.status == 200, n.log()
    e = json.loads(r.body)
    assert (e["method"], e["target"], e["body"]) == ("POST", "/through/nginx?q=1", "hello")
    assert backend.last.header("Host") == "example.com"
    # a keep-alive connection to nginx: a second request
    with raw.RawConn(n.port) as c:
        for i in range(2):
            c.send(f"GET /k{i} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
            assert json.loads(c.recv_response().body)["target"] == f"/k{i}"


def test_nginx_grip_stream_receives_publish(start_proxy, backend, sock_dir, nginx_for):
    sock = sock_dir / "s"
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    n = nginx_for(sock)
    backend.route("/stream", grip_hold("stream", "unixchan", body=b"start\n"))
    c = StreamClient(n.port, "/stream")
    try:
        c.wait_head()
        assert c.head.status == 200, n.log()
        sync_stream(p, "unixchan", [c])  # a publish reached the client through nginx
        publish(p, [hs_item("unixchan", "after sync\n")])
        c.wait_body(b"after sync\n")
        assert c.body.startswith(b"start\n")
    finally:
        c.close()


def test_nginx_websocket_upgrade(start_proxy, sock_dir, nginx_for):
    wsb = WsBackend()
    try:
        sock = sock_dir / "s"
        start_proxy(routes=f"* {wsb.addr}", conf={"runner.local_ports": str(sock)})
        n = nginx_for(sock)

        async def main():
            ws = await websockets.connect(f"ws://127.0.0.1:{n.port}/chat", compression=None, ping_interval=None,
                                          open_timeout=10)
            for m in ("one", "two", "x" * 70000):
                await ws.send(m)
                assert await asyncio.wait_for(ws.recv(), 5) == m
            await ws.close()

        asyncio.run(asyncio.wait_for(main(), 30))
        assert [path for path, _ in wsb.connections] == ["/chat"]
    finally:
        wsb.stop()


def test_new_clients_refused_once_stopping(start_proxy, backend, sock_dir):
    # A request in flight keeps the proxy in its grace period; meanwhile a new client must be
    # refused at once (as on a TCP port), not left waiting in a backlog nobody accepts.
    sock = sock_dir / "s"
    backend.route("/slow", Response(200, b"slow", delay=4))
    p = start_proxy(routes=f"* {backend.addr}", conf={"runner.local_ports": str(sock)})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as inflight:
        inflight.settimeout(10)
        inflight.connect(str(sock))
        inflight.sendall(b"GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
        backend.wait_requests(1)
        p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        refused = False
        while time.monotonic() < deadline and not refused:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(1)
                try:
                    c.connect(str(sock))
                    c.sendall(b"GET /new HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
                    got = c.recv(100)
                    refused = got == b""  # accepted, then closed unanswered
                except (ConnectionRefusedError, FileNotFoundError, ConnectionResetError, BrokenPipeError):
                    refused = True  # (a broken pipe: accepted and closed before the request was written)
                except socket.timeout:
                    raise AssertionError("a new client waited unanswered while the proxy was stopping")
            time.sleep(0.05)
        assert refused
    # (a worker that had not yet seen the stop may still answer a client: that one waited for nothing)
