"""Pushpin's stats socket (PROTOCOL.md §6.9): the PUB socket on `stats_spec` (Debian's pushpin.conf
binds it at ipc://{rundir}/{ipc_prefix}stats, which the harness keeps), read with python3-zmq the
way Pushpin's tools/monitorstats.py reads it: `<type> T<tnetstring>` or `<type> J<json>`.

Observed on pushpin 1.36 (same generated config):
- a proxied request is a `conn` event (id, type http, peer-address, ttl = stats_connection_ttl),
  then the same id with `unavailable: true` when it ends; `activity` counts requests (summed over
  100 ms);
- a held stream's channel is a `sub` event (mode stream, ttl = stats_subscription_ttl,
  subscribers), and `unavailable` once its last subscriber left; a long-poll's unsubscribe comes
  after subscription_linger;
- a published item delivered to subscribers is a `message` event (channel, item-id, count,
  transport);
- every stats_report_interval a `report` (connections, minutes, received, sent, duration);
- stats_format=json gives `J` + JSON with the same fields.
"""

import json
import socket
import threading
import time

import pytest
import requests

from griputil import StreamClient, hold, publish, sync_stream
from harness.backend import Response
from harness.proxy import IS_PUSHPIN

zmq = pytest.importorskip("zmq")
from zmqutil import untn  # noqa: E402


class StatsReader:
    """A SUB socket on the stats socket; collects (type, fields) in a background thread."""

    def __init__(self, spec: str, topic: bytes = b""):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.sock.connect(spec)
        self.events = []
        self.raw = []
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self.stop:
            if not poller.poll(100):
                continue
            m = self.sock.recv()
            at = m.index(b" ")
            mtype, data = m[:at].decode(), m[at + 1:]
            if data[:1] == b"T":
                fields, rest = untn(data[1:])
                assert rest == b""
                fields = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
            elif data[:1] == b"J":
                fields = json.loads(data[1:])
            else:
                fields = {"?": data}
            with self.lock:
                self.raw.append(m)
                self.events.append((mtype, fields))

    def find(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, f in self.events:
                    if pred(t, f):
                        return t, f
            time.sleep(0.05)
        return None

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def stats_spec(proxy) -> str:
    return f"ipc://{proxy.rundir}/pushpin-stats"


@pytest.fixture
def reader(proxy):
    r = StatsReader(stats_spec(proxy))
    yield r
    r.close()


def connected_request(proxy, reader, path="/plain"):
    """Requests until the stats socket shows one (the SUB socket joins asynchronously): returns
    that request's `conn` event."""
    for _ in range(30):
        r = requests.get(proxy.http_url + path, timeout=10)
        assert r.status_code == 200
        ev = reader.find(lambda t, f: t == "conn" and f.get("type") == "http" and not f.get("unavailable"),
                         timeout=1.0)
        if ev:
            return ev[1]
    return None


HOLD_PEER = "127.0.0.9"


class FromClient(StreamClient):
    """A stream client connecting from `source` (another loopback address), so its `conn` event
    names it."""

    def __init__(self, source: str, *a, **kw):
        self.source = source
        super().__init__(*a, **kw)

    def start(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout,
                                             source_address=(self.source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(self.request_bytes())
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"stream-{self.target}")
        self._thread.start()
        return self


def test_conn_open_and_close_and_activity(proxy, backend, reader):
    backend.route("/plain", Response(200, b"hello"))
    opened = connected_request(proxy, reader)
    assert opened is not None, "no conn event"
    assert opened["ttl"] == 120 and opened["id"] and opened["from"]
    assert "127.0.0.1" in opened.get("peer-address", "")
    closed = reader.find(lambda t, f: t == "conn" and f.get("id") == opened["id"] and f.get("unavailable"))
    assert closed is not None, "no conn unavailable event for " + str(opened["id"])
    assert "type" not in closed[1] and "ttl" not in closed[1]
    # gripd builds activity only once it has read the subscription from its XPUB socket, which can
    # come after libzmq already delivers `conn` to the subscriber: a later request counts for sure.
    act = None
    for _ in range(10):
        act = reader.find(lambda t, f: t == "activity", timeout=1.0)
        if act:
            break
        assert requests.get(proxy.http_url + "/plain", timeout=10).status_code == 200
    assert act is not None and act[1]["count"] >= 1


def test_sub_stream_subscribe_and_unsubscribe(proxy, backend, reader):
    backend.route("/plain", Response(200, b"hello"))
    assert connected_request(proxy, reader) is not None  # the reader has joined
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "stats-s")]))
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "stats-s", [c])
    sub = reader.find(lambda t, f: t == "sub" and f.get("channel") == "stats-s" and not f.get("unavailable"))
    assert sub is not None, "no sub event"
    assert sub[1]["mode"] == "stream" and sub[1]["ttl"] == 60 and sub[1]["subscribers"] == 1
    c.close()
    unsub = reader.find(lambda t, f: t == "sub" and f.get("channel") == "stats-s" and f.get("unavailable"))
    assert unsub is not None, "no sub unavailable event"
    assert unsub[1]["mode"] == "stream" and "ttl" not in unsub[1]


