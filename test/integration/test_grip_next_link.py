"""Next links (Grip-Link: <URL>; rel=next[; timeout=N], PROTOCOL.md 3.5), observed on Debian's
pushpin 1.36.0:
- a GRIP response with a next link and no hold is streamed: its head (chunked), its body, then
  the body of each link's answer, following the chain; the last answer without a link ends it;
- the link is resolved against the client's request and requested with GET, the Host of that
  URL, Grip-Sig and Grip-Feature, Grip-Last per channel with a known id, and none of the
  client's own headers; each link is resolved against the one before it;
- the link's answer must be 2xx; its headers are not relayed, its Grip-* headers instruct (a
  stream hold (re)subscribes to the channels it names, a response hold does not hold), and an
  application/grip-instruct body is appended as it is;
- a stream hold with a next link follows it about a second after its channel was first
  subscribed, and with timeout=N again after N s; at once when its prev-id is behind the
  channel's last id; and instead of sending an item whose prev-id is not the hold's last id (an
  id was missed), with Grip-Last; a failed link is tried 5 more times (1 s doubling) and then
  the response ends cleanly; response holds ignore next links.
- Difference: gripd follows a stream hold's link about a second after the hold starts even when
  its channels were subscribed already (pushpin's delay belongs to its subscribe-time recovery);
  the tests allow either.
Deliberate difference: pushpin follows a link to another host by connecting to that host itself;
gripd refuses it (a backend's link must not turn the proxy into a client of arbitrary sites), so
the test only checks that such a link never reaches the route's backend.
Not encoded: pushpin stops re-polling a timeout link after a publish arrives while one is being
fetched, and drops publishes that arrive during a fetch; gripd keeps re-polling after each N s of
quiet and delivers them.
"""

import json
import time

import pytest

from harness import raw
from harness.backend import Response
from griputil import StreamClient, hs_item, publish, sync_stream
from griputil import keeper as keeper_stream


def link(url, **params):
    return ("Grip-Link", f"<{url}>; rel=next" + "".join(f"; {k}={v}" for k, v in params.items()))


def requests_for(backend, path):
    return [r for r in backend.requests if r.path == path]


def header(req, name):
    return [v for k, v in req.headers if k.lower() == name.lower()]


def test_response_without_hold_streams_the_link_chain(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [("Content-Type", "text/plain"), link("/d/b?x=1")]))
    backend.route("/d/b", Response(200, b"two\n", [("X-B", "1"), link("c")]))
    backend.route("/d/c", Response(200, b"three\n", [("Content-Type", "text/other")]))
    with StreamClient(proxy.port, "/a?q=9", headers=[("X-Client", "7")]) as c:
        body = c.wait_complete(timeout=10)
        assert body == b"one\ntwo\nthree\n"
        assert c.head.status == 200
        assert c.head.header("Transfer-Encoding") == "chunked"
        assert c.head.header("Content-Type") == "text/plain"  # the first response's headers
        assert c.head.header("X-B") is None                  # a link answer's are not relayed
        assert c.head.header("Content-Length") is None
    (b,) = requests_for(backend, "/d/b")
    assert (b.method, b.target, b.body) == ("GET", "/d/b?x=1", b"")
    assert header(b, "Host") == ["example.com"]
    assert header(b, "Grip-Sig") and header(b, "Grip-Feature")
    assert not header(b, "X-Client")
    (c3,) = requests_for(backend, "/d/c")
    assert c3.target == "/d/c"  # relative to the link before it, not to the client's /a


def test_chain_ending_in_a_stream_hold_subscribes(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [link("/b")]))
    backend.route("/b", Response(200, b"two\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-chain")]))
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"one\ntwo\n", timeout=5)
        sync_stream(proxy, "nl-chain", [c])
        publish(proxy, [hs_item("nl-chain", "pub\n")])
        c.wait_body(lambda b: b.endswith(b"pub\n"), timeout=5)
        publish(proxy, [hs_item("nl-chain", action="close")])
        assert c.wait_complete().startswith(b"one\ntwo\n")


def test_stream_hold_follows_its_link_and_takes_the_new_channels(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-old"),
                                                  link("/b")]))
    backend.route("/b", Response(200, b"two\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-new")]))
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"one\ntwo\n", timeout=5)  # the link is followed without any publish
        sync_stream(proxy, "nl-new", [c])
        publish(proxy, [hs_item("nl-old", "old\n")])
        publish(proxy, [hs_item("nl-new", "new\n")])
        c.wait_body(lambda b: b.endswith(b"new\n"), timeout=5)
        assert b"old" not in c.body


def test_link_answer_without_hold_ends_a_stream(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-end"),
                                                  link("/b")]))
    backend.route("/b", Response(200, b"two\n", [("Grip-Hold", "response"), ("Grip-Channel", "nl-r")]))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.recv_response(timeout=10)
        assert r.chunked and r.body == b"one\ntwo\n"
        # ended cleanly: the connection serves the next request
        c.send(b"GET /plain HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert c.recv_response().status == 200


def test_grip_instruct_body_of_a_link_answer_is_content(proxy, backend):
    doc = json.dumps({"hold": {"mode": "stream", "channels": [{"name": "nl-json"}]}}).encode()
    backend.route("/a", Response(200, b"one\n", [link("/b")]))
    backend.route("/b", Response(200, doc, [("Content-Type", "application/grip-instruct")]))
    with StreamClient(proxy.port, "/a") as c:
        assert c.wait_complete(timeout=5) == b"one\n" + doc


def test_grip_last_names_the_channels_known_ids(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-id; prev-id=7"),
                                                  ("Grip-Channel", "nl-noid"), link("/b", timeout=60)]))
    backend.route("/b", Response(200, b"two\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-id")]))
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"one\ntwo\n", timeout=5)
    (b,) = requests_for(backend, "/b")
    assert header(b, "Grip-Last") == ["nl-id; last-id=7"]


