"""Faults in the deployment (issue 17 point 2; README "Many instances"): haproxy in front of three
gripd instances (127.0.0.2, .3, .4) with one Redis (history in Redis Streams, `history_size`).

- one instance SIGKILLed: its SSE clients are closed, reconnect through haproxy with Last-Event-ID
  and, from the Redis stream, miss nothing;
- one instance SIGTERMed: it drains (in-flight requests finish) within shutdown_grace and exits 0,
  while haproxy sends new requests to the others: no request fails;
- Redis restarted: publishes during the outage are refused with 503 (nothing queued), the clients
  stay connected and delivery resumes by itself;
- the network to one instance cut (nftables drop on its address and ports) and restored: haproxy
  marks it down and closes its sessions, its clients resume on the others without a miss, and once
  restored it serves clients and publishes again.

gripd_only: pushpin 1.36 has no Redis bus and no history."""

import json
import signal
import threading
import time

import pytest

from deployutil import (CHANNEL, deployment, feed_item, open_resuming, open_spread,  # noqa: F401
                        wait_all, wait_until)
from griputil import StreamClient, control, publish, publish_raw
from harness.backend import Response
from harness.deployment import nft_usable

pytestmark = [pytest.mark.gripd_only("pushpin 1.36 has no Redis bus and no history"), pytest.mark.deploy]


def test_sigkill_one_instance_its_clients_resume_and_miss_nothing(deployment):  # noqa: F811
    dep = deployment
    clients = open_resuming(dep.lb_port, 6)
    dep.wait_subscribed(CHANNEL, 3)
    names = ["start"]
    publish(dep.instances[0], [feed_item("start")])
    wait_all(clients, names)
    victims = [c for c in clients if c.served_by == "g3"]
    assert victims
    done = threading.Event()
    errors = []

    def publisher():  # to the two survivors, in turn, while g3 dies
        try:
            for k in range(80):
                name = f"i{k}"
                publish(dep.instances[k % 2], [feed_item(name)])
                names.append(name)
                time.sleep(0.01)
        except Exception as e:  # reported below
            errors.append(e)
        done.set()
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    time.sleep(0.2)
    dep.instances[2].signal(signal.SIGKILL)
    dep.instances[2].proc.wait(5)
    while not done.is_set():
        for c in clients:
            c.poll()
        time.sleep(0.02)
    t.join(5)
    assert not errors, errors
    wait_all(clients, names)
    for c in victims:
        assert c.reconnects >= 1 and c.served_by in ("g1", "g2"), (c.reconnects, c.served_by)
    for c in clients:
        c.close()


def test_sigterm_drains_in_flight_requests_and_loses_none(deployment, backend):  # noqa: F811
    dep = deployment
    backend.route("/slow", Response(200, b"slow done", delay=1.5))
    backend.route("/quick", Response(200, b"quick"))
    slow = [StreamClient(dep.lb_port, "/slow") for _ in range(6)]
    wait_until(lambda: sum(1 for r in backend.requests if r.path == "/slow") >= 6, 5, "the slow requests")
    results, stop = [], threading.Event()

    def steady():  # fresh requests through haproxy all along
        while not stop.is_set():
            c = StreamClient(dep.lb_port, "/quick")
            try:
                c.wait_complete(5)
                results.append((c.head.status, c.body, c.head.header("X-Served-By")))
            except Exception as e:  # counted as a failure
                results.append((None, repr(e), None))
            finally:
                c.close()
    t = threading.Thread(target=steady, daemon=True)
    t.start()
    time.sleep(0.3)
    g3 = dep.instances[2]
    g3.signal(signal.SIGTERM)
    # exit 0 once drained; a drain that ran into shutdown_grace (5 s, harness/deployment.py) would
    # have cut the slow requests, which must all be answered below
    assert g3.proc.wait(5 + 3) == 0
    time.sleep(0.5)
    stop.set()
    t.join(10)
    served = []
    for c in slow:
        c.wait_complete(5)
        assert (c.head.status, c.body) == (200, b"slow done")
        served.append(c.head.header("X-Served-By"))
        c.close()
    assert "g3" in served  # g3 had requests in flight and finished them before it exited
    failed = [r for r in results if r[:2] != (200, b"quick")]
    assert results and not failed, failed
    assert {r[2] for r in results} >= {"g1", "g2"}


