"""Large bodies on GRIP routes (PROTOCOL.md 3.1), observed on Debian's pushpin 1.36.0
(src/proxy/proxysession.cpp: MAX_ACCEPT_REQUEST_BODY, MAX_ACCEPT_RESPONSE_BODY, 100,000 bytes):

- a request body over 100,000 bytes is forwarded as usual, but if the backend answers with GRIP
  instructions the client gets `400 Request too large to accept GRIP instruct.` (a hold could not
  send the request again); a plain answer is relayed;
- a request body of up to 100,000 bytes is kept: a `hint` re-sends it whole, with its
  Content-Length;
- a stream hold's answer (Grip-Hold: stream, or a next link without hold) over 100,000 bytes is
  sent by the proxy as it comes (Grip-* headers stripped, Grip-Status applied, chunked), then
  the client is held; any other GRIP answer that large is a 502.
"""

import pytest

from harness import raw
from harness.backend import Response
from griputil import StreamClient, hold, hr_item, hs_item, publish, sync_stream

LIMIT = 100000


def test_grip_answer_to_a_large_request_body_is_400(proxy, backend):
    backend.route("/g", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "big")]))
    body = b"x" * (LIMIT + 1)
    r = raw.get(proxy.port, "/g", method="POST", body=body)
    assert (r.status, r.body) == (400, b"Request too large to accept GRIP instruct.\n")
    assert backend.last.body == body  # forwarded whole before the answer was seen


def test_plain_answer_to_a_large_request_body_is_relayed(proxy, backend):
    backend.route("/p", Response(200, b"plain"))
    r = raw.get(proxy.port, "/p", method="POST", body=b"y" * 150000)
    assert (r.status, r.body) == (200, b"plain")


def test_hint_re_sends_a_kept_body_whole(proxy, backend):
    seen = []

    def handler(req):
        seen.append(req)
        if len(seen) == 1:
            return Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "kept")])
        return Response(200, b"again")
    backend.route("/k", handler)
    body = bytes(range(256)) * (LIMIT // 256) + b"z" * (LIMIT % 256)
    assert len(body) == LIMIT
    c = hold(proxy, backend, "/k", method="POST", body=body)
    publish(proxy, [hr_item("kept", action="hint")])
    assert c.wait_complete(timeout=10) == b"again"
    assert len(seen) == 2
    assert seen[1].body == body
    assert seen[1].header("Content-Length") == str(LIMIT)


def test_large_stream_answer_is_streamed_then_held(proxy, backend):
    """A stream hold's answer over 100,000 bytes: relayed as it comes (Grip-* stripped, Grip-Status
    applied, chunked), then the client is held and gets publishes."""
    big = (b"0123456789abcdef" * 16 + b"\n") * 1000  # 257,000 bytes
    backend.route("/big", Response(200, big, [("Grip-Hold", "stream"), ("Grip-Channel", "bigs"),
                                              ("Grip-Status", "201 Made"), ("Content-Type", "text/plain")]))
    backend.route("/bignolink", Response(200, big, [("Grip-Hold", "response"), ("Grip-Channel", "bigr")]))
    c = StreamClient(proxy.port, "/big")
    c.wait_body(big, timeout=20)
    assert (c.head.status, c.head.reason) == (201, "Made")
    assert c.head.header("Transfer-Encoding") == "chunked" and c.head.header("Content-Length") is None
    assert c.head.header("Content-Type") == "text/plain"
    assert [n for n, _ in c.head.headers if n.lower().startswith("grip-")] == []
    sync_stream(proxy, "bigs", [c])
    publish(proxy, [hs_item("bigs", "after\n")])
    c.wait_body(lambda b: b.endswith(b"after\n"))
    assert c.body.startswith(big)
    c.close()
    # A response hold's answer cannot be streamed: 502 as before.
    r = raw.get(proxy.port, "/bignolink", timeout=10)
    assert (r.status, r.body) == (502, b"Error while proxying to origin.\n")


@pytest.mark.gripd_only("pushpin 1.36 stalls a client for 60 s when the origin drops mid-body (README); "
                        "gripd ends the streamed answer at once, truncated, never with a 502 after the head")
def test_large_stream_answer_cut_by_the_backend_is_truncated(proxy, backend):
    big = b"x" * 250000
    backend.route("/cut", Response(200, big, [("Grip-Hold", "stream"), ("Grip-Channel", "cut")],
                                   abort_after=150000))
    c = StreamClient(proxy.port, "/cut")
    c.wait_closed(timeout=10)
    assert c.head.status == 200
    assert not c.complete and b"502" not in c.body and set(c.body) <= {ord("x")}