@pytest.mark.proxy(conf={"handler": {"subscription_linger": "1"}})
def test_sub_response_unsubscribe_after_linger(proxy, backend, reader):
    backend.route("/plain", Response(200, b"hello"))
    assert connected_request(proxy, reader) is not None
    backend.route("/r", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "stats-r"),
                                                     ("Grip-Timeout", "1")]))
    r = requests.get(proxy.http_url + "/r", timeout=20)
    assert r.status_code == 200
    sub = reader.find(lambda t, f: t == "sub" and f.get("channel") == "stats-r" and not f.get("unavailable"))
    assert sub is not None and sub[1]["mode"] == "response"
    unsub = reader.find(lambda t, f: t == "sub" and f.get("channel") == "stats-r" and f.get("unavailable"))
    assert unsub is not None and unsub[1]["mode"] == "response"


def test_message_event_for_a_delivery(proxy, backend, reader):
    backend.route("/plain", Response(200, b"hello"))
    assert connected_request(proxy, reader) is not None
    backend.route("/m", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "stats-m")]))
    c = hold(proxy, backend, "/m", stream=True)
    sync_stream(proxy, "stats-m", [c])
    publish(proxy, [{"channel": "stats-m", "id": "item-7", "formats": {"http-stream": {"content": "x\n"}}}])
    msg = reader.find(lambda t, f: t == "message" and f.get("channel") == "stats-m" and f.get("item-id") == "item-7")
    assert msg is not None, "no message event"
    assert msg[1]["transport"] == "http-stream" and msg[1]["count"] == 1
    c.close()


@pytest.mark.proxy(conf={"handler": {"stats_report_interval": "1"}})
def test_report_event(proxy, backend, reader):
    backend.route("/plain", Response(200, b"hello"))
    assert connected_request(proxy, reader) is not None
    rep = reader.find(lambda t, f: t == "report" and f.get("connections", 0) >= 1)
    assert rep is not None, "no report event"
    for k in ("from", "connections", "minutes", "received", "sent", "duration"):
        assert k in rep[1], k


@pytest.mark.proxy(conf={"handler": {"stats_format": "json"}})
def test_json_format(proxy, backend, reader):
    backend.route("/plain", Response(200, b"hello"))
    opened = connected_request(proxy, reader)
    assert opened is not None and opened["ttl"] == 120
    with reader.lock:
        assert all(m.split(b" ", 1)[1][:1] == b"J" for m in reader.raw)


def test_topic_subscription_gets_only_that_type(proxy, backend):
    r = StatsReader(stats_spec(proxy), b"conn ")
    try:
        backend.route("/plain", Response(200, b"hello"))
        assert connected_request(proxy, r) is not None
        time.sleep(0.5)
        with r.lock:
            assert {t for t, _ in r.events} == {"conn"}
    finally:
        r.close()


def test_conncheck_answers_the_open_connections(proxy, backend, reader):
    """conncheck {ids} answers the asked ids that are open (here: a held stream's, from its `conn`
    event) and leaves out the others."""
    from zmqutil import Command
    backend.route("/plain", Response(200, b"hello"))
    assert connected_request(proxy, reader) is not None
    backend.route("/cc", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "stats-cc")]))
    # The held stream's `conn` event is told from the others by its peer address: another request's
    # event (the proxy's probe, an earlier request on another worker) may arrive after any snapshot.
    c = FromClient(HOLD_PEER, proxy.port, "/cc")
    c.wait_head()
    sync_stream(proxy, "stats-cc", [c])
    ev = reader.find(lambda t, f: t == "conn" and not f.get("unavailable") and f.get("peer-address") == HOLD_PEER)
    assert ev is not None
    cid = ev[1]["id"]
    cmd = Command(proxy.command_spec)
    try:
        r = cmd.call("conncheck", {"ids": [cid, "no-such-connection"]})
        assert r["success"] is True, r
        assert r["value"] == [cid.encode()]
        c.close()
        assert reader.find(lambda t, f: t == "conn" and f.get("id") == cid and f.get("unavailable"))
        if not IS_PUSHPIN:
            # pushpin 1.36 still answers the closed stream's id here (its handler learns of the
            # close later than its proxy reports it); gripd answers from the same registry the
            # `conn` events come from.
            r = cmd.call("conncheck", {"ids": [cid]})
            assert r["success"] is True and r["value"] == []
    finally:
        cmd.close()
