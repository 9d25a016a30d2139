"""Several gripd instances joined by a Redis bus (`[gripd] bus=redis://host:port`, DESIGN.md "Beyond
one machine"): a publish to any instance's control API reaches the subscribers of every instance,
once each and in publish order; while Redis is down publishes answer 503 and the instances reconnect
and subscribe again on their own; bad items on the bus are logged and skipped. Pushpin has no such
bus (it links instances through ZeroMQ), so these run on gripd only. They need Debian's
redis-server (installed by .ci/deps.sh)."""

import json
import threading
import time

import pytest

from griputil import StreamClient, control, hs_item, publish, publish_raw
from harness import redis as redis_harness
from harness.proxy import http_answers
from wsutil import connect, recv, rss, run, sanitized, ws_item

pytestmark = pytest.mark.gripd_only("Pushpin 1.36 has no Redis bus")


class Redis(redis_harness.Redis):
    """harness/redis.py's Redis, whose command() answers the reply's first line as bytes (b":1")."""

    def command(self, *args) -> bytes:
        return redis_harness.raw_reply(self.port, *args).split(b"\r\n", 1)[0]


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def start_instance(start_proxy, redis):
    return start_proxy(routes="* test", conf={"gripd": {"bus": redis.url}})


def subscribers(redis, channel) -> int:
    return redis_harness.numsub(redis.port, channel)


