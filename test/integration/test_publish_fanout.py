"""Fan-out and ordering across many subscribers (each its own client connection, so with
GRIPD_WORKERS > 1 they spread over gripd's worker loops). Checked on Debian's pushpin 1.36.0.
Marked crossloop: CI reruns these under TSan with GRIPD_WORKERS=4."""

import threading
import time

import pytest

from harness.backend import Response
from griputil import (StreamClient, after_sync, hold, hr_item, hs_item, item, keeper, publish, sync_stream)

pytestmark = pytest.mark.crossloop


def stream_route(backend, path, *channels):
    h = [("Grip-Hold", "stream")] + [("Grip-Channel", c) for c in channels]
    backend.route(path, Response(200, b"", h))


def open_streams(proxy, n, path):
    cs = [StreamClient(proxy.port, path, timeout=60) for _ in range(n)]
    for c in cs:
        c.wait_head(timeout=20)
    return cs


def test_200_subscribers_receive_100_publishes_in_order(proxy, backend):
    stream_route(backend, "/s", "fan")
    cs = open_streams(proxy, 200, "/s")
    try:
        sync_stream(proxy, "fan", cs, timeout=20)
        expect = b"".join(b"msg-%03d\n" % i for i in range(100))
        for i in range(100):
            publish(proxy, [hs_item("fan", "msg-%03d\n" % i)])
        deadline = time.monotonic() + 30
        for c in cs:
            c.wait_body(b"msg-099\n", timeout=max(0.1, deadline - time.monotonic()))
        bad = [i for i, c in enumerate(cs) if after_sync(c) != expect]
        assert not bad, f"{len(bad)} subscribers got a different sequence, e.g. {after_sync(cs[bad[0]])[:200]!r}"
    finally:
        for c in cs:
            c.close()


def test_two_concurrent_publishers_on_different_channels(proxy, backend):
    stream_route(backend, "/a", "A")
    stream_route(backend, "/b", "B")
    stream_route(backend, "/ab", "A", "B")
    sa = open_streams(proxy, 20, "/a")
    sb = open_streams(proxy, 20, "/b")
    sab = open_streams(proxy, 20, "/ab")
    try:
        sync_stream(proxy, "A", sa + sab, marker="~syncA~\n")
        sync_stream(proxy, "B", sb + sab, marker="~syncB~\n")
        errors = []

        def publisher(ch):
            try:
                for i in range(100):
                    publish(proxy, [hs_item(ch, "%s%03d\n" % (ch, i))])
            except Exception as e:  # surfaced below
                errors.append(e)

        ts = [threading.Thread(target=publisher, args=(ch,)) for ch in "AB"]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert not errors
        exp_a = b"".join(b"A%03d\n" % i for i in range(100))
        exp_b = b"".join(b"B%03d\n" % i for i in range(100))
        for c in sa:
            c.wait_body(b"A099\n", timeout=15)
            assert after_sync(c, "~syncA~\n") == exp_a
        for c in sb:
            c.wait_body(b"B099\n", timeout=15)
            assert after_sync(c, "~syncB~\n") == exp_b
        for c in sab:
            c.wait_body(lambda b: b"A099\n" in b and b"B099\n" in b, timeout=15)
            lines = c.body.splitlines(keepends=True)
            # per channel, the order is the publish order (the interleaving is free)
            assert b"".join(ln for ln in lines if ln[:1] == b"A") == exp_a
            assert b"".join(ln for ln in lines if ln[:1] == b"B") == exp_b
    finally:
        for c in sa + sb + sab:
            c.close()


def test_long_poll_and_stream_on_one_channel(proxy, backend):
    backend.route("/poll", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "mix")]))
    stream_route(backend, "/stream", "mix")
    streams = open_streams(proxy, 5, "/stream")
    try:
        sync_stream(proxy, "mix", streams)
        polls = [hold(proxy, backend, "/poll", settle=0) for _ in range(5)]
        time.sleep(0.3)
        both = item("mix", {"http-response": {"body": "as response\n"},
                            "http-stream": {"content": "as stream\n"}})
        publish(proxy, [both])
        for p in polls:
            assert p.wait_complete() == b"as response\n"
            assert p.head.status == 200
        for s in streams:
            s.wait_body(b"as stream\n")
            assert after_sync(s) == b"as stream\n"
        # the released long-polls are gone; streams keep receiving
        publish(proxy, [both])
        for s in streams:
            s.wait_body(b"as stream\nas stream\n")
    finally:
        for s in streams:
            s.close()


def test_one_publish_releases_100_long_polls(proxy, backend):
    backend.route("/poll", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "many")]))
    k = keeper(proxy, backend, "many")  # pushpin re-requests holds that made a new subscription
    polls = [StreamClient(proxy.port, "/poll", timeout=30) for _ in range(100)]
    try:
        backend.wait_requests(101, timeout=20)
        time.sleep(0.3)
        publish(proxy, [hr_item("many", "released\n")])
        for p in polls:
            assert p.wait_complete(timeout=15) == b"released\n"
    finally:
        for p in polls:
            p.close()
        k.close()
