"""SockJS (route option `sockjs=`, `[proxy] sockjs_url`, PROTOCOL.md §6.11), as Pushpin 1.36 serves
it (src/proxy/sockjsmanager.cpp, sockjssession.cpp at v1.36.0): `/info`, `/iframe*.html` (page naming
sockjs_url, ETag, 304), OPTIONS (204), the `websocket` transport (framed `/<server>/<session>/websocket`
and raw `/websocket`), `xhr` polling with `xhr_send`, `jsonp` with `jsonp_send`; every other transport
(xhr_streaming, eventsource, htmlfile) is 404. Each SockJS session is bridged to the route's WebSocket
handling: here a WebSocket-over-HTTP backend with the grip extension (messages prefixed `m:`), called
at the route's base path (HTTP transports) or base path + `/websocket` (WebSocket transports).

These run gripd with one worker (`--workers 1`); test_sockjs_workers.py runs the HTTP transports with
several, where a session's requests reach it from any worker."""

import asyncio
import json
import struct
import time

import pytest

from harness import raw
from harness.proxy import IS_PUSHPIN
from harness.backend import Response
from wsutil import WsBackend, connect, recv, run, woh  # noqa: F401 (woh: fixture)

SOCKJS_URL = "http://127.0.0.1:9/sockjs.min.js"
NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0"
ONE_WORKER = [] if IS_PUSHPIN else ["--workers", "1"]


@pytest.fixture
def sockjs(woh, start_proxy):
    woh.on_open = lambda r: [("TEXT", "m:hello")]
    woh.on_text = lambda t, r: [("TEXT", "m:echo:" + t)]
    return start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http", conf={"proxy": {"sockjs_url": SOCKJS_URL}},
                       args=ONE_WORKER)


def common_headers_ok(r, origin="*"):
    assert r.header("Cache-Control") == NO_CACHE or NO_CACHE in r.header_all("Cache-Control")
    assert r.header("Access-Control-Allow-Origin") == origin
    assert r.header("Access-Control-Allow-Credentials") == "true"


def test_info(sockjs):
    r = raw.get(sockjs.port, "/sock/info")
    assert r.status == 200 and r.header("Content-Type") == "text/plain"
    common_headers_ok(r)
    assert r.body.endswith(b"\n")
    info = json.loads(r.body)
    assert info["websocket"] is True and info["origins"] == ["*:*"] and info["cookie_needed"] is False
    assert isinstance(info["entropy"], int)
    # the Origin is echoed (with credentials allowed)
    r = raw.get(sockjs.port, "/sock/info", headers=[("Origin", "http://app.example")])
    common_headers_ok(r, "http://app.example")


def test_options_is_204(sockjs):
    r = raw.get(sockjs.port, "/sock/000/abc/xhr", method="OPTIONS")
    assert r.status == 204 and r.body == b""
    common_headers_ok(r)


def test_iframe_page_names_sockjs_url(sockjs):
    for path in ("/sock/iframe.html", "/sock/iframe-1.0.3.html"):
        r = raw.get(sockjs.port, path)
        assert r.status == 200 and r.header("Content-Type") == "text/html; charset=UTF-8"
        assert "public, max-age=31536000" in r.header_all("Cache-Control")
        assert f'<script src="{SOCKJS_URL}"></script>'.encode() in r.body
        assert b"SockJS.bootstrap_iframe();" in r.body
        etag = r.header("ETag")
        assert etag and etag.startswith('"') and etag.endswith('"')
    r = raw.get(sockjs.port, "/sock/iframe.html", headers=[("If-None-Match", etag)])
    assert r.status == 304 and r.body == b"" and r.header("ETag") == etag


def test_unserved_transports_are_404(sockjs):
    for path in ("/sock/000/abc/xhr_streaming", "/sock/000/abc/eventsource", "/sock/000/abc/htmlfile?c=f",
                 "/sock/nope", "/sock/000/abc/xhr", "/sock/000/abc/xhr_send"):  # xhr must be a POST
        r = raw.get(sockjs.port, path)
        assert (r.status, r.body) == (404, b"Not Found\n"), path
        common_headers_ok(r)


