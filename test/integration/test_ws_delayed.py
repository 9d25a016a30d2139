"""GRIP control messages `send-delayed`, `flush-delayed` and `session` (PROTOCOL.md §5.3) on
WebSocket-over-HTTP and passthrough connections. Pushpin 1.36's handler (src/handler/wssession.cpp,
engine.cpp) keeps one delayed message per connection: it is sent when its timeout (seconds,
default 1) runs out, when `flush-delayed` comes, or at once when the next `send-delayed` replaces
it. `session` only feeds Pushpin's optional external session-state service (handler state_spec),
so it has no visible effect. Every expectation was checked on pushpin 1.36."""

import asyncio
import base64

from wsutil import SETTLE, WsBackend, connect, control, no_message, publish, recv, run, woh, ws_item  # noqa: F401 (woh: fixture)


def do_commands(woh):
    """The client's text "do:<x>" makes the backend answer with the text <x>."""
    woh.on_text = lambda t, r: [("TEXT", t[3:])] if t.startswith("do:") else []


def delayed(content, **kw):
    return control({"type": "send-delayed", "content": content, **kw})


FLUSH = control({"type": "flush-delayed"})


def test_send_delayed_waits_for_its_timeout(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + delayed("later", timeout=3))
        # not sent at once: nothing in the first second of its three
        await no_message(ws, 1.0)
        assert await recv(ws, 10) == "later"
        await no_message(ws, 0.5)
        await ws.close()
    run(main())


def test_flush_delayed_sends_it_now(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + delayed("held", timeout=600))
        await no_message(ws, 0.5)
        await ws.send("do:" + FLUSH)
        assert await recv(ws, 10) == "held"
        # flushed once: a second flush has nothing to send
        await ws.send("do:" + FLUSH)
        await no_message(ws, 0.5)
        await ws.close()
    run(main())


def test_next_send_delayed_sends_the_waiting_one(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + delayed("first", timeout=600))
        await no_message(ws, 0.5)
        await ws.send("do:" + delayed("second", timeout=600))
        assert await recv(ws, 10) == "first"
        await no_message(ws, 0.5)
        await ws.send("do:" + FLUSH)
        assert await recv(ws, 10) == "second"
        await ws.close()
    run(main())


def test_send_delayed_default_timeout_follows_later_publish(woh, start_proxy):
    # no timeout (or 0): one second, so a publish made right after it arrives first
    do_commands(woh)
    woh.on_open = lambda r: [("TEXT", control({"type": "subscribe", "channel": "d"}))]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        await ws.send("do:" + delayed("delayed", timeout=0))
        await woh.async_wait(1, pred=lambda r: any(b"send-delayed" in (c or b"") for _, c in r.events))
        publish(p, ws_item("d", "published"))
        assert await recv(ws, 10) == "published"
        assert await recv(ws, 10) == "delayed"
        await ws.close()
    run(main())


def test_send_delayed_binary(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + control({"type": "send-delayed", "message-type": "binary",
                                       "content-bin": base64.b64encode(b"\x00\x01\xff").decode(),
                                       "timeout": 600}))
        await ws.send("do:" + FLUSH)
        assert await recv(ws, 10) == b"\x00\x01\xff"
        await ws.close()
    run(main())


def test_session_message_changes_nothing(woh, start_proxy):
    do_commands(woh)
    woh.on_open = lambda r: [("TEXT", control({"type": "session", "id": "s-1"})),
                             ("TEXT", control({"type": "subscribe", "channel": "after"}))]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("after", "still works"))
        assert await recv(ws) == "still works"
        await ws.send("do:" + control({"type": "session"}))  # no id: clears it
        await ws.send("do:m:echo")
        assert await recv(ws) == "echo"
        await ws.close()
    run(main())


def test_send_delayed_on_passthrough(start_proxy):
    async def handler(ws, path):
        async for m in ws:
            if m == "delay":
                await ws.send(delayed("pt-later", timeout=600))
            elif m == "flush":
                await ws.send(FLUSH)
            else:
                await ws.send("m:" + m)
    b = WsBackend(handler=handler, extra_headers=[("Sec-WebSocket-Extensions", "grip")])
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            await ws.send("delay")
            await ws.send("x")
            assert await recv(ws) == "x"
            await no_message(ws, 0.5)
            await ws.send("flush")
            assert await recv(ws, 10) == "pt-later"
            await ws.close()
        run(main())
    finally:
        b.stop()


def test_send_delayed_waits_behind_a_fragmented_message(start_proxy):
    # Its time comes while the backend's fragmented message is half relayed: the client gets the
    # whole message first, then the delayed one (never a frame in the middle of a message).
    async def handler(ws, path):
        async for m in ws:
            if m == "go":
                await ws.send(delayed("after-fragments", timeout=1))

                async def fragments():
                    yield "m:part1-"
                    await asyncio.sleep(2.5)
                    yield "part2"
                await ws.send(fragments())
    b = WsBackend(handler=handler, extra_headers=[("Sec-WebSocket-Extensions", "grip")])
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            await ws.send("go")
            assert await recv(ws, 10) == "part1-part2"
            assert await recv(ws, 10) == "after-fragments"
            await ws.close()
        run(main())
    finally:
        b.stop()
