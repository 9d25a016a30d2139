"""A target's `sub=CHANNEL` (routes file, PROTOCOL.md 2.2): every HTTP hold the target answers is
also subscribed to CHANNEL, as a WebSocket session is. As Pushpin 1.36 (handler HttpSession's
implicit channels): the name is used as is (no route `prefix=`), and it is not counted against
connection_subscription_max."""

import pytest

from harness.backend import Response
from griputil import StreamClient, hold, hr_item, hs_item, keeper, publish, sync_stream, after_sync


def stream_route(backend, path, channel):
    backend.route(path, Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel),
                                            ("Content-Type", "text/plain")]))


@pytest.mark.proxy(routes="* {backend},sub=extra")
def test_a_stream_hold_also_gets_the_targets_sub_channel(proxy, backend):
    stream_route(backend, "/s", "main")
    c = StreamClient(proxy.port, "/s")
    try:
        c.wait_head()
        sync_stream(proxy, "extra", [c])
        publish(proxy, [hs_item("main", "from-main\n")])
        publish(proxy, [hs_item("extra", "from-extra\n")])
        c.wait_body(b"from-extra\n")
        assert after_sync(c) == b"from-main\nfrom-extra\n"
    finally:
        c.close()


@pytest.mark.proxy(routes="* {backend},sub=implicit")
def test_a_response_hold_is_answered_by_a_publish_on_the_sub_channel(proxy, backend):
    k = keeper(proxy, backend, "implicit")  # keeps the channel subscribed (see griputil.keeper)
    try:
        backend.route("/r", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "own"),
                                                          ("Grip-Timeout", "20")]))
        c = hold(proxy, backend, "/r")
        publish(proxy, [hr_item("implicit", "via sub\n")])
        assert c.wait_complete() == b"via sub\n"
        assert c.head.status == 200
    finally:
        k.close()


@pytest.mark.proxy(routes="*,prefix=p- {backend},sub=raw,sub=raw2")
def test_sub_channels_take_no_route_prefix(proxy, backend):
    stream_route(backend, "/s", "main")
    c = StreamClient(proxy.port, "/s")
    try:
        c.wait_head()
        sync_stream(proxy, "raw2", [c])
        publish(proxy, [hs_item("p-raw", "prefixed\n")])
        publish(proxy, [hs_item("raw", "plain\n")])
        publish(proxy, [hs_item("p-main", "main\n")])
        c.wait_body(b"main\n")
        assert after_sync(c) == b"plain\nmain\n"
    finally:
        c.close()


@pytest.mark.proxy(routes="* {backend},sub=extra")
def test_a_plain_response_subscribes_nothing(proxy, backend):
    """Only GRIP holds subscribe: a response without instructions passes through and ends."""
    backend.route("/p", Response(200, b"plain\n", [("Content-Type", "text/plain")]))
    c = StreamClient(proxy.port, "/p")
    try:
        assert c.wait_complete() == b"plain\n"
    finally:
        c.close()
