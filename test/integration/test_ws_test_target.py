"""The built-in `test` target for WebSockets (Pushpin's test handler): /ws echoes, answers pings and
receives publishes on ?channel= (default "test", route prefix applied); other paths get 404."""

import asyncio

import pytest
import websockets

from wsutil import RawWs, SETTLE, connect, publish, recv, run, ws_item


def test_ws_echo_ping_and_publish(start_proxy):
    p = start_proxy(routes="* test")

    async def main():
        ws = await connect(p, "/ws")
        await ws.send("hello")
        assert await recv(ws) == "hello"
        await ws.send(["frag", "ment"])
        assert await recv(ws) == "fragment"
        await ws.send(b"\x01\x02")
        assert await recv(ws) == b"\x01\x02"
        await asyncio.wait_for(await ws.ping(b"x"), 5)
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("test", "published"))
        assert await recv(ws) == "published"
        await ws.close(4001, "r")
        assert (ws.close_code, ws.close_reason) == (4001, "r")
    run(main())


def test_ws_channel_param_and_prefix(start_proxy):
    p = start_proxy(routes="* test\npfx.example,prefix=pp- test")

    async def main():
        a = await connect(p, "/ws?channel=abc")
        b = await connect(p, "/ws", host="pfx.example")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("abc", "to abc"))
        publish(p, ws_item("test", "plain"))
        publish(p, ws_item("pp-test", "prefixed"))
        assert await recv(a) == "to abc"
        assert await recv(b) == "prefixed"
        await a.close()
        await b.close()
    run(main())


def test_ws_other_path_is_404(start_proxy):
    p = start_proxy(routes="* test")
    raw = RawWs(p.port, "/other")
    assert raw.status == 404
    while len(raw.buf) < 22 and raw._fill():
        pass
    assert raw.buf == b"no such test resource\n"
    raw.close()
