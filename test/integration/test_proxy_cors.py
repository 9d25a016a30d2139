"""CORS and JSON-P (`[proxy] auto_cross_origin`, route `aco`, `jsonp_*`; PROTOCOL.md 6.4), byte for
byte as Debian's pushpin 1.36.0 answers.

Observed pushpin details encoded here:
- CORS headers are appended after the response's own, each only if absent, in this order:
  Allow-Methods (the preflight's Access-Control-Request-Method, else "OPTIONS, HEAD, GET, POST, PUT,
  DELETE"), Allow-Headers (the requested ones split and joined ", "; absent if none), Expose-Headers
  (non-simple response headers but Access-Control-*/Grip-*, each name once as first spelled),
  Allow-Credentials: true, Allow-Origin (the Origin, else *), Max-Age: 3600. A preflight OPTIONS is
  proxied to the backend (no local answer). Errors (400) get them too.
- JSON-P only for GET. Relayed responses: `/**/cb({"code": N, "reason": "R", "headers": {...},
  "body": "..."});\n` (header map compact, names sorted, first value of a name), wrapped in 200 OK
  with Content-Type: application/javascript and the backend's Cache-Control; no CORS headers.
  pushpin streams it chunked unless the whole body is there at once (framing not tested).
- Held long-polls answered by a publish or timeout are wrapped by pushpin's handler instead:
  compact JSON with sorted keys `{"body","code","headers","reason"}`, header values joined ", "; the
  answer's own headers stay, with Content-Type replaced. Streams get CORS headers, never a wrapper.
- Basic mode: `/**/cb(<body>);\n`, one trailing newline of the body dropped; default method POST
  (sent with Content-Length: 0).
- Bad parameters: 400 text/plain "Invalid callback parameter." (empty callback), "Invalid _method
  parameter.", "Invalid _headers parameter." (not a JSON object of strings), "Invalid _body
  parameter." / "Invalid body parameter." (empty); the backend gets nothing.
"""

import json
import time
import urllib.parse

import pytest

from harness import raw
from harness.backend import Response
from griputil import StreamClient, hold, hr_item, hs_item, publish

ACO = {"proxy": {"auto_cross_origin": "true"}}
FRAMING = {"connection", "content-length", "transfer-encoding", "keep-alive"}
CORS_DEFAULT_METHODS = "OPTIONS, HEAD, GET, POST, PUT, DELETE"


def visible(resp):
    """The response's headers in order, without framing ones (pushpin and gripd frame differently)."""
    return [(k, v) for k, v in resp.headers if k.lower() not in FRAMING]


def quote_plain(s):
    return urllib.parse.quote(s, safe="")


def without_cache_control(headers):
    """pushpin mirrors the backend's Cache-Control in a JSON-P wrapper only when the whole body came
    at once (it then also sends Content-Length); gripd always does."""
    return [(k, v) for k, v in headers if k.lower() != "cache-control"]


def cors_headers(resp):
    return [(k, v) for k, v in resp.headers if k.lower().startswith("access-control-")]


def req(proxy, target, headers=(), method="GET", body=b""):
    return raw.get(proxy.port, target, headers=headers, method=method, body=body)


def json_route(backend):
    backend.route("/json", Response(201, b'{"a": 1}\n', [
        ("Content-Type", "application/json"), ("X-Z", "z"), ("Cache-Control", "no-store"), ("X-Z", "z2"),
        ("x-z", "lower")], reason="Created"))


JSON_HEADERS_MAP = ('{"Cache-Control":"no-store","Content-Length":"9","Content-Type":"application/json",'
                    '"X-Z":"z","x-z":"lower"}')


# --- CORS ---------------------------------------------------------------------------

