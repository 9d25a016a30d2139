"""Several gripd instances joined by a Redis bus (`[gripd] bus=redis://host:port`, DESIGN.md "Beyond
one machine"): a publish to any instance's control API reaches the subscribers of every instance,
once each and in publish order; while Redis is down publishes answer 503 and the instances reconnect
and subscribe again on their own; bad items on the bus are logged and skipped. Pushpin has no such
bus (it links instances through ZeroMQ), so these run on gripd only. They need Debian's
redis-server (installed by .ci/deps.sh)."""

import shutil
import socket
import subprocess
import time

import pytest

from harness.proxy import unique_free_port
from griputil import StreamClient, hs_item, publish, publish_raw
from wsutil import connect, recv, run, ws_item

pytestmark = pytest.mark.gripd_only("Pushpin 1.36 has no Redis bus")

REDIS = shutil.which("redis-server")


class Redis:
    """A throwaway redis-server on a free port (restartable on the same port)."""

    def __init__(self):
        if not REDIS:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.port = unique_free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def command(self, *args) -> bytes:
        """One command, the first line of its reply."""
        req = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            req += f"${len(b)}\r\n".encode() + b + b"\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(req)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def start_instance(start_proxy, redis):
    return start_proxy(routes="* test", conf={"gripd": {"bus": redis.url}})


def subscribers(redis, channel) -> int:
    # PUBSUB NUMSUB answers *2 $n name :count; read the count with a second request shape
    req = f"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n${len(channel)}\r\n{channel}\r\n".encode()
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(req)
        data = b""
        while data.count(b"\r\n") < 4:
            data += s.recv(4096)
    return int(data.split(b"\r\n")[3][1:])


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
    log = a.log()
    assert "ignoring a bad item on channel bad: item is not valid JSON" in log
    assert log.count("ignoring a bad item on channel bad") == 2


def test_a_bad_bus_url_is_a_startup_error(start_proxy):
    from harness.proxy import ProxyStartError
    with pytest.raises(ProxyStartError) as e:
        start_proxy(routes="* test", conf={"gripd": {"bus": "http://127.0.0.1:6379"}})
    assert "bus must be redis://host[:port]" in str(e.value)
