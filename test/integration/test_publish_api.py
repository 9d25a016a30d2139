"""The HTTP control API on the publish port (PROTOCOL.md 4.1, 4.2), observed on Debian's
pushpin 1.36.0.

pushpin answers every control request with `Connection: close`; gripd keeps control
connections alive on purpose (publisher throughput), so Connection is never asserted.

Observed pushpin details encoded here (exact bodies, all text/plain unless noted):
- GET / (and HEAD, POST /) => 200 `Pushpin API\\n` (text even when JSON is accepted).
- /publish and /publish/ take POST => 200 `Published\\n`, or `{"message":"Published"}\\n`
  (application/json) when Accept prefers JSON (`application/json`, `application/*`, a
  list naming it, even `text/plain;q=0.5, application/json`); `*/*` gives text.
  Accept naming neither (text/html, image/png) => 406
  `Not Acceptable. Supported formats are text/plain and application/json.\\n`.
  Errors are text whatever Accept says.
- other methods on /publish/, /recover => 405 `Method not allowed: <METHOD>.\\n`, Allow: POST;
  unknown path => 404 `Not Found\\n`.
- any method but GET/HEAD/DELETE/OPTIONS (extension methods too) without Content-Length, or any
  chunked request => 411 `Request requires Content-Length.\\n`
  (before the method check: PUT without a length is 411, not 405).
- body over 1,000,000 bytes => 400 `Request body too large.\\n` (1.36 ignores
  push_in_http_max_body_size); headers over ~10,000 bytes => 400 `Request header too large.\\n`.
- 400 texts: `Body is not valid JSON.`, `Invalid format.` (JSON not an object),
  `Invalid format: object does not contain 'items'`, `... contains 'items' with wrong type`,
  `Invalid format: publish item object is not an object`, `... does not contain 'channel'`,
  `... contains 'channel' with wrong type`, `... contains 'id' with wrong type`,
  `Invalid format: no formats specified` (none or `{}`),
  `Invalid format: 'http-stream' does not contain 'content' or 'content-bin'`,
  `Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'`,
  `Invalid format: 'http-response' contains 'code' with invalid value` (> 999).
  One bad item rejects the whole request: nothing is published.
- accepted as is: unknown format names, format keys directly on the item (legacy), an empty
  items list, any Content-Type, bad base64 in content-bin/body-bin.
- POST /recover and /recover/ => 200 `Updated\\n` (JSON `{"message":"Updated"}\\n`).
"""

import json
import time

import pytest

from harness import raw
from harness.backend import Response
from griputil import control, hold, hr_item, hs_item, publish, publish_raw, sync_stream, after_sync

J = [("Content-Type", "application/json")]
TEXT = "text/plain"


def ok_items():
    return json.dumps({"items": [hs_item("nobody", "x")]}).encode()


def assert_text(r, status, body):
    assert r.status == status, (r.status, r.body)
    assert r.header("Content-Type") == TEXT
    assert r.body == body
    assert r.header("Content-Length") == str(len(body))


# --- routes and methods ---------------------------------------------------------------

def test_root(proxy):
    assert_text(control(proxy, "GET", "/"), 200, b"Pushpin API\n")
    assert_text(control(proxy, "POST", "/", b"x"), 200, b"Pushpin API\n")
    assert_text(control(proxy, "GET", "/", headers=[("Accept", "application/json")]), 200, b"Pushpin API\n")
    r = control(proxy, "HEAD", "/")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "12"


@pytest.mark.parametrize("path", ["/publish", "/publish/"])
def test_publish_paths(proxy, path):
    assert_text(control(proxy, "POST", path, ok_items(), J), 200, b"Published\n")


def test_publish_any_content_type(proxy):
    assert_text(control(proxy, "POST", "/publish/", ok_items()), 200, b"Published\n")
    assert_text(control(proxy, "POST", "/publish/", ok_items(), [("Content-Type", "text/plain")]), 200,
                b"Published\n")


@pytest.mark.parametrize("method,path", [("GET", "/publish"), ("GET", "/publish/"), ("PUT", "/publish/"),
                                         ("DELETE", "/publish/"), ("GET", "/recover")])
def test_wrong_method_is_405(proxy, method, path):
    body = b"{}" if method == "PUT" else None
    r = control(proxy, method, path, body)
    assert_text(r, 405, f"Method not allowed: {method}.\n".encode())
    assert r.header("Allow") == "POST"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_path_is_404(proxy, method):
    assert_text(control(proxy, method, "/nope", b"{}" if method == "POST" else None), 404, b"Not Found\n")


