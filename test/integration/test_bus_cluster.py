"""The Redis bus on a Redis Cluster with sharded pub/sub (`[gripd] bus=redis-cluster://h:p[,...]`,
README "Many instances"): gripd routes each channel to the master serving its slot (SPUBLISH /
SSUBSCRIBE on "gripd:{<channel>}", one subscriber connection per master), follows MOVED, and when a
slot moves (resharding) subscribes again on the new master, so subscribers keep receiving; history
streams ("gripd:h:{<channel>}") live on the channel's master too. Pushpin has no Redis bus: gripd
only. They need Debian's redis-server and redis-cli (Redis 7: sharded pub/sub)."""

import json
import time

import pytest

from busutil import cluster, publish_until_accepted, stream  # noqa: F401 (fixture)
from griputil import control, hs_item, publish_raw
from harness.redis import resp_command, shard_numsub, silent_port, wait_until
from harness.bus_stream import stream_items

pytestmark = pytest.mark.gripd_only("Pushpin 1.36 has no Redis bus")


def test_channels_over_all_masters_reach_both_instances_across_a_resharding(cluster, start_proxy):
    conf = {"gripd": {"bus": cluster.url}}
    a = start_proxy(routes="* test", conf=conf)
    b = start_proxy(routes="* test", conf=conf)
    channels = [f"c{i}" for i in range(9)]
    owners = {ch: cluster.owner("gripd:{" + ch + "}") for ch in channels}
    assert len({n.port for n, _ in owners.values()}) == 3, "the channels should cover every master"
    subs = {ch: (stream(a, ch), stream(b, ch)) for ch in channels}
    for ch in channels:
        node = owners[ch][0]
        wait_until(lambda: shard_numsub(node.port, "gripd:{" + ch + "}") == 2, 10, f"{ch} not subscribed")
    for i in range(5):
        for j, ch in enumerate(channels):
            publish_until_accepted(a if (i + j) % 2 else b, ch, f"{ch}-{i}\n")
    # Resharding: the slot of c0 moves to another master; Redis unsubscribes it there.
    src, slot = owners["c0"]
    dst = next(n for n in cluster.nodes if n is not src)
    cluster.move_slot(slot, src, dst)
    wait_until(lambda: shard_numsub(dst.port, "gripd:{c0}") == 2, 20, "c0 not subscribed on its new master")
    for i in range(5, 10):
        for j, ch in enumerate(channels):
            publish_until_accepted(a if (i + j) % 2 else b, ch, f"{ch}-{i}\n")
    for ch in channels:
        want = "".join(f"{ch}-{i}\n" for i in range(10)).encode()
        for s in subs[ch]:
            s.wait_body(lambda body: body.endswith(want) or len(body) > 2 * len(want) + 100, timeout=20)
            assert s.body == b"[stream opened]\n" + want
    assert "cluster slot map changed" in a.log()


def test_history_stream_lives_on_the_channels_master(cluster, start_proxy):
    conf = {"gripd": {"bus": cluster.url, "history_size": "100"}}
    a = start_proxy(routes="* test", conf=conf)
    for ch in ("h1", "h2", "h3", "h4"):
        publish_until_accepted(a, ch, f"{ch}\n", id=f"{ch}-1")
        node, _ = cluster.owner("gripd:h:{" + ch + "}")
        entries = resp_command(node.port, "XRANGE", "gripd:h:{" + ch + "}", "-", "+")
        assert [json.loads(i)["formats"]["http-stream"]["content"] for i in stream_items(entries)] == [f"{ch}\n"]
        # GET /history reads through the channel's owner worker, whose connection to that master
        # may still be coming up (seen under ASan): meanwhile it answers 503, as a publish does.
        deadline = time.monotonic() + 10
        while True:
            r = control(a, "GET", f"/history/{ch}")
            if r.status != 503 or time.monotonic() > deadline:
                break
            assert r.body == b"Bus unavailable.\n"
            time.sleep(0.1)
        assert r.status == 200
        assert [i["id"] for i in json.loads(r.body)["items"]] == [f"{ch}-1"]


def publish_batch_until_accepted(p, items):
    for _ in range(200):
        r = publish_raw(p, items)
        if r.status == 200:
            return
        assert (r.status, r.body) == (503, b"Bus unavailable.\n")
        time.sleep(0.1)
    raise AssertionError("publish refused for 20 s")


def id_key(i):
    ms, n = i.split("-")
    return (int(ms), int(n))