@pytest.mark.proxy(conf=ACO)
def test_simple_request_echoes_origin_with_credentials(proxy, backend):
    backend.route("/plain", Response(200, b"hello\n", [
        ("Content-Type", "text/plain"), ("X-Custom", "1"), ("Cache-Control", "no-cache"), ("x-custom", "2")]))
    r = req(proxy, "/plain", headers=[("Origin", "https://app.example")])
    assert (r.status, r.body) == (200, b"hello\n")
    assert visible(r) == [
        ("Content-Type", "text/plain"), ("X-Custom", "1"), ("Cache-Control", "no-cache"), ("x-custom", "2"),
        ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS),
        ("Access-Control-Expose-Headers", "X-Custom"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Access-Control-Max-Age", "3600")]
    assert backend.last.header("Origin") == "https://app.example"


@pytest.mark.proxy(conf=ACO)
def test_no_origin_allows_any_and_the_backends_own_values_stay(proxy, backend):
    backend.route("/acao", Response(200, b"hi", [
        ("Access-Control-Allow-Origin", "https://fixed.example"), ("Access-Control-Max-Age", "5"),
        ("X-Y", "y")]))
    r = req(proxy, "/acao")
    assert visible(r) == [
        ("Access-Control-Allow-Origin", "https://fixed.example"), ("Access-Control-Max-Age", "5"), ("X-Y", "y"),
        ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS),
        ("Access-Control-Expose-Headers", "X-Y"),
        ("Access-Control-Allow-Credentials", "true")]
    r = req(proxy, "/other")  # the echo handler: JSON, no header to expose
    assert cors_headers(r) == [
        ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS), ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "*"), ("Access-Control-Max-Age", "3600")]


