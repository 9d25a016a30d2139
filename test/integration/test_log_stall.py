"""A log output nobody reads never stalls the proxy: lines go through gripd's log writer thread
with a bounded queue per thread; past it lines are dropped, counted
(gripd_log_lines_dropped_total) and reported in one WARN per second once the output drains."""

import fcntl
import os
import re
import select
import time
import urllib.request

import pytest

from harness.proxy import unique_free_port
from harness.raw import get

F_SETPIPE_SZ = 1031


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


@pytest.mark.gripd_only("pushpin's processes write their logs with blocking writes and have no "
                        "dropped-lines metric")
def test_proxy_keeps_answering_while_its_log_pipe_is_not_read(start_proxy, backend, tmp_path):
    fifo = str(tmp_path / "log.fifo")
    os.mkfifo(fifo)
    # The read end is held open (so gripd's open and writes succeed) but never read until the end.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        try:
            fcntl.fcntl(rfd, F_SETPIPE_SZ, 4096)  # a small pipe fills sooner
        except OSError:
            pass
        mport = unique_free_port()
        proxy = start_proxy(routes=f"* {backend.addr}", args=["--logfile", fifo, "--loglevel", "3"],
                            conf={"handler": {"prometheus_port": str(mport)}})
        dropped = 0
        answered = 0
        for i in range(20000):
            r = get(proxy.port, "/x%d" % i)  # every request is answered (each has a socket timeout)
            assert r.status == 200, r.status
            answered += 1
            if i % 200 == 199:
                dropped = metric(mport, "gripd_log_lines_dropped_total")
                if dropped:
                    break
        assert dropped and dropped > 0, f"no dropped lines after {answered} requests"
        # Once the output drains, gripd says how many lines it dropped.
        text = b""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not re.search(rb"dropped \d+ log lines", text):
            ready, _, _ = select.select([rfd], [], [], 0.2)
            if ready:
                try:
                    text += os.read(rfd, 1 << 16)
                except BlockingIOError:
                    pass
            text = text[-100000:]
        assert re.search(rb"\[WARN\].*dropped \d+ log lines", text), text[-2000:]
        assert proxy.alive()
    finally:
        os.close(rfd)