@pytest.mark.parametrize("method", ["FOO", "PURGE", "get"])
def test_extension_method_on_the_control_api(proxy, method):
    # any method but GET, HEAD, DELETE and OPTIONS needs a length first; then 405 on /publish/, and
    # the root answers whatever the method
    body = b"Request requires Content-Length.\n"
    assert_text(control(proxy, method, "/publish/"), 411, body)
    assert_text(control(proxy, method, "/"), 411, body)
    assert_text(control(proxy, method, "/publish/", b""), 405, f"Method not allowed: {method}.\n".encode())
    assert_text(control(proxy, method, "/", b""), 200, b"Pushpin API\n")


def test_chunked_get_on_the_control_api_is_411(proxy):
    data = raw.send_raw(proxy.publish_port, b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"\r\n0\r\n\r\n", timeout=3)
    assert_text(raw.parse_responses(data)[0], 411, b"Request requires Content-Length.\n")


def test_missing_content_length_is_411(proxy):
    body = b"Request requires Content-Length.\n"
    assert_text(control(proxy, "POST", "/publish/", b'{"items":[]}', J, content_length=False), 411, body)
    assert_text(control(proxy, "POST", "/recover", None), 411, body)
    assert_text(control(proxy, "PUT", "/publish/", b"{}", J, content_length=False), 411, body)
    data = raw.send_raw(proxy.publish_port, b"POST /publish/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"\r\nc\r\n{\"items\":[]}\r\n0\r\n\r\n", timeout=3)
    r = raw.parse_responses(data)[0]
    assert_text(r, 411, body)


def test_recover(proxy):
    assert_text(control(proxy, "POST", "/recover", b""), 200, b"Updated\n")
    assert_text(control(proxy, "POST", "/recover/", b""), 200, b"Updated\n")
    r = control(proxy, "POST", "/recover", b"", [("Accept", "application/json")])
    assert (r.status, r.header("Content-Type"), r.body) == (200, "application/json", b'{"message":"Updated"}\n')


def test_recover_keeps_plain_holds(proxy, backend):
    """/recover leaves holds without prev-ids in place: they still get later publishes."""
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "s")]))
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "s", [c])
    assert control(proxy, "POST", "/recover", b"").status == 200
    publish(proxy, [hs_item("s", "after recover\n")])
    c.wait_body(b"after recover\n")
    c.close()


# --- Accept ---------------------------------------------------------------------------

@pytest.mark.parametrize("accept,json_reply", [
    (None, False), ("*/*", False), ("text/plain", False), ("text/*", False),
    ("application/json", True), ("application/*", True), ("image/png, application/json", True),
    ("text/plain;q=0.5, application/json", True),
])
def test_accept_selects_reply_format(proxy, accept, json_reply):
    h = J + ([("Accept", accept)] if accept else [])
    r = control(proxy, "POST", "/publish/", b'{"items": []}', h)
    assert r.status == 200
    if json_reply:
        assert r.header("Content-Type") == "application/json"
        assert r.body == b'{"message":"Published"}\n'
    else:
        assert_text(r, 200, b"Published\n")


@pytest.mark.parametrize("accept", ["text/html", "image/png"])
def test_unacceptable_is_406(proxy, accept):
    r = control(proxy, "POST", "/publish/", b'{"items": []}', J + [("Accept", accept)])
    assert_text(r, 406, b"Not Acceptable. Supported formats are text/plain and application/json.\n")


def test_errors_are_text_even_when_json_accepted(proxy):
    r = control(proxy, "POST", "/publish/", b'{"items": [', J + [("Accept", "application/json")])
    assert_text(r, 400, b"Body is not valid JSON.\n")


# --- 400s ---------------------------------------------------------------------------