def wait_subscribed(redis, channel, n=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while subscribers(redis, "gripd:" + channel) < n:
        assert time.monotonic() < deadline, f"nobody subscribed to gripd:{channel}"
        time.sleep(0.05)


def stream(p, channel) -> StreamClient:
    c = StreamClient(p.port, f"/stream?channel={channel}")
    c.wait_body(b"[stream opened]\n")
    return c


@pytest.mark.crossloop
def test_a_publish_reaches_every_instance_once(redis, start_proxy):
    a = start_instance(start_proxy, redis)
    b = start_instance(start_proxy, redis)
    sa, sb = stream(a, "room"), stream(b, "room")
    wait_subscribed(redis, "room", 2)
    publish(b, [hs_item("room", "via b\n")])
    publish(a, [hs_item("room", "via a\n")])
    for s in (sa, sb):
        s.wait_body(b"via a\n")
        assert s.body == b"[stream opened]\nvia b\nvia a\n"


@pytest.mark.crossloop
def test_order_is_kept_across_instances(redis, start_proxy):
    a = start_instance(start_proxy, redis)
    b = start_instance(start_proxy, redis)
    sa, sb = stream(a, "seq"), stream(b, "seq")
    wait_subscribed(redis, "seq", 2)
    want = b""
    for i in range(60):
        line = f"{i}\n"
        publish(a if i % 2 else b, [hs_item("seq", line)])
        want += line.encode()
    for s in (sa, sb):
        s.wait_body(b"59\n")
        assert s.body == b"[stream opened]\n" + want


def test_websocket_subscribers_get_bus_messages(redis, start_proxy):
    a = start_instance(start_proxy, redis)
    b = start_instance(start_proxy, redis)

    async def main():
        ws = await connect(a, "/ws?channel=wsroom")
        wait_subscribed(redis, "wsroom")
        publish(b, [ws_item("wsroom", "over the bus")])
        assert await recv(ws) == "over the bus"
        await ws.close()
    run(main())


def test_last_subscriber_leaving_unsubscribes_from_redis(redis, start_proxy):
    a = start_instance(start_proxy, redis)
    s = stream(a, "brief")
    wait_subscribed(redis, "brief")
    s.close()
    deadline = time.monotonic() + 5
    while subscribers(redis, "gripd:brief") > 0:
        assert time.monotonic() < deadline, "still subscribed after the last subscriber left"
        time.sleep(0.05)


def test_bus_down_means_503_then_instances_reconnect_and_resubscribe(redis, start_proxy):
    a = start_instance(start_proxy, redis)
    s = stream(a, "r")
    wait_subscribed(redis, "r")
    redis.stop()
    r = publish_raw(a, [hs_item("r", "lost\n")])
    assert (r.status, r.body) == (503, b"Bus unavailable.\n")
    redis.start()
    wait_subscribed(redis, "r", timeout=15)  # the subscription is made again on reconnecting
    deadline = time.monotonic() + 15
    while publish_raw(a, [hs_item("r", "back\n")]).status != 200:  # the publish link may lag
        assert time.monotonic() < deadline, "publishes still fail after Redis came back"
        time.sleep(0.2)
    s.wait_body(b"back\n")
    assert b"lost" not in s.body
    assert "lost the connection to redis://" in a.log()


def test_bad_items_on_the_bus_are_skipped(redis, start_proxy):
    a = start_instance(start_proxy, redis)
    s = stream(a, "bad")
    wait_subscribed(redis, "bad")
    assert redis.command("PUBLISH", "gripd:bad", "not json") == b":1"
    assert redis.command("PUBLISH", "gripd:bad", '{"channel":"bad","formats":{}}') == b":1"
    publish(a, [hs_item("bad", "good\n")])
    s.wait_body(b"good\n")
    assert s.body == b"[stream opened]\ngood\n"
    # The log is written by its own thread: the second line may come a moment after the item.
    redis_harness.wait_until(lambda: a.log().count("ignoring a bad item on channel bad") >= 2, 5,
                             "the second bad item was not logged")
    log = a.log()
    assert "ignoring a bad item on channel bad: item is not valid JSON" in log
    assert log.count("ignoring a bad item on channel bad") == 2


def test_a_bad_bus_url_is_a_startup_error(start_proxy):
    from harness.proxy import ProxyStartError
    with pytest.raises(ProxyStartError) as e:
        start_proxy(routes="* test", conf={"gripd": {"bus": "http://127.0.0.1:6379"}})
    assert "bus must be redis://host[:port]" in str(e.value)


def test_a_stalled_redis_holds_publishes_but_not_the_proxy(redis, start_proxy):
    # Redis stops answering (SIGSTOP: its connections stay open, nothing is read). Publishes wait for
    # its replies, bounded by the publish queue upstream (8 requests per worker) long before the
    # bus's own bound (100,000 publishes or 64 MiB per worker: test/unit/pubsub/redis_bus_bounds_test.cpp);
    # meanwhile the proxy serves its other clients, its memory stays flat, and once Redis answers
    # again every waiting publish is answered 200 and delivered. Unpaced (message_rate -1): with
    # Debian's message_rate a publish is answered once the gate accepted it, before Redis did.
    a = start_proxy(routes="* test", conf={"gripd": {"bus": redis.url}, "handler": {"message_rate": "-1"}})
    s = stream(a, "stall")
    wait_subscribed(redis, "stall")
    base = rss(a.pid)
    results = {}
    body = json.dumps({"items": [hs_item("stall", "x" * 200_000 + "\n")]}).encode()

    def post(i):
        try:
            r = control(a, "POST", "/publish/", body, (("Content-Type", "application/json"),), timeout=60)
            results[i] = r.status
        except OSError as e:
            results[i] = repr(e)

    redis.pause()
    try:
        threads = [threading.Thread(target=post, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        time.sleep(2)
        assert results == {}, "a publish was answered while Redis answered nothing"
        assert http_answers(a.port, timeout=5), "the proxy stopped serving while Redis stalled"
        other = StreamClient(a.port, "/stream?channel=other")
        other.wait_body(b"[stream opened]\n")
        if not sanitized(a.pid):  # a sanitizer's quarantine keeps every freed body: RSS says nothing there
            assert rss(a.pid) - base < 64 * 1024 * 1024, "memory grew with the waiting publishes"
    finally:
        redis.resume()
    for t in threads:
        t.join(60)
    assert results == {i: 200 for i in range(40)}
    s.wait_body(lambda b: b.count(b"x" * 1000) >= 40 * 200, timeout=30)
    assert s.body.count(b"\n") == 41  # the opening line and the 40 items, each once
    assert "lost the connection" not in a.log()
