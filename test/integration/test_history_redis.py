"""Channel history in Redis Streams with the Redis bus ([gripd] bus + history_size; README "History
and resume"): a publish is appended to the channel's stream (`gripd:h:<channel>`) atomically with its
PUBLISH, so an instance that had no subscriber on the channel, or was just started, can replay it,
and an SSE client that moves from one instance to the other gets every item once, in order.
gripd_only: pushpin has neither history nor this bus. They need Debian's redis-server."""

import json
import threading
import time

import pytest

from griputil import SSEParser, StreamClient, control, hs_item, publish
from harness.backend import Response
from harness.bus_stream import stream_items
from harness import redis as redis_harness
from harness.redis import resp_command
from test_bus_redis import redis, wait_subscribed  # noqa: F401 (redis: fixture)

pytestmark = pytest.mark.gripd_only("pushpin 1.36 has no channel history and no Redis bus")


def instance(start_proxy, backend, redis):  # noqa: F811
    return start_proxy(routes=f"* {backend.addr}", conf={"gripd": {"bus": redis.url, "history_size": "1000"}})


def sse_route(backend, channel="feed"):
    backend.route("/events", Response(200, b":ok\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", channel)]))


def ev(name, channel="feed"):
    return hs_item(channel, f"id: {name}\ndata: {name}\n\n", id=name)


def ids_of(body):
    return [e["id"] for e in SSEParser().feed(body) if e.get("event", "message") == "message"]


def test_a_new_instance_replays_from_the_redis_stream(redis, start_proxy, backend):  # noqa: F811
    a = instance(start_proxy, backend, redis)
    sse_route(backend)
    publish(a, [ev(str(n)) for n in range(1, 6)])  # nobody subscribes anywhere
    b = instance(start_proxy, backend, redis)  # started after the publishes
    c = StreamClient(b.port, "/events", headers=[("Last-Event-ID", "2")])
    c.wait_body(lambda body: ids_of(body) == ["3", "4", "5"])
    assert b"gripd-gap" not in c.body
    publish(a, [ev("6")])
    c.wait_body(lambda body: ids_of(body) == ["3", "4", "5", "6"])
    doc = json.loads(control(b, "GET", "/history/feed?after=4").body)
    assert doc["status"] == "covered" and [i["id"] for i in doc["items"]] == ["5", "6"]
    c.close()


def test_a_resume_while_the_bus_is_not_connected_waits_for_it(start_proxy, backend, tmp_path):
    # An instance takes clients while its bus is still coming up (at startup) or reconnecting; a
    # resume then waits for the bus instead of answering "unknown" at once (a client that moved to
    # a freshly started instance would otherwise get a gap that history covers).
    r = redis_harness.Redis(tmp_path)  # with a dir, so SAVE keeps the stream across the restart
    try:
        a = instance(start_proxy, backend, r)
        b = instance(start_proxy, backend, r)
        sse_route(backend)
        publish(a, [ev(str(n)) for n in range(1, 6)])
        r.cmd("SAVE")
        r.stop()
        # Until b's worker that owns the channel has seen its connection go (GET /history asks
        # that worker): from then on it retries after 0.5 s, 1 s, 2 s, well within the 5 s a
        # resume waits.
        deadline = time.monotonic() + 10
        while control(b, "GET", "/history/feed").status != 503:
            assert time.monotonic() < deadline, "b still reads history with Redis down"
            time.sleep(0.05)
        c = StreamClient(b.port, "/events", headers=[("Last-Event-ID", "2")])
        c.wait_body(b":ok\n\n")
        time.sleep(0.2)  # the resume is waiting: nothing is written, no gap
        assert ids_of(c.body) == [] and b"gripd-gap" not in c.body
        r.start()
        c.wait_body(lambda body: ids_of(body) == ["3", "4", "5"], timeout=10)
        assert b"gripd-gap" not in c.body
        c.close()
    finally:
        r.stop()


def test_history_read_while_redis_is_down_is_503_then_works_again(redis, start_proxy, backend):  # noqa: F811
    a = instance(start_proxy, backend, redis)
    publish(a, [ev("1")])
    assert json.loads(control(a, "GET", "/history/feed").body)["status"] == "covered"
    redis.stop()
    deadline = time.monotonic() + 10
    while (r := control(a, "GET", "/history/feed")).status == 200:  # until gripd sees it gone
        assert time.monotonic() < deadline, "GET /history still answers 200 with Redis down"
        time.sleep(0.1)
    assert (r.status, r.body) == (503, b"Bus unavailable.\n")
    assert r.header("content-type") == "text/plain"
    redis.start()  # empty: what Redis kept is gone with it
    deadline = time.monotonic() + 15
    while (r := control(a, "GET", "/history/feed")).status != 200:
        assert time.monotonic() < deadline, "GET /history still fails after Redis came back"
        time.sleep(0.2)
    assert json.loads(r.body) == {"channel": "feed", "status": "unknown", "items": []}


