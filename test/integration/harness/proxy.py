"""Start/stop the proxy under test (gripd or the reference pushpin) on free ports.

Target selection: env GRIPD_TARGET=pushpin runs `pushpin --config <conf>`;
anything else (default) runs `$GRIPD_BIN --config <conf>` (GRIPD_BIN defaults to
<repo>/build/gripd).

The config is Debian's pushpin.conf layout (copied in data/debian-pushpin.conf)
with rundir/logdir inside the instance dir and every TCP port (client HTTP,
publish HTTP, ZMQ push_in_spec, push_in_sub_specs, command_spec) free.
"""

from __future__ import annotations

import os
import re
import shutil
import signal as _signal
import socket
import subprocess
import json
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
REPO = HERE.parents[2]
DEBIAN_CONF = DATA / "debian-pushpin.conf"

TARGET = "pushpin" if os.environ.get("GRIPD_TARGET", "gripd").strip().lower() == "pushpin" else "gripd"
IS_PUSHPIN = TARGET == "pushpin"
IS_GRIPD = not IS_PUSHPIN

STARTUP_TIMEOUT = float(os.environ.get("GRIPD_TEST_STARTUP_TIMEOUT", "15"))
STOP_TIMEOUT = 10.0


def proxy_command() -> list:
    if IS_PUSHPIN:
        return [os.environ.get("PUSHPIN_BIN", "pushpin")]
    b = os.environ.get("GRIPD_BIN") or str(REPO / "build" / "gripd")
    return [b]


# Ports are handed out from below the kernel's ephemeral range (32768-60999 by default), so no
# outgoing connection of another test takes one between the check and the bind, and each pytest-xdist
# worker (gw0, gw1, ...) has its own slice, so tests running at once never pick the same port. Within
# a slice ports go round in order, so a port comes back only after the whole slice was used.
_PORT_LOW, _PORT_HIGH, _SLICES = 20000, 32760, 4
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_slice = int(_worker[2:]) % _SLICES if _worker[2:].isdigit() else 0
_slice_size = (_PORT_HIGH - _PORT_LOW) // _SLICES
_next_port = [_PORT_LOW + _slice * _slice_size + (os.getpid() * 7919) % _slice_size]


def free_port(host: str = "127.0.0.1") -> int:
    base = _PORT_LOW + _slice * _slice_size
    for _ in range(_slice_size):
        p = _next_port[0]
        _next_port[0] = base + (p + 1 - base) % _slice_size
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the slice is full: any port
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


_handed_out: set = set()


def unique_free_port(host: str = "127.0.0.1") -> int:
    """A free port not handed out before in this test run (avoids reuse races)."""
    for _ in range(100):
        p = free_port(host)
        if p not in _handed_out:
            _handed_out.add(p)
            return p
    raise RuntimeError("no free port")


def dead_port() -> int:
    """A port with (very likely) nothing listening: connect => refused."""
    return unique_free_port()


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


PROBE_HOST = "harness-probe.invalid"
PROBE_REQUEST = (b"GET / HTTP/1.1\r\nHost: localhost\r\nPushpin-Check: 1\r\n"
                 b"Connection: close\r\n\r\n")


