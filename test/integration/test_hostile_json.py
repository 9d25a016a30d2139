"""Hostile JSON at every place the proxy reads JSON from outside: publish bodies, GRIP instruct
bodies, `c:` control messages from a passthrough WebSocket backend and from a WebSocket-over-HTTP
backend, Grip-Sig tokens (with upstream_key) and, on gripd, items on the Redis bus.

The attack is deep nesting (a recursive parser runs out of stack: 300,000 `[` once killed gripd with
SIGSEGV) plus a few other malformed shapes. Pushpin 1.36 reads all of these with Qt 5's parser,
whose nesting limit is 1024 arrays/objects: 1024 parse, 1025 are refused, even in a field nobody
reads. After each attack the proxy must still be running and another client's held stream must
still get a publish. Every expectation was observed on Debian's pushpin 1.36 unless gripd_only.

Observed on pushpin 1.36:
- publish: too deep, invalid UTF-8 or trailing garbage => 400 `Body is not valid JSON.\\n`.
- instruct body too deep => the client gets 502 `Error while proxying to origin.\\n`.
- a `c:` message that does not parse (too deep included) is ignored: the WebSocket stays open,
  later control messages still work.
- a Grip-Sig whose claims nest too deeply is not trusted (the request is re-signed with the
  proxy's own key and the client's Grip-* headers are dropped); a too deep JWT header is trusted
  by pushpin (its Rust JWT code skips unknown header fields), not by gripd.
- duplicate names: the last one wins.
- an unpaired surrogate escape (\\udc00, or \\ud800 without a low one) is published as '?'.
"""

import asyncio
import hashlib
import hmac
import json
import time

import pytest

from harness import jwt, raw
from harness.backend import Response, grip_hold
from griputil import StreamClient, hold, hs_item, publish, publish_raw, sync_stream
from wsutil import SETTLE, WohBackend, WsBackend, connect, no_message, recv, run, ws_item
from wsutil import publish as ws_publish

LIMIT = 1024  # Qt 5's nesting limit (pushpin 1.36); gripd's core::json::kMaxDepth
HOSTILE = 300_000
NOT_JSON = b"Body is not valid JSON.\n"
BAD_GATEWAY_BODY = b"Error while proxying to origin.\n"


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_keys(depth: int) -> str:
    """{"a":{"a":...}} `depth` objects deep, unclosed (a parser must give up before the end)."""
    return '{"a":' * depth


# --- the witness: another client's held stream --------------------------------------------

def witness(proxy, backend, channel="witness") -> StreamClient:
    """A stream hold on `channel`, certainly subscribed."""
    backend.route("/witness", grip_hold("stream", channel, body=b"open\n"))
    c = hold(proxy, backend, "/witness", stream=True)
    sync_stream(proxy, channel, [c])
    return c


def assert_survived(proxy, c: StreamClient, channel="witness", text="after the attack\n"):
    assert proxy.alive(), "the proxy died"
    publish(proxy, [hs_item(channel, text)])
    c.wait_body(text.encode(), timeout=10)


# --- publish -------------------------------------------------------------------------------

def test_publish_nesting_limit(proxy, backend):
    # 1024 deep parses (then lacks items), 1025 is refused as not JSON, even in an unread field.
    r = publish_raw(proxy, ('{"x":' + arrays(LIMIT - 1) + "}").encode())
    assert (r.status, r.body) == (400, b"Invalid format: object does not contain 'items'\n")
    r = publish_raw(proxy, ('{"x":' + arrays(LIMIT) + "}").encode())
    assert (r.status, r.body) == (400, NOT_JSON)
    c = witness(proxy, backend)
    at_limit = '{"items":[{"channel":"witness","formats":{"http-stream":{"content":"at limit\\n"}},"x":%s}]}'
    r = publish_raw(proxy, (at_limit % arrays(LIMIT - 3)).encode())
    assert (r.status, r.body.strip()) == (200, b"Published")
    c.wait_body(b"at limit\n")
    r = publish_raw(proxy, (at_limit.replace("at limit", "too deep") % arrays(LIMIT - 2)).encode())
    assert (r.status, r.body) == (400, NOT_JSON)
    assert_survived(proxy, c)
    assert b"too deep" not in c.body


