"""Zero-downtime restart and upgrade (README "Many instances" > "Zero-downtime restart and upgrade").

SIGUSR2 makes gripd start a new copy of itself on the same ports (SO_REUSEPORT; unix sockets are
bound beside the old file and renamed over it); once the new one serves, the old one takes what waits
in its accept queues, closes its listeners, finishes the requests in flight, closes held streams (their
clients reconnect, to the new process) and exits. The tests run a steady load of non-held requests on
fresh connections while this happens and count every failure; none is allowed.

The other way, by hand: start a second gripd on the same config, then SIGTERM the first one.

Pushpin 1.36 has neither (SIGUSR2 is not handled, and its listeners are not opened with
SO_REUSEPORT): gripd_only.
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import raw
from harness.proxy import port_accepts, unique_free_port
from harness.backend import Response, grip_hold
from griputil import StreamClient, hs_item, publish

pytestmark = pytest.mark.gripd_only("zero-downtime restart is gripd's (pushpin has no SIGUSR2 upgrade)")

CONF = {"gripd": {"shutdown_grace": "5", "workers": "2"}}


class Load:
    """Client threads that each send one request per fresh connection (Connection: close) in a loop,
    over TCP or a unix socket, and count answers that are not the backend's 200."""

    def __init__(self, port=None, unix_path=None, threads=3, tls=None):
        self.port, self.unix_path, self.tls = port, unix_path, tls  # tls: an ssl.SSLContext
        self.ok = 0
        self.failures = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _one(self) -> bytes:
        req = b"GET /ok HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = str(self.unix_path)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            addr = ("127.0.0.1", self.port)
        if self.tls:
            s = self.tls.wrap_socket(s, server_hostname="restart.test")
        with s:
            s.settimeout(10)
            s.connect(addr)
            s.sendall(req)
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    return out
                out += d

    def _run(self):
        while not self._stop.is_set():
            try:
                out = self._one()
                good = out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\nok")
                err = None if good else f"answer {out[:80]!r}"
            except OSError as e:
                err = repr(e)
            with self._lock:
                if err:
                    self.failures.append(err)
                else:
                    self.ok += 1

    def count(self) -> int:
        with self._lock:
            return self.ok

    def wait_more(self, n: int, timeout: float = 10.0):
        want = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < want:
            assert time.monotonic() < deadline, f"load stalled at {self.count()} answers: {self.failures[:3]}"
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)