def _recv_until(s: socket.socket, pred, limit: int = 65536) -> bytes:
    data = b""
    while not pred(data) and len(data) < limit:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def probe_origin(port: int, timeout: float = 0.3) -> bool:
    """pushpin: one round trip to the probe origin whose body is sent only after
    the 100 Continue, so the request reaches the origin in two ZeroMQ messages
    (condure->proxy and proxy->zurl stream sockets) and the answer comes back."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"POST /probe HTTP/1.1\r\nHost: {PROBE_HOST}\r\nContent-Length: 10\r\n"
                      f"Expect: 100-continue\r\nConnection: close\r\n\r\n".encode())
            head = _recv_until(s, lambda d: b"\r\n\r\n" in d)
            if not head.startswith(b"HTTP/1.1 100"):
                return False
            s.sendall(b"probe-body")
            data = _recv_until(s, lambda d: d.endswith(b"probe-body"))
            return b" 200 " in data.split(b"\r\n", 1)[0] + b" " and data.endswith(b"probe-body")
    except OSError:
        return False


def probe_grip(port: int, publish_port: int, timeout: float = 0.3, attempts: int = 10) -> bool:
    """pushpin: a request held by the probe origin (Grip-Hold: response) and
    released by a publish, so proxy->handler and handler->condure are wired."""
    import uuid
    ch = "harness-probe-" + uuid.uuid4().hex
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET /grip-probe?ch={ch} HTTP/1.1\r\nHost: {PROBE_HOST}\r\n"
                      f"Connection: close\r\n\r\n".encode())
            body = json.dumps({"items": [{"channel": ch, "formats": {
                "http-response": {"body": "released"}}}]}).encode()
            pub = (f"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
            for _ in range(attempts):
                try:
                    with socket.create_connection(("127.0.0.1", publish_port), timeout=timeout) as ps:
                        ps.sendall(pub)
                        _recv_until(ps, lambda d: False)
                except OSError:
                    pass
                try:
                    data = _recv_until(s, lambda d: d.endswith(b"released"))
                except socket.timeout:
                    continue
                return data.startswith(b"HTTP/1.1 200") and data.endswith(b"released")
    except OSError:
        return False
    return False


def http_answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0,
                 request: bytes = PROBE_REQUEST, expect: Optional[bytes] = None) -> bool:
    """True if an HTTP response comes back for the probe request (and, if
    expect is given, the response ends with it)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if expect is None and b"\r\n" in data:
                    break
                if expect is not None and data.endswith(expect):
                    break
            if not data.startswith(b"HTTP/"):
                return False
            return expect is None or (data.startswith(b"HTTP/1.1 200") and data.endswith(expect))
    except OSError:
        return False


# ---------------------------------------------------------------------------
# config file editing (keeps comments and layout, like a human would)

def edit_conf(text: str, overrides: dict) -> str:
    """overrides: {"section": {"key": value|None}} ; None deletes the key.
    Also accepts flat {"section.key": value}. Keys absent from a section are
    appended at its end; missing sections are appended to the file."""
    ov: dict = {}
    for k, v in (overrides or {}).items():
        if isinstance(v, dict):
            ov.setdefault(k, {}).update(v)
        else:
            sec, _, key = k.partition(".")
            ov.setdefault(sec, {})[key] = v
    out = []
    section = None
    pending = {s: dict(kv) for s, kv in ov.items()}

    def flush(sec):
        if sec in pending:
            # insert before trailing blank lines of the section
            tail = []
            while out and out[-1].strip() == "":
                tail.append(out.pop())
            for k, v in pending.pop(sec).items():
                if v is not None:
                    out.append(f"{k}={v}")
            out.extend(tail)

    for line in text.splitlines():
        m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if m:
            flush(section)
            section = m.group(1).strip()
            out.append(line)
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*=", line)
        if m and section in pending and m.group(1) in pending[section]:
            v = pending[section].pop(m.group(1))
            if v is not None:
                out.append(f"{m.group(1)}={v}")
            continue
        out.append(line)
    flush(section)
    for sec, kv in pending.items():
        out.append("")
        out.append(f"[{sec}]")
        for k, v in kv.items():
            if v is not None:
                out.append(f"{k}={v}")
    return "\n".join(out) + "\n"


# internal.conf keys that point pushpin-proxy at a runner-started zurl
ZURL_SPECS = {
    "zurl_out_specs": "ipc://{rundir}/{ipc_prefix}zurl-in",
    "zurl_out_stream_specs": "ipc://{rundir}/{ipc_prefix}zurl-in-stream",
    "zurl_in_specs": "ipc://{rundir}/{ipc_prefix}zurl-out",
}


class ProxyStartError(Exception):
    pass