def test_xhr_polling_and_xhr_send(sockjs, woh):
    r = raw.get(sockjs.port, "/sock/000/s1/xhr", method="POST")
    assert (r.status, r.body, r.header("Content-Type")) == (200, b"o\n", "text/plain")
    common_headers_ok(r)
    r = raw.get(sockjs.port, "/sock/000/s1/xhr", method="POST", timeout=10)
    assert r.body == b'a["hello"]\n'
    r = raw.get(sockjs.port, "/sock/000/s1/xhr_send", method="POST", body=b'["hi"]')
    assert (r.status, r.body) == (200, b"ok")
    r = raw.get(sockjs.port, "/sock/000/s1/xhr", method="POST", timeout=10)
    assert r.body == b'a["echo:hi"]\n'
    # the backend sees one WebSocket-over-HTTP connection at the route's base path
    paths = {w.req.path for w in woh.requests}
    assert paths == {"/sock"}
    assert ("TEXT", b"hi") in woh.all_events()


def test_xhr_send_needs_a_json_array_of_strings(sockjs):
    assert raw.get(sockjs.port, "/sock/000/s2/xhr", method="POST").body == b"o\n"
    for body in (b"", b"{}", b"[1]", b"not json"):
        r = raw.get(sockjs.port, "/sock/000/s2/xhr_send", method="POST", body=body)
        assert (r.status, r.body) == (400, b"Payload expected\n"), body
    r = raw.get(sockjs.port, "/sock/000/s2/xhr_send", method="POST", body=b"[]")
    assert (r.status, r.body) == (200, b"ok")


def test_backend_close_reaches_the_poll_and_lingers(sockjs, woh):
    woh.on_text = lambda t, r: [("CLOSE", struct.pack(">H", 4000) + b"bye")]
    assert raw.get(sockjs.port, "/sock/000/c1/xhr", method="POST").body == b"o\n"
    assert raw.get(sockjs.port, "/sock/000/c1/xhr", method="POST", timeout=10).body == b'a["hello"]\n'
    r = raw.get(sockjs.port, "/sock/000/c1/xhr_send", method="POST", body=b'["bye"]')
    assert (r.status, r.body) == (200, b"ok")
    r = raw.get(sockjs.port, "/sock/000/c1/xhr", method="POST", timeout=10)
    assert r.body == b'c[4000,"bye"]\n'
    # the close value is kept for a while: any request for the session gets it
    r = raw.get(sockjs.port, "/sock/000/c1/xhr", method="POST", timeout=10)
    assert r.body == b'c[4000,"bye"]\n'
    r = raw.get(sockjs.port, "/sock/000/c1/jsonp?c=f", timeout=10)
    assert r.body == b'/**/f("c[4000,\\"bye\\"]");\n'


def test_http_transport_bounds(sockjs, woh):
    r = raw.get(sockjs.port, "/sock/000/b1/xhr", method="POST", body=b"x" * 100001)
    assert (r.status, r.body) == (400, b"Request too large.\n")
    # more than 200,000 bytes waiting for a poll ends the session: the next poll opens a new one
    woh.on_text = lambda t, r: [("TEXT", "m:" + "y" * 90000)] * 3
    assert raw.get(sockjs.port, "/sock/000/b2/xhr", method="POST").body == b"o\n"
    r = raw.get(sockjs.port, "/sock/000/b2/xhr_send", method="POST", body=b'["go"]')
    assert (r.status, r.body) == (200, b"ok")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not [e for e in woh.all_events() if e[0] == "CLOSE" or
                                               e[0] == "DISCONNECT"]:
        time.sleep(0.1)
    assert raw.get(sockjs.port, "/sock/000/b2/xhr", method="POST", timeout=10).body == b"o\n"


