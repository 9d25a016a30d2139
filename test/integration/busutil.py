"""What the Redis bus tests share (test_bus_*.py, test_history_redis.py...): the fixtures that start a
throwaway Redis, Sentinel set or Cluster (harness/redis.py) and stop it after the test, a stream
subscriber, and publishing until the bus takes an item. Import the fixtures you use by name:
`from busutil import sentinels  # noqa: F401 (fixture)`."""

import time

import pytest

from griputil import StreamClient, hs_item, publish_raw
from harness.redis import Cluster, Redis, SentinelSet


@pytest.fixture
def redis_server(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()


@pytest.fixture
def sentinels(tmp_path):
    s = SentinelSet(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def stream(p, channel) -> StreamClient:
    """A stream subscriber on p's test target, once it is subscribed on p."""
    c = StreamClient(p.port, f"/stream?channel={channel}")
    c.wait_body(b"[stream opened]\n")
    return c


def publish_until_accepted(p, channel, text, attempts=200, **extra) -> int:
    """Publishes one item until gripd answers 200 (the bus may be reconnecting: 503 meanwhile); `text`
    and `extra` may be callables of the attempt number. Returns the attempt that was taken."""
    for a in range(attempts):
        body = text(a) if callable(text) else text
        fields = {k: (v(a) if callable(v) else v) for k, v in extra.items()}
        r = publish_raw(p, [hs_item(channel, body, **fields)])
        if r.status == 200:
            return a
        assert (r.status, r.body) == (503, b"Bus unavailable.\n")
        time.sleep(0.1)
    raise AssertionError(f"publish on {channel} refused for {attempts / 10:.0f} s")
