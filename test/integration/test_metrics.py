"""Prometheus metrics on [handler] prometheus_port, with Pushpin's metric names."""

import asyncio
import json
import re
import socket
import time
import urllib.request

import pytest

from harness.backend import Response, grip_hold
from harness.proxy import unique_free_port
from wsutil import SETTLE, closed, connect, control, recv, run, woh, ws_item  # noqa: F401
from wsutil import publish as publish_ws


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


@pytest.mark.gripd_only("gripd's own metrics: pushpin 1.36 exports no WebSocket metrics (checked on its handler "
                        "and proxy prometheus ports)")
def test_gripd_websocket_metrics(start_proxy, woh):
    """Open WebSockets by mode, messages both ways, ws-message deliveries and backend failures,
    summed over the workers."""
    port = unique_free_port()
    woh.on_open = lambda r: [("TEXT", control({"type": "subscribe", "channel": "wsm"}))]
    woh.on_text = lambda t, r: [("TEXT", "m:" + t)]
    def responder(r):
        if ("TEXT", b"fail") in r.events:
            return Response(500, b"no")
        return None

    p = start_proxy(routes=f"*,path_beg=/t/ test\n* {woh.addr},over_http\n",
                    conf={"handler": {"prometheus_port": str(port)}})
    ws_key = 'gripd_websocket_connections{mode="%s"}'

    async def main():
        before = scrape(port)
        a = await connect(p, "/")
        b = await connect(p, "/")
        t = await connect(p, "/t/ws")
        await asyncio.sleep(SETTLE)
        m = scrape(port)
        assert (m[ws_key % "over_http"], m[ws_key % "test"], m[ws_key % "passthrough"]) == (2, 1, 0)
        assert m["gripd_websocket_subscriptions"] == 3
        await a.send("hi")
        assert await recv(a) == "hi"
        await t.send("echo")
        assert await recv(t) == "echo"
        publish_ws(p, ws_item("wsm", "pub"))
        assert await recv(a) == "pub"
        assert await recv(b) == "pub"
        woh.responder = lambda r: responder(r) or woh.answer([])
        await b.send("fail")
        assert (await closed(b))[0] == 1011
        await asyncio.sleep(SETTLE)
        m = scrape(port)
        assert m[ws_key % "over_http"] == 1
        assert m["gripd_websocket_messages_received_total"] - before["gripd_websocket_messages_received_total"] == 3
        # a's echo, t's echo and the two publishes
        assert m["gripd_websocket_messages_sent_total"] - before["gripd_websocket_messages_sent_total"] == 4
        assert m["gripd_websocket_deliveries_total"] - before["gripd_websocket_deliveries_total"] == 2
        assert m["gripd_websocket_backend_failures_total"] - before["gripd_websocket_backend_failures_total"] == 1
        assert m["gripd_websocket_over_http_requests_total"] >= 4  # two OPENs, "hi", "fail"
        await a.close()
        await t.close()
        deadline = time.monotonic() + 5
        while scrape(port)[ws_key % "over_http"] != 0 or scrape(port)[ws_key % "test"] != 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    run(main())
