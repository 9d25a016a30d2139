"""Large bodies on GRIP routes (PROTOCOL.md 3.1), observed on Debian's pushpin 1.36.0
(src/proxy/proxysession.cpp: MAX_ACCEPT_REQUEST_BODY, MAX_ACCEPT_RESPONSE_BODY, 100,000 bytes):

- a request body over 100,000 bytes is forwarded as usual, but if the backend answers with GRIP
  instructions the client gets `400 Request too large to accept GRIP instruct.` (a hold could not
  send the request again); a plain answer is relayed;
- a request body of up to 100,000 bytes is kept: a `hint` re-sends it whole, with its
  Content-Length.
"""

from harness import raw
from harness.backend import Response
from griputil import hold, hr_item, publish

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