@pytest.mark.proxy(conf=ACO)
def test_preflight_is_proxied_and_answered_with_what_was_asked(proxy, backend):
    backend.route("/api", Response(204, b"", [("X-From", "backend")]))
    r = req(proxy, "/api", method="OPTIONS", headers=[
        ("Origin", "https://app.example"), ("Access-Control-Request-Method", "PUT"),
        ("Access-Control-Request-Headers", "x-a, X-B"), ("Access-Control-Request-Headers", "x-c")])
    assert r.status == 204
    assert visible(r) == [
        ("X-From", "backend"),
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "x-a, X-B, x-c"),
        ("Access-Control-Expose-Headers", "X-From"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Access-Control-Max-Age", "3600")]
    assert backend.last.method == "OPTIONS"
    assert backend.last.header_all("Access-Control-Request-Headers") == ["x-a, X-B", "x-c"]


def test_off_by_default_nothing_added_and_callback_passed_on(proxy, backend):
    json_route(backend)
    r = req(proxy, "/json?callback=cb", headers=[("Origin", "https://app.example")])
    assert (r.status, r.body) == (201, b'{"a": 1}\n')
    assert cors_headers(r) == []
    assert backend.last.target == "/json?callback=cb"


@pytest.mark.proxy(routes="*,path_beg=/a,aco {backend}\n* {backend}")
def test_route_aco_applies_to_its_route_only(proxy, backend):
    backend.route("/a/json", Response(200, b'{"a": 1}', [("Content-Type", "application/json")]))
    backend.route("/b/json", Response(200, b'{"b": 1}', [("Content-Type", "application/json")]))
    a = req(proxy, "/a/json", headers=[("Origin", "https://o.example")])
    b = req(proxy, "/b/json", headers=[("Origin", "https://o.example")])
    assert ("Access-Control-Allow-Origin", "https://o.example") in cors_headers(a)
    assert cors_headers(b) == []
    a = req(proxy, "/a/json?callback=f")
    b = req(proxy, "/b/json?callback=f")
    assert a.body == b'/**/f({"code": 200, "reason": "OK", "headers": {"Content-Length":"8",' \
                     b'"Content-Type":"application/json"}, "body": "{\\"a\\": 1}"});\n'
    assert b.body == b'{"b": 1}' and backend.last.target == "/b/json?callback=f"


# --- JSON-P: relayed responses --------------------------------------------------------

@pytest.mark.proxy(conf=ACO)
def test_jsonp_extended_wraps_code_reason_headers_body(proxy, backend):
    json_route(backend)
    r = req(proxy, "/json?callback=cb", headers=[("Origin", "https://o.example"), ("Accept", "text/html")])
    assert (r.status, r.reason) == (200, "OK")
    assert without_cache_control(visible(r)) == [("Content-Type", "application/javascript")]
    assert r.body == (b'/**/cb({"code": 201, "reason": "Created", "headers": ' + JSON_HEADERS_MAP.encode() +
                      b', "body": "{\\"a\\": 1}\\n"});\n')
    seen = backend.last
    assert (seen.method, seen.target, seen.body) == ("GET", "/json", b"")
    assert seen.header_all("Accept") == ["*/*"]
    assert seen.header("Origin") == "https://o.example"


@pytest.mark.proxy(conf=ACO)
def test_jsonp_escapes_the_body_as_a_json_string(proxy, backend):
    backend.route("/ctl", Response(200, "é\u0001\u001f\t\"\\/<\u2028x\r\n".encode() + b"\xff!",
                                   [("Content-Type", "text/plain")]))
    r = req(proxy, "/ctl?callback=cb")
    prefix = b'/**/cb({"code": 200, "reason": "OK", "headers": {"Content-Length":"17","Content-Type":"text/plain"}, '
    assert r.body == prefix + ('"body": "é\\u0001\\u001f\\t\\"\\\\/<\u2028x\\r\\n\ufffd!"});\n').encode()


@pytest.mark.proxy(conf=ACO)
def test_jsonp_method_headers_and_body_parameters_rewrite_the_request(proxy, backend):
    json_route(backend)
    hdrs = json.dumps({"X-H": "v", "Accept": "ignored", "Host": "ignored"})
    r = req(proxy, "/json?x=1&callback=cb&_method=PUT&_headers=" + quote_plain(hdrs) + "&_body=abc%20d&y",
            headers=[("X-H", "orig"), ("Accept", "text/html")])
    assert r.status == 200 and r.body.startswith(b'/**/cb({"code": 201, ')
    seen = backend.last
    assert (seen.method, seen.target, seen.body) == ("PUT", "/json?x=1&y", b"abc d")
    assert seen.header_all("X-H") == ["v", "orig"]
    assert seen.header_all("Accept") == ["*/*"]
    assert seen.header_all("Host") == ["example.com"]
    assert seen.header("Content-Length") == "5"


@pytest.mark.proxy(routes="*,aco,jsonp_mode=basic,jsonp_cb=cbx,jsonp_body=b,jsonp_defcb=defcb {backend}")
def test_jsonp_basic_mode_with_route_parameters(proxy, backend):
    json_route(backend)
    backend.route("/crlf", Response(200, b"[1]\r\n", [("Content-Type", "application/json")]))
    r = req(proxy, "/json?cbx=f")
    assert (r.status, r.body) == (200, b'/**/f({"a": 1});\n')
    assert without_cache_control(visible(r)) == [("Content-Type", "application/javascript")]
    seen = backend.last
    assert (seen.method, seen.target, seen.body, seen.header("Content-Length")) == ("POST", "/json", b"", "0")
    assert req(proxy, "/crlf?cbx=f").body == b"/**/f([1]);\n"
    # `callback` is not this route's parameter: plain CORS, passed on
    r = req(proxy, "/json?callback=f")
    assert r.body == b'{"a": 1}\n' and backend.last.target == "/json?callback=f"
    # the body parameter with the default callback: JSON body, _method, _body left alone
    r = req(proxy, "/json?b=%7B%7D&_method=PATCH&_body=zz")
    assert r.body == b'/**/defcb({"a": 1});\n'
    seen = backend.last
    assert (seen.method, seen.target, seen.body) == ("PATCH", "/json?_body=zz", b"{}")
    assert seen.header_all("Content-Type") == ["application/json"]


@pytest.mark.proxy(routes="*,aco,jsonp_defmethod=DELETE {backend}")
def test_jsonp_default_method(proxy, backend):
    json_route(backend)
    assert req(proxy, "/json?callback=f").status == 200
    assert backend.last.method == "DELETE"


@pytest.mark.proxy(conf=ACO)
@pytest.mark.parametrize("query,text", [
    ("callback=", "Invalid callback parameter."),
    ("callback", "Invalid callback parameter."),
    ("callback=f&_method=", "Invalid _method parameter."),
    ("callback=f&_headers=%5B1%5D", "Invalid _headers parameter."),
    ("callback=f&_headers=%7B%22a%22%3A1%7D", "Invalid _headers parameter."),
    ("callback=f&_headers=nojson", "Invalid _headers parameter."),
    ("callback=f&_body=", "Invalid _body parameter."),
])
def test_jsonp_bad_parameters_get_400(proxy, backend, query, text):
    n = len(backend.requests)
    r = req(proxy, "/json?" + query, headers=[("Origin", "https://o.example")])
    assert (r.status, r.reason, r.body) == (400, "Bad Request", text.encode() + b"\n")
    assert visible(r) == [
        ("Content-Type", "text/plain"),
        ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "https://o.example"),
        ("Access-Control-Max-Age", "3600")]
    assert len(backend.requests) == n