def test_assigned_ids_and_the_byte_bound_work_on_a_cluster(cluster, start_proxy):
    # The publish script runs on each channel's master (its keys share the channel's hash tag):
    # ids are assigned from the stream there, the same on every instance, and the stream is bounded
    # in items and bytes, an item too big to keep leaving a marker.
    conf = {"gripd": {"bus": cluster.url, "history_size": "5", "history_channel_bytes": "2000",
                      "history_assign_ids": "true"}}
    a = start_proxy(routes="* test", conf=conf)
    b = start_proxy(routes="* test", conf=conf)
    for p in (a, b):
        assert "not supported with a redis-cluster bus" not in p.log()
        assert "does not bound the Redis streams" not in p.log()
    channels = [f"h{i}" for i in range(9)]
    assert len({cluster.owner("gripd:h:{" + ch + "}")[0].port for ch in channels}) == 3
    for ch in channels:
        publish_batch_until_accepted(a, [hs_item(ch, f"data: {ch} {n}\n\n") for n in range(8)])
        docs = [json.loads(control(p, "GET", f"/history/{ch}").body) for p in (a, b)]
        ids = [i["id"] for i in docs[0]["items"]]
        assert [i["id"] for i in docs[1]["items"]] == ids  # the same on every instance
        assert len(ids) == 5 and sorted(ids, key=id_key) == ids and len(set(ids)) == 5
        node, _ = cluster.owner("gripd:h:{" + ch + "}")
        kept = [json.loads(i)["formats"]["http-stream"]["content"]
                for i in stream_items(resp_command(node.port, "XRANGE", "gripd:h:{" + ch + "}", "-", "+"))]
        assert kept[-5:] == [f"data: {ch} {n}\n\n" for n in range(3, 8)]
    # Bytes: 30 items of ~230 bytes of JSON, of which only what fits in 2000 bytes stays.
    publish_batch_until_accepted(a, [hs_item("h0", f"data: {'z' * 150} {n}\n\n", id=str(n)) for n in range(30)])
    doc = json.loads(control(b, "GET", "/history/h0").body)
    assert 1 <= len(doc["items"]) < 9 and doc["items"][-1]["id"] == "29"
    # Too big to keep: a marker takes the stream's place; a resume from before it is a gap.
    publish_batch_until_accepted(a, [hs_item("h0", "data: " + "x" * 3000 + "\n\n", id="big")])
    node, _ = cluster.owner("gripd:h:{h0}")
    entries = resp_command(node.port, "XRANGE", "gripd:h:{h0}", "-", "+")
    assert [e[1] for e in entries] == [["g", "big"]]
    publish_batch_until_accepted(a, [hs_item("h0", "data: after\n\n", id="after")])
    doc = json.loads(control(b, "GET", "/history/h0?after=29").body)
    assert doc["status"] == "gap", doc  # 29 is gone, and so is what followed it up to "big"
    doc = json.loads(control(b, "GET", "/history/h0?after=big").body)
    assert doc["status"] == "covered" and [i["id"] for i in doc["items"]] == ["after"], doc


def test_a_master_restart_is_followed(cluster, start_proxy):
    conf = {"gripd": {"bus": cluster.url}}
    a = start_proxy(routes="* test", conf=conf)
    b = start_proxy(routes="* test", conf=conf)
    sa, sb = stream(a, "rs"), stream(b, "rs")
    node, _ = cluster.owner("gripd:{rs}")
    wait_until(lambda: shard_numsub(node.port, "gripd:{rs}") == 2, 10, "rs not subscribed")
    publish_until_accepted(b, "rs", "before\n")
    node.stop()
    r = publish_raw(a, [hs_item("rs", "lost\n")])  # its master is down: refused, not queued
    assert (r.status, r.body) == (503, b"Bus unavailable.\n")
    node.start()  # same port and nodes.conf: it serves its slots again
    wait_until(lambda: "cluster_state:ok" in node.cmd("CLUSTER", "INFO"), 30, "the node did not rejoin")
    wait_until(lambda: shard_numsub(node.port, "gripd:{rs}") == 2, 30, "rs not subscribed again")
    publish_until_accepted(a, "rs", "after\n")
    for s in (sa, sb):
        s.wait_body(b"after\n", timeout=20)
        assert s.body == b"[stream opened]\nbefore\nafter\n"


def test_a_seed_that_never_answers_is_given_up_and_retried(cluster, start_proxy):
    # A seed address that drops every connection attempt: the other seed serves meanwhile, and the
    # dead one's connection is given up after the connect timeout (then retried with the backoff)
    # instead of waiting for the OS's TCP timeout (about two minutes).
    with silent_port() as dead:
        a = start_proxy(routes="* test", conf={"gripd": {"bus": cluster.url_with(f"127.0.0.1:{dead}")}})
        s = stream(a, "dead")
        node, _ = cluster.owner("gripd:{dead}")
        wait_until(lambda: shard_numsub(node.port, "gripd:{dead}") == 1, 20, "dead not subscribed")
        publish_until_accepted(a, "dead", "through\n")
        s.wait_body(b"through\n")
        wait_until(lambda: f"cannot connect to cluster node 127.0.0.1:{dead}: no answer within 3000 ms" in a.log(),
                   10, "the dead seed's connection was not given up")