def test_redis_restart_refuses_publishes_then_resumes_by_itself(deployment):  # noqa: F811
    dep = deployment
    clients = open_spread(dep.lb_port, 3)
    dep.wait_subscribed(CHANNEL, 3)
    publish(dep.instances[0], [feed_item("before")])
    names = ["before"]
    for c in clients:
        wait_until(lambda: c.poll() == names, 5, "the first item")
    dep.redis.stop()
    # every instance notices the outage and refuses publishes (a channel nobody watches)
    for p in dep.instances:
        wait_until(lambda: publish_raw(p, [feed_item("probe", channel="probe")]).status == 503, 5,
                   f"{p.host} to refuse publishes")
    for k, p in enumerate(dep.instances):
        r = publish_raw(p, [feed_item(f"lost{k}")])
        assert (r.status, r.body.strip()) == (503, b"Bus unavailable."), (r.status, r.body)
    dep.redis.start()
    # no action: the instances reconnect and subscribe again (backoff 0.5 s doubling up to 8 s)
    dep.wait_subscribed(CHANNEL, 3, timeout=20)
    for p in dep.instances:
        wait_until(lambda: publish_raw(p, [feed_item("probe", channel="probe")]).status == 200, 10,
                   f"{p.host} to take publishes again")
    for k in range(9):
        publish(dep.instances[k % 3], [feed_item(f"after{k}")])
        names.append(f"after{k}")
    for c in clients:
        wait_until(lambda: len(c.poll()) >= len(names), 10, f"client on {c.served_by}")
        assert c.ids == names and not c.closed, (c.served_by, c.ids)
        c.close()


def test_network_cut_to_one_instance_and_restored(deployment):  # noqa: F811
    if not nft_usable():
        pytest.skip("nftables cannot be changed here (needs root or CAP_NET_ADMIN; apt-get install nftables)")
    dep = deployment
    clients = open_resuming(dep.lb_port, 6)
    dep.wait_subscribed(CHANNEL, 3)
    names = []

    def pub(p, name):
        publish(p, [feed_item(name)])
        names.append(name)
    pub(dep.instances[0], "start")
    wait_all(clients, names)
    victims = [c for c in clients if c.served_by == "g3"]
    g3 = dep.instances[2]
    with dep.cut(2):
        dep.wait_servers({"g3": "DOWN"})
        for k in range(10):
            pub(dep.instances[k % 2], f"cut{k}")
        wait_all(clients, names)  # victims were closed by haproxy and resumed on g1/g2
        for c in victims:
            assert c.reconnects >= 1 and c.served_by in ("g1", "g2")
        with pytest.raises(OSError):
            publish_raw_timeout(g3)
    dep.wait_servers({"g1": "UP", "g2": "UP", "g3": "UP"})
    # g3 is back: its control API publishes, and new clients land on it and get what follows
    fresh = open_spread(dep.lb_port, 3)
    dep.wait_subscribed(CHANNEL, 3)
    for k in range(6):
        pub(dep.instances[2 - k % 3], f"back{k}")
    wait_all(clients, names)
    tail = [n for n in names if n.startswith("back")]
    for c in fresh:
        wait_until(lambda: len(c.poll()) >= len(tail), 10, f"new client on {c.served_by}")
        assert c.ids == tail, (c.served_by, c.ids)
        c.close()
    for c in clients:
        c.close()


def publish_raw_timeout(p):
    return control(p, "POST", "/publish/", json.dumps({"items": [feed_item("x")]}).encode(),
                   [("Content-Type", "application/json")], timeout=1.0)
