"""A publish bigger than one loop turn's delivery budget (gripd visits at most 2048 subscriptions
per turn and goes on in the next turns) still reaches every subscriber, every item, in order, with
later publishes behind it and subscribers leaving in the middle."""

import re
import selectors
import socket
import time

import pytest

from harness.backend import Response
from griputil import hs_item, publish

SUBS = 300
BATCH = 30  # items in the first publish: SUBS x BATCH visits, several turns' budget


@pytest.mark.crossloop
def test_large_fanout_in_slices_keeps_order(proxy, backend):
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "big"),
                                            ("Content-Type", "text/plain")]))
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(SUBS):
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        s.sendall(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    leaving = socks[:20]  # these go away while the big publish is being delivered
    bodies = {s: b"" for s in socks}

    def pump(until, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until():
            for key, _ in sel.select(0.1):
                try:
                    d = key.fileobj.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                if not d:
                    sel.unregister(key.fileobj)
                    continue
                bodies[key.fileobj] += d

    try:
        backend.wait_requests(SUBS)
        # every subscriber is subscribed once a marker reached all of them
        for _ in range(50):
            publish(proxy, [hs_item("big", "sync\n")])
            pump(lambda: all(b"sync\n" in b for b in bodies.values()), 0.3)
            if all(b"sync\n" in b for b in bodies.values()):
                break
        assert all(b"sync\n" in b for b in bodies.values())
        for s in bodies:
            bodies[s] = b""
        publish(proxy, [hs_item("big", "item-%03d\n" % i) for i in range(BATCH)])
        for s in leaving:
            sel.unregister(s)
            s.close()
            del bodies[s]
        for i in range(BATCH, BATCH + 20):
            publish(proxy, [hs_item("big", "item-%03d\n" % i)])
        last = b"item-%03d\n" % (BATCH + 19)
        pump(lambda: all(last in b for b in bodies.values()), 30)
        want = [b"item-%03d\n" % i for i in range(BATCH + 20)]
        for s, b in bodies.items():
            got = [x + b"\n" for x in b.split(b"\n") if x.startswith(b"item-")]
            got = [g[g.index(b"item-"):] for g in got]
            assert got == want, (len(got), got[:3], got[-3:])
    finally:
        for s in socks:
            s.close()


BIG_ITEMS = 10000


@pytest.mark.crossloop
def test_big_publish_is_not_interleaved_with_publishes_from_another_connection(start_proxy, backend, target):
    """A 10k-item publish is handed over in slices across loop turns; small publishes to the same
    channel from another connection of the same worker, sent while it is in flight, land wholly
    before or wholly after it, never between two of its items, and each connection's items keep
    their order. gripd runs one worker here: two connections on two workers hand their slices to the
    channel's owner independently, so there a small publish may land between two slices (Pushpin,
    one handler process, keeps the big one whole)."""
    import json
    import threading

    from harness.raw import RawConn

    proxy = start_proxy(routes=f"* {backend.addr}", args=["--workers", "1"] if target == "gripd" else None)
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "big"),
                                            ("Content-Type", "text/plain")]))
    sub = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sub.sendall(b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
    buf = b""
    try:
        backend.wait_requests(1)
        for _ in range(50):
            publish(proxy, [hs_item("big", "sync\n")])
            sub.settimeout(0.3)
            try:
                buf += sub.recv(65536)
            except socket.timeout:
                pass
            if b"sync\n" in buf:
                break
        assert b"sync\n" in buf
        buf = b""
        body = json.dumps({"items": [hs_item("big", "A%05d\n" % i) for i in range(BIG_ITEMS)]}).encode()
        big = RawConn(proxy.publish_port)
        big.send(b"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
        smalls = []

        def small_publishes():
            for i in range(20):
                smalls.append(publish(proxy, [hs_item("big", "B%02d\n" % i)]).status)

        t = threading.Thread(target=small_publishes)
        t.start()
        r = big.recv_response()
        t.join(30)
        assert r.status == 200, (r.status, r.body)
        assert smalls == [200] * 20
        sub.settimeout(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (b"A%05d\n" % (BIG_ITEMS - 1) in buf and b"B19\n" in buf):
            d = sub.recv(1 << 20)
            if not d:
                break
            buf += d
        got = re.findall(rb"([AB]\d+)\n", buf)  # chunk framing aside (pushpin merges items)
        a_pos = [i for i, x in enumerate(got) if x.startswith(b"A")]
        b_items = [x for x in got if x.startswith(b"B")]
        assert [got[i] for i in a_pos] == [b"A%05d" % i for i in range(BIG_ITEMS)]
        assert b_items == [b"B%02d" % i for i in range(20)]
        # contiguous: no small publish between the first and the last big item
        assert a_pos[-1] - a_pos[0] == BIG_ITEMS - 1, "a small publish landed inside the big one"
    finally:
        sub.close()


BUSY_SUBS = 100


@pytest.mark.gripd_only("gripd answers a big publish once its deliveries kept up (it paces the "
                        "publisher); pushpin answers on receipt, so there is no wait to overtake")
@pytest.mark.crossloop
def test_small_publish_on_another_channel_is_not_held_behind_a_big_one(start_proxy, backend):
    """While a big publish to a busy channel waits for its deliveries (100 subscribers x 10k items),
    a one-item publish to another channel, from another connection of the same worker, is answered
    and delivered before the big one is answered: requests keep their order per channel only. The
    broker serves channels round-robin, so the small item is not delivered behind the whole flood
    either."""
    import json
    import threading

    from harness.raw import RawConn

    # Unpaced (no message_rate, which Debian's pushpin.conf sets): paced publishes go strictly in order.
    proxy = start_proxy(routes=f"* {backend.addr}", args=["--workers", "1"], conf={"handler": {"message_rate": None}})
    backend.route("/big", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "busy"),
                                              ("Content-Type", "text/plain")]))
    backend.route("/other", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "other"),
                                                ("Content-Type", "text/plain")]))
    sel = selectors.DefaultSelector()
    subs = []
    for _ in range(BUSY_SUBS):
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: example.com\r\n\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        subs.append(s)
    other = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    other.sendall(b"GET /other HTTP/1.1\r\nHost: example.com\r\n\r\n")
    stop = threading.Event()

    def read_busy():  # the busy channel's subscribers keep reading, as live clients do
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                try:
                    if not key.fileobj.recv(1 << 20):
                        sel.unregister(key.fileobj)
                except (BlockingIOError, InterruptedError):
                    pass

    reader = threading.Thread(target=read_busy, daemon=True)
    reader.start()
    try:
        backend.wait_requests(BUSY_SUBS + 1)
        buf = b""
        other.settimeout(0.3)
        for _ in range(50):  # both channels subscribed once a marker reached the other one
            publish(proxy, [hs_item("busy", "sync\n"), hs_item("other", "sync\n")])
            try:
                buf += other.recv(65536)
            except socket.timeout:
                pass
            if b"sync\n" in buf:
                break
        assert b"sync\n" in buf
        body = json.dumps({"items": [hs_item("busy", "A%05d\n" % i) for i in range(10000)]}).encode()
        big = RawConn(proxy.publish_port, timeout=60)
        big.send(b"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.2)  # the big one is being handed over and waits for its deliveries
        small = RawConn(proxy.publish_port, timeout=60)
        small.send(b"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(json.dumps({"items": [hs_item("other", "S\n")]}))
                   + json.dumps({"items": [hs_item("other", "S\n")]}).encode())
        r_small = small.recv_response()
        assert r_small.status == 200
        other.settimeout(60)
        while b"S\n" not in buf:
            d = other.recv(65536)
            assert d, "the other channel's subscriber was closed"
            buf += d
        # Only now is the big publish answered: the small one went past it, not after it.
        big.sock.settimeout(0.0)
        try:
            early = big.sock.recv(1)
        except (BlockingIOError, InterruptedError):
            early = b""
        assert early == b"", "the big publish was answered before the small one got through"
        big.sock.settimeout(60)
        r_big = big.recv_response()
        assert r_big.status == 200, (r_big.status, r_big.body)
    finally:
        stop.set()
        reader.join(5)
        for s in subs + [other]:
            s.close()
