"""GRIP instructions from the origin: Grip-* headers and application/grip-instruct bodies
(PROTOCOL.md 3.1-3.3). Every expectation was observed on Debian's pushpin 1.36.0.

Observed pushpin details encoded here:
- a bad instruction (Grip-Hold value, Grip-Timeout not an integer or negative, unknown
  Grip-Keep-Alive format/mode, bad Grip-Status, invalid/non-object instruct JSON, instruct
  with a non-200 status, bad hold.mode, hold without channels) => `502 Bad Gateway`,
  `text/plain`, body `Error while proxying to origin.\\n`; the connection stays usable.
- Grip-Timeout < 5 (also 0, and hold.timeout in JSON) is raised to 5 s; pushpin answers
  after 5-6.2 s (its timers are coarse).
- Grip-Keep-Alive timeout=N: pushpin subtracts 0-1 s of jitter from every period, so
  keep-alives come every (N-1, N] s; timeout=0 => 1. idle mode: none while publishes come
  more often than N-1 s; interval mode and JSON hold.keep-alive: every period whatever is
  published. No timeout => 55 s.
- Grip-Expose-Headers (repeatable, comma lists): only the listed headers of the instruct
  response reach the client (Content-Type too unless listed).
- the stream head carries the origin's headers (minus Grip-*), Transfer-Encoding: chunked
  and, on pushpin, a stray `Connection: Transfer-Encoding` (not asserted).
"""

import json
import time

import pytest

from harness import raw
from harness.backend import Response
from griputil import (StreamClient, grip_header_names, hold, hs_item, hr_item, item, publish, sync_stream,
                      after_sync)

INSTRUCT = "application/grip-instruct"
BAD_GATEWAY_BODY = b"Error while proxying to origin.\n"


def retried_after_hold(backend, path, grip_last, wait=2.0):
    """pushpin 1.36 re-requests a hold that has a prev-id once, ~0.5-1 s after it was
    held, with Grip-Last: <channel>; last-id=<prev-id>. Wait for that retry if it comes
    (gripd need not retry) so a publish does not race it."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        reqs = [r for r in backend.requests if r.path == path]
        if len(reqs) >= 2:
            assert reqs[1].header("Grip-Last") == grip_last
            time.sleep(0.5)
            return True
        time.sleep(0.05)
    return False


def instruct(obj, status=200, headers=()):
    return Response(status, json.dumps(obj).encode(), [("Content-Type", INSTRUCT)] + list(headers))


# --- Grip-Hold ---------------------------------------------------------------------------

def test_hold_stream_initial_response(proxy, backend):
    backend.route("/s", Response(200, b"first\n", [
        ("Grip-Hold", "stream"), ("Grip-Channel", "s"), ("Content-Type", "text/plain"), ("X-A", "1")]))
    t0 = time.monotonic()
    c = hold(proxy, backend, "/s", stream=True)
    c.wait_body(b"first\n")
    assert time.monotonic() - t0 < 3
    h = c.head
    assert h.status == 200 and h.reason == "OK"
    assert h.header("Content-Type") == "text/plain"
    assert h.header("X-A") == "1"
    assert "chunked" in h.header("Transfer-Encoding", "").lower()
    assert h.header("Content-Length") is None
    assert grip_header_names(h.headers) == []
    assert not c.complete
    publish(proxy, [hs_item("s", "second\n")])
    c.wait_body(b"first\nsecond\n")
    c.close()


def test_hold_response_sends_nothing_until_published(proxy, backend, client_proto):
    backend.route("/r", Response(200, b"timeout body", [
        ("Grip-Hold", "response"), ("Grip-Channel", "r"), ("Content-Type", "text/plain")]))
    c = hold(proxy, backend, "/r")
    assert c.quiet(0.4) == b"" and c.head is None
    publish(proxy, [hr_item("r", "released\n")])
    assert c.wait_complete() == b"released\n"
    assert c.head.status == 200


# --- Grip-Channel ------------------------------------------------------------------------

def test_grip_channel_repeated_and_comma_lists(proxy, backend, client_proto):
    backend.route("/m", Response(200, b"", [
        ("Grip-Hold", "stream"), ("Grip-Channel", "a, b"), ("Grip-Channel", "c"),
        ("Grip-Channel", "d,e")]))
    c = hold(proxy, backend, "/m", stream=True)
    sync_stream(proxy, "a", [c])
    for ch in ["a", "b", "c", "d", "e", "other"]:
        publish(proxy, [hs_item(ch, ch + "\n")])
    publish(proxy, [hs_item("a", "end\n")])
    c.wait_body(b"end\n")
    assert after_sync(c) == b"a\nb\nc\nd\ne\nend\n"


def test_grip_channel_filter_param_and_set_meta(proxy, backend, client_proto):
    """`filter=skip-self` with Grip-Set-Meta user=alice: items whose meta sender is alice
    are skipped; others (other sender, no sender) delivered."""
    backend.route("/f", Response(200, b"", [
        ("Grip-Hold", "stream"), ("Grip-Channel", "f; filter=skip-self"), ("Grip-Set-Meta", "user=alice")]))
    backend.route("/nometa", Response(200, b"", [
        ("Grip-Hold", "stream"), ("Grip-Channel", "f; filter=skip-self")]))
    c = hold(proxy, backend, "/f", stream=True)
    n = hold(proxy, backend, "/nometa", stream=True)
    sync_stream(proxy, "f", [c, n])
    publish(proxy, [hs_item("f", "self\n", meta={"sender": "alice"})])
    publish(proxy, [hs_item("f", "bob\n", meta={"sender": "bob"})])
    publish(proxy, [hs_item("f", "anon\n")])
    c.wait_body(b"anon\n")
    n.wait_body(b"anon\n")
    assert after_sync(c) == b"bob\nanon\n"
    assert after_sync(n) == b"self\nbob\nanon\n"


def cf_item(channel, stream=None, stream_filters=None, response=None, response_filters=None) -> dict:
    """An item with http-stream and/or http-response formats, each with optional content-filters."""
    formats = {}
    if stream is not None:
        formats["http-stream"] = {"content": stream}
        if stream_filters is not None:
            formats["http-stream"]["content-filters"] = stream_filters
    if response is not None:
        formats["http-response"] = {"body": response}
        if response_filters is not None:
            formats["http-response"]["content-filters"] = response_filters
    return item(channel, formats)


def test_content_filters_of_another_format_do_not_matter(proxy, backend, client_proto):
    """A hold compares its subscription's content filters with the `content-filters` of the
    format it delivers only: here the http-stream format's filters do not concern a response."""
    backend.route("/r", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "cf")]))
    r = hold(proxy, backend, "/r")
    publish(proxy, [cf_item("cf", stream="s\n", stream_filters=["var-subst"], response="released")])
    assert r.wait_complete() == b"released"
    assert r.head.status == 200