def test_jsonp_callback_param_and_the_backend_query(sockjs, woh):
    assert raw.get(sockjs.port, "/sock/000/j2/jsonp?c=cb&x=1").body == b'/**/cb("o");\n'
    assert raw.get(sockjs.port, "/sock/000/j2/jsonp?c=cb", timeout=10).body == b'/**/cb("a[\\"hello\\"]");\n'
    r = raw.get(sockjs.port, "/sock/000/j2/jsonp_send", method="POST", body=b"x=1&d=%5B%22g%22%5D")
    assert (r.status, r.body) == (200, b"ok")
    assert raw.get(sockjs.port, "/sock/000/j2/jsonp?c=cb", timeout=10).body == b'/**/cb("a[\\"echo:g\\"]");\n'
    # the backend gets the opening request's whole query, the callback too (Pushpin's asUri)
    assert {w.req.target for w in woh.requests} == {"/sock?c=cb&x=1"}


@pytest.mark.gripd_only("pushpin reads `?d=` with QUrlQuery's pretty decoding, which leaves %22 encoded, so a "
                        "percent-encoded JSON array is 400 'Payload expected' there; gripd decodes the query value")
def test_jsonp_send_by_get_decodes_the_query(sockjs):
    assert raw.get(sockjs.port, "/sock/000/j3/jsonp?c=cb").body == b'/**/cb("o");\n'
    r = raw.get(sockjs.port, "/sock/000/j3/jsonp_send?d=%5B%22g%22%5D")
    assert (r.status, r.body) == (200, b"ok")
    assert raw.get(sockjs.port, "/sock/000/j3/jsonp?c=cb", timeout=10).body == b'/**/cb("a[\\"hello\\"]");\n'
    assert raw.get(sockjs.port, "/sock/000/j3/jsonp?c=cb", timeout=10).body == b'/**/cb("a[\\"echo:g\\"]");\n'


def test_xhr_send_to_unknown_session_is_404(sockjs):
    r = raw.get(sockjs.port, "/sock/000/never/xhr_send", method="POST", body=b'["x"]')
    assert (r.status, r.body) == (404, b"Not Found\n")