def new_pid(p, timeout=15.0) -> int:
    """The pid of the new process, from the old one's log line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"upgrade: started \S+ as process (\d+)", p.log())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise AssertionError("no upgrade line in the log:\n" + p.log()[-3000:])


def pid_alive(pid: int) -> bool:
    try:
        # A zombie counts as gone: the old process (its parent) may exit before it reaps it.
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid: int, timeout=10.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def backend_routes(backend, channel):
    backend.route("/ok", Response(200, b"ok"))
    backend.route("/stream", grip_hold("stream", channel, body=b"start\n"))


def test_sigusr2_replaces_the_process_under_load_without_a_failed_request(start_proxy, backend):
    backend_routes(backend, "up-1")
    p = start_proxy(routes=f"* {backend.addr}\n", conf=CONF)
    stream = StreamClient(p.port, "/stream")
    stream.wait_body(b"start\n")
    load = Load(port=p.port)
    pid = None
    try:
        load.wait_more(50)
        p.signal(signal.SIGUSR2)
        pid = new_pid(p)
        assert p.proc.wait(15) == 0  # the old one handed over and exited cleanly
        assert pid_alive(pid)
        # The held stream was closed (ended cleanly) so its client reconnects, to the new process.
        stream.wait_closed(10)
        assert stream.complete, stream.body
        load.wait_more(50)  # the new process serves the load
    finally:
        load.stop()
        stream.close()
    try:
        assert load.failures == [], f"{len(load.failures)} of {load.ok + len(load.failures)}: {load.failures[:5]}"
        log = p.log()
        assert "upgrade: the new process %d serves: stopping this one" % pid in log
        assert re.search(r"gripd \S+ starting: instance \S+, pid %d" % pid, log)
        # The reconnected stream gets what is published through the new process's control port.
        again = StreamClient(p.port, "/stream")
        again.wait_body(b"start\n")
        time.sleep(0.3)  # the subscription settles (the publish is not held for a late subscriber)
        assert raw.get(p.publish_port, "/publish/", method="POST", headers=[("Content-Type", "application/json")],
                       body=b'{"items":[{"channel":"up-1","formats":{"http-stream":{"content":"after\\n"}}}]}'
                       ).status == 200
        again.wait_body(b"start\nafter\n", 10)
        again.close()
    finally:
        stop_pid(pid)


def test_a_failed_upgrade_leaves_the_old_process_serving(start_proxy, backend):
    backend_routes(backend, "up-2")
    p = start_proxy(routes=f"* {backend.addr}\n", conf=CONF)
    good = p.conf_path.read_text()
    p.conf_path.write_text(good + "\n[gripd]\nworkers = many\n")  # the new process refuses this
    try:
        p.signal(signal.SIGUSR2)
        pid = new_pid(p)
        deadline = time.monotonic() + 15
        while "upgrade failed" not in p.log():
            assert time.monotonic() < deadline, p.log()[-2000:]
            time.sleep(0.05)
        assert f"upgrade failed: the new process {pid} exited (status 2)" in p.log()
        assert p.alive()
        assert raw.get(p.port, "/ok").body == b"ok"
    finally:
        p.conf_path.write_text(good)
    # A later upgrade works.
    p.signal(signal.SIGUSR2)
    deadline = time.monotonic() + 15
    while len(re.findall(r"as process (\d+)", p.log())) < 2:
        assert time.monotonic() < deadline, p.log()[-2000:]
        time.sleep(0.05)
    pid2 = int(re.findall(r"as process (\d+)", p.log())[-1])
    try:
        assert p.proc.wait(15) == 0
        assert raw.get(p.port, "/ok").body == b"ok"
    finally:
        stop_pid(pid2)


def test_unix_socket_is_taken_over_without_a_failed_request(start_proxy, backend, tmp_path):
    backend_routes(backend, "up-3")
    sock = tmp_path / "c.sock"
    conf = {**CONF, "runner": {"local_ports": str(sock)}}
    p = start_proxy(routes=f"* {backend.addr}\n", conf=conf)
    load = Load(unix_path=sock)
    pid = None
    try:
        load.wait_more(50)
        ino = sock.stat().st_ino
        p.signal(signal.SIGUSR2)
        pid = new_pid(p)
        assert p.proc.wait(15) == 0
        load.wait_more(50)
    finally:
        load.stop()
    try:
        assert load.failures == [], f"{len(load.failures)} of {load.ok + len(load.failures)}: {load.failures[:5]}"
        # The path names the new process's socket (the old one did not remove it on its way out).
        assert sock.is_socket() and sock.stat().st_ino != ino
        assert not list(tmp_path.glob("c.sock.new*"))
        assert "took over the unix socket" in p.log()
    finally:
        stop_pid(pid)
    assert not sock.exists()  # the new process removes its own file when it stops


def test_a_tls_port_is_taken_over_without_a_failed_request(start_proxy, backend):
    # A TLS port is one listening socket that every worker accepts on (a dup() each): the new
    # process binds its own beside it (SO_REUSEPORT) and the old one's workers drain theirs.
    backend_routes(backend, "up-5")
    port = unique_free_port()

    def certs(d: Path):
        cdir = d / "runner" / "certs"
        cdir.mkdir(parents=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=restart.test", "-keyout", str(cdir / f"default_{port}.key"),
                        "-out", str(cdir / f"default_{port}.crt")], check=True, capture_output=True)
    conf = {**CONF, "runner": {"https_ports": f"127.0.0.1:{port}"}}
    p = start_proxy(routes=f"* {backend.addr}\n", conf=conf, before_start=certs)
    deadline = time.monotonic() + 15
    while not port_accepts(port):
        assert time.monotonic() < deadline, "the TLS port never accepted"
        time.sleep(0.05)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    load = Load(port=port, tls=ctx)
    pid = None
    try:
        load.wait_more(50)
        p.signal(signal.SIGUSR2)
        pid = new_pid(p)
        assert p.proc.wait(15) == 0
        load.wait_more(50)  # the new process serves the load
    finally:
        load.stop()
    try:
        assert load.failures == [], f"{len(load.failures)} of {load.ok + len(load.failures)}: {load.failures[:5]}"
    finally:
        stop_pid(pid)


def test_a_second_process_on_the_same_ports_then_sigterm_to_the_first(start_proxy, backend):
    backend_routes(backend, "up-4")
    # ZeroMQ inputs bind without SO_REUSEPORT: by hand, only without them (SIGUSR2 handles them).
    no_zmq = {"handler": {"push_in_spec": None, "push_in_sub_specs": None, "command_spec": None}}
    p = start_proxy(routes=f"* {backend.addr}\n", conf={**CONF, **no_zmq})
    load = Load(port=p.port)
    second = None
    out = open(p.dir / "second.log", "ab")
    try:
        load.wait_more(50)
        second = subprocess.Popen(p.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  cwd=str(p.dir), start_new_session=True)
        deadline = time.monotonic() + 15
        while b"started 2 workers" not in (p.dir / "second.log").read_bytes():
            assert second.poll() is None and time.monotonic() < deadline, (p.dir / "second.log").read_text()
            time.sleep(0.05)
        load.wait_more(50)  # both serve
        p.signal(signal.SIGTERM)
        assert p.proc.wait(15) == 0
        load.wait_more(50)  # the second one alone
    finally:
        load.stop()
        if second:
            second.terminate()
            second.wait(15)
        out.close()
    assert load.failures == [], f"{len(load.failures)} of {load.ok + len(load.failures)}: {load.failures[:5]}"


def test_systemd_follows_the_new_process(tmp_path, backend):
    """With NOTIFY_SOCKET (Type=notify, NotifyAccess=all): the new process sends MAINPID=<its pid>
    then READY=1; the old one hands over without STOPPING=1 (the unit is not stopping)."""
    from harness.proxy import Proxy
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    s.bind(path)
    s.settimeout(15)
    backend_routes(backend, "up-5")
    p = Proxy(routes=f"* {backend.addr}\n", env={"NOTIFY_SOCKET": path}, wait=False)
    pid = None
    try:
        assert s.recv(4096) == b"READY=1"
        p.signal(signal.SIGUSR2)
        pid = new_pid(p)
        assert s.recv(4096) == f"MAINPID={pid}".encode()
        assert s.recv(4096) == b"READY=1"
        assert p.proc.wait(15) == 0
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(4096)  # no STOPPING=1 from the old one
        s.settimeout(15)
        assert raw.get(p.port, "/ok").body == b"ok"
        os.kill(pid, signal.SIGTERM)
        assert s.recv(4096) == b"STOPPING=1"
    finally:
        if pid:
            stop_pid(pid)
        p.close()
        s.close()


def test_the_new_process_runs_the_replaced_binary(start_proxy, backend, tmp_path, monkeypatch):
    """A package upgrade replaces the file (a rename over it): SIGUSR2 runs the new file, found by the
    path the old process was started from."""
    import shutil
    from harness.proxy import proxy_command
    exe = tmp_path / "bin" / "gripd"
    exe.parent.mkdir()
    shutil.copy2(proxy_command()[0], exe)
    monkeypatch.setenv("GRIPD_BIN", str(exe))
    backend_routes(backend, "up-6")
    p = start_proxy(routes=f"* {backend.addr}\n", conf=CONF)
    staged = tmp_path / "bin" / "gripd.new"
    shutil.copy2(exe, staged)
    os.replace(staged, exe)  # as dpkg installs a file
    assert os.readlink(f"/proc/{p.pid}/exe").endswith("(deleted)")
    p.signal(signal.SIGUSR2)
    pid = new_pid(p)
    try:
        assert p.proc.wait(15) == 0
        assert os.readlink(f"/proc/{pid}/exe") == str(exe)
        assert os.stat(f"/proc/{pid}/exe").st_ino == exe.stat().st_ino
        assert raw.get(p.port, "/ok").body == b"ok"
    finally:
        stop_pid(pid)


def test_a_connection_without_its_request_yet_is_answered_after_sigterm(start_proxy, backend):
    """At stop a fresh connection is not closed as idle (its request may be unread in the kernel's
    buffer): it gets 2 s for its first request, answered with Connection: close. pushpin exits at
    once instead."""
    backend_routes(backend, "up-7")
    p = start_proxy(routes=f"* {backend.addr}\n", conf=CONF)
    with raw.RawConn(p.port) as c:
        time.sleep(0.2)  # accepted by a worker
        p.signal(signal.SIGTERM)
        time.sleep(0.3)  # the stop has begun
        c.send(b"GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.recv_response()
        assert r.status == 200 and r.body == b"ok"
        assert r.header("Connection") == "close"
        assert c.is_closed()
    assert p.proc.wait(15) == 0


def test_a_websocket_is_closed_going_away_and_reconnects_to_the_new_process(start_proxy):
    """Passthrough WebSocket through an upgrade: closed with 1001 (going away); a new one works
    through the new process."""
    import asyncio
    from wsutil import WsBackend, connect, recv, closed, run
    wsb = WsBackend()
    p = start_proxy(routes=f"* {wsb.addr}", conf=CONF)
    pid = None
    try:
        async def main():
            nonlocal pid
            ws = await connect(p, "/echo")
            await ws.send("before")
            assert await recv(ws) == "before"
            p.signal(signal.SIGUSR2)
            pid = await asyncio.get_running_loop().run_in_executor(None, new_pid, p)
            code, _ = await closed(ws, 15)
            assert code == 1001
            again = await connect(p, "/echo")
            await again.send("after")
            assert await recv(again) == "after"
            await again.close()
        run(main())
        assert p.proc.wait(15) == 0
    finally:
        if pid:
            stop_pid(pid)
        wsb.stop()