def test_content_filter_mismatch_fails_a_response_hold(proxy, backend, client_proto):
    """Pushpin 1.36 answers a held request 502 when a publish's content filters differ from the
    subscription's (here: the item asks for var-subst, the channel has none)."""
    backend.route("/r", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "cf")]))
    r = hold(proxy, backend, "/r")
    publish(proxy, [cf_item("cf", response="x", response_filters=["var-subst"])])
    assert r.wait_complete() == BAD_GATEWAY_BODY
    assert r.head.status == 502


def test_content_filter_mismatch_ends_a_stream(proxy, backend, client_proto):
    """Items without content-filters, or with the subscription's, are delivered; one with other
    content filters ends the stream cleanly (pushpin 1.36), on either side of the comparison."""
    backend.route("/plain", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "cf")]))
    backend.route("/vs", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "cf; filter=var-subst")]))
    plain = hold(proxy, backend, "/plain", stream=True)
    vs = hold(proxy, backend, "/vs", stream=True)
    sync_stream(proxy, "cf", [plain, vs])
    publish(proxy, [cf_item("cf", stream="absent\n")])
    publish(proxy, [cf_item("cf", stream="empty\n", stream_filters=[])])
    publish(proxy, [cf_item("cf", stream="vs\n", stream_filters=["var-subst"])])
    publish(proxy, [cf_item("cf", stream="after\n")])
    plain.wait_complete()
    vs.wait_complete()
    assert after_sync(plain) == b"absent\nempty\n"
    assert after_sync(vs) == b"absent\n"  # "empty" ended it: [] is not [var-subst]


