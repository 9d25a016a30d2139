"""Plain reverse proxying: methods, targets, headers and bodies both ways.

Every expectation here was observed on Debian's pushpin 1.36.0 (condure 1.9.1 +
zurl 1.11.1) with GRIPD_TARGET=pushpin.
"""

import gzip
import hashlib
import json
import os
import time

import pytest
import requests

from harness import raw
from harness.backend import Response

MIB5 = 5 * 1024 * 1024


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only: do not wait for the control API port


def echoed(resp) -> dict:
    """Decode the echo backend's JSON from a requests or raw response."""
    body = resp.content if hasattr(resp, "content") else resp.body
    return json.loads(body)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_forwarded(proxy, backend, method):
    body = b"" if method in ("GET", "OPTIONS", "DELETE") else b"payload-" + method.encode()
    r = raw.get(proxy.port, "/m", method=method, body=body)
    assert r.status == 200
    e = echoed(r)
    assert e["method"] == method
    assert e["body"] == body.decode()
    assert backend.last.method == method


@pytest.mark.parametrize("method", [
    "PROPFIND", "PURGE", "FOO", "M-SEARCH", "BREW", "get", "PRI", "A!#$%&'*+.^_`|~9", "X" * 100])
def test_extension_method_forwarded(proxy, backend, method):
    # pushpin forwards any token as a method, unchanged (case and all), and relays the answer as is
    backend.handler = lambda req: Response(200, b"ok " + req.method.encode() + b" " + req.target.encode())
    out = raw.send_raw(proxy.port, method.encode() + b" /m?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    body = b"ok " + method.encode() + b" /m?q=1"
    head, _, got = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    # the same bytes as pushpin's answer (gripd writes its headers in another order)
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert sorted(lines[1:]) == [b"Connection: close", b"Content-Length: %d" % len(body)]
    assert got == body
    assert [(r.method, r.target) for r in backend.requests] == [(method, "/m?q=1")]


def test_extension_methods_pipelined_with_bodies(proxy, backend):
    # each request of a pipeline keeps its own method and body
    with raw.RawConn(proxy.port) as c:
        c.send(b"FOO /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
               b"M-SEARCH /b HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = c.recv_response()
        r2 = c.recv_response()
    assert (echoed(r1)["method"], echoed(r1)["body"]) == ("FOO", "abc")
    assert (echoed(r2)["method"], echoed(r2)["body"]) == ("M-SEARCH", "")


@pytest.mark.gripd_only("CONNECT asks for a tunnel: gripd refuses it with 501; pushpin 1.36 forwards "
                        "CONNECT /path as a plain request and answers CONNECT host:port with a 502")
@pytest.mark.parametrize("request_line", [b"CONNECT /m HTTP/1.1", b"CONNECT x:443 HTTP/1.1"])
def test_connect_is_501_and_not_forwarded(proxy, backend, request_line):
    r = raw.get(proxy.port, "/m")  # the connection before works
    assert r.status == 200
    out = raw.send_raw(proxy.port, request_line + b"\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 501 ")
    assert [r.path for r in backend.requests] == ["/m"]


def test_head_has_headers_no_body(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"HEAD /h?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.recv_response(head_request=True)
        assert r.status == 200
        assert r.body == b""
        # the backend's Content-Length (of the GET body it would send) is passed on
        assert int(r.header("Content-Length")) > 0
        assert r.header("Content-Type") == "application/json"
        # connection stays usable: no stray body bytes precede the next response
        c.send(b"GET /after HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r2 = c.recv_response()
        assert r2.status == 200
        assert echoed(r2)["target"] == "/after"
    assert backend.requests[0].method == "HEAD"
    assert backend.requests[0].target == "/h?x=1"


@pytest.mark.parametrize("target", [
    "/",
    "/a/b/c",
    "/a/b/?x=1&y=2",
    "/path%20with%20escapes/%2F%3F?q=%26amp%3D&empty=&flag",
    "/trailing/slash/",
    "/a//double//slashes",
    "/unicode/%E2%82%AC?v=%E2%82%AC",
    "/semi;params=1/x?a=b;c=d",
    "/q?a=1&a=2&b=%2B+plus",
    "/?",
])
def test_path_and_query_passed_intact(proxy, backend, target):
    r = raw.get(proxy.port, target)
    assert r.status == 200
    assert backend.last.target == target


def test_request_headers_forwarded(proxy, backend):
    hdrs = [("X-Custom", "value 1"), ("X-Multi", "a"), ("X-Multi", "b"), ("Cookie", "c=1; d=2"),
            ("User-Agent", "itest/1.0"), ("Authorization", "Bearer abc.def"),
            ("X-Empty", ""), ("X-Spaces", "  padded  value  "), ("x-lower-case", "lc"),
            ("Accept", "text/plain"), ("Via", "1.1 upstream"), ("Forwarded", "for=192.0.2.1")]
    r = raw.get(proxy.port, "/h", host="h.example", headers=hdrs)
    assert r.status == 200
    req = backend.last
    assert req.header("Host") == "h.example"
    assert req.header("X-Custom") == "value 1"
    # repeated headers may be merged into one comma-joined field
    assert ", ".join(req.header_all("X-Multi")) == "a, b"
    assert req.header("Cookie") == "c=1; d=2"
    assert req.header("User-Agent") == "itest/1.0"
    assert req.header("Authorization") == "Bearer abc.def"
    assert req.header("x-lower-case") == "lc"
    assert req.header("Accept") == "text/plain"
    assert req.header("Via") == "1.1 upstream"
    assert req.header("Forwarded") == "for=192.0.2.1"
    assert req.header("X-Spaces") == "padded  value"


def test_host_header_passed_through(proxy, backend):
    # pushpin 1.36 keeps the client's Host (the target only says where to connect)
    raw.get(proxy.port, "/", host="client-chosen.example:8080")
    assert backend.last.header("Host") == "client-chosen.example:8080"


def test_response_status_reason_headers_body(proxy, backend):
    backend.route("/r", Response(201, b"created!", [
        ("Content-Type", "application/x-test"), ("X-Resp", "1"), ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; HttpOnly"), ("Cache-Control", "no-cache"), ("ETag", '"abc"'),
        ("Location", "/elsewhere"), ("Server", "itest-backend"),
        ("Date", "Mon, 01 Jan 2001 00:00:00 GMT")], reason="Created Here"))
    r = raw.get(proxy.port, "/r")
    assert r.status == 201
    assert r.body == b"created!"
    assert r.header("Content-Type") == "application/x-test"
    assert r.header("X-Resp") == "1"
    # Set-Cookie must never be merged
    assert r.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert r.header("Cache-Control") == "no-cache"
    assert r.header("ETag") == '"abc"'
    assert r.header("Location") == "/elsewhere"
    assert r.header("Server") == "itest-backend"
    assert r.header("Date") == "Mon, 01 Jan 2001 00:00:00 GMT"


@pytest.mark.parametrize("status", [200, 204, 301, 304, 400, 404, 418, 500, 503])
def test_status_codes_passed(proxy, backend, status):
    body = b"" if status in (204, 304) else f"status {status}".encode()
    backend.route("/s", Response(status, body, [("Content-Type", "text/plain")]))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response()
        assert r.status == status
        assert r.body == body
        # keep-alive survives bodiless statuses
        c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv_response().status == 200


def test_request_body_content_length(proxy, backend):
    body = bytes(range(256)) * 40
    r = raw.get(proxy.port, "/post", method="POST", body=body,
                headers=[("Content-Type", "application/octet-stream")])
    assert r.status == 200
    assert backend.last.body == body
    assert backend.last.header("Content-Type") == "application/octet-stream"


def test_request_body_zero_length(proxy, backend):
    r = raw.send_raw(proxy.port, b"POST /zero HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
    assert raw.parse_responses(r)[0].status == 200
    assert backend.last.body == b""
    assert backend.last.method == "POST"


def test_request_body_chunked_upload(proxy, backend):
    chunks = [b"hello ", b"chunked ", b"world" * 100]
    data = b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for ch in chunks:
        data += b"%x\r\n%s\r\n" % (len(ch), ch)
    data += b"0\r\n\r\n"
    with raw.RawConn(proxy.port) as c:
        c.send(data)
        r = c.recv_response()
        assert r.status == 200
    assert backend.last.body == b"".join(chunks)


def test_request_body_chunked_upload_with_extensions_and_trailers(proxy, backend):
    data = (b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    with raw.RawConn(proxy.port) as c:
        c.send(data)
        assert c.recv_response().status == 200
        c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert echoed(c.recv_response())["target"] == "/next"
    assert backend.requests[0].body == b"hello world"


def test_request_body_chunked_upload_slow_pieces(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"POST /slow-up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"abc", b"defg", b"h"):
            time.sleep(0.05)
            c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        c.send(b"0\r\n\r\n")
        assert c.recv_response().status == 200
    assert backend.last.body == b"abcdefgh"


def test_large_upload_content_length(proxy, backend):
    body = os.urandom(MIB5)
    r = requests.post(proxy.http_url + "/big-up", data=body, timeout=30)
    assert r.status_code == 200
    e = r.json()
    assert e["body_len"] == MIB5
    assert e["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_large_upload_chunked(proxy, backend):
    body = os.urandom(MIB5)

    def gen():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = requests.post(proxy.http_url + "/big-up-chunked", data=gen(), timeout=30)
    assert r.status_code == 200
    e = r.json()
    assert e["body_len"] == MIB5
    assert e["body_sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_large_download(proxy, backend, framing):
    body = os.urandom(MIB5)
    backend.route("/big", Response(200, body, [("Content-Type", "application/octet-stream")],
                                   framing=framing))
    r = requests.get(proxy.http_url + "/big", timeout=30)
    assert r.status_code == 200
    assert len(r.content) == MIB5
    assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(body).hexdigest()
    if framing == "length":
        assert r.headers["Content-Length"] == str(MIB5)


def test_chunked_response_streams_in_pieces(proxy, backend):
    # a chunked backend response is relayed before it completes
    backend.route("/stream", Response(200, headers=[("Content-Type", "text/plain")], framing="chunked",
                                      chunks=[b"first;", 1.5, b"second;"]))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        assert c.wait_for(b"first;", timeout=5)
        assert time.monotonic() - t0 < 1.2, "first chunk was held back until the response ended"
        r = c.recv_response()
        assert r.body == b"first;second;"


def test_close_delimited_response_relayed(proxy, backend):
    backend.route("/eof", Response(200, b"until-eof-body", [("Content-Type", "text/plain")],
                                   framing="close"))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /eof HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response()
        assert r.status == 200
        assert r.body == b"until-eof-body"


def test_response_zero_length_body(proxy, backend):
    backend.route("/empty", Response(200, b"", [("Content-Type", "text/plain")]))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response()
        assert r.status == 200 and r.body == b""
        c.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv_response().status == 200


def test_expect_100_continue(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"POST /cont HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        # the client must be told to go on before it sends the body
        interim = c.recv_response(timeout=3, interim=True)
        assert interim.status == 100
        c.send(b"hello world")
        r = c.recv_response()
        assert r.status == 200
    assert backend.last.body == b"hello world"
    # pushpin answers 100 itself and does not forward Expect
    assert backend.last.header("Expect") is None


def test_expect_100_continue_requests_library(proxy, backend):
    body = os.urandom(200000)
    r = requests.put(proxy.http_url + "/cont", data=body, headers={"Expect": "100-continue"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_accept_encoding_client_gets_identity(proxy, backend):
    """pushpin strips the client's Accept-Encoding (its zurl client asks for
    compression itself and decodes): the client receives the identity body."""
    plain = b"hello world " * 50

    def handler(req):
        if "gzip" in (req.header("Accept-Encoding") or ""):
            return Response(200, gzip.compress(plain), [("Content-Type", "text/plain"),
                                                         ("Content-Encoding", "gzip")])
        return Response(200, plain, [("Content-Type", "text/plain")])

    backend.route("/gz", handler)
    r = raw.get(proxy.port, "/gz", headers=[("Accept-Encoding", "gzip")])
    assert r.status == 200
    assert r.body == plain
    assert r.header("Content-Encoding") in (None, "identity")
    assert backend.last.header("Accept-Encoding") != "gzip"


def test_pushpin_check_answered_locally(proxy, backend):
    r = raw.get(proxy.port, "/", headers=[("Pushpin-Check", "1")])
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain"
    assert len(r.body) > 0
    assert backend.requests == [] and backend.probe_requests == []