@pytest.mark.proxy(routes="*,aco,jsonp_body=b {backend}")
def test_jsonp_empty_body_parameter_gets_400(proxy, backend):
    r = req(proxy, "/json?callback=f&b=")
    assert (r.status, r.body) == (400, b"Invalid body parameter.\n")


@pytest.mark.proxy(conf=ACO)
def test_jsonp_only_for_get(proxy, backend):
    json_route(backend)
    r = req(proxy, "/json?callback=cb", method="POST", body=b"x")
    assert (r.status, r.body) == (201, b'{"a": 1}\n')
    assert ("Access-Control-Expose-Headers", "X-Z") in cors_headers(r)
    assert backend.last.target == "/json?callback=cb"
    r = req(proxy, "/json?callback=cb", method="HEAD")
    assert r.status == 201 and backend.last.target == "/json?callback=cb"


# --- GRIP: answers without a hold, long-polls, streams --------------------------------

@pytest.mark.proxy(conf=ACO)
def test_jsonp_grip_answer_without_hold(proxy, backend, client_proto):
    backend.route("/nohold", Response(200, b"nohold\n", [
        ("Content-Type", "text/plain"), ("Grip-Channel", "c9"), ("X-N", "n")]))
    backend.route("/instruct", Response(200, json.dumps({"response": {
        "code": 202, "reason": "Acc", "headers": {"X-I": "i"}, "body": "instr\n"}}).encode(),
        [("Content-Type", "application/grip-instruct")]))
    r = req(proxy, "/nohold?callback=cb")
    assert r.body == (b'/**/cb({"code": 200, "reason": "OK", "headers": {"Content-Type":"text/plain","X-N":"n"}, '
                      b'"body": "nohold\\n"});\n')
    r = req(proxy, "/instruct?callback=cb")
    assert r.body == b'/**/cb({"code": 202, "reason": "Acc", "headers": {"X-I":"i"}, "body": "instr\\n"});\n'
    r = req(proxy, "/instruct", headers=[("Origin", "https://o.example")])
    assert (r.status, r.reason, r.body) == (202, "Acc", b"instr\n")
    assert visible(r) == [
        ("X-I", "i"), ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS),
        ("Access-Control-Expose-Headers", "X-I"), ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "https://o.example"), ("Access-Control-Max-Age", "3600")]


def long_poll(backend, path, channel, timeout="20"):
    backend.route(path, Response(200, b'{"timeout": true}\n', [
        ("Content-Type", "application/json"), ("Grip-Hold", "response"), ("Grip-Channel", channel),
        ("X-T", "t"), ("Grip-Timeout", timeout)]))


@pytest.mark.crossloop
@pytest.mark.proxy(conf=ACO)
def test_jsonp_long_poll_answered_by_publish(proxy, backend):
    long_poll(backend, "/lp", "lp")
    c = hold(proxy, backend, "/lp?callback=cb", headers=[("Origin", "https://o.example")])
    assert backend.last.target == "/lp"
    publish(proxy, [hr_item("lp", "pubbed\n", code=203, reason="Pub", headers={"X-P": "p", "x-t": "over"})])
    body = c.wait_complete()
    assert (c.head.status, c.head.reason) == (200, "OK")
    assert body == (b'/**/cb({"body":"pubbed\\n","code":203,"headers":{"Content-Type":"application/json",'
                    b'"X-P":"p","x-t":"over"},"reason":"Pub"});\n')
    assert visible(c.head) == [("X-P", "p"), ("x-t", "over"), ("Content-Type", "application/javascript")]