def test_grip_channel_prev_id_param_accepted(proxy, backend, client_proto):
    """A response hold whose prev-id equals the channel's last published id stays held
    and is released by the next item. pushpin 1.36 re-requests such a hold once (~0.5 s
    later, Grip-Last: p; last-id=1) even though the id matches; that retry is allowed,
    not required."""
    backend.route("/first", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "p")]))
    backend.route("/next", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "p; prev-id=1")]))
    c = hold(proxy, backend, "/first")
    publish(proxy, [hr_item("p", "one", id="1")])
    assert c.wait_complete() == b"one"
    c2 = hold(proxy, backend, "/next")
    time.sleep(1.5)
    assert c2.head is None
    publish(proxy, [hr_item("p", "two", id="2", prev_id="1")])
    assert c2.wait_complete() == b"two"
    nexts = [r for r in backend.requests if r.path == "/next"]
    assert 1 <= len(nexts) <= 2
    assert nexts[0].header("Grip-Last") is None
    for r in nexts[1:]:
        assert r.header("Grip-Last") == "p; last-id=1"


# --- Grip-Timeout ------------------------------------------------------------------------

def test_grip_timeout_minimum_and_status(proxy, backend):
    """Four concurrent response holds nobody publishes to: Grip-Timeout 5, 1 and 0 and a
    JSON hold.timeout of 2 all time out after ~5 s (the minimum) with the instruct
    response; Grip-Status sets the code and reason of the timeout response."""
    backend.route("/t5", Response(200, b"t5 body", [
        ("Grip-Hold", "response"), ("Grip-Channel", "t"), ("Grip-Timeout", "5"),
        ("Grip-Status", "504 Timed Out Here"), ("X-A", "1"), ("Content-Type", "text/x")]))
    backend.route("/t1", Response(200, b"t1 body", [
        ("Grip-Hold", "response"), ("Grip-Channel", "t"), ("Grip-Timeout", "1")]))
    backend.route("/t0", Response(200, b"t0 body", [
        ("Grip-Hold", "response"), ("Grip-Channel", "t"), ("Grip-Timeout", "0")]))
    backend.route("/tj", instruct({"hold": {"mode": "response", "channels": [{"name": "t"}], "timeout": 2},
                                   "response": {"code": 299, "reason": "Custom", "headers": {"X-J": "j"},
                                                "body": "tj body"}}))
    t0 = time.monotonic()
    cs = {p: StreamClient(proxy.port, p) for p in ["/t5", "/t1", "/t0", "/tj"]}
    time.sleep(4.3)
    for p, c in cs.items():
        assert c.head is None, f"{p} answered after {time.monotonic() - t0:.1f}s (< 5 s minimum)"
    for c in cs.values():
        c.wait_complete(timeout=4.5)
    for p, c in cs.items():
        took = c.t_head - t0
        assert 4.5 <= took <= 7.5, f"{p} timed out after {took:.2f}s"
    h = cs["/t5"].head
    assert (h.status, h.reason) == (504, "Timed Out Here")
    assert h.header("X-A") == "1" and h.header("Content-Type") == "text/x"
    assert grip_header_names(h.headers) == []
    assert cs["/t5"].body == b"t5 body"
    assert (cs["/t1"].head.status, cs["/t1"].body) == (200, b"t1 body")
    assert (cs["/t0"].head.status, cs["/t0"].body) == (200, b"t0 body")
    hj = cs["/tj"].head
    assert (hj.status, hj.reason, hj.header("X-J"), cs["/tj"].body) == (299, "Custom", "j", b"tj body")
    for c in cs.values():
        c.close()


# --- Grip-Keep-Alive ---------------------------------------------------------------------

def _ka_stream(backend, path, channel, ka, body=b"init\n"):
    backend.route(path, Response(200, body, [
        ("Grip-Hold", "stream"), ("Grip-Channel", channel), ("Grip-Keep-Alive", ka),
        ("Content-Type", "text/plain")]))


def _count_after(c, piece: bytes, t_start: float) -> int:
    # By occurrences, not whole events: over HTTP/2 a keep-alive and a publish written in the
    # same loop turn may share one DATA frame.
    return sum(d.count(piece) for t, d in c.events if t >= t_start)


