"""WebSocket passthrough (a WebSocket target, PROTOCOL.md §5.1): the handshake, frames both ways,
ping/pong, close codes in both directions, refusals and failures, and the `grip` extension
(`c:` control messages, message prefix). Every expectation was checked on pushpin 1.36 unless
marked gripd_only."""

import asyncio

import pytest
import websockets

from harness.proxy import dead_port
from wsutil import RawWs, SETTLE, WsBackend, closed, connect, control, no_message, publish, recv, run, ws_item


@pytest.fixture
def wsb():
    b = WsBackend()
    yield b
    b.stop()


def test_echo_text_and_binary(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/echo?q=1", extra_headers={"X-Client": "yes"})
        await ws.send("hello")
        assert await recv(ws) == "hello"
        await ws.send(b"\x00\x01\xff")
        assert await recv(ws) == b"\x00\x01\xff"
        await ws.send("")
        assert await recv(ws) == ""
        await ws.close()
    run(main())
    path, headers = wsb.connections[0]
    assert path == "/echo?q=1"
    assert headers.get("X-Client") == "yes"
    assert headers.get("Sec-WebSocket-Extensions") == "grip"


def test_large_messages_both_ways(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        big = bytes(range(256)) * 781  # ~200 KB (pushpin 1.36 drops the connection somewhere past 200000)
        await ws.send(big)
        assert await recv(ws, 20) == big
        text = "é" * 100000
        await ws.send(text)
        assert await recv(ws, 20) == text
        await ws.close()
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 drops passthrough connections on messages past ~200000 bytes")
def test_megabyte_messages_both_ways(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        big = bytes(range(256)) * 4096  # 1 MiB in one frame (gripd's frame limit)
        await ws.send(big)
        assert await recv(ws, 20) == big
        await ws.send([big, big, big])  # 3 MiB in three frames
        assert await recv(ws, 20) == big * 3
        await ws.close()
    run(main())


def test_many_messages_in_order(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        for i in range(300):
            await ws.send(f"m{i}")
        for i in range(300):
            assert await recv(ws) == f"m{i}"
        await ws.close()
    run(main())


def test_101_headers_from_backend(start_proxy):
    b = WsBackend(extra_headers=[("X-Backend", "yes")])
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            assert ws.response_headers.get("X-Backend") == "yes"
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
            await ws.close()
        run(main())
    finally:
        b.stop()


def test_subprotocol_negotiated_by_backend(start_proxy):
    b = WsBackend(subprotocols=["chat.v2"])
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/", subprotocols=["chat.v1", "chat.v2"])
            assert ws.subprotocol == "chat.v2"
            await ws.close()
        run(main())
    finally:
        b.stop()


def test_fragmented_messages(wsb, start_proxy):
    async def handler(ws, path):
        async for m in ws:
            await ws.send([m[:3], m[3:6], m[6:]])
    wsb.handler = handler
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        await ws.send(["abc", "def", "ghi"])
        assert await recv(ws) == "abcdefghi"
        await ws.close()
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 passthrough does not answer a client's ping (nothing comes back)")
def test_client_ping_answered_by_backend(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        waiter = await ws.ping(b"are you there")
        await asyncio.wait_for(waiter, 5)
        await ws.close()
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 passthrough: the backend's ping gets no pong back")
def test_backend_ping_answered_by_client(wsb, start_proxy):
    result = {}

    async def handler(ws, path):
        waiter = await ws.ping(b"srv")
        await asyncio.wait_for(waiter, 5)
        result["pong"] = True
        await ws.send("done")
        await ws.wait_closed()
    wsb.handler = handler
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        assert await recv(ws) == "done"
        await ws.close()
    run(main())
    assert result.get("pong")


def test_client_close_code_reaches_backend(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        await ws.send("x")
        await recv(ws)
        await ws.close(4001, "bye")
        assert (ws.close_code, ws.close_reason) == (4001, "bye")
    run(main())
    for _ in range(50):
        if wsb.closed:
            break
        import time
        time.sleep(0.1)
    assert wsb.closed[0] == (4001, "bye")


def test_backend_close_code_reaches_client(wsb, start_proxy):
    async def handler(ws, path):
        await ws.recv()
        await ws.close(4002, "srv")
    wsb.handler = handler
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        await ws.send("close me")
        assert await closed(ws) == (4002, "srv")
    run(main())


def test_backend_refusal_is_relayed(start_proxy):
    from http import HTTPStatus

    async def refuse(path, headers):
        return HTTPStatus.FORBIDDEN, [("X-Why", "nope")], b"go away\n"
    b = WsBackend(process_request=refuse)
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await connect(p, "/")
            assert e.value.status_code == 403
        run(main())
    finally:
        b.stop()


def test_backend_down_is_502(start_proxy):
    p = start_proxy(routes=f"* 127.0.0.1:{dead_port()}")
    raw = RawWs(p.port, "/")
    assert raw.status == 502
    raw.close()


def test_backend_vanishing_closes_the_client(wsb, start_proxy):
    async def handler(ws, path):
        await ws.recv()
        ws.transport.abort()
    wsb.handler = handler
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        await ws.send("die")
        code, _ = await closed(ws, 10)
        assert code in (1006, 1011)
    run(main())


@pytest.mark.gripd_only("pushpin 1.36 drops the client without a close frame")
def test_backend_vanishing_closes_the_client_with_1011(wsb, start_proxy):
    async def handler(ws, path):
        await ws.recv()
        ws.transport.abort()
    wsb.handler = handler
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        await ws.send("die")
        assert (await closed(ws, 10))[0] == 1011
    run(main())


def test_client_vanishing_closes_the_backend(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr}")
    raw = RawWs(p.port, "/")
    assert raw.status == 101
    raw.send_frame(1, b"hi")
    assert raw.read_frame() == (1, True, b"hi")
    raw.close()
    import time
    for _ in range(50):
        if wsb.closed:
            break
        time.sleep(0.1)
    assert wsb.closed


# --- grip extension ----------------------------------------------------------------------

def grip_backend(handler, prefix=None):
    ext = "grip" if prefix is None else f'grip; message-prefix="{prefix}"'
    return WsBackend(handler=handler, extra_headers=[("Sec-WebSocket-Extensions", ext)])


def test_grip_prefix_and_control(start_proxy):
    async def handler(ws, path):
        await ws.send(control({"type": "subscribe", "channel": "pt"}))
        async for m in ws:
            await ws.send("m:" + m)
            await ws.send("unprefixed is dropped")
    b = grip_backend(handler)
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
            await ws.send("one")
            assert await recv(ws) == "one"
            await ws.send("two")
            assert await recv(ws) == "two"
            await asyncio.sleep(SETTLE)
            publish(p, ws_item("pt", "published"))
            assert await recv(ws) == "published"
            await ws.close()
        run(main())
    finally:
        b.stop()


def test_grip_custom_prefix(start_proxy):
    async def handler(ws, path):
        async for m in ws:
            await ws.send("m:" + m)
            await ws.send(">" + m)
    b = grip_backend(handler, prefix=">")
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            await ws.send("x")
            assert await recv(ws) == "x"
            await no_message(ws, 0.5)
            await ws.close()
        run(main())
    finally:
        b.stop()


def test_without_grip_everything_passes(wsb, start_proxy):
    async def handler(ws, path):
        await ws.send(control({"type": "subscribe", "channel": "nope"}))
        await ws.wait_closed()
    wsb.handler = handler
    p = start_proxy(routes=f"* {wsb.addr}")

    async def main():
        ws = await connect(p, "/")
        assert await recv(ws) == control({"type": "subscribe", "channel": "nope"})
        await ws.close()
    run(main())


def test_grip_detach(start_proxy):
    state = {}

    async def handler(ws, path):
        await ws.send(control({"type": "subscribe", "channel": "det"}))
        await ws.send(control({"type": "detach"}))
        try:
            async for m in ws:
                state.setdefault("after", []).append(m)
        except websockets.ConnectionClosed:
            pass
    b = grip_backend(handler)
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            for _ in range(50):
                if b.closed:
                    break
                await asyncio.sleep(0.1)
            assert b.closed  # detach closed the backend side
            await ws.send("not relayed")
            await asyncio.sleep(SETTLE)
            publish(p, ws_item("det", "still here"))
            assert await recv(ws) == "still here"
            await ws.close()
        run(main())
        assert "not relayed" not in state.get("after", [])
    finally:
        b.stop()


def test_grip_publish_close(start_proxy):
    async def handler(ws, path):
        await ws.send(control({"type": "subscribe", "channel": "pc"}))
        await ws.wait_closed()
    b = grip_backend(handler)
    try:
        p = start_proxy(routes=f"* {b.addr}")

        async def main():
            ws = await connect(p, "/")
            await asyncio.sleep(SETTLE)
            publish(p, ws_item("pc", action="close", code=4010, reason="bye"))
            assert await closed(ws) == (4010, "bye")
        run(main())
    finally:
        b.stop()


def test_implicit_subscription_on_passthrough(wsb, start_proxy):
    p = start_proxy(routes=f"* {wsb.addr},sub=ptsub")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("ptsub", "implicit"))
        assert await recv(ws) == "implicit"
        await ws.send("echo")
        assert await recv(ws) == "echo"
        await ws.close()
    run(main())