def test_timeout_link_is_polled_again_while_quiet(proxy, backend):
    h = [("Grip-Hold", "stream"), ("Grip-Channel", "nl-poll"), link("/b", timeout=2)]
    backend.route("/a", Response(200, b"one\n", h))
    backend.route("/b", Response(200, b"more\n", h))
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"one\nmore\nmore\n", timeout=8)
    times = [r.time for r in requests_for(backend, "/b")]
    assert len(times) >= 2
    assert times[1] - times[0] >= 1.5  # the link's timeout, not at once


def test_failed_link_is_retried_then_continues(proxy, backend):
    calls = []

    def flaky(req):
        calls.append(time.monotonic())
        if len(calls) < 3:
            return Response(500, b"down\n")
        return Response(200, b"two\n")
    backend.route("/a", Response(200, b"one\n", [link("/b")]))
    backend.route("/b", flaky)
    with StreamClient(proxy.port, "/a") as c:
        assert c.wait_complete(timeout=15) == b"one\ntwo\n"  # the 500s' bodies are not relayed
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.9 and calls[2] - calls[1] >= 1.9  # 1 s, then 2 s (plus jitter)


def test_link_that_keeps_failing_ends_the_response_after_five_retries(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [link("/b")]))
    backend.route("/b", Response(503, b"down\n"))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.recv_response(timeout=45)  # 1 + 2 + 4 + 8 + 16 s, plus up to 1 s each
        assert r.chunked and r.body == b"one\n"
        c.send(b"GET /plain HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert c.recv_response().status == 200
    assert len(requests_for(backend, "/b")) == 6


def test_link_to_another_host_is_not_followed(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [link("http://other.example/b")]))
    backend.route("/b", Response(200, b"two\n"))
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"one\n", timeout=5)
        time.sleep(1.5)
        assert c.body == b"one\n"
    assert not requests_for(backend, "/b")


def test_absolute_link_to_the_same_host_is_followed(proxy, backend):
    backend.route("/a", Response(200, b"one\n", [link("http://example.com/b")]))
    backend.route("/b", Response(200, b"two\n"))
    with StreamClient(proxy.port, "/a") as c:
        assert c.wait_complete(timeout=5) == b"one\ntwo\n"


def test_response_hold_ignores_its_next_link(proxy, backend):
    backend.route("/a", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "nl-rh"),
                                                      link("/b")]))
    backend.route("/b", Response(200, b"two\n"))
    with StreamClient(proxy.port, "/a") as c:
        time.sleep(1.8)
        assert c.head is None
        publish(proxy, [{"channel": "nl-rh", "formats": {"http-response": {"body": "pub\n"}}}])
        assert c.wait_complete(timeout=5) == b"pub\n"
    assert not requests_for(backend, "/b")


def _hs(channel, text, **ids):
    item = hs_item(channel, text)
    item.update({k.replace("_", "-"): v for k, v in ids.items()})
    return item


def test_stream_hold_behind_its_channel_follows_the_link_at_once(proxy, backend):
    k = keeper_stream(proxy, backend, "nl-b0")
    publish(proxy, [_hs("nl-b0", "one\n", id="1")])
    backend.route("/a", Response(200, b"a\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-b0; prev-id=0"),
                                                link("/b", timeout=60)]))
    backend.route("/b", Response(200, b"missed\n", [("Grip-Hold", "stream"), ("Grip-Channel", "nl-b0; prev-id=1")]))
    t0 = time.monotonic()
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"a\nmissed\n", timeout=5)
    (b,) = requests_for(backend, "/b")
    assert header(b, "Grip-Last") == ["nl-b0; last-id=0"]
    assert b.time - t0 < 0.9  # not the ~1 s pacing: at once
    k.close()


@pytest.mark.proxy(conf={"handler": {"message_wait": "300"}})
def test_stream_item_that_skips_an_id_follows_the_link_instead(proxy, backend):
    """The hold is at id 1; an item with prev-id 2 (2 never came) is not sent: the link is
    followed with Grip-Last instead, and an item that follows id 1 is sent."""
    instruct = [("Grip-Hold", "stream"), ("Grip-Channel", "nl-skip; prev-id=1"), link("/b", timeout=60)]
    k = keeper_stream(proxy, backend, "nl-skip")
    publish(proxy, [_hs("nl-skip", "one\n", id="1")])
    backend.route("/a", Response(200, b"a\n", instruct))
    backend.route("/b", Response(200, b"next\n", instruct))
    with StreamClient(proxy.port, "/a") as c:
        c.wait_body(b"a\n", timeout=5)
        time.sleep(1.5)  # past gripd's paced first fetch
        t_skip = time.monotonic()
        publish(proxy, [_hs("nl-skip", "three\n", id="3", prev_id="2")])
        c.wait_body(lambda b: b.endswith(b"next\n") and any(r.time > t_skip for r in requests_for(backend, "/b")),
                    timeout=5)
        publish(proxy, [_hs("nl-skip", "four\n", id="4", prev_id="1")])
        c.wait_body(lambda b: b.endswith(b"four\n"), timeout=5)
        assert b"three" not in c.body
    bs = requests_for(backend, "/b")
    assert bs and all(header(r, "Grip-Last") == ["nl-skip; last-id=1"] for r in bs)
    k.close()
