"""GRIP control messages (`c:` + JSON, PROTOCOL.md §5.3) and ws-message publishes (§4.2) on
WebSocket-over-HTTP connections: subscribe/unsubscribe (route prefix, 20-channel cap, sub=),
detach, keep-alive, message prefixes, and publish send/close/ping/pong/refresh.
Every expectation was checked on pushpin 1.36 unless marked gripd_only."""

import asyncio
import base64
import time
import urllib.error

import pytest

from wsutil import (RawWs, SETTLE, WohBackend, close_content, closed, connect, control, no_message, publish, recv, run,
                    woh, ws_item)


def do_commands(woh):
    """The client's text "do:<x>" makes the backend answer with the text <x>."""
    woh.on_text = lambda t, r: [("TEXT", t[3:])] if t.startswith("do:") else []


async def command(ws, woh, text):
    n = len([r for r in woh.requests if ("TEXT", ("do:" + text).encode()) in r.events])
    await ws.send("do:" + text)
    await woh.async_wait(n + 1, pred=lambda r: ("TEXT", ("do:" + text).encode()) in r.events)
    await asyncio.sleep(SETTLE)


def subscribe_on_open(woh, *channels):
    woh.on_open = lambda r: [("TEXT", control({"type": "subscribe", "channel": c})) for c in channels]


def test_subscribe_and_publish_text_and_binary(woh, start_proxy):
    subscribe_on_open(woh, "news")
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("news", "hello"))
        assert await recv(ws) == "hello"
        publish(p, ws_item("news", b"\x00\xff"))
        assert await recv(ws) == b"\x00\xff"
        publish(p, ws_item("other", "not for us"))
        await no_message(ws, 0.5)
        await ws.close()
    run(main())
    # control messages are not relayed to the client, and the backend sees no echo of them
    assert all(t != "TEXT" for t, _ in woh.all_events())


def test_publish_reaches_every_subscriber(woh, start_proxy):
    subscribe_on_open(woh, "room")
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        clients = [await connect(p, "/") for _ in range(5)]
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("room", "all of you"))
        for ws in clients:
            assert await recv(ws) == "all of you"
        for ws in clients:
            await ws.close()
    run(main())


def test_unsubscribe(woh, start_proxy):
    subscribe_on_open(woh, "a", "b")
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await command(ws, woh, control({"type": "unsubscribe", "channel": "a"}))
        publish(p, ws_item("a", "to-a"))
        publish(p, ws_item("b", "to-b"))
        assert await recv(ws) == "to-b"
        await ws.close()
    run(main())


def test_route_prefix_applies_to_control_subscriptions(woh, start_proxy):
    subscribe_on_open(woh, "x")
    p = start_proxy(routes=f"*,prefix=pre- {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("x", "unprefixed"))
        publish(p, ws_item("pre-x", "prefixed"))
        assert await recv(ws) == "prefixed"
        await ws.close()
    run(main())


def test_implicit_subscriptions_from_sub_option(woh, start_proxy):
    # sub= channels: no grip extension needed, the route prefix is not applied (pushpin 1.36),
    # and a control message cannot remove them.
    woh.grip = True
    do_commands(woh)
    p = start_proxy(routes=f"*,prefix=pre- {woh.addr},over_http,sub=s1,sub=s2")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("s1", "one"))
        assert await recv(ws) == "one"
        publish(p, ws_item("s2", "two"))
        assert await recv(ws) == "two"
        await command(ws, woh, control({"type": "unsubscribe", "channel": "s1"}))
        publish(p, ws_item("s1", "still"))
        assert await recv(ws) == "still"
        await ws.close()
    run(main())


def test_implicit_subscription_without_grip_extension(start_proxy):
    woh = WohBackend(grip=False)
    try:
        p = start_proxy(routes=f"* {woh.addr},over_http,sub=s1")

        async def main():
            ws = await connect(p, "/")
            await asyncio.sleep(SETTLE)
            publish(p, ws_item("s1", "one"))
            assert await recv(ws) == "one"
            await ws.close()
        run(main())
    finally:
        woh.stop()


