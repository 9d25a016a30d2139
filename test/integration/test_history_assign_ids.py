"""gripd-assigned ids ([gripd] history_assign_ids; README "History and resume") and the byte bound of
history. An item published without an `id` gets one from its channel's owner (in-process) or from
its Redis stream entry (with the bus), `<ms>-<n>`, increasing per channel, and it is the item's id
everywhere: GET /history, the channel's last id (prev-id), the `id:` line an SSE event gets, and
what a resuming client names. gripd_only: pushpin assigns no ids and keeps no history."""

import json
import re
import threading
import time

import pytest

from griputil import SSEParser, StreamClient, control, hr_item, hs_item, publish
from harness.backend import Response
from test_bus_redis import redis  # noqa: F401 (redis: fixture)

pytestmark = pytest.mark.gripd_only("pushpin 1.36 assigns no ids and keeps no channel history")

ASSIGN = {"gripd": {"history_size": "100", "history_assign_ids": "true"}}
ID = re.compile(r"^[0-9]+-[0-9]+$")


def key(i):
    ms, n = i.split("-")
    return (int(ms), int(n))


def sse_route(backend, channel="feed"):
    backend.route("/events", Response(200, b":ok\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", channel)]))


def ev(n, channel="feed"):  # an SSE event published without an id
    return hs_item(channel, f"data: item {n}\n\n")


def events(body):
    return [e for e in SSEParser().feed(body) if e.get("event", "message") == "message"]


def history(proxy, channel, after=None):
    q = f"?after={after}" if after is not None else ""
    return json.loads(control(proxy, "GET", f"/history/{channel}{q}").body)


@pytest.mark.proxy(conf=ASSIGN)
def test_ids_are_assigned_increasing_and_shown_in_history_and_sse(proxy, backend):
    sse_route(backend)
    c = StreamClient(proxy.port, "/events")
    c.wait_head()
    time.sleep(0.2)
    publish(proxy, [ev(n) for n in range(1, 6)])
    c.wait_body(lambda b: len(events(b)) == 5)
    got = events(c.body)
    ids = [e["id"] for e in got]
    assert all(ID.match(i) for i in ids), ids
    assert sorted(ids, key=key) == ids and len(set(ids)) == 5
    assert [e["data"] for e in got] == [f"item {n}" for n in range(1, 6)]
    doc = history(proxy, "feed")
    assert [i["id"] for i in doc["items"]] == ids  # the same ids in GET /history
    c.close()
    # A client resuming from the second id gets the rest, with the same ids, and no gap signal.
    d = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", ids[1])])
    d.wait_body(lambda b: len(events(b)) == 3)
    assert [e["id"] for e in events(d.body)] == ids[2:]
    assert b"gripd-gap" not in d.body
    publish(proxy, [ev(6)])
    d.wait_body(lambda b: len(events(b)) == 4)
    last = events(d.body)[-1]["id"]
    assert key(last) > key(ids[-1]) and last == history(proxy, "feed")["items"][-1]["id"]
    d.close()


@pytest.mark.proxy(conf=ASSIGN)
def test_own_ids_are_kept_and_non_sse_content_is_not_changed(proxy, backend):
    publish(proxy, [hs_item("plain", "hello\n"), hs_item("plain", "data: x\n\n", id="mine"),
                    hs_item("plain", "id: 7\ndata: y\n\n")])
    items = history(proxy, "plain")["items"]
    assert items[0]["formats"]["http-stream"]["content"] == "hello\n" and ID.match(items[0]["id"])
    assert items[1]["id"] == "mine" and items[1]["formats"]["http-stream"]["content"] == "data: x\n\n"
    # An event with an id line of its own keeps it as it is (its item id is gripd's).
    assert items[2]["formats"]["http-stream"]["content"] == "id: 7\ndata: y\n\n" and ID.match(items[2]["id"])


@pytest.mark.proxy(conf={"gripd": {"history_size": "100"}})
def test_without_the_key_items_without_an_id_are_not_kept(proxy, backend):
    publish(proxy, [ev(1, "off")])
    assert history(proxy, "off")["status"] == "unknown"


@pytest.mark.proxy(conf=ASSIGN)
def test_long_poll_prev_id_chain_uses_assigned_ids(proxy, backend):
    publish(proxy, [hr_item("lp", f"body {n}\n") for n in range(1, 4)])
    ids = [i["id"] for i in history(proxy, "lp")["items"]]
    backend.route("/lp", Response(200, b"timeout\n", [
        ("Grip-Hold", "response"), ("Grip-Channel", f"lp; prev-id={ids[0]}"), ("Grip-Timeout", "20")]))
    c = StreamClient(proxy.port, "/lp")
    assert c.wait_complete(timeout=5) == b"body 2\n"  # from history, no backend round trip
    assert len(backend.requests) == 1
    c.close()
    # At the channel's last (assigned) id, the hold waits for the next publish.
    backend.route("/lp", Response(200, b"timeout\n", [
        ("Grip-Hold", "response"), ("Grip-Channel", f"lp; prev-id={ids[2]}"), ("Grip-Timeout", "20")]))
    d = StreamClient(proxy.port, "/lp")
    time.sleep(0.4)
    assert not d.complete
    publish(proxy, [hr_item("lp", "body 4\n")])
    assert d.wait_complete(timeout=5) == b"body 4\n"
    d.close()


