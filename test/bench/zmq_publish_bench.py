#!/usr/bin/python3
"""Deliveries per second to SUBS held HTTP streams on one channel, publishing MESSAGES items one by
one over the HTTP control API, the ZeroMQ PULL input (a PUSH socket) and the ZeroMQ SUB input (a PUB
socket). A benchmark program: it prints figures, it never fails on them.

Run through zmq_publish_bench.sh (gripd and pushpin in one run, the same generated config: the
integration harness's). Environment: GRIPD_TARGET (gripd|pushpin), SUBS (100), MESSAGES (1000),
GRIPD_BIN, MODES ("http pull sub"), STATS: `set` (Debian's stats_spec, nobody subscribed: the
default), `unset` (no stats_spec), `listening` (a SUB socket reads every stats event).
Subscribers use the built-in `test` target (/stream?channel=...), read by one thread with
a selector; a run ends when every subscriber has every message (bounded by a 60 s timeout)."""

import os
import selectors
import socket
import sys
import time
import urllib.request
import json

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import zmq  # noqa: E402

from harness.proxy import Proxy, TARGET  # noqa: E402

SUBS = int(os.environ.get("SUBS", "100"))
MESSAGES = int(os.environ.get("MESSAGES", "1000"))
MODES = os.environ.get("MODES", "http pull sub").split()
STATS = os.environ.get("STATS", "set")


def item(channel, text):
    return {"channel": channel, "formats": {"http-stream": {"content": text}}}


class Subscribers:
    def __init__(self, port, channel, n):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.counts = {}
        self.tails = {}
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET /stream?channel={channel} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
            self.counts[s] = 0

    def pump(self, marker: bytes, timeout: float) -> int:
        """Reads for up to `timeout`; returns how many subscribers have seen `marker` count times."""
        for key, _ in self.sel.select(timeout):
            data = key.fileobj.recv(1 << 20)
            self.counts[key.fileobj] += data.count(marker)
        return sum(1 for c in self.counts.values())

    def wait_all(self, marker: bytes, want: int, limit: float) -> bool:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            for key, _ in self.sel.select(0.05):
                # a marker split across two reads still counts once: keep the previous tail
                s = key.fileobj
                data = self.tails.get(s, b"") + s.recv(1 << 20)
                self.counts[s] += data.count(marker)
                self.tails[s] = data[-(len(marker) - 1):] if len(marker) > 1 else b""
            if all(c >= want for c in self.counts.values()):
                return True
        return False

    def reset(self):
        for s in self.counts:
            self.counts[s] = 0
        self.tails = {}

    def close(self):
        for s in self.socks:
            s.close()


def http_publish(url, body):
    req = urllib.request.Request(url + "/publish/", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def run(proxy, mode, subs, channel):
    ctx = zmq.Context.instance()
    marker = f"<{mode}>".encode()
    payload = "x" * 64
    send = None
    if mode == "http":
        send = lambda m: http_publish(proxy.publish_url, {"items": [item(channel, m)]})  # noqa: E731
    elif mode == "pull":
        push = ctx.socket(zmq.PUSH)
        push.connect(proxy.push_in_spec)
        send = lambda m: push.send(b"J" + json.dumps(item(channel, m)).encode())  # noqa: E731
    else:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 0)
        pub.connect(proxy.push_in_sub_spec)
        send = lambda m: pub.send_multipart([channel.encode(), b"J" + json.dumps(item(channel, m)).encode()])  # noqa: E731
    # warm-up: until every subscriber sees one (a SUB joins late)
    subs.reset()
    warm = f"warm-{mode}\n".encode()
    end = time.monotonic() + 20
    while time.monotonic() < end:
        send(warm.decode())
        if subs.wait_all(warm, 1, 0.2):
            break
    else:
        return None
    time.sleep(0.3)
    subs.wait_all(b"\x00", 0, 0.2)  # drain extra warm-ups
    subs.reset()
    t0 = time.monotonic()
    for i in range(MESSAGES):
        send(f"{payload}{marker.decode()}{i}\n")
    ok = subs.wait_all(marker, MESSAGES, 60)
    elapsed = time.monotonic() - t0
    got = sum(subs.counts.values())
    return got / elapsed, ok, elapsed


def main():
    # message_rate off on both (Debian sets 2500/s): the engines are measured, not the limiters.
    conf = {"handler.message_rate": None, "handler.message_hwm": None}
    if STATS == "unset":
        conf["handler.stats_spec"] = None
    proxy = Proxy(routes="* test", conf=conf)
    reader = None
    if STATS == "listening":
        import threading
        reader = zmq.Context.instance().socket(zmq.SUB)
        reader.setsockopt(zmq.SUBSCRIBE, b"")
        reader.connect(f"ipc://{proxy.rundir}/pushpin-stats")
        events = [0]

        def drain():
            while True:
                try:
                    reader.recv()
                except zmq.ZMQError:
                    return
                events[0] += 1
        threading.Thread(target=drain, daemon=True).start()
    try:
        subs = Subscribers(proxy.port, "bench", SUBS)
        time.sleep(1.0)
        for mode in MODES:
            r = run(proxy, mode, subs, "bench")
            if r is None:
                print(f"{TARGET:8s} {mode:5s} warm-up never reached every subscriber")
                continue
            rate, ok, elapsed = r
            print(f"{TARGET:8s} stats={STATS:9s} {mode:5s} {SUBS} subscribers x {MESSAGES} messages: "
                  f"{rate:10.0f} deliveries/s ({elapsed:.2f} s){'' if ok else ' INCOMPLETE'}", flush=True)
        subs.close()
        if reader is not None:
            print(f"{TARGET:8s} stats={STATS:9s} stats events read: {events[0]}", flush=True)
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