def test_keep_alive_formats_and_timeouts(proxy, backend, client_proto):
    """Quiet streams for ~4.6 s: raw/cstring/base64 data, timeout=2 gives 2-5 keep-alives,
    timeout=0 is raised to 1 (>= 4), no timeout means 55 s (none)."""
    _ka_stream(backend, "/raw", "k1", "ka-raw; timeout=2")
    _ka_stream(backend, "/cstring", "k2", r"ka\r\n\\\x41\n; format=cstring; timeout=2")
    _ka_stream(backend, "/base64", "k3", "a2EtYjY0Cg==; format=base64; timeout=2")
    _ka_stream(backend, "/zero", "k4", "z; timeout=0")
    _ka_stream(backend, "/default", "k5", "never")
    cs = {p: hold(proxy, backend, p, stream=True) for p in ["/raw", "/cstring", "/base64", "/zero", "/default"]}
    for c in cs.values():
        c.wait_body(b"init\n")
    t0 = time.monotonic()
    time.sleep(4.6)
    assert 2 <= _count_after(cs["/raw"], b"ka-raw", t0) <= 5, cs["/raw"].events
    assert 2 <= _count_after(cs["/cstring"], b"ka\r\n\\A\n", t0) <= 5, cs["/cstring"].events
    assert 2 <= _count_after(cs["/base64"], b"ka-b64\n", t0) <= 5, cs["/base64"].events
    assert _count_after(cs["/zero"], b"z", t0) >= 4, cs["/zero"].events
    assert cs["/default"].body == b"init\n"
    # keep-alives are whole chunks of exactly the keep-alive data
    for p, want in [("/raw", b"ka-raw"), ("/cstring", b"ka\r\n\\A\n"), ("/base64", b"ka-b64\n")]:
        assert cs[p].body == b"init\n" + want * (len(cs[p].events) - 1)
    for c in cs.values():
        c.close()


def test_keep_alive_idle_vs_interval(proxy, backend, client_proto):
    """Publishing every 0.3 s for 4.6 s: idle mode (default and explicit) sends no
    keep-alive, interval mode and a JSON hold.keep-alive (which behaves like interval)
    send 2-5 with timeout=2 (periods are (1, 2] s on pushpin)."""
    _ka_stream(backend, "/idle", "ch", "idle-ka; timeout=2; mode=idle")
    _ka_stream(backend, "/default", "ch", "default-ka; timeout=2")
    _ka_stream(backend, "/interval", "ch", "interval-ka; timeout=2; mode=interval")
    backend.route("/json", instruct({"hold": {"mode": "stream", "channels": [{"name": "ch"}],
                                              "keep-alive": {"content": "json-ka", "timeout": 2}},
                                     "response": {"body": "init\n"}}))
    backend.route("/jsonbin", instruct({"hold": {"mode": "stream", "channels": [{"name": "quiet"}],
                                                 "keep-alive": {"content-bin": "AAFqYg==", "timeout": 2}},
                                        "response": {"body": "init\n"}}))
    cs = {p: hold(proxy, backend, p, stream=True) for p in ["/idle", "/default", "/interval", "/json", "/jsonbin"]}
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 4.6:
        publish(proxy, [hs_item("ch", "P%d\n" % i)])
        i += 1
        time.sleep(0.3)
    assert b"idle-ka" not in cs["/idle"].body
    assert b"default-ka" not in cs["/default"].body
    assert 2 <= _count_after(cs["/interval"], b"interval-ka", t0) <= 5, cs["/interval"].events
    assert 2 <= _count_after(cs["/json"], b"json-ka", t0) <= 5, cs["/json"].events
    assert 2 <= _count_after(cs["/jsonbin"], b"\x00\x01jb", t0) <= 5, cs["/jsonbin"].events
    # the publishes all arrived, in order, between the keep-alives
    for p in ["/idle", "/interval", "/json"]:
        got = cs[p].body.replace(b"interval-ka", b"").replace(b"json-ka", b"")
        assert got == b"init\n" + b"".join(b"P%d\n" % k for k in range(i)), p
    for c in cs.values():
        c.close()


# --- Grip-Status, Grip-Expose-Headers, stripping -------------------------------------

def test_grip_status_on_relayed_response(proxy, backend):
    backend.route("/st", Response(200, b"plain", [("Grip-Status", "404 Nope"), ("X-A", "1")]))
    backend.route("/code", Response(200, b"plain", [("Grip-Status", "202")]))
    r = raw.get(proxy.port, "/st")
    assert (r.status, r.reason, r.body, r.header("X-A")) == (404, "Nope", b"plain", "1")
    assert grip_header_names(r.headers) == []
    r = raw.get(proxy.port, "/code")
    assert (r.status, r.body) == (202, b"plain")


