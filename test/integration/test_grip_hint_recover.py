"""`http-stream` `hint` and `POST /recover` (PROTOCOL.md 3.5, 3.6, 4.1), observed on Debian's pushpin
1.36.0 (src/handler/httpsession.cpp update()/doUpdate(), engine.cpp recoverCommand()):

- a `hint` on a stream hold with a next link fetches the link now (its answer is appended); a hint
  that comes while the link is being fetched is flagged and the link fetched again after (needUpdate);
  a stream without a next link has nothing to re-request and goes on as before;
- `POST /recover` answers `200 Updated`, forgets the channels' last ids and updates every held
  session: a long-poll re-sends its request to the backend (the backend's new answer goes to the
  client; Grip-Last names the hold's prev-ids), a stream with a next link fetches it; a stream
  without one is untouched. Pushpin paces these updates (10 batches of 100 a second); gripd paces
  per worker the same way.
"""

import pytest

from harness.backend import Response
from griputil import after_sync, control, hold, hs_item, keeper, publish, sync_stream


def link(url, **params):
    return ("Grip-Link", f"<{url}>; rel=next" + "".join(f"; {k}={v}" for k, v in params.items()))


def requests_for(backend, path):
    return [r for r in backend.requests if r.path == path]


def wait_for_requests(backend, path, n, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while len(requests_for(backend, path)) < n:
        assert time.monotonic() < deadline, f"{path}: {len(requests_for(backend, path))} requests, wanted {n}"
        time.sleep(0.02)
    return requests_for(backend, path)


def recover(proxy):
    r = control(proxy, "POST", "/recover", b"")
    assert (r.status, r.body) == (200, b"Updated\n")


def linked_stream(backend, channel):
    """/s holds `channel` with a next link /link (re-polled only after 60 s of quiet); each link
    answer holds again with the same link and appends `linked N`."""
    n = []

    def on_link(req):
        n.append(req)
        return Response(200, b"linked %d\n" % len(n), [("Grip-Hold", "stream"), ("Grip-Channel", channel),
                                                        link("/link", timeout=60)])
    backend.route("/s", Response(200, b"start\n", [("Grip-Hold", "stream"), ("Grip-Channel", channel),
                                                   link("/link", timeout=60)]))
    backend.route("/link", on_link)


def test_stream_hint_fetches_the_next_link(proxy, backend):
    linked_stream(backend, "sh")
    c = hold(proxy, backend, "/s", stream=True)
    c.wait_body(b"start\nlinked 1\n", timeout=10)  # the first follow, about a second in
    publish(proxy, [hs_item("sh", action="hint")])
    c.wait_body(b"start\nlinked 1\nlinked 2\n", timeout=10)
    assert len(requests_for(backend, "/link")) == 2


def test_stream_hint_while_the_link_is_fetched_fetches_it_again_after(proxy, backend):
    # Pushpin's update(): an update asked for while one is in progress is flagged (needUpdate) and
    # done when it finishes, not dropped.
    n = []

    def on_link(req):
        n.append(req)
        return Response(200, b"linked %d\n" % len(n), [("Grip-Hold", "stream"), ("Grip-Channel", "shq"),
                                                        link("/link", timeout=60)],
                        delay=2.0 if len(n) == 2 else 0.0)
    backend.route("/s", Response(200, b"start\n", [("Grip-Hold", "stream"), ("Grip-Channel", "shq"),
                                                   link("/link", timeout=60)]))
    backend.route("/link", on_link)
    c = hold(proxy, backend, "/s", stream=True)
    c.wait_body(b"start\nlinked 1\n", timeout=10)
    publish(proxy, [hs_item("shq", action="hint")])
    wait_for_requests(backend, "/link", 2)  # the second fetch is out (its answer comes in 2 s)
    publish(proxy, [hs_item("shq", action="hint")])
    c.wait_body(b"start\nlinked 1\nlinked 2\nlinked 3\n", timeout=15)
    assert len(requests_for(backend, "/link")) == 3


def test_stream_hint_without_a_link_changes_nothing(proxy, backend):
    backend.route("/plain", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "nh")]))
    c = hold(proxy, backend, "/plain", stream=True)
    sync_stream(proxy, "nh", [c])
    publish(proxy, [hs_item("nh", action="hint")])
    publish(proxy, [hs_item("nh", "after\n")])
    c.wait_body(lambda b: b.endswith(b"after\n"))
    assert after_sync(c) == b"after\n"
    assert len(requests_for(backend, "/plain")) == 1


def test_recover_re_requests_response_holds(proxy, backend):
    keeper(proxy, backend, "rc")  # keeps pushpin's subscribe-time re-request out of the way
    seen = []

    def handler(req):
        seen.append(req)
        if len(seen) == 1:
            return Response(200, b"t", [("Grip-Hold", "response"), ("Grip-Channel", "rc; prev-id=7")])
        return Response(200, b"fresh", [("Content-Type", "text/plain")])
    backend.route("/r", handler)
    c = hold(proxy, backend, "/r?x=1", headers=[("X-Client", "c")])
    assert c.head is None
    recover(proxy)
    assert c.wait_complete(timeout=10) == b"fresh"
    assert len(seen) == 2
    assert (seen[1].target, seen[1].header("X-Client")) == ("/r?x=1", "c")
    assert seen[1].header("Grip-Last") == "rc; last-id=7"


def test_recover_fetches_stream_links_and_leaves_plain_streams(proxy, backend):
    linked_stream(backend, "rs")
    backend.route("/plain", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "rs")]))
    c = hold(proxy, backend, "/s", stream=True)
    plain = hold(proxy, backend, "/plain", stream=True)
    c.wait_body(b"start\nlinked 1\n", timeout=10)
    recover(proxy)
    c.wait_body(b"start\nlinked 1\nlinked 2\n", timeout=10)
    sync_stream(proxy, "rs", [c, plain])
    publish(proxy, [hs_item("rs", "after\n")])
    plain.wait_body(lambda b: b.endswith(b"after\n"))
    assert after_sync(plain) == b"after\n"
    assert len(requests_for(backend, "/plain")) == 1


@pytest.mark.parametrize("count", [250])
def test_recover_reaches_every_hold(proxy, backend, count):
    """More holds than one paced batch: every one is asked again."""
    keeper(proxy, backend, "many")
    asked = set()

    def handler(req):
        if req.header("X-N") in asked:
            return Response(200, b"again " + req.header("X-N").encode())
        asked.add(req.header("X-N"))
        return Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "many")])
    backend.route("/m", handler)
    from griputil import StreamClient
    clients = [StreamClient(proxy.port, "/m", headers=[("X-N", str(i))]) for i in range(count)]
    try:
        wait_for_requests(backend, "/m", count)
        import time
        time.sleep(0.5)
        recover(proxy)
        for i, c in enumerate(clients):
            assert c.wait_complete(timeout=20) == b"again %d" % i
    finally:
        for c in clients:
            c.close()
