"""Prometheus metrics on [handler] prometheus_port, with Pushpin's metric names."""

import json
import re
import socket
import time
import urllib.request

import pytest

from harness.backend import grip_hold
from harness.proxy import unique_free_port


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([0-9.eE+-]+)$", line)
        assert m, f"bad exposition line: {line!r}"
        out[m.group(1)] = float(m.group(2))
    return out


def publish(proxy, channel, content):
    body = json.dumps({"items": [{"channel": channel, "formats": {"http-stream": {"content": content}}}]}).encode()
    req = urllib.request.Request(proxy.publish_url + "/publish/", data=body)
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def test_metrics_count_requests_messages_and_held_streams(start_proxy, backend):
    port = unique_free_port()
    backend.route("/s", grip_hold("stream", "metrics-chan"))
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"handler": {"prometheus_port": str(port)}})
    deadline = time.monotonic() + 10
    while True:
        try:
            before = scrape(port)
            break
        except OSError:
            assert time.monotonic() < deadline, "no metrics endpoint"
            time.sleep(0.2)
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    publish(p, "metrics-chan", "hello\n")
    while b"hello" not in buf:
        buf += s.recv(4096)
    after = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = scrape(port)
        if after.get("message_sent", 0) >= before.get("message_sent", 0) + 1:
            break
        time.sleep(0.2)
    assert after["message_received"] >= before.get("message_received", 0) + 1
    assert after["message_sent"] >= before.get("message_sent", 0) + 1
    assert "request_received" in after  # pushpin's handler counts its own requests here, not proxied ones
    assert after["connection_connected"] >= 1
    s.close()


@pytest.mark.gripd_only("gripd's own metrics")
def test_gripd_metrics_held_connections_by_mode(start_proxy, backend):
    port = unique_free_port()
    backend.route("/s", grip_hold("stream", "m2"))
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"handler": {"prometheus_port": str(port)}})
    conns = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        conns.append(s)
    m = scrape(port)
    assert m["request_received"] >= 3
    assert m['gripd_held_connections{mode="stream"}'] == 3
    assert m["gripd_subscriptions"] == 3
    for s in conns:
        s.close()
    deadline = time.monotonic() + 5
    while scrape(port)['gripd_held_connections{mode="stream"}'] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
