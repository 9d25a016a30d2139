"""The built-in `test` target reads ?channel= as Pushpin does (Qt's pretty decoding), the same way on
/stream, /response and /ws: escapes are decoded except URL delimiters, controls and invalid UTF-8,
which stay escaped in upper-case hex. Every pair below was observed on pushpin 1.36."""

import asyncio
import time

from griputil import StreamClient, hr_item, hs_item, publish
from harness import raw
from wsutil import IS_PUSHPIN, SETTLE, connect, recv, run, ws_item
from wsutil import publish as ws_publish

# (query value as sent, channel it names)
CASES = [
    ("a%20b", "a b"),
    ("a%26b", "a&b"),
    ("a%3Db", "a=b"),
    ("a+b", "a+b"),
    ("a%41", "aA"),
    ("a%25b", "a%25b"),
    ("a%C3%A9", "a\u00e9"),
    ("a%2Fb", "a%2Fb"),
    ("a%2cb", "a%2Cb"),
    ("a%e9b", "a%E9b"),
]
# A '%' that starts no escape. Pushpin's HTTP test handler answers such a target with 500 "Accept
# service unavailable." (its handler refuses the URL); its WebSocket one reads it as below, and so
# does gripd on both.
MALFORMED = [("a%zzb", "a%25zzb"), ("a%4", "a%254")]


def open_stream(p, target: str) -> StreamClient:
    """A test-handler stream. Pushpin's handler may not be wired to its proxy yet right after
    startup (500 "Accept service unavailable."): that first answer is retried, nothing else."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        c = StreamClient(p.port, target)
        if c.wait_head().status != 500 or not IS_PUSHPIN:
            c.wait_body(b"[stream opened]\n")
            return c
        c.close()
        time.sleep(0.2)
    raise AssertionError("the test handler never accepted the stream")


def test_stream_channel_query_decoding(start_proxy):
    p = start_proxy(routes="* test")
    clients = [open_stream(p, f"/stream?channel={sent}") for sent, _ in CASES]
    time.sleep(SETTLE)
    publish(p, [hs_item(channel, f"<{channel}>\n") for _, channel in CASES])
    for c, (sent, channel) in zip(clients, CASES):
        c.wait_body(lambda b, channel=channel: f"<{channel}>\n".encode() in b)
        assert c.body.decode() == f"[stream opened]\n<{channel}>\n", sent
        c.close()


def test_response_channel_query_decoding(start_proxy):
    p = start_proxy(routes="* test")
    sent, channel = "x%2By%20z", "x%2By z"
    open_stream(p, "/stream").close()  # the handler is wired up
    c = StreamClient(p.port, f"/response?channel={sent}")
    # Published until the hold answers: how long a subscription takes to reach pushpin's handler
    # varies, and a publish before that is lost.
    for _ in range(20):
        time.sleep(SETTLE)
        publish(p, [hr_item("x+y z", "wrong\n"), hr_item(channel, "right\n")])
        if c._wait(lambda: c.complete, 1.0, "response", raise_=False):
            break
    assert c.wait_complete() == b"right\n"
    c.close()


def test_ws_channel_query_decoding(start_proxy):
    p = start_proxy(routes="* test")

    async def main():
        cases = CASES + MALFORMED
        conns = [await connect(p, f"/ws?channel={sent}") for sent, _ in cases]
        await asyncio.sleep(SETTLE)
        ws_publish(p, *[ws_item(channel, f"<{channel}>") for _, channel in cases])
        for ws, (sent, channel) in zip(conns, cases):
            assert await recv(ws) == f"<{channel}>", sent
        for ws in conns:
            await ws.close()
    run(main())


def test_http_test_target_texts(start_proxy):
    p = start_proxy(routes="* test")
    r = raw.get(p.port, "/")
    assert (r.status, r.body) == (200, b"Hello from the Pushpin test handler!\n")
    r = raw.get(p.port, "/nothing")
    assert (r.status, r.header("Content-Type"), r.body) == (404, "text/plain", b"no such test resource\n")
    c = open_stream(p, "/stream")
    assert c.head.header("Content-Type") == "text/plain"
    c.close()