@pytest.mark.proxy(routes="*,aco,jsonp_mode=basic,jsonp_defmethod=GET {backend}")
def test_jsonp_basic_long_poll_answered_by_publish(proxy, backend, client_proto):
    long_poll(backend, "/lp", "lpb")
    c = hold(proxy, backend, "/lp?callback=f")
    publish(proxy, [hr_item("lpb", '{"n": 1}\n')])
    assert c.wait_complete() == b'/**/f({"n": 1});\n'
    assert c.head.header("Content-Type") == "application/javascript"


@pytest.mark.proxy(conf=ACO)
def test_jsonp_long_poll_timeout(proxy, backend):
    backend.route("/lpt", Response(200, b'{"timeout": true}\n', [
        ("Content-Type", "application/json"), ("Grip-Hold", "response"), ("Grip-Channel", "lpt"),
        ("X-T", "t"), ("x-t", "t2"), ("Cache-Control", "max-age=5"), ("Grip-Timeout", "1")]))
    c = StreamClient(proxy.port, "/lpt?callback=cb")
    body = c.wait_complete(timeout=15)
    assert body == (b'/**/cb({"body":"{\\"timeout\\": true}\\n","code":200,"headers":{"Cache-Control":"max-age=5",'
                    b'"Content-Type":"application/json","X-T":"t, t2"},"reason":"OK"});\n')
    assert visible(c.head) == [("X-T", "t"), ("x-t", "t2"), ("Cache-Control", "max-age=5"),
                               ("Content-Type", "application/javascript")]


@pytest.mark.crossloop
@pytest.mark.proxy(conf=ACO)
def test_cors_on_long_poll_answered_by_publish(proxy, backend):
    long_poll(backend, "/lp", "lpc")
    c = hold(proxy, backend, "/lp", headers=[("Origin", "https://o.example")])
    publish(proxy, [hr_item("lpc", "pubbed\n", headers={"X-P": "p"})])
    assert c.wait_complete() == b"pubbed\n"
    assert visible(c.head) == [
        ("Content-Type", "application/json"), ("X-T", "t"), ("X-P", "p"),
        ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS),
        ("Access-Control-Expose-Headers", "X-T, X-P"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "https://o.example"),
        ("Access-Control-Max-Age", "3600")]


@pytest.mark.proxy(conf=ACO)
def test_stream_gets_cors_headers_and_no_jsonp_wrapper(proxy, backend):
    backend.route("/s", Response(200, b"start\n", [
        ("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", "st"), ("X-S", "s")]))
    c = hold(proxy, backend, "/s?callback=cb", stream=True, headers=[("Origin", "https://o.example")])
    c.wait_body(b"start\n")
    assert visible(c.head) == [
        ("Content-Type", "text/plain"), ("X-S", "s"),
        ("Access-Control-Allow-Methods", CORS_DEFAULT_METHODS),
        ("Access-Control-Expose-Headers", "X-S"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Origin", "https://o.example"),
        ("Access-Control-Max-Age", "3600")]
    publish(proxy, [hs_item("st", "more\n")])
    c.wait_body(b"start\nmore\n")
    c.close()


@pytest.mark.proxy(conf=ACO)
def test_jsonp_long_poll_hint_asks_the_rewritten_request_again(proxy, backend, client_proto):
    answers = []

    def lp(req):
        answers.append(req)
        if len(answers) == 1:
            return Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "hint"),
                                                ("Content-Type", "text/plain")])
        return Response(200, b"fresh\n", [("Content-Type", "text/plain")])

    backend.route("/lp", lp)
    c = hold(proxy, backend, "/lp?callback=cb&_method=POST&_body=q")
    publish(proxy, [hr_item("hint", action="hint")])
    body = c.wait_complete()
    assert body == (b'/**/cb({"code": 200, "reason": "OK", "headers": {"Content-Length":"6",'
                    b'"Content-Type":"text/plain"}, "body": "fresh\\n"});\n')
    assert [(r.method, r.target, r.body) for r in answers] == [("POST", "/lp", b"q")] * 2


