"""[handler] subscription_linger: after the last long-poll on a channel leaves, the channel keeps
its last id for that long (Pushpin: the handler keeps the channel subscribed, so its sequencing
state, for subscription_linger seconds after a response-mode unsubscribe). A long-poller that
comes back with an old prev-id meanwhile is re-requested at once with Grip-Last; with a linger of
0 the state is gone and the hold just waits. Streams and WebSockets do not linger (Pushpin lingers
only response-mode subscriptions)."""

import time

import pytest

from harness.backend import Response
from griputil import StreamClient, hold, hr_item, publish


def lp_route(backend, path, prev):
    backend.route(path, Response(200, b"timeout\n", [("Grip-Hold", "response"),
                                                     ("Grip-Channel", "lp; prev-id=%s" % prev),
                                                     ("Grip-Timeout", "20")]))


def grip_last_requests(backend, path):
    return [r for r in backend.requests if r.path == path and r.header("Grip-Last")]


GAP = 0.5


def run_cycle(proxy, backend):
    """A long-poll gets item b; c is published while nobody holds the channel; then a long-poll
    that has seen only b comes back."""
    lp_route(backend, "/lp1", "a")
    h1 = hold(proxy, backend, "/lp1")
    try:
        publish(proxy, [hr_item("lp", "b\n", id="b", prev_id="a")])
        assert h1.wait_complete() == b"b\n"
    finally:
        h1.close()
    time.sleep(GAP)  # the hold is gone: nobody subscribes to lp now
    publish(proxy, [hr_item("lp", "c\n", id="c", prev_id="b")])
    time.sleep(0.2)
    lp_route(backend, "/lp2", "b")
    return StreamClient(proxy.port, "/lp2")


@pytest.mark.proxy(conf={"handler": {"subscription_linger": "60"}})
def test_a_long_poller_back_within_the_linger_is_told_it_is_behind(proxy, backend):
    h2 = run_cycle(proxy, backend)
    try:
        deadline = time.monotonic() + 5
        while not grip_last_requests(backend, "/lp2") and time.monotonic() < deadline:
            time.sleep(0.05)
        reqs = grip_last_requests(backend, "/lp2")
        assert reqs, [(r.path, r.header("Grip-Last")) for r in backend.requests]
        assert reqs[0].header("Grip-Last") == "lp; last-id=b"
    finally:
        h2.close()


@pytest.mark.gripd_only("pushpin 1.36 ends a linger on its stats timer, so even subscription_linger=0 keeps "
                        "the channel's last id a few seconds (observed: still known 2.5 s later); gripd "
                        "forgets at once")
@pytest.mark.proxy(conf={"handler": {"subscription_linger": "0"}})
def test_without_linger_the_channel_state_is_forgotten_at_once(proxy, backend):
    h2 = run_cycle(proxy, backend)
    try:
        backend.wait_requests(len(backend.requests))
        time.sleep(1.5)
        assert grip_last_requests(backend, "/lp2") == []
    finally:
        h2.close()
