"""Per-instance identity ([gripd] instance_id, log_instance): the startup line, the
gripd_instance_info metric on the metrics listener, and (opt-in) every log line including access
lines. Pushpin 1.36 has no instance id: gripd_only."""

import re
import socket
import time
import urllib.request

import pytest

from harness import raw
from harness.backend import Response
from harness.proxy import unique_free_port

pytestmark = pytest.mark.gripd_only("instance identity is gripd's (pushpin has no instance id)")


def scrape(port) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def wait_for(path, pattern, timeout=10.0) -> str:
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            if rx.search(line):
                return line
        assert time.monotonic() < deadline, f"no line matching {pattern!r} in {path}:\n{text[-2000:]}"
        time.sleep(0.05)


def test_configured_instance_id_in_startup_line_metrics_and_every_log_line(start_proxy, backend):
    backend.route("/p", Response(200, b"hello"))
    port = unique_free_port()
    p = start_proxy(routes=f"* {backend.addr}\n",
                    conf={"handler": {"prometheus_port": str(port)},
                          "gripd": {"instance_id": "edge-1", "log_instance": "true"}})
    assert re.search(r"\[edge-1\] \[main\] gripd \S+ starting: instance edge-1, pid %d" % p.pid, p.log())
    assert 'gripd_instance_info{instance_id="edge-1",version="' in scrape(port)
    assert raw.get(p.port, "/p", host="a.example").status == 200
    line = wait_for(p.logdir / "pushpin-proxy.log", r"GET http://a\.example/p ")
    assert re.match(r"\[INFO\] \S+ \S+ \[edge-1\] \[proxy\] GET http://a\.example/p -> ", line), line


def test_default_instance_id_is_host_and_port_and_log_lines_keep_pushpins_format(start_proxy, backend):
    backend.route("/p", Response(200, b"hello"))
    port = unique_free_port()
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"handler": {"prometheus_port": str(port)}})
    want = f"{socket.gethostname()}:{p.port}"
    assert f"starting: instance {want}, pid {p.pid}" in p.log()
    assert f'gripd_instance_info{{instance_id="{want}",version="' in scrape(port)
    assert raw.get(p.port, "/p", host="a.example").status == 200
    line = wait_for(p.logdir / "pushpin-proxy.log", r"GET http://a\.example/p ")
    assert re.match(r"\[INFO\] \S+ \S+ \[proxy\] GET http://a\.example/p -> ", line), line
