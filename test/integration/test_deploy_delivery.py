"""The deployment as users run it (issue 17 point 1; README "Many instances"): Debian's haproxy in
front of three gripd instances on 127.0.0.2, .3 and .4, one Redis as the bus, one backend. SSE,
long-poll and WebSocket clients connect through haproxy and land on every instance; publishes go
to one instance's control API at a time (each in turn); every client receives every item once and
in order. gripd_only: pushpin 1.36 links its instances through ZeroMQ, not Redis (no bus here)."""

import time

import pytest

from deployutil import CHANNEL, WS_PATH, WSClients, deployment, feed_item, open_spread, wait_until  # noqa: F401
from griputil import SETTLE, StreamClient, publish

pytestmark = [pytest.mark.gripd_only("pushpin 1.36 has no Redis bus"), pytest.mark.deploy]


def test_every_client_type_gets_every_item_once_in_order(deployment, backend):  # noqa: F811
    dep = deployment
    sse = open_spread(dep.lb_port, 6)
    ws = WSClients(dep.lb_port, 3, WS_PATH)
    try:
        assert set(ws.served_by) == {"g1", "g2", "g3"}, ws.served_by
        dep.wait_subscribed(CHANNEL, 3)
        names = []
        polls_seen = sum(1 for r in backend.requests if r.path == "/poll")
        for k in range(6):
            # three long-polls (one per instance, round robin), held before the publish
            lp = [StreamClient(dep.lb_port, "/poll") for _ in range(3)]
            polls_seen += 3
            wait_until(lambda: sum(1 for r in backend.requests if r.path == "/poll") >= polls_seen, 5,
                       "the long-polls to reach the backend")
            time.sleep(SETTLE)
            name = f"i{k}"
            names.append(name)
            publish(dep.instances[k % 3], [feed_item(name)])
            served = set()
            for c in lp:
                c.wait_complete()
                assert c.head.status == 200 and c.body == f"{name}\n".encode(), (c.head, c.body)
                served.add(c.head.header("X-Served-By"))
                c.close()
            assert served == {"g1", "g2", "g3"}
        # a burst from all three control APIs, interleaved
        for k in range(6, 60):
            name = f"i{k}"
            names.append(name)
            publish(dep.instances[k % 3], [feed_item(name)])
        for c in sse:
            wait_until(lambda: len(c.poll()) >= len(names), 10, f"SSE client on {c.served_by}")
            assert c.ids == names, (c.served_by, c.ids)
        for i in range(3):
            wait_until(lambda: len(ws.messages[i]) >= len(names), 10, f"WebSocket on {ws.served_by[i]}")
            assert ws.messages[i] == names, (ws.served_by[i], ws.messages[i])
    finally:
        ws.close()
        for c in sse:
            c.close()