@pytest.mark.crossloop
def test_client_moving_between_instances_gets_every_item_once(redis, start_proxy, backend):  # noqa: F811
    a = instance(start_proxy, backend, redis)
    b = instance(start_proxy, backend, redis)
    sse_route(backend)
    publish(a, [ev("start")])
    total = 120
    done = threading.Event()
    got, last, hops = [], "start", 0

    def publisher():
        # At most 20 items ahead of the client, so it moves several times while items are still
        # being published (a hop that took long, e.g. a slow close of the previous connection, must
        # not let the whole rest be published and arrive in one replay: that moves nothing).
        for n in range(total):
            deadline = time.monotonic() + 10
            while len(got) < n - 20 and time.monotonic() < deadline:
                time.sleep(0.002)
            publish(a if n % 2 else b, [ev(f"i{n}")])
            time.sleep(0.003)
        done.set()
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    deadline = time.monotonic() + 40
    while len(got) < total and time.monotonic() < deadline:
        p = (a, b)[hops % 2]
        hops += 1
        c = StreamClient(p.port, "/events", headers=[("Last-Event-ID", last)])
        parser = SSEParser()
        seen, want = 0, len(got) + 7
        end = time.monotonic() + 10
        while time.monotonic() < end and len(got) < min(want, total):
            with c._cond:
                data = c.body[seen:]
            seen += len(data)
            for e in parser.feed(data):
                assert e.get("event") != "gripd-gap", (e, last)
                if e.get("event", "message") == "message":
                    got.append(e["id"])
                    last = e["id"]
            time.sleep(0.002)
        c.close()
    t.join(20)
    assert hops > 4
    assert got == [f"i{n}" for n in range(total)]


def test_batches_are_kept_as_runs_trimmed_to_history_size_and_replayed_in_order(redis, start_proxy, backend):  # noqa: F811
    # A publish request's items go to Redis as one run per channel (one stream entry, one message):
    # live clients get them one by one in order, items without an id are delivered but not kept,
    # and the stream is trimmed by whole runs while at least history_size items stay: a read shows
    # exactly the last history_size.
    a = start_proxy(routes=f"* {backend.addr}", conf={"gripd": {"bus": redis.url, "history_size": "10"}})
    b = start_proxy(routes=f"* {backend.addr}", conf={"gripd": {"bus": redis.url, "history_size": "10"}})
    sse_route(backend)
    live = StreamClient(b.port, "/events")
    live.wait_head()
    time.sleep(0.3)
    n = 0
    for _ in range(3):
        batch = []
        for _ in range(7):
            n += 1
            batch.append(ev(str(n)))
            batch.append(hs_item("feed", f"data: no id after {n}\n\n"))  # delivered, not kept
        publish(a, batch)
    live.wait_body(lambda body: body.count(b"no id after 21") == 1)
    events = [e for e in SSEParser().feed(live.body) if e.get("event", "message") == "message"]
    want = []
    for k in range(1, 22):
        want += [str(k), f"no id after {k}"]
    assert [e["data"] for e in events] == want
    assert 1 < int(redis.command("XLEN", "gripd:h:feed")[1:]) <= 3  # runs, not items
    for p in (a, b):
        doc = json.loads(control(p, "GET", "/history/feed").body)
        assert [i["id"] for i in doc["items"]] == [str(k) for k in range(12, 22)]
    c = StreamClient(a.port, "/events", headers=[("Last-Event-ID", "15")])
    c.wait_body(lambda body: ids_of(body) == [str(k) for k in range(16, 22)])
    assert b"gripd-gap" not in c.body
    c.close()
    live.close()


def test_byte_bound_off_keeps_items_by_count_only(redis, start_proxy, backend):  # noqa: F811
    """history_channel_bytes=off on the Redis bus: no byte bound, the stream keeps history_size."""
    p = start_proxy(routes=f"* {backend.addr}",
                    conf={"gripd": {"bus": redis.url, "history_size": "3", "history_channel_bytes": "off"}})
    publish(p, [hs_item("hb", f"data: {n}\n\n", id=str(n)) for n in range(1, 6)])
    deadline = time.monotonic() + 10
    while True:
        doc = json.loads(control(p, "GET", "/history/hb").body)
        if [i["id"] for i in doc["items"]] == ["3", "4", "5"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [i["id"] for i in doc["items"]] == ["3", "4", "5"]


def test_two_instances_publishing_at_once_keep_one_order_and_the_trimmed_bound(redis, start_proxy, backend):  # noqa: F811
    # Runs of items with their own ids go to Redis as MULTI/XADD/bookkeeping/PUBLISH/EXEC (no script
    # unless a trim is due, bus_stream.hpp): the stream and the live messages still have one order
    # while two instances publish at once, the sums the trim reads stay those of the kept entries,
    # and the stream is trimmed back to history_size (20, trimmed past 22) by whole runs of 5.
    conf = {"gripd": {"bus": redis.url, "history_size": "20"}}
    a = start_proxy(routes=f"* {backend.addr}", conf=conf)
    b = start_proxy(routes=f"* {backend.addr}", conf=conf)
    sse_route(backend, "ord")
    live = StreamClient(b.port, "/events")
    live.wait_head()
    wait_subscribed(redis, "ord")
    batches = 40

    def run(p, tag):
        for i in range(batches):
            publish(p, [ev(f"{tag}{i}-{k}", "ord") for k in range(5)])
    threads = [threading.Thread(target=run, args=(p, tag)) for p, tag in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    total = 2 * batches * 5
    live.wait_body(lambda body: len(ids_of(body)) == total, timeout=20)
    order = ids_of(live.body)
    deadline = time.monotonic() + 10
    while True:  # the last trim is not waited for by its publish
        kept = [json.loads(i)["id"] for i in stream_items(resp_command(redis.port, "XRANGE", "gripd:h:ord", "-", "+"))]
        if len(kept) <= 24 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert 20 <= len(kept) <= 24
    assert kept == order[-len(kept):]
    assert int(resp_command(redis.port, "HGET", "gripd:hm:ord", "n")) == len(kept)
    for p in (a, b):
        doc = json.loads(control(p, "GET", "/history/ord").body)
        assert [i["id"] for i in doc["items"]] == order[-20:]
    live.close()