def test_jsonp_polling_and_jsonp_send(sockjs):
    r = raw.get(sockjs.port, "/sock/000/j1/jsonp")  # no callback
    assert (r.status, r.body) == (400, b"Bad Request\n")
    r = raw.get(sockjs.port, "/sock/000/j1/jsonp?c=cb")
    assert (r.status, r.header("Content-Type")) == (200, "application/javascript")
    assert r.body == b'/**/cb("o");\n'
    r = raw.get(sockjs.port, "/sock/000/j1/jsonp?c=cb", timeout=10)
    assert r.body == b'/**/cb("a[\\"hello\\"]");\n'
    r = raw.get(sockjs.port, "/sock/000/j1/jsonp_send", method="POST", body=b"d=%5B%22yo%22%5D",
                headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert (r.status, r.body) == (200, b"ok")
    r = raw.get(sockjs.port, "/sock/000/j1/jsonp?callback=f", timeout=10)
    assert r.body == b'/**/f("a[\\"echo:yo\\"]");\n'


def test_second_poll_while_one_waits(sockjs):
    assert raw.get(sockjs.port, "/sock/000/s3/xhr", method="POST").body == b"o\n"
    assert raw.get(sockjs.port, "/sock/000/s3/xhr", method="POST", timeout=10).body == b'a["hello"]\n'
    with raw.RawConn(sockjs.port, timeout=10) as waiting:
        waiting.send(b"POST /sock/000/s3/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        asyncio.run(asyncio.sleep(0.5))
        r = raw.get(sockjs.port, "/sock/000/s3/xhr", method="POST")
        assert (r.status, r.body) == (200, b'c[2010,"Another connection still open"]\n')


def test_websocket_transport(sockjs, woh):
    async def main():
        ws = await connect(sockjs, "/sock/000/w1/websocket")
        assert await recv(ws) == "o"
        assert await recv(ws) == 'a["hello"]'
        await ws.send('["a","b"]')
        assert await recv(ws) == 'a["echo:a"]'
        assert await recv(ws) == 'a["echo:b"]'
        await ws.close()
    run(main())
    assert {w.req.path for w in woh.requests} == {"/sock/websocket"}


def test_raw_websocket_transport(sockjs):
    async def main():
        ws = await connect(sockjs, "/sock/websocket")
        assert await recv(ws) == "hello"
        await ws.send("plain")
        assert await recv(ws) == "echo:plain"
        await ws.close()
    run(main())


@pytest.mark.gripd_only("the worker count is gripd's (pushpin has no such setting)")
def test_no_startup_warning_for_http_transports_with_several_workers(woh, start_proxy):
    """Until session 10 a `sockjs` route warned with workers > 1 (sessions were per worker); their
    requests are relayed to the session's worker now (test_sockjs_workers.py), so nothing warns."""
    p = start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http", args=["--workers", "2"])
    text = p.stdout_path.read_text(errors="replace")
    assert [line for line in text.splitlines() if line.startswith("[WARN]") and "sockjs" in line] == []


def test_sockjs_as_path_and_query_reach_the_backend(woh, start_proxy):
    woh.on_open = lambda r: [("TEXT", "m:hi")]
    p = start_proxy(routes=f"*,sockjs=/sock,sockjs_as_path=/elsewhere {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/sock/123/abc/websocket?x=1")
        assert await recv(ws) == "o"
        assert await recv(ws) == 'a["hi"]'
        await ws.close()
    run(main())
    assert {w.req.target for w in woh.requests} == {"/elsewhere?x=1"}


def test_websocket_transport_frames_binary_and_special_characters(woh, start_proxy):
    # every backend message becomes one a[...] frame holding a JSON string (binary as UTF-8 text)
    woh.on_text = lambda t, r: [("TEXT", "m:" + t), ("BINARY", b"m:bin")]
    p = start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/sock/1/2/websocket")
        assert await recv(ws) == "o"
        await ws.send(json.dumps(['q"\\ \n\u00e9\u2603']))
        assert json.loads((await recv(ws))[1:]) == ['q"\\ \n\u00e9\u2603']
        assert await recv(ws) == 'a["bin"]'
        await ws.close()
    run(main())


def test_websocket_transport_refuses_a_payload_that_is_not_an_array_of_strings(woh, start_proxy):
    p = start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http")

    async def main():
        for bad in ("not json", '{"a":1}', "[1]"):
            ws = await connect(p, "/sock/1/2/websocket")
            assert await recv(ws) == "o"
            await ws.send(bad)
            try:
                while True:
                    await recv(ws)
            except Exception:
                pass
            assert ws.closed or ws.close_code is not None
    run(main())
    assert not [e for e in woh.all_events() if e[0] == "TEXT"]


def test_websocket_transport_to_a_passthrough_backend(start_proxy):
    seen = []

    async def handler(ws, path):
        seen.append(path)
        async for m in ws:
            await ws.send("echo:" + m)
    b = WsBackend(handler=handler)
    try:
        p = start_proxy(routes=f"*,sockjs=/sock {b.addr}")

        async def main():
            ws = await connect(p, "/sock/000/p1/websocket")
            assert await recv(ws) == "o"
            await ws.send('["one","two"]')
            assert await recv(ws) == 'a["echo:one"]'
            assert await recv(ws) == 'a["echo:two"]'
            await ws.close()
        run(main())
        assert seen == ["/sock/websocket"]
    finally:
        b.stop()


def test_websocket_transport_heartbeat(woh, start_proxy):
    # "h" after 25 s without a message (Pushpin's KEEPALIVE_TIMEOUT)
    p = start_proxy(routes=f"*,sockjs=/sock {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/sock/000/h1/websocket")
        assert await recv(ws) == "o"
        assert await recv(ws, 40) == "h"
        await ws.close()
    run(main())
