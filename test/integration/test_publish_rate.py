"""[handler] message_rate and message_hwm: a publish flood is paced and what exceeds the
high-water mark is dropped (Pushpin 1.36's rate limiter; gripd paces published items at the
publish intake, Pushpin deliveries per route: with one subscriber, as here, the two agree)."""

import re
import threading
import time
import urllib.request

import pytest

from harness.backend import Response
from harness.proxy import unique_free_port
from griputil import StreamClient, hs_item, publish


def stream_sub(proxy, backend, channel):
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel),
                                            ("Content-Type", "text/plain")]))
    c = StreamClient(proxy.port, "/s")
    c.wait_head()
    return c


def synced(proxy, c, channel):
    """Publish a marker until the stream has it (then it is subscribed); then let any extra
    markers still paced drain, so what follows starts from an idle limiter."""
    for _ in range(40):
        publish(proxy, [hs_item(channel, "sync\n")])
        if c.wait_body(b"sync\n", timeout=0.5, raise_=False):
            break
    assert b"sync\n" in c.body
    while True:  # quiet for 1.5 s: nothing more is paced
        n = len(c.body)
        time.sleep(1.5)
        if len(c.body) == n:
            return n


def items_in(body):
    return re.findall(rb"item-(\d+)\n", body)


@pytest.mark.proxy(conf={"handler": {"message_rate": "2", "message_hwm": "100"}})
def test_publish_flood_is_paced_and_the_first_item_goes_at_once(proxy, backend):
    c = stream_sub(proxy, backend, "rate")
    try:
        start = synced(proxy, c, "rate")
        r = publish(proxy, [hs_item("rate", "item-%d\n" % i) for i in range(6)])
        assert r.status == 200  # answered before the paced items are out
        c.wait_body(b"item-0\n", timeout=5)
        # 2 per second: 6 items cannot all be out within 1 s of the first one
        first = time.monotonic()
        c.wait_body(b"item-5\n", timeout=1.0, raise_=False)
        early = items_in(c.body[start:])
        assert len(early) < 6, early
        assert time.monotonic() - first >= 0.9
        c.wait_body(b"item-5\n", timeout=10)
        assert items_in(c.body[start:]) == [b"%d" % i for i in range(6)]
    finally:
        c.close()


@pytest.mark.proxy(conf={"handler": {"message_rate": "1", "message_hwm": "3"}})
def test_items_past_the_hwm_are_dropped_and_the_publish_is_still_answered_200(proxy, backend):
    c = stream_sub(proxy, backend, "hwm")
    try:
        start = synced(proxy, c, "hwm")
        r = publish(proxy, [hs_item("hwm", "item-%d\n" % i) for i in range(10)])
        assert r.status == 200
        c.wait_body(b"item-2\n", timeout=10)
        # the queue is empty again once a later item comes through
        for _ in range(20):
            assert publish(proxy, [hs_item("hwm", "end\n")]).status == 200
            if c.wait_body(b"end\n", timeout=1.5, raise_=False):
                break
        assert b"end\n" in c.body
        assert items_in(c.body[start:]) == [b"0", b"1", b"2"]
    finally:
        c.close()


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


@pytest.mark.gripd_only("the dropped-items metric is gripd's (pushpin only logs a warning)")
def test_dropped_items_are_counted_and_logged(start_proxy, backend):
    mport = unique_free_port()
    proxy = start_proxy(routes=f"* {backend.addr}",
                        conf={"handler": {"message_rate": "1", "message_hwm": "2", "prometheus_port": str(mport)}})
    c = stream_sub(proxy, backend, "cnt")
    try:
        synced(proxy, c, "cnt")
        before = metric(mport, "gripd_messages_dropped_total")
        assert publish(proxy, [hs_item("cnt", "item-%d\n" % i) for i in range(7)]).status == 200
        assert metric(mport, "gripd_messages_dropped_total") - before == 5
        # The line goes through the log writer thread: it may land a moment after the answer.
        deadline = time.monotonic() + 5
        while "exceeded publish hwm (2" not in proxy.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "exceeded publish hwm (2" in proxy.log()
    finally:
        c.close()


@pytest.mark.gripd_only("pushpin 1.36's limiter restarts its batch timer on every publish, so a steady "
                        "flood starves delivery: nothing after the first item until the flood stops")
@pytest.mark.proxy(conf={"handler": {"message_rate": "20", "message_hwm": "1000"}})
def test_a_steady_flood_keeps_flowing_while_it_lasts(proxy, backend):
    c = stream_sub(proxy, backend, "flood")
    try:
        start = synced(proxy, c, "flood")
        stop = threading.Event()
        sent = [0]

        def flood():
            while not stop.is_set():
                publish(proxy, [hs_item("flood", "item-%d\n" % sent[0])])
                sent[0] += 1
                time.sleep(0.01)

        t = threading.Thread(target=flood)
        t.start()
        try:
            c.wait_body(lambda b: len(items_in(b[start:])) >= 10, timeout=10)
            assert not stop.is_set()
        finally:
            stop.set()
            t.join(10)
        got = items_in(c.body[start:])
        assert got == [b"%d" % i for i in range(len(got))]  # in order, none skipped
    finally:
        c.close()