def test_subscription_cap(woh, start_proxy):
    subscribe_on_open(woh, *[f"ch{i}" for i in range(25)])
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("ch20", "21st"))
        publish(p, ws_item("ch19", "20th"))
        assert await recv(ws) == "20th"
        await no_message(ws, 0.5)
        await ws.close()
    run(main())


@pytest.mark.gripd_only("connection_subscription_max is read by gripd; pushpin 1.36 reads it too but only "
                        "in its handler's config (same key, checked here with gripd only)")
def test_subscription_cap_setting(woh, start_proxy):
    subscribe_on_open(woh, "a", "b", "c")
    p = start_proxy(routes=f"* {woh.addr},over_http", conf={"handler": {"connection_subscription_max": "2"}})

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("c", "third"))
        publish(p, ws_item("b", "second"))
        assert await recv(ws) == "second"
        await ws.close()
    run(main())


def test_without_grip_extension_control_messages_are_plain_text(start_proxy):
    woh = WohBackend(grip=False)
    try:
        subscribe_on_open(woh, "x")
        p = start_proxy(routes=f"* {woh.addr},over_http")

        async def main():
            ws = await connect(p, "/")
            assert await recv(ws) == control({"type": "subscribe", "channel": "x"})
            await asyncio.sleep(SETTLE)
            publish(p, ws_item("x", "nope"))
            await no_message(ws, 0.5)
            await ws.close()
        run(main())
    finally:
        woh.stop()


def test_message_prefix_rules(woh, start_proxy):
    woh.on_text = lambda t, r: [("TEXT", "plain"), ("TEXT", "m:prefixed"), ("BINARY", b"m:bin"),
                                ("BINARY", b"raw"), ("TEXT", "m:last")]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("go")
        assert await recv(ws) == "prefixed"
        assert await recv(ws) == b"bin"
        assert await recv(ws) == "last"
        await ws.close()
    run(main())


def test_custom_message_prefix(woh, start_proxy):
    woh.grip = False
    woh.headers = [("Sec-WebSocket-Extensions", "grip; message-prefix=_")]
    woh.on_text = lambda t, r: [("TEXT", "m:no"), ("TEXT", "_yes")]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("go")
        assert await recv(ws) == "yes"
        await no_message(ws, 0.5)
        await ws.close()
    run(main())


def test_empty_message_prefix(woh, start_proxy):
    woh.grip = False
    woh.headers = [("Sec-WebSocket-Extensions", 'grip; message-prefix=""')]
    woh.on_text = lambda t, r: [("TEXT", "anything"), ("TEXT", control({"type": "subscribe", "channel": "z"}))]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("go")
        assert await recv(ws) == "anything"
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("z", "subscribed"))
        assert await recv(ws) == "subscribed"
        await ws.close()
    run(main())


def test_detach(woh, start_proxy):
    subscribe_on_open(woh, "d")
    do_commands(woh)
    woh.on_close = None
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await command(ws, woh, control({"type": "detach"}))
        await woh.async_wait(1, pred=lambda r: r.events == [("CLOSE", None)])
        await ws.send("after detach")
        await asyncio.sleep(0.5)
        publish(p, ws_item("d", "still subscribed"))
        assert await recv(ws) == "still subscribed"
        await ws.close()
    run(main())
    assert ("TEXT", b"after detach") not in woh.all_events()


def test_keep_alive_idle(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + control({"type": "keep-alive", "content": "ka", "timeout": 2}))
        t0 = time.monotonic()
        assert await recv(ws, 5) == "ka"
        assert 0.8 <= time.monotonic() - t0 <= 3
        assert await recv(ws, 5) == "ka"
        await ws.send("do:" + control({"type": "keep-alive"}))  # disable
        await woh.async_wait(1, pred=lambda r: any(b'"keep-alive"}' in (c or b"") for _, c in r.events))
        await asyncio.sleep(0.2)
        try:
            await recv(ws, 0.1)  # at most one already on its way
        except asyncio.TimeoutError:
            pass
        await no_message(ws, 3)
        await ws.close()
    run(main())


def test_keep_alive_idle_is_reset_by_messages(woh, start_proxy):
    do_commands(woh)
    subscribe_on_open(woh, "busy")
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await command(ws, woh, control({"type": "keep-alive", "content": "ka", "timeout": 3}))
        for i in range(5):
            publish(p, ws_item("busy", f"m{i}"))
            assert await recv(ws) == f"m{i}"
            await asyncio.sleep(0.8)
        await ws.close()
    run(main())