BAD_BODIES = {
    "invalid-json": (b'{"items": [', b"Body is not valid JSON.\n"),
    "not-object": (b"[1]", b"Invalid format.\n"),
    "no-items": (b'{"foo": 1}', b"Invalid format: object does not contain 'items'\n"),
    "items-not-list": (b'{"items": {}}', b"Invalid format: object contains 'items' with wrong type\n"),
    "item-not-object": (b'{"items": [1]}', b"Invalid format: publish item object is not an object\n"),
    "no-channel": (b'{"items": [{"formats": {"http-stream": {"content": "x"}}}]}',
                   b"Invalid format: publish item object does not contain 'channel'\n"),
    "channel-int": (b'{"items": [{"channel": 5, "formats": {"http-stream": {"content": "x"}}}]}',
                    b"Invalid format: publish item object contains 'channel' with wrong type\n"),
    "id-int": (b'{"items": [{"channel": "x", "id": 5, "formats": {"http-stream": {"content": "x"}}}]}',
               b"Invalid format: publish item object contains 'id' with wrong type\n"),
    "no-formats": (b'{"items": [{"channel": "x"}]}', b"Invalid format: no formats specified\n"),
    "empty-formats": (b'{"items": [{"channel": "x", "formats": {}}]}', b"Invalid format: no formats specified\n"),
    "stream-no-content": (b'{"items": [{"channel": "x", "formats": {"http-stream": {}}}]}',
                          b"Invalid format: 'http-stream' does not contain 'content' or 'content-bin'\n"),
    "response-no-body": (b'{"items": [{"channel": "x", "formats": {"http-response": {"code": 200}}}]}',
                         b"Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'\n"),
    "response-code-1000": (b'{"items": [{"channel": "x", "formats": {"http-response": {"code": 1000, "body": ""}}}]}',
                           b"Invalid format: 'http-response' contains 'code' with invalid value\n"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_publish_is_400(proxy, case):
    body, text = BAD_BODIES[case]
    assert_text(control(proxy, "POST", "/publish/", body, J), 400, text)


def test_bad_stream_action_is_400(proxy):
    # pushpin's message has an empty detail
    r = control(proxy, "POST", "/publish/", b'{"items": [{"channel": "x", "formats": {"http-stream": '
                                            b'{"action": "bogus"}}}]}', J)
    assert r.status == 400 and r.header("Content-Type") == TEXT
    assert r.body.startswith(b"Invalid format:")


@pytest.mark.parametrize("item", [
    {"channel": "x", "formats": {"unknown-format": {}}},
    {"channel": "x", "http-stream": {"content": "legacy"}},
    {"channel": "x", "formats": {"http-stream": {"action": "close"}}},
    {"channel": "x", "formats": {"http-stream": {"action": "hint"}}},
    {"channel": "x", "formats": {"http-response": {"action": "hint"}}},
    {"channel": "x", "formats": {"ws-message": {"content": "x"}}},
    {"channel": "x", "id": "1", "prev-id": "0", "no-seq": True, "meta": {"sender": "s"},
     "formats": {"http-stream": {"content": "x"}}},
])
def test_items_accepted(proxy, item):
    assert_text(publish_raw(proxy, [item]), 200, b"Published\n")


def test_one_bad_item_publishes_nothing(proxy, backend):
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "bad")]))
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "bad", [c])
    r = publish_raw(proxy, [hs_item("bad", "good1\n"), {"channel": "bad"}, hs_item("bad", "good2\n")])
    assert_text(r, 400, b"Invalid format: no formats specified\n")
    publish(proxy, [hs_item("bad", "after\n")])
    c.wait_body(b"after\n")
    assert after_sync(c) == b"after\n"
    c.close()


def test_legacy_format_on_item_is_delivered(proxy, backend):
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "l")]))
    c = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "l", [c])
    assert publish_raw(proxy, [{"channel": "l", "http-stream": {"content": "legacy\n"}}]).status == 200
    c.wait_body(b"legacy\n")
    c.close()


# --- sizes --------------------------------------------------------------------------

def _body_of_size(n):
    base = json.dumps({"items": [hs_item("nobody", "")]}).encode()
    pad = n - len(base)
    assert pad >= 0
    return json.dumps({"items": [hs_item("nobody", "a" * pad)]}).encode()


def test_body_size_limit(proxy):
    ok = _body_of_size(1_000_000)
    assert len(ok) == 1_000_000
    assert_text(control(proxy, "POST", "/publish/", ok, J), 200, b"Published\n")
    big = _body_of_size(1_000_001)
    assert_text(control(proxy, "POST", "/publish/", big, J), 400, b"Request body too large.\n")


def test_header_size_limit(proxy):
    r = control(proxy, "POST", "/publish/", b'{"items":[]}', J + [("X-Big", "a" * 9000)])
    assert r.status == 200
    r = control(proxy, "POST", "/publish/", b'{"items":[]}', J + [("X-Big", "a" * 20000)])
    assert_text(r, 400, b"Request header too large.\n")


# --- many items ------------------------------------------------------------------------

def test_many_items_in_one_request(proxy, backend):
    backend.route("/a", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "a")]))
    backend.route("/b", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "b")]))
    a = hold(proxy, backend, "/a", stream=True)
    sync_stream(proxy, "a", [a])
    b = hold(proxy, backend, "/b")
    items = [hs_item("a", "%d\n" % i) for i in range(100)] + [hr_item("b", "for b")]
    assert_text(publish_raw(proxy, items), 200, b"Published\n")
    assert b.wait_complete() == b"for b"
    a.wait_body(b"99\n")
    assert after_sync(a) == b"".join(b"%d\n" % i for i in range(100))
    a.close()