def test_grip_expose_headers(proxy, backend, client_proto):
    backend.route("/s", Response(200, b"init\n", [
        ("Grip-Hold", "stream"), ("Grip-Channel", "s"), ("Grip-Expose-Headers", "X-A, Content-Type"),
        ("X-A", "1"), ("X-B", "2"), ("Content-Type", "text/x")]))
    backend.route("/r", Response(200, b"t", [
        ("Grip-Hold", "response"), ("Grip-Channel", "r"), ("Grip-Expose-Headers", "X-A"),
        ("Grip-Expose-Headers", "x-c"), ("X-A", "1"), ("X-B", "2"), ("X-C", "3"), ("Content-Type", "text/x")]))
    s = hold(proxy, backend, "/s", stream=True)
    assert s.head.header("X-A") == "1" and s.head.header("Content-Type") == "text/x"
    assert s.head.header("X-B") is None
    r = hold(proxy, backend, "/r")
    publish(proxy, [hr_item("r", "b", headers={"X-P": "p"})])
    r.wait_complete()
    h = r.head
    assert (h.header("X-A"), h.header("X-C"), h.header("X-P")) == ("1", "3", "p")
    assert h.header("X-B") is None
    assert h.header("Content-Type") is None  # not exposed
    s.close()


def test_all_grip_headers_stripped(proxy, backend):
    grip = [("Grip-Hold", "stream"), ("Grip-Channel", "s"), ("Grip-Keep-Alive", "k; timeout=55"),
            ("Grip-Set-Meta", "user=u"), ("Grip-Timeout", "60"), ("Grip-Foo", "bar"),
            ("grip-lowercase", "x"), ("GRIP-UPPER", "y")]
    backend.route("/s", Response(200, b"init\n", grip + [("X-Keep", "1")]))
    backend.route("/nohold", Response(200, b"plain", [("Grip-Foo", "bar"), ("Grip-Channel", "x"),
                                                       ("grip-other", "o"), ("X-Keep", "1")]))
    s = hold(proxy, backend, "/s", stream=True)
    assert grip_header_names(s.head.headers) == []
    assert s.head.header("X-Keep") == "1"
    r = raw.get(proxy.port, "/nohold")
    assert grip_header_names(r.headers) == []
    assert (r.status, r.body, r.header("X-Keep")) == (200, b"plain", "1")
    s.close()


def test_no_hold_grip_response_relayed(proxy, backend):
    backend.route("/n", Response(201, b"relayed", [("Grip-Foo", "bar"), ("X-A", "1"), ("Content-Type", "text/x")],
                                 reason="Made"))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /n HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.recv_response()
        assert (r.status, r.reason, r.body) == (201, "Made", b"relayed")
        assert r.header("X-A") == "1" and r.header("Content-Type") == "text/x"
        assert grip_header_names(r.headers) == []
        c.send(b"GET /n HTTP/1.1\r\nHost: example.com\r\n\r\n")  # keep-alive kept
        assert c.recv_response().status == 201


# --- application/grip-instruct ---------------------------------------------------------

def test_instruct_without_hold_is_relayed(proxy, backend):
    backend.route("/i", instruct({"response": {"code": 203, "reason": "Hm", "headers": {"X-H": "v"},
                                               "body": "hello"}}, headers=[("X-Orig", "o")]))
    r = raw.get(proxy.port, "/i")
    assert (r.status, r.reason, r.body, r.header("X-H")) == (203, "Hm", b"hello", "v")
    assert r.header("X-Orig") is None  # the origin's own headers are replaced by response.headers
    assert r.header("Content-Type") is None


def test_instruct_json_response_headers_are_sent_as_given(proxy, backend):
    """Grip-* headers of the origin's own head are stripped, but those an instruct body names in
    response.headers are the backend's explicit choice: pushpin 1.36 sends them as given."""
    backend.route("/ig", instruct({"response": {"headers": {"Grip-Set-Meta": "x=1", "X-H": "v"}, "body": "b"}},
                                  headers=[("Grip-Foo", "origin")]))
    r = raw.get(proxy.port, "/ig")
    assert (r.status, r.body, r.header("X-H")) == (200, b"b", "v")
    assert r.header("Grip-Set-Meta") == "x=1"
    assert r.header("Grip-Foo") is None


