"""gripd as a systemd service: the Type=notify protocol and the unit file the build generates.

- READY=1 reaches $NOTIFY_SOCKET only once the client and publish ports accept connections, so units
  ordered after gripd.service find it listening; SIGHUP (systemctl reload) is framed by RELOADING=1
  and READY=1; SIGTERM (systemctl stop) sends STOPPING=1.
- Startup waits for every worker (the startup latch): a worker that does not come up in time makes
  gripd exit 1 with one error line naming it, and READY=1 is never sent; a slow one is waited for.
  The debug knobs GRIPD_DEBUG_HOLD_WORKER and GRIPD_DEBUG_START_TIMEOUT_MS (config/debug_knobs.hpp)
  hold one worker back before it counts in and shorten the latch's wait; the latch is gripd's own.
- The generated gripd.service passes `systemd-analyze verify` (with ExecStart pointed at this build).
Pushpin 1.36's runner speaks no notify protocol, so these are gripd_only.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness.proxy import Proxy, port_accepts, proxy_command

pytestmark = pytest.mark.gripd_only("pushpin 1.36 does not implement sd_notify; the unit file is gripd's")


@pytest.fixture
def notify_socket(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    s.bind(path)
    s.settimeout(15)
    yield s, path
    s.close()


def test_notify_ready_reload_stopping(notify_socket):
    s, path = notify_socket
    p = Proxy(routes="* test", env={"NOTIFY_SOCKET": path}, wait=False)
    try:
        assert s.recv(4096) == b"READY=1"
        # READY means listening: no retry loop here, the ports must accept at once.
        assert port_accepts(p.port)
        assert port_accepts(p.publish_port)
        p.signal(signal.SIGHUP)
        assert s.recv(4096) == b"RELOADING=1"
        assert s.recv(4096) == b"READY=1"
        assert p.stop() == 0
        assert s.recv(4096) == b"STOPPING=1"
    finally:
        p.close()


def test_no_notify_socket_runs_normally(notify_socket):
    """Without NOTIFY_SOCKET nothing is sent anywhere and gripd serves as usual."""
    s, _ = notify_socket
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    p = Proxy(routes="* test", env=env, wait=True)
    try:
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(4096)
        assert port_accepts(p.port)
    finally:
        p.close()


def received(s):
    """Every datagram already queued on the notify socket."""
    s.setblocking(False)
    out = []
    while True:
        try:
            out.append(s.recv(4096))
        except BlockingIOError:
            return out


def test_worker_that_does_not_start_fails_startup_without_ready(notify_socket):
    s, path = notify_socket
    # Worker 1 is held far longer than the latch waits; worker 0 starts normally.
    env = {"NOTIFY_SOCKET": path, "GRIPD_DEBUG_START_TIMEOUT_MS": "3000",
           "GRIPD_DEBUG_HOLD_WORKER": "1:120000"}
    p = Proxy(routes="* test", env=env, args=["--workers", "2"], wait=False)
    try:
        rc = p.proc.wait(timeout=30)
        log = p.log()
        assert rc == 1, log
        errors = [line for line in log.splitlines() if line.startswith("[ERR]")]
        assert len(errors) == 1, log
        assert "startup failed: worker 1 did not start within 3 s (1 of 2 workers started)" in errors[0]
        assert "started 2 workers" not in log
        assert b"READY=1" not in received(s)  # the process is gone: anything it sent is queued
    finally:
        p.close()


def test_startup_waits_for_a_slow_worker(notify_socket):
    s, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "GRIPD_DEBUG_HOLD_WORKER": "1:1000"}
    p = Proxy(routes="* test", env=env, args=["--workers", "2"], wait=False)
    try:
        assert s.recv(4096) == b"READY=1"
        # By the lines' timestamps, not their order: each thread's lines reach the log through its
        # own queue to the writer thread, so lines of two threads may be written out of order, and
        # may reach the file after READY=1 (under ASan that took longer than reading it once).
        def stamp(text):
            deadline = time.monotonic() + 10
            while True:
                line = next((line for line in p.log().splitlines() if text in line), None)
                if line is not None:
                    return line.split()[1] + " " + line.split()[2]  # "[LEVEL] YYYY-MM-DD HH:MM:SS.mmm ..."
                assert time.monotonic() < deadline, f"no log line with {text!r}:\n{p.log()}"
                time.sleep(0.05)
        # READY (after "started") came only once worker 1 was up
        assert stamp("worker 1: hold over") <= stamp("started 2 workers")
        assert port_accepts(p.port)
        assert p.stop() == 0
    finally:
        p.close()


def test_unit_file_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    binary = Path(proxy_command()[0]).resolve()
    unit = binary.parent / "gripd.service"
    assert unit.exists(), f"the build generates {unit}"
    text = unit.read_text()
    assert "Type=notify" in text
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    installed_bin = exec_start.split("=", 1)[1].split()[0]
    local = tmp_path / "gripd.service"
    local.write_text(text.replace(installed_bin, str(binary)))
    r = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