@pytest.mark.proxy(conf={"gripd": {"history_size": "100", "history_channel_bytes": "2000"}})
def test_an_item_too_big_to_keep_makes_a_resume_from_before_it_a_gap(proxy, backend):
    sse_route(backend, "big")
    publish(proxy, [hs_item("big", f"id: {n}\ndata: {n}\n\n", id=str(n)) for n in range(1, 4)])
    publish(proxy, [hs_item("big", "id: 4\ndata: " + "x" * 4000 + "\n\n", id="4")])
    publish(proxy, [hs_item("big", "id: 5\ndata: 5\n\n", id="5")])
    c = StreamClient(proxy.port, "/events", headers=[("Last-Event-ID", "2")])
    c.wait_body(b"gripd-gap")  # 3 and the big 4 are not kept: said, not skipped silently
    c.close()
    assert [i["id"] for i in history(proxy, "big")["items"]] == ["5"]


@pytest.mark.proxy(conf={"gripd": {"history_size": "1000", "history_channel_bytes": "3000"}})
def test_history_is_bounded_in_bytes(proxy, backend):
    publish(proxy, [hs_item("bytes", f"id: {n}\ndata: {'y' * 200}\n\n", id=str(n)) for n in range(1, 51)])
    ids = [i["id"] for i in history(proxy, "bytes")["items"]]
    assert 1 <= len(ids) < 15 and ids[-1] == "50"  # 50 items of ~230 bytes: only the last few fit


# ---- with the Redis bus: ids from the stream, the same on every instance ----

def instance(start_proxy, backend, redis, **extra):  # noqa: F811
    conf = {"bus": redis.url, "history_size": "1000", "history_assign_ids": "true"}
    conf.update(extra)
    return start_proxy(routes=f"* {backend.addr}", conf={"gripd": conf})


def test_redis_ids_are_stream_ids_and_resume_across_instances(redis, start_proxy, backend):  # noqa: F811
    a = instance(start_proxy, backend, redis)
    b = instance(start_proxy, backend, redis)
    sse_route(backend)
    total, batch = 60, 15
    done = threading.Event()
    hopped = threading.Condition()
    hops = 0

    # Publishing races the reconnects, but each batch of 15 waits for the client's next hop: the
    # client reads 9 at a time, so it hops at least 4 times however slow the machine is.
    def publisher():
        for n in range(total):
            with hopped:
                hopped.wait_for(lambda: hops >= n // batch, timeout=15)
            publish(a if n % 2 else b, [ev(n)])
            time.sleep(0.004)
        done.set()
    c = StreamClient(a.port, "/events")
    c.wait_head()
    time.sleep(0.3)
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    got = []
    deadline = time.monotonic() + 40
    while len(got) < total and time.monotonic() < deadline:
        want = min(total, len(got) + 9)
        parser, seen = SSEParser(), 0
        end = time.monotonic() + 10
        while time.monotonic() < end and len(got) < want:
            with c._cond:
                data = c.body[seen:]
            seen += len(data)
            for e in parser.feed(data):
                assert e.get("event") != "gripd-gap", e
                if e.get("event", "message") == "message":
                    got.append((e["id"], e["data"]))
            time.sleep(0.002)
        c.close()
        with hopped:
            hops += 1
            hopped.notify_all()
        # Reconnect to the other instance with the assigned id last seen, as an EventSource does.
        c = StreamClient((a, b)[hops % 2].port, "/events", headers=[("Last-Event-ID", got[-1][0])])
    c.close()
    t.join(20)
    assert hops > 3
    assert [d for _, d in got] == [f"item {n}" for n in range(total)]  # each once, in order
    ids = [i for i, _ in got]
    assert all(ID.match(i) for i in ids) and sorted(ids, key=key) == ids and len(set(ids)) == total
    # The ids are the stream's: both instances list the same ones.
    assert [i["id"] for i in history(a, "feed")["items"]][-total:] == ids
    assert [i["id"] for i in history(b, "feed")["items"]][-total:] == ids


def test_redis_stream_is_bounded_in_bytes_and_marks_an_item_too_big(redis, start_proxy, backend):  # noqa: F811
    a = instance(start_proxy, backend, redis, history_channel_bytes="2000")
    sse_route(backend, "rb")
    publish(a, [hs_item("rb", f"id: {n}\ndata: {'z' * 150}\n\n", id=str(n)) for n in range(1, 41)])
    # The trim runs after the publish is answered (README "History and resume"): wait for it.
    deadline = time.monotonic() + 10
    while (n := int(redis.command("XLEN", "gripd:h:rb")[1:])) >= 15 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 1 <= n < 15  # 40 items of ~230 bytes of JSON: only what fits in 2000 bytes
    ids = [i["id"] for i in history(a, "rb")["items"]]
    assert len(ids) == n and ids[-1] == "40"
    # An item over the bound alone is not kept; a marker stands in its place.
    publish(a, [hs_item("rb", "id: 41\ndata: " + "x" * 3000 + "\n\n", id="41")])
    assert redis.command("XLEN", "gripd:h:rb") == b":1"
    publish(a, [hs_item("rb", "id: 42\ndata: 42\n\n", id="42")])
    c = StreamClient(a.port, "/events", headers=[("Last-Event-ID", "40")])
    c.wait_body(b"gripd-gap")  # 41 was missed and is not kept: the client is told
    c.close()
    d = StreamClient(a.port, "/events", headers=[("Last-Event-ID", "41")])
    d.wait_body(lambda body: [e["id"] for e in events(body)] == ["42"])
    assert b"gripd-gap" not in d.body  # from the big item's own id, nothing is missing
    d.close()