def test_instruct_stream_every_field(proxy, backend):
    backend.route("/js", instruct({
        "hold": {"mode": "stream",
                 "channels": [{"name": "js", "filters": ["skip-self"]}, {"name": "js2"}],
                 "keep-alive": {"content": "ka\n", "timeout": 2},
                 "meta": {"user": "alice"}},
        "response": {"code": 201, "reason": "Made",
                     "headers": {"X-J": "j", "Content-Type": "text/event-stream"},
                     "body": "init\n"}}))
    c = hold(proxy, backend, "/js", stream=True)
    h = c.head
    assert (h.status, h.reason, h.header("X-J"), h.header("Content-Type")) == (201, "Made", "j", "text/event-stream")
    assert "chunked" in h.header("Transfer-Encoding", "").lower()
    c.wait_body(b"init\n")
    sync_stream(proxy, "js", [c])
    publish(proxy, [hs_item("js", "self\n", meta={"sender": "alice"})])
    publish(proxy, [hs_item("js2", "two\n")])
    publish(proxy, [hs_item("js", "end\n", meta={"sender": "bob"})])
    c.wait_body(b"end\n")
    assert after_sync(c).replace(b"ka\n", b"") == b"two\nend\n"
    c.wait_body(lambda b: b.endswith(b"end\nka\n"), timeout=3)  # keep-alive after <= 2 s
    c.close()


def test_instruct_response_hold_body_bin_and_header_list(proxy, backend, client_proto):
    backend.route("/jr", instruct({
        "hold": {"channels": [{"name": "jr", "prev-id": "0"}], "timeout": 30},
        "response": {"code": 404, "headers": [["X-L", "1"], ["X-L", "2"]], "body-bin": "AAEC/w=="}}))
    c = hold(proxy, backend, "/jr")
    retried_after_hold(backend, "/jr", "jr; last-id=0")
    assert c.quiet(0.3) == b""
    # a hold with a prev-id takes the item that follows it (prev-id 0)
    publish(proxy, [hr_item("jr", "pub", headers={"X-P": "p"}, id="1", prev_id="0")])
    assert c.wait_complete() == b"pub"
    h = c.head
    assert h.status == 200  # a publish's code defaults to 200
    assert h.header_all("X-L") == ["1", "2"] and h.header("X-P") == "p"


# --- bad instructions ----------------------------------------------------------------

BAD = {
    "hold-value": Response(200, b"x", [("Grip-Hold", "bogus"), ("Grip-Channel", "c")]),
    "timeout-text": Response(200, b"x", [("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Grip-Timeout", "abc")]),
    "timeout-negative": Response(200, b"x", [("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Grip-Timeout", "-3")]),
    "keep-alive-format": Response(200, b"x", [("Grip-Hold", "stream"), ("Grip-Channel", "c"),
                                              ("Grip-Keep-Alive", "x; format=bogus")]),
    "keep-alive-mode": Response(200, b"x", [("Grip-Hold", "stream"), ("Grip-Channel", "c"),
                                            ("Grip-Keep-Alive", "x; mode=bogus")]),
    "status-text": Response(200, b"x", [("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Grip-Status", "abc")]),
    "json-invalid": Response(200, b"{not json", [("Content-Type", INSTRUCT)]),
    "json-array": Response(200, b"[1, 2]", [("Content-Type", INSTRUCT)]),
    "json-non-200": instruct({"hold": {"mode": "response", "channels": [{"name": "c"}]}}, status=201),
    "json-mode": instruct({"hold": {"mode": "bogus", "channels": [{"name": "c"}]}}),
    "json-no-channels": instruct({"hold": {"mode": "response"}}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_instruction_is_502(proxy, backend, case):
    backend.route("/bad", BAD[case])
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /bad HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.recv_response()
        assert (r.status, r.reason) == (502, "Bad Gateway")
        assert r.header("Content-Type") == "text/plain"
        assert r.body == BAD_GATEWAY_BODY
        assert grip_header_names(r.headers) == []
        c.send(b"GET /after HTTP/1.1\r\nHost: example.com\r\n\r\n")  # connection still usable
        assert c.recv_response().status == 200


# --- no_grip -------------------------------------------------------------------------

def test_no_grip_route_does_not_hold(start_proxy, backend):
    backend.route("/ng", Response(200, b"verbatim", [
        ("Grip-Hold", "stream"), ("Grip-Channel", "ng"), ("Grip-Keep-Alive", "k; timeout=1"),
        ("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"*,no_grip {backend.addr}\n")
    t0 = time.monotonic()
    r = raw.get(p.port, "/ng")
    assert time.monotonic() - t0 < 3
    assert (r.status, r.body) == (200, b"verbatim")
    assert r.header("Grip-Hold") == "stream" and r.header("Grip-Channel") == "ng"
    assert r.header("Grip-Keep-Alive") == "k; timeout=1"
    assert r.header("Content-Length") == "8"