@pytest.mark.proxy(routes="* 127.0.0.1:1", conf=ACO)
def test_jsonp_wraps_a_proxy_error(proxy):
    r = req(proxy, "/x?callback=cb")
    assert (r.status, r.body) == (200, b'/**/cb({"code": 502, "reason": "Bad Gateway", "headers": '
                                       b'{"Content-Length":"32","Content-Type":"text/plain"}, '
                                       b'"body": "Error while proxying to origin.\\n"});\n')
    r = req(proxy, "/x", headers=[("Origin", "https://o.example")])
    assert r.status == 502 and ("Access-Control-Allow-Origin", "https://o.example") in cors_headers(r)


@pytest.mark.gripd_only("pushpin 1.36 forwards Transfer-Encoding/Content-Length from _headers and the "
                        "client waits until its timeout; gripd frames the body itself")
@pytest.mark.proxy(conf=ACO)
def test_jsonp_headers_parameter_cannot_change_the_framing(proxy, backend):
    json_route(backend)
    hdrs = json.dumps({"Transfer-Encoding": "chunked", "Content-Length": "100", "Connection": "close"})
    r = req(proxy, "/json?callback=cb&_method=POST&_body=abc&_headers=" + quote_plain(hdrs))
    assert r.status == 200 and r.body.startswith(b'/**/cb({"code": 201, ')
    seen = backend.last
    assert (seen.method, seen.body, seen.chunked) == ("POST", b"abc", False)
    assert seen.header_all("Content-Length") == ["3"]
    assert seen.header_all("Transfer-Encoding") == []


@pytest.mark.gripd_only("pushpin 1.36 accepts any printable _method and any _headers string and forwards "
                        "a broken request; gripd refuses what would not be a valid request")
@pytest.mark.proxy(conf=ACO)
@pytest.mark.parametrize("query,text", [
    ("callback=f&_method=GE%20T", "Invalid _method parameter."),
    ("callback=f&_headers=" + quote_plain('{"X-A": "a\\r\\nX-Smuggled: 1"}'), "Invalid _headers parameter."),
    ("callback=f&_headers=" + quote_plain('{"Bad Name": "a"}'), "Invalid _headers parameter."),
])
def test_jsonp_parameters_that_would_break_the_request_get_400(proxy, backend, query, text):
    n = len(backend.requests)
    r = req(proxy, "/json?" + query)
    assert (r.status, r.body) == (400, text.encode() + b"\n")
    assert len(backend.requests) == n


@pytest.mark.gripd_only("pushpin 1.36 appends the _body value to a body the GET itself carries")
@pytest.mark.proxy(conf=ACO)
def test_jsonp_get_with_its_own_body_gets_400(proxy, backend):
    n = len(backend.requests)
    r = req(proxy, "/json?callback=f", body=b"own")
    assert (r.status, r.body) == (400, b"Invalid _body parameter.\n")
    assert len(backend.requests) == n


@pytest.mark.proxy(routes="localhost test", conf=ACO)
def test_no_route_and_the_test_handler_get_cors_and_jsonp_too(proxy):
    r = raw.get(proxy.port, "/x?callback=cb", host="nohost.example")
    assert (r.status, r.body) == (200, b'/**/cb({"code": 502, "reason": "Bad Gateway", "headers": '
                                       b'{"Content-Length":"34","Content-Type":"text/plain"}, '
                                       b'"body": "No route for host: nohost.example\\n"});\n')
    r = raw.get(proxy.port, "/x", host="nohost.example", headers=[("Origin", "https://o.example")])
    assert r.status == 502
    assert ("Access-Control-Allow-Origin", "https://o.example") in cors_headers(r)
    r = raw.get(proxy.port, "/x?callback=", host="nohost.example")
    assert (r.status, r.body) == (400, b"Invalid callback parameter.\n")
    r = raw.get(proxy.port, "/?callback=cb", host="localhost")
    assert r.body == (b'/**/cb({"code": 200, "reason": "OK", "headers": {"Content-Type":"text/plain"}, '
                      b'"body": "Hello from the Pushpin test handler!\\n"});\n')
    c = StreamClient(proxy.port, "/response?channel=tlp&callback=cb", host="localhost")
    time.sleep(0.5)  # held and subscribed (no backend request to wait for)
    publish(proxy, [hr_item("tlp", "hi\n")])
    assert c.wait_complete() == (b'/**/cb({"body":"hi\\n","code":200,"headers":{"Content-Type":"text/plain"},'
                                 b'"reason":"OK"});\n')