@pytest.mark.parametrize("shape", ["arrays", "closed-arrays", "keys", "in-item"])
def test_publish_hostile_depth(proxy, backend, shape):
    c = witness(proxy, backend)
    body = {
        "arrays": "[" * HOSTILE,
        "closed-arrays": arrays(HOSTILE // 2),
        "keys": deep_keys(HOSTILE // 5),
        "in-item": '{"items":[{"channel":"witness","formats":{"http-stream":{"content":"x"}},"m":' +
                   "[" * HOSTILE,
    }[shape].encode()
    r = publish_raw(proxy, body)
    assert (r.status, r.body) == (400, NOT_JSON)
    assert_survived(proxy, c)


@pytest.mark.parametrize("body", [
    b'{"items":[{"channel":"witness","formats":{"http-stream":{"content":"\xff"}}}]}',
    b'{"items":[{"channel":"witness","formats":{"http-stream":{"content":"\xed\xa0\x80"}}}]}',
    b'{"items":[]} x',
    b'{"items":[]}{}',
], ids=["invalid-utf8", "encoded-surrogate", "trailing-garbage", "two-roots"])
def test_publish_malformed_is_not_json(proxy, backend, body):
    c = witness(proxy, backend)
    r = publish_raw(proxy, body)
    assert (r.status, r.body) == (400, NOT_JSON)
    assert_survived(proxy, c)
    assert b"\xff" not in c.body


def test_publish_unpaired_surrogates_become_question_marks(proxy, backend):
    # Never invalid UTF-8 on the wire: Qt keeps a lone surrogate escape in its UTF-16 string and
    # pushpin writes it out as '?'; a proper pair is the character it encodes.
    c = witness(proxy, backend)
    r = publish_raw(proxy, b'{"items":[{"channel":"witness","formats":{"http-stream":'
                           b'{"content":"A\\udd00B\\ud800C\\ud83d\\ude00\\n"}}}]}')
    assert (r.status, r.body.strip()) == (200, b"Published")
    c.wait_body(b"C")
    assert c.body.endswith("A?B?C\U0001F600\n".encode())


def test_publish_duplicate_names_last_wins(proxy, backend):
    c = witness(proxy, backend)
    r = publish_raw(proxy, b'{"items":[],"items":"nope"}')
    assert (r.status, r.body) == (400, b"Invalid format: object contains 'items' with wrong type\n")
    r = publish_raw(proxy, b'{"items":"nope","items":[{"channel":"x","channel":"witness",'
                           b'"formats":{"http-stream":{"content":"first\\n","content":"last\\n"}}}]}')
    assert (r.status, r.body.strip()) == (200, b"Published")
    c.wait_body(b"last\n")
    assert b"first" not in c.body


# --- GRIP instruct body ---------------------------------------------------------------------

def instruct_body(extra: str) -> bytes:
    return ('{"hold":{"mode":"stream","channels":[{"name":"inst"}]},'
            '"response":{"body":"held\\n"},"x":' + extra + "}").encode()


INSTRUCT = [("Content-Type", "application/grip-instruct")]


def test_instruct_nesting_limit(proxy, backend):
    c = witness(proxy, backend)
    backend.route("/ok", Response(200, instruct_body(arrays(LIMIT - 1)), INSTRUCT))
    backend.route("/deep", Response(200, instruct_body(arrays(LIMIT)), INSTRUCT))
    held = StreamClient(proxy.port, "/ok")
    held.wait_body(b"held\n")
    with raw.RawConn(proxy.port) as conn:
        conn.send(b"GET /deep HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = conn.recv_response()
        assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
    assert_survived(proxy, c)
    held.close()


@pytest.mark.parametrize("shape", ["arrays", "keys"])
def test_instruct_hostile_depth(proxy, backend, shape):
    c = witness(proxy, backend)
    body = ("[" * 50_000) if shape == "arrays" else deep_keys(10_000)
    backend.route("/evil", Response(200, body.encode(), INSTRUCT))
    with raw.RawConn(proxy.port) as conn:
        conn.send(b"GET /evil HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = conn.recv_response()
        assert (r.status, r.body) == (502, BAD_GATEWAY_BODY)
        conn.send(b"GET /after HTTP/1.1\r\nHost: example.com\r\n\r\n")  # the connection is still usable
        assert conn.recv_response().status == 200
    assert_survived(proxy, c)


# --- `c:` control messages --------------------------------------------------------------------

def subscribe_at_limit(channel: str) -> str:
    """A subscribe whose nesting is exactly at the limit (root object + 1023 arrays): it works."""
    return 'c:{"type":"subscribe","channel":"%s","x":%s}' % (channel, arrays(LIMIT - 1))


def deep_control(kind: str, size: int = HOSTILE) -> str:
    return "c:" + {"arrays": "[" * size, "keys": deep_keys(size // 5),
                   "limit": '{"type":"subscribe","channel":"never","x":' + arrays(LIMIT) + "}"}[kind]


@pytest.mark.parametrize("kind", ["arrays", "keys", "limit"])
def test_passthrough_control_too_deep_is_ignored(backend, start_proxy, kind):
    """A grip passthrough backend sends a hostile `c:` message, then subscribes properly."""
    async def handler(ws, path):
        # 199,000 bytes: pushpin 1.36 drops passthrough connections on messages past ~200,000 bytes
        # (and 199,000 `[` were enough to crash a recursive parse).
        await ws.send(deep_control(kind, 199_000))
        await ws.send(subscribe_at_limit("pt"))
        async for m in ws:
            await ws.send("m:" + m)
    wsb = WsBackend(handler=handler, extra_headers=[("Sec-WebSocket-Extensions", "grip")])
    try:
        p = start_proxy(routes=f"*,path_beg=/witness {backend.addr}\n* {wsb.addr}\n")
        c = witness(p, backend)

        async def main():
            ws = await connect(p, "/ws")
            await ws.send("echo")
            assert await recv(ws) == "echo"  # the session lives on
            await asyncio.sleep(SETTLE)
            ws_publish(p, ws_item("never", "subscribed by the deep message"))
            ws_publish(p, ws_item("pt", "published"))
            assert await recv(ws) == "published"
            await ws.close()
        run(main())
        assert_survived(p, c)
    finally:
        wsb.stop()


@pytest.mark.parametrize("kind", ["arrays", "keys", "limit"])
def test_woh_control_too_deep_is_ignored(backend, start_proxy, kind):
    """A WebSocket-over-HTTP backend answers OPEN with a hostile `c:` message and a subscribe."""
    woh = WohBackend()
    woh.on_open = lambda r: [("TEXT", deep_control(kind)), ("TEXT", subscribe_at_limit("wo"))]
    woh.on_text = lambda t, r: [("TEXT", "m:" + t)]
    try:
        p = start_proxy(routes=f"*,path_beg=/witness {backend.addr}\n* {woh.addr},over_http\n")
        c = witness(p, backend)

        async def main():
            ws = await connect(p, "/ws")
            await ws.send("echo")
            assert await recv(ws) == "echo"
            await asyncio.sleep(SETTLE)
            ws_publish(p, ws_item("never", "subscribed by the deep message"))
            ws_publish(p, ws_item("wo", "published"))
            assert await recv(ws) == "published"
            await no_message(ws, 0.3)
            await ws.close()
        run(main())
        assert_survived(p, c)
    finally:
        woh.stop()


# --- Grip-Sig with upstream_key ---------------------------------------------------------------

def token(header: str, claims: str, key: bytes) -> str:
    signing_input = jwt.b64url_encode(header.encode()) + "." + jwt.b64url_encode(claims.encode())
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + jwt.b64url_encode(sig)


def upstream_headers(proxy, headers):
    r = raw.get(proxy.port, "/x", headers=headers)
    assert r.status == 200, r.body
    return json.loads(r.body)["headers"]


GOOD_HEADER = '{"alg":"HS256","typ":"JWT"}'


def good_claims(extra: str = "") -> str:
    return '{"iss":"cdn","exp":%d%s}' % (int(time.time()) + 600, extra)


@pytest.mark.parametrize("where", [
    "claims",
    pytest.param("header", marks=pytest.mark.gripd_only(
        "pushpin 1.36's Rust jsonwebtoken skips unknown header fields at any depth and trusts the token; "
        "gripd reads every outside JSON through one depth-limited parser and does not")),
])
@pytest.mark.proxy(routes="*,path_beg=/witness {backend}\n* {backend}\n",
                   conf={"proxy": {"upstream_key": "up-key", "sig_key": "own-key"}})
def test_grip_sig_too_deep_is_not_trusted(proxy, backend, where):
    c = witness(proxy, backend)
    # The control case: the same token shape at a harmless depth is trusted.
    ok = token(GOOD_HEADER, good_claims(',"x":' + arrays(3)), b"up-key")
    hs = upstream_headers(proxy, [("Grip-Sig", ok), ("Grip-Foo", "bar")])
    assert [v for k, v in hs if k.lower() == "grip-sig"] == [ok]
    # Deep enough for both parsers (and within the 8 KiB request head): refused, re-signed.
    deep = ',"x":' + arrays(2000)
    if where == "claims":
        tok = token(GOOD_HEADER, good_claims(deep), b"up-key")
    else:
        tok = token(GOOD_HEADER[:-1] + deep + "}", good_claims(), b"up-key")
    assert len(tok) < 7000
    hs = upstream_headers(proxy, [("Grip-Sig", tok), ("Grip-Foo", "bar")])
    sigs = [v for k, v in hs if k.lower() == "grip-sig"]
    assert len(sigs) == 1 and sigs[0] != tok
    assert jwt.verify_hs256(sigs[0], "own-key")["iss"] == "pushpin"
    assert [v for k, v in hs if k.lower() == "grip-foo"] == []
    assert_survived(proxy, c)


# --- Redis bus items (gripd only) -----------------------------------------------------------

@pytest.mark.gripd_only("Pushpin 1.36 has no Redis bus")
def test_bus_item_too_deep_is_skipped(start_proxy):
    from test_bus_redis import Redis, start_instance, stream, wait_subscribed
    redis = Redis()
    try:
        p = start_instance(start_proxy, redis)
        s = stream(p, "deep")
        wait_subscribed(redis, "deep")
        for payload in ["[" * HOSTILE, deep_keys(HOSTILE // 5),
                        '{"channel":"deep","formats":{"http-stream":{"content":"x"}},"m":' + arrays(LIMIT) + "}"]:
            assert redis.command("PUBLISH", "gripd:deep", payload) == b":1"
        publish(p, [hs_item("deep", "good\n")])
        s.wait_body(b"good\n")
        assert s.body == b"[stream opened]\ngood\n"
        assert p.alive()
        # The bus link's worker logs each refusal; another worker may deliver "good" first.
        line = "ignoring a bad item on channel deep: item is not valid JSON: nested too deeply"
        deadline = time.monotonic() + 5
        while p.log().count(line) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.log().count(line) == 3
    finally:
        redis.stop()
