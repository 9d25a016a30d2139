"""Pushpin's ZeroMQ SUB input (`push_in_sub_specs`, PROTOCOL.md §4.3): two-part `[channel, item]`
messages, and subscription forwarding: the proxy subscribes to a channel's topic while it has
subscribers on it, so an XPUB publisher sees the interest. Checked on pushpin 1.36.

Observed on pushpin 1.36: the SUB socket binds unless `push_in_sub_connect`; a topic is subscribed
when the first client subscribes to the channel (XPUB gets b"\\x01" + channel) and unsubscribed
(b"\\x00" + channel) when the last leaves (after `subscription_linger` for a long-poll)."""

import time

import pytest

from griputil import after_sync, hold, sync_stream
from harness.backend import Response
from harness.proxy import unique_free_port
from zmqutil import j, tn, wait_for

zmq = pytest.importorskip("zmq")


def hs(channel, content):
    return {"channel": channel, "formats": {"http-stream": {"content": content}}}


def stream_on(proxy, backend, channel):
    backend.route("/" + channel, Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel)]))
    return hold(proxy, backend, "/" + channel, stream=True)


def test_bound_sub_takes_channel_and_item(proxy, backend):
    c = stream_on(proxy, backend, "s1")
    sync_stream(proxy, "s1", [c])
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(proxy.push_in_sub_spec)
    try:
        # A PUB's first messages are lost until the SUB side has joined: send until one arrives.
        def delivered():
            pub.send_multipart([b"s1", j({"formats": {"http-stream": {"content": "hello sub\n"}}})])
            return b"hello sub\n" in after_sync(c)
        assert wait_for(delivered, timeout=15, step=0.2)
        # TNetString item without the channel; and one whose own channel is overridden by part 1
        pub.send_multipart([b"s1", b"T" + tn({"channel": "elsewhere", "formats": {"http-stream": {"content": "tn\n"}}})])
        pub.send_multipart([b"s1", b"bad"])                     # malformed: skipped
        pub.send_multipart([b"s1"])                             # one part: skipped
        pub.send_multipart([b"s1", j(hs("x", "end\n"))])
        assert wait_for(lambda: b"end\n" in after_sync(c))
        # one connection keeps its order: what follows the last sync copy is ours
        assert after_sync(c).rsplit(b"hello sub\n", 1)[1] == b"tn\nend\n"
    finally:
        pub.close()
        c.close()


@pytest.fixture
def xpub():
    port = unique_free_port()
    s = zmq.Context.instance().socket(zmq.XPUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 200)
    spec = f"tcp://127.0.0.1:{port}"
    s.bind(spec)
    yield s, spec
    s.close()


def interest(xpub, want: bytes, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if xpub.recv() == want:
                return True
        except zmq.Again:
            pass
    return False


def test_subscription_forwarding_to_an_xpub_publisher(start_proxy, backend, xpub):
    xpub, spec = xpub
    proxy = start_proxy(routes=f"* 127.0.0.1:{backend.port}",
                        conf={"handler.push_in_sub_specs": spec, "handler.push_in_sub_connect": "true"})
    # channels spread over the shard owners (every worker loop): each one's interest is forwarded
    names = [f"fw{i}" for i in range(6)]
    clients = [stream_on(proxy, backend, n) for n in names]
    seen = set()
    end = time.monotonic() + 15
    while len(seen) < len(names) and time.monotonic() < end:
        try:
            m = xpub.recv()
        except zmq.Again:
            continue
        if m.startswith(b"\x01fw"):  # (pushpin's harness probe channel comes too)
            seen.add(m)
    assert seen == {b"\x01" + n.encode() for n in names}
    for n, c in zip(names, clients):
        xpub.send_multipart([n.encode(), j(hs(n, f"via xpub {n}\n"))])
    for n, c in zip(names, clients):
        assert wait_for(lambda: f"via xpub {n}\n".encode() in c.body)
    clients[0].close()
    assert interest(xpub, b"\x00fw0")
    for c in clients[1:]:
        c.close()


def test_long_poll_interest_lingers_then_goes(start_proxy, backend, xpub):
    xpub, spec = xpub
    proxy = start_proxy(routes=f"* 127.0.0.1:{backend.port}",
                        conf={"handler.push_in_sub_specs": spec, "handler.push_in_sub_connect": "true",
                              "handler.subscription_linger": "1"})
    backend.route("/lp", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "lp")]))
    c = hold(proxy, backend, "/lp")
    assert interest(xpub, b"\x01lp")
    xpub.send_multipart([b"lp", j({"formats": {"http-response": {"body": "released\n"}}})])
    assert wait_for(lambda: c.complete and b"released" in c.body)
    assert interest(xpub, b"\x00lp")
    c.close()
