"""Publish sequencing and id dedupe (PROTOCOL.md 3.6, [handler] message_wait / id_cache_ttl),
observed on Debian's pushpin 1.36.0 with message_wait=2000 (the Debian default is 5000).

Observed pushpin details encoded here:
- an item whose prev-id is not the channel's last id waits (up to message_wait) for its
  predecessor; when that arrives both go out in order. If it never arrives, the waiting
  items go out after ~message_wait (+0.1 s), still in order.
- the first item on a channel (no last id known) goes out at once whatever its prev-id.
- a batch published in reverse order in one request goes out in prev-id order.
- id dedupe (id_cache_ttl, 60 s in Debian's conf): an item whose id was already published
  on the channel is dropped, also when not consecutive, and also with no-seq; with
  id_cache_ttl=0 duplicates are delivered.
- no-seq: true skips the wait: delivered at once, in arrival order.
- sequencing is per channel: a channel waiting for a gap does not hold up another one.
"""

import time

import pytest

from harness.backend import Response
from griputil import after_sync, hold, hs_item, publish, sync_stream

WAIT_MS = 2000
CONF = {"handler": {"message_wait": str(WAIT_MS), "id_cache_ttl": "60"}}


def sub(proxy, backend, channel):
    backend.route("/" + channel, Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel)]))
    c = hold(proxy, backend, "/" + channel, stream=True)
    sync_stream(proxy, channel, [c])
    return c


def events_after(c, t0):
    """(seconds since t0, chunk) per decoded chunk after t0 (sync markers excluded)."""
    return [(t - t0, d) for t, d in c.events if t >= t0 and b"~sync~" not in d]


@pytest.mark.proxy(conf=CONF)
def test_out_of_order_publishes_delivered_in_order(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "1\n", id="1")])
    c.wait_body(b"1\n")
    publish(proxy, [hs_item("s", "3\n", id="3", prev_id="2")])
    assert c.quiet(0.4) == b""  # 3 waits for 2
    publish(proxy, [hs_item("s", "2\n", id="2", prev_id="1")])
    c.wait_body(b"3\n", timeout=1)
    assert after_sync(c) == b"1\n2\n3\n"
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_gap_never_filled_released_after_message_wait(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "1\n", id="1")])
    c.wait_body(b"1\n")
    t0 = time.monotonic()
    publish(proxy, [hs_item("s", "3\n", id="3", prev_id="2")])
    publish(proxy, [hs_item("s", "4\n", id="4", prev_id="3")])
    c.wait_body(b"4\n", timeout=WAIT_MS / 1000 + 2)
    took = c.events[-1][0] - t0
    assert WAIT_MS / 1000 - 0.5 <= took <= WAIT_MS / 1000 + 1.5, took
    assert after_sync(c) == b"1\n3\n4\n"
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_wrong_prev_id_waits_then_delivers(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "1\n", id="1")])
    c.wait_body(b"1\n")
    t0 = time.monotonic()
    publish(proxy, [hs_item("s", "x\n", id="x", prev_id="zzz")])
    c.wait_body(b"x\n", timeout=WAIT_MS / 1000 + 2)
    assert c.events[-1][0] - t0 >= WAIT_MS / 1000 - 0.5
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_first_item_goes_out_whatever_its_prev_id(proxy, backend):
    c = sub(proxy, backend, "s")
    t0 = time.monotonic()
    publish(proxy, [hs_item("s", "b\n", id="b", prev_id="a")])
    c.wait_body(b"b\n", timeout=1)
    assert c.events[-1][0] - t0 < 1
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_reversed_batch_delivered_in_order(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "0\n", id="0")])
    c.wait_body(b"0\n")
    items = [hs_item("s", "%d\n" % i, id=str(i), prev_id=str(i - 1)) for i in range(1, 21)]
    publish(proxy, list(reversed(items)))
    c.wait_body(b"20\n", timeout=1.5)  # well before message_wait
    assert after_sync(c) == b"".join(b"%d\n" % i for i in range(21))
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_shuffled_publishes_delivered_in_order(proxy, backend):
    import random
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "0\n", id="0")])
    c.wait_body(b"0\n")
    order = list(range(1, 31))
    random.Random(7).shuffle(order)
    for i in order:
        publish(proxy, [hs_item("s", "%d\n" % i, id=str(i), prev_id=str(i - 1))])
    c.wait_body(b"\n30\n", timeout=1.5)
    assert after_sync(c) == b"".join(b"%d\n" % i for i in range(31))
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_sequencing_is_per_channel(proxy, backend):
    a = sub(proxy, backend, "a")
    b = sub(proxy, backend, "b")
    publish(proxy, [hs_item("a", "a1\n", id="1")])
    a.wait_body(b"a1\n")
    publish(proxy, [hs_item("a", "a3\n", id="3", prev_id="2")])  # a now waits for 2
    publish(proxy, [hs_item("b", "b1\n", id="1")])
    publish(proxy, [hs_item("b", "b2\n", id="2", prev_id="1")])
    b.wait_body(b"b2\n", timeout=1)
    assert after_sync(a) == b"a1\n"
    publish(proxy, [hs_item("a", "a2\n", id="2", prev_id="1")])
    a.wait_body(b"a3\n", timeout=1)
    assert after_sync(a) == b"a1\na2\na3\n"
    a.close()
    b.close()


@pytest.mark.proxy(conf=CONF)
def test_duplicate_ids_dropped(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "x\n", id="dup")])
    publish(proxy, [hs_item("s", "y\n", id="dup")])
    publish(proxy, [hs_item("s", "z\n", id="other")])
    publish(proxy, [hs_item("s", "w\n", id="dup")])
    publish(proxy, [hs_item("s", "end\n")])
    c.wait_body(b"end\n")
    assert after_sync(c) == b"x\nz\nend\n"
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_duplicate_ids_are_per_channel(proxy, backend):
    a = sub(proxy, backend, "a")
    b = sub(proxy, backend, "b")
    publish(proxy, [hs_item("a", "a\n", id="same")])
    publish(proxy, [hs_item("b", "b\n", id="same")])
    a.wait_body(b"a\n")
    b.wait_body(b"b\n")
    a.close()
    b.close()


@pytest.mark.proxy(conf={"handler": {"message_wait": str(WAIT_MS), "id_cache_ttl": "0"}})
def test_id_cache_ttl_zero_keeps_duplicates(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "x\n", id="dup")])
    publish(proxy, [hs_item("s", "y\n", id="dup")])
    c.wait_body(b"y\n")
    assert after_sync(c) == b"x\ny\n"
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_no_seq_bypasses_the_wait(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "1\n", id="1")])
    c.wait_body(b"1\n")
    t0 = time.monotonic()
    publish(proxy, [hs_item("s", "3\n", id="3", prev_id="2", no_seq=True)])
    c.wait_body(b"3\n", timeout=1)
    assert c.events[-1][0] - t0 < 1
    publish(proxy, [hs_item("s", "2\n", id="2", prev_id="1")])
    c.wait_body(b"2\n", timeout=1)
    assert after_sync(c) == b"1\n3\n2\n"
    c.close()


@pytest.mark.proxy(conf=CONF)
def test_no_seq_items_are_still_deduplicated(proxy, backend):
    c = sub(proxy, backend, "s")
    publish(proxy, [hs_item("s", "1\n", id="1", no_seq=True)])
    publish(proxy, [hs_item("s", "1b\n", id="1", no_seq=True)])
    publish(proxy, [hs_item("s", "end\n")])
    c.wait_body(b"end\n")
    assert after_sync(c) == b"1\nend\n"
    c.close()