class Proxy:
    """A running proxy instance. Attributes:
    port, http_url, publish_port, publish_url, proc, conf_path, routes_path,
    dir, push_in_spec, push_in_sub_spec, command_spec."""

    def __init__(self, base_dir: Optional[str] = None, routes: Optional[str] = "* test",
                 conf: Optional[dict] = None, args: Optional[list] = None,
                 conf_template: Optional[str] = None, wait: bool = True,
                 http_port: Optional[int] = None, env: Optional[dict] = None,
                 plumbing: bool = True, wait_publish: bool = True, before_start=None,
                 host: str = "127.0.0.1"):
        # short dir: ipc socket paths live inside it (108-char sun_path limit)
        self.dir = Path(tempfile.mkdtemp(prefix="gi-", dir=base_dir or "/tmp"))
        self.rundir = self.dir / "run"
        self.logdir = self.dir / "log"
        self.rundir.mkdir()
        self.logdir.mkdir()
        # host: the loopback address the client and control listeners bind (127.0.0.2, ... for
        # several instances side by side, harness/deployment.py)
        self.host = host
        self.port = http_port or unique_free_port(host)
        self.publish_port = unique_free_port(host)
        self.push_in_spec = f"tcp://127.0.0.1:{unique_free_port()}"
        self.push_in_sub_spec = f"tcp://127.0.0.1:{unique_free_port()}"
        self.command_spec = f"tcp://127.0.0.1:{unique_free_port()}"
        self.conf_path = self.dir / "pushpin.conf"
        self.routes_path = self.dir / "routes"
        self.stdout_path = self.dir / "stdout.log"
        self.args = list(args or [])
        self.returncode: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None

        base = {
            "global": {"rundir": str(self.rundir)},
            "runner": {"http_port": str(self.port) if host == "127.0.0.1" else f"{host}:{self.port}",
                       "logdir": str(self.logdir)},
            "proxy": {"routesfile": "routes"},
            "handler": {
                "push_in_spec": self.push_in_spec,
                "push_in_sub_specs": self.push_in_sub_spec,
                "push_in_http_addr": host,
                "push_in_http_port": str(self.publish_port),
                "command_spec": self.command_spec,
            },
        }
        if plumbing:
            # Debian's pushpin 1.36 reaches origins through zurl (a system service
            # listening on /var/run/zurl). Run it under the runner instead and point
            # the proxy at it. gripd ignores these keys. plumbing=False keeps the
            # file as Debian ships it (only dirs and ports rewritten): then pushpin
            # can serve only the `test` target.
            base["runner"]["services"] = "condure,zurl,pushpin-proxy,pushpin-handler"
            base["proxy"].update(ZURL_SPECS)
        for sec, kv in (conf or {}).items():
            if isinstance(kv, dict):
                base.setdefault(sec, {}).update(kv)
            else:
                s, _, k = sec.partition(".")
                base.setdefault(s, {})[k] = kv
        template = conf_template if conf_template is not None else DEBIAN_CONF.read_text()
        self.conf_path.write_text(edit_conf(template, base))
        if routes is not None:
            self.routes_path.write_text(routes if routes.endswith("\n") else routes + "\n")
        self.routes = routes
        self._env = env
        self.wait_publish = wait_publish
        self._probe_backend = None
        if IS_PUSHPIN and routes is not None and plumbing:
            self._add_probe_route()
        if before_start is not None:
            before_start(self.dir)  # e.g. TLS certificates in <dir>/runner/certs
        self.start(wait=wait)

    def _add_probe_route(self):
        """pushpin only: its processes talk over ZeroMQ, and a message sent
        before the peer socket is connected is lost (slow joiner): early
        requests can hang, request bodies sent later vanish, held responses
        never arrive. Append a route for a reserved host to a private probe
        origin and wait, at startup, until (1) a request whose body follows a
        100 Continue made it there and back and (2) when the publish port is
        awaited, a request held by the origin (Grip-Hold) was released by a
        publish. The line only matches Host: harness-probe.invalid, so other
        routing is unchanged."""
        from .backend import Backend, Response
        self._probe_backend = Backend(lambda req: req.body or b"probe")
        self._probe_backend.route("/grip-probe", lambda req: Response(
            200, b"held", [("Grip-Hold", "response"), ("Grip-Channel", req.query.split("=", 1)[1]),
                           ("Content-Type", "text/plain")]))
        line = f"{PROBE_HOST} {self._probe_backend.addr}"
        if "--route" in self.args:
            self.args += ["--route", line]
        else:
            with open(self.routes_path, "a") as f:
                f.write(f"# harness readiness probe (pushpin only)\n{line}\n")

    # --- urls -------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def publish_url(self) -> str:
        return f"http://{self.host}:{self.publish_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    # --- lifecycle ----------------------------------------------------------
    def start(self, wait: bool = True):
        cmd = proxy_command() + ["--config", str(self.conf_path)] + self.args
        # GRIPD_WORKERS=N runs gripd with N event loops (CI reruns the cross-loop tests with 4).
        if not IS_PUSHPIN and os.environ.get("GRIPD_WORKERS") and "--workers" not in self.args:
            cmd += ["--workers", os.environ["GRIPD_WORKERS"]]
        if IS_GRIPD and not Path(cmd[0]).exists():
            raise ProxyStartError(f"gripd binary not found: {cmd[0]} (set GRIPD_BIN or build first)")
        self.cmd = cmd
        self._out = open(self.stdout_path, "ab")
        env = dict(os.environ)
        env.update(self._env or {})
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, cwd=str(self.dir),
                                     start_new_session=True, env=env)
        self.returncode = None
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT, ports=None, probe: bool = True):
        """Wait until the client and publish ports accept, then until the client
        port answers an HTTP request (pushpin's condure accepts before
        pushpin-proxy is wired up). The probe carries `Pushpin-Check: 1`, which
        pushpin answers itself (200, license text) without contacting a backend;
        any HTTP response counts, and harness backends ignore such requests."""
        if ports is None:
            ports = [self.port] + ([self.publish_port] if self.wait_publish else [])
        deadline = time.monotonic() + timeout
        pending = list(ports)

        def fail(why):
            self.stop()
            raise ProxyStartError(f"{TARGET} {why} within {timeout}s\n"
                                  f"cmd: {' '.join(self.cmd)}\n{self.log()}")

        while pending:
            if self.proc.poll() is not None:
                raise ProxyStartError(f"{TARGET} exited with {self.proc.returncode} during startup\n"
                                      f"cmd: {' '.join(self.cmd)}\n{self.log()}")
            if port_accepts(pending[0], self.host):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                fail(f"did not accept on ports {pending}")
            time.sleep(0.05)
        while probe:
            if self.proc.poll() is not None:
                raise ProxyStartError(f"{TARGET} exited with {self.proc.returncode} during startup\n"
                                      f"cmd: {' '.join(self.cmd)}\n{self.log()}")
            if http_answers(self.port, host=self.host, timeout=0.3):
                break
            if time.monotonic() > deadline:
                fail(f"did not answer an HTTP probe on port {self.port}")
            time.sleep(0.05)
        while probe and self._probe_backend is not None:
            if self.proc.poll() is not None:
                raise ProxyStartError(f"{TARGET} exited with {self.proc.returncode} during startup\n"
                                      f"cmd: {' '.join(self.cmd)}\n{self.log()}")
            if probe_origin(self.port):
                break
            if time.monotonic() > deadline:
                fail("did not pass a probe request through to an origin")
        while probe and self._probe_backend is not None and self.wait_publish:
            if self.proc.poll() is not None:
                raise ProxyStartError(f"{TARGET} exited with {self.proc.returncode} during startup\n"
                                      f"cmd: {' '.join(self.cmd)}\n{self.log()}")
            if probe_grip(self.port, self.publish_port):
                break
            if time.monotonic() > deadline:
                fail("did not release a held probe request by a publish")

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def children(self) -> list:
        """pids of the proxy's direct children (pushpin runs condure, zurl,
        pushpin-proxy, pushpin-handler, each in its own process group)."""
        out = []
        if self.proc is None:
            return out
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                out.append(int(d.name))
        return out

    def stop(self, timeout: float = STOP_TIMEOUT, sig=_signal.SIGTERM) -> Optional[int]:
        """Send sig (SIGTERM), wait up to timeout, then SIGKILL. Leftover children
        are killed too. Returns the exit code (negative = killed by that signal,
        as subprocess reports it)."""
        if self.proc is None:
            return None
        kids = self.children()
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._killpg()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        self._killpg()
        self._kill_leftovers(kids)
        try:
            self._out.close()
        except Exception:
            pass
        return self.returncode

    def _kill_leftovers(self, pids):
        marker = str(self.dir).encode()
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:  # still ours (pid not reused)
                try:
                    os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _killpg(self):
        try:
            os.killpg(self.proc.pid, _signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_routes(self, text: str, atomic: bool = False):
        """Replace the routes file content: in place (truncate+write) or, with
        atomic=True, by writing a temp file and renaming it over the old one."""
        text = text if text.endswith("\n") else text + "\n"
        if atomic:
            tmp = self.routes_path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.routes_path)
        else:
            with open(self.routes_path, "w") as f:
                f.write(text)

    def log(self) -> str:
        parts = []
        for p in [self.stdout_path] + sorted(self.logdir.glob("*")):
            try:
                data = p.read_text(errors="replace")
            except OSError:
                continue
            if data:
                parts.append(f"----- {p.name} -----\n{data[-20000:]}")
        return "\n".join(parts)

    def close(self) -> Optional[int]:
        """stop() and release harness resources (probe origin)."""
        rc = self.stop()
        if self._probe_backend is not None:
            self._probe_backend.stop()
        return rc

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
