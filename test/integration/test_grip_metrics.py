"""Prometheus metrics on [handler] prometheus_port (PROTOCOL.md 6.8), observed on Debian's
pushpin 1.36.0: any path (and method) answers 200 text/plain with the text format; names
carry prometheus_prefix; request_received counter, connection_connected gauge,
connection_minute counter, message_received counter (items taken by the publish API) and
message_sent counter (items written to clients), one increment per item and delivery.
(pushpin-handler's connection_connected lags behind disconnects; not asserted.)"""

import re
import time

import pytest

from harness import raw
from harness.backend import Response
from harness.proxy import unique_free_port
from griputil import hold, hs_item, publish, sync_stream

METRICS = {
    "request_received": "counter",
    "connection_connected": "gauge",
    "connection_minute": "counter",
    "message_received": "counter",
    "message_sent": "counter",
}


def scrape(port, path="/metrics"):
    r = raw.get(port, path)
    assert r.status == 200
    assert r.header("Content-Type", "").split(";")[0] == "text/plain"
    return r.body.decode()


def values(text, prefix=""):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def test_handler_metrics(start_proxy, backend):
    port = unique_free_port()
    p = start_proxy(routes=f"* {backend.addr}\n",
                    conf={"handler": {"prometheus_port": str(port), "prometheus_prefix": "pp_"}})
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "m")]))
    c = hold(p, backend, "/s", stream=True)
    sync_stream(p, "m", [c])
    text = scrape(port)
    for name, kind in METRICS.items():
        assert f"# TYPE pp_{name} {kind}" in text, name
        assert re.search(rf"^# HELP pp_{name} \S", text, re.M), name
    before = values(text)
    for name in METRICS:
        assert "pp_" + name in before, name
    assert before["pp_connection_connected"] >= 1
    assert before["pp_request_received"] >= 1
    for i in range(3):
        publish(p, [hs_item("m", "x%d\n" % i)])
    c.wait_body(b"x2\n")
    time.sleep(0.2)
    after = values(scrape(port, "/any/path"))
    assert after["pp_message_received"] - before["pp_message_received"] == 3
    assert after["pp_message_sent"] - before["pp_message_sent"] == 3
    c.close()
