"""Text from backends and publishers cannot break the framing of what a client receives.

Reasons and header values are free text in instruct JSON and in http-response publishes (JSON
strings may hold CR and LF), and header names are arbitrary strings there. gripd blanks control
characters (CR, LF, NUL...) in reasons and values and drops headers whose name is not an HTTP token,
and refuses status codes that cannot make a status line (below 100: a publish gets 400, an
instruction 502). Pushpin 1.36 copies all of it verbatim, so a published reason "A\\r\\nX-Inj: 1"
becomes a header of the client's response and codes below 100 produce "HTTP/1.1 64 Low" (a bug);
hence gripd_only.
"""

import pytest

from harness import raw
from harness.backend import Response
from griputil import hold, hr_item, publish, publish_raw

pytestmark = pytest.mark.gripd_only("pushpin 1.36 copies CR/LF and non-token names into responses")

INSTRUCT = "application/grip-instruct"


def test_published_reason_and_headers_cannot_split_the_answer(proxy, backend):
    backend.route("/r", Response(200, b"t", [("Grip-Hold", "response"), ("Grip-Channel", "fs")]))
    c = hold(proxy, backend, "/r")
    publish(proxy, [hr_item("fs", "body", code=203, reason="A\r\nX-Inj: 1",
                            headers=[["=bad", "1"], ["X-V", "a\r\nX-Inj2: 2"], ["X-Ok", "ok"]])])
    assert c.wait_complete() == b"body"
    h = c.head
    assert (h.status, h.reason) == (203, "A  X-Inj: 1")
    names = [n.lower() for n, _ in h.headers]
    assert "x-inj" not in names and "x-inj2" not in names and "=bad" not in names
    assert h.header("X-V") == "a  X-Inj2: 2"
    assert h.header("X-Ok") == "ok"
    assert h.header("Content-Length") == "4"


@pytest.mark.parametrize("code", [0, 64, 99, "abc"])
def test_publish_code_below_100_rejected(proxy, code):
    r = publish_raw(proxy, [hr_item("fs", "x", code=code)])
    assert r.status == 400
    assert r.body == b"Invalid format: 'http-response' contains 'code' with invalid value\n"


@pytest.mark.parametrize("status", ["64 Low", "099 Low"])
def test_grip_status_below_100_is_502(proxy, backend, status):
    backend.route("/s", Response(200, b"t", [("Grip-Hold", "response"), ("Grip-Channel", "fs"),
                                             ("Grip-Status", status)]))
    r = raw.get(proxy.port, "/s", host="example.com")
    assert (r.status, r.reason) == (502, "Bad Gateway")


def test_instruct_response_text_cannot_split_the_answer(proxy, backend):
    import json
    body = json.dumps({"hold": {"mode": "stream", "channels": [{"name": "fs"}]},
                       "response": {"code": 200, "reason": "Fine\r\nX-Inj: 1",
                                    "headers": {"X-V": "v\r\n\r\nGET /evil HTTP/1.1", "Bad Name": "1"},
                                    "body": "start\n"}}).encode()
    backend.route("/i", Response(200, body, [("Content-Type", INSTRUCT)]))
    c = hold(proxy, backend, "/i", stream=True)
    assert c.wait_body(b"start\n")
    h = c.head
    assert (h.status, h.reason) == (200, "Fine  X-Inj: 1")
    names = [n.lower() for n, _ in h.headers]
    assert "x-inj" not in names and "bad name" not in names
    assert h.header("X-V") == "v    GET /evil HTTP/1.1"