def test_keep_alive_binary_content(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + control({"type": "keep-alive", "content-bin": base64.b64encode(b"\x01\x02").decode(),
                                       "message-type": "binary", "timeout": 1}))
        assert await recv(ws, 5) == b"\x01\x02"
        await ws.close()
    run(main())


def test_keep_alive_content_bin_without_message_type_is_text(woh, start_proxy):
    # Pushpin's WsControlMessage defaults message-type to text before it reads content-bin, so the
    # content-bin's bytes go out in a text frame (src/handler/wscontrolmessage.cpp).
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + control({"type": "keep-alive", "content-bin": base64.b64encode(b"hi").decode(),
                                       "timeout": 1}))
        assert await recv(ws, 5) == "hi"
        await ws.close()
    run(main())


def test_keep_alive_ping(woh, start_proxy):
    do_commands(woh)
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await ws.send("do:" + control({"type": "keep-alive", "content": "kp", "message-type": "ping", "timeout": 1}))
        await woh.async_wait(1, pred=lambda r: ("PONG", b"kp") in r.events)  # the client answered the ping
        await ws.close()
    run(main())


def test_keep_alive_interval_mode(woh, start_proxy):
    do_commands(woh)
    subscribe_on_open(woh, "busy")
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await command(ws, woh, control({"type": "keep-alive", "content": "ka", "timeout": 2, "mode": "interval"}))
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.5:
            publish(p, ws_item("busy", "m"))
            try:
                while True:
                    got.append(await recv(ws, 0.3))
            except asyncio.TimeoutError:
                pass
        assert "ka" in got  # sent even though the connection was never idle for 2 s
        await ws.close()
    run(main())


def test_publish_close(woh, start_proxy):
    subscribe_on_open(woh, "c")
    woh.on_close = None
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("c", action="close", code=4005, reason="pubclose"))
        assert await closed(ws) == (4005, "pubclose")
    run(main())
    woh.wait(1, pred=lambda r: r.events == [("CLOSE", None)])


def test_publish_close_frame_reaches_a_client_that_has_not_answered(woh, start_proxy):
    """The backend accepts the CLOSE a publish close sends it before the client answers the close
    frame: as with Pushpin the connection then ends, after the close frame (which must not be lost
    with it, however late the client reads)."""
    subscribe_on_open(woh, "c")
    woh.on_close = None
    p = start_proxy(routes=f"* {woh.addr},over_http")
    raw = RawWs(p.port, "/")
    try:
        assert raw.status == 101
        woh.wait(1)
        time.sleep(SETTLE)
        publish(p, ws_item("c", action="close", code=4005, reason="pubclose"))
        woh.wait(1, pred=lambda r: r.events == [("CLOSE", None)])
        time.sleep(SETTLE)  # the backend's answer is in; the client has not answered yet
        assert raw.read_close() == (4005, b"pubclose")
        assert raw.is_closed(5)
    finally:
        raw.close()


def test_publish_ping_and_pong(woh, start_proxy):
    subscribe_on_open(woh, "p")
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("p", "pp", type="ping"))
        await woh.async_wait(1, pred=lambda r: ("PONG", b"pp") in r.events)  # the client's automatic answer
        publish(p, ws_item("p", "unsolicited", type="pong"))
        publish(p, ws_item("p", "after"))
        assert await recv(ws) == "after"
        await ws.close()
    run(main())


@pytest.mark.gripd_only("ws-message action refresh is Pushpin 1.38+")
def test_publish_refresh(woh, start_proxy):
    subscribe_on_open(woh, "r")
    woh.on_empty = lambda r: [("TEXT", "m:refreshed")]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("r", action="refresh"))
        assert await recv(ws) == "refreshed"
        await ws.close()
    run(main())


def test_publish_to_closed_connection_is_harmless(woh, start_proxy):
    subscribe_on_open(woh, "gone")
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        await ws.close()
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("gone", "nobody"))
        ws2 = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        publish(p, ws_item("gone", "somebody"))
        assert await recv(ws2) == "somebody"
        await ws2.close()
    run(main())
