"""Delivery filters on WebSocket subscriptions (PROTOCOL.md §4.5, §5.3): a `c:` subscribe message
may name `filters` (skip-self, skip-users, require-sub). They are checked against the session's
meta, set with `set-meta` control messages, and the publish item's meta (`sender`, `skip_users`,
`require_sub`), as for HTTP holds; an item's `content-filters` are compared with the content
filters alone. Every expectation was checked on pushpin 1.36 unless marked."""

import asyncio

import pytest

from wsutil import SETTLE, WsBackend, connect, control, no_message, publish, recv, run, woh, ws_item  # noqa: F401

REQUIRE_SUB_DIFFERS = ("pushpin 1.36 gives WebSocket filters no list of the connection's channels (its "
                       "Filter::Context.prevIds stays empty), so require-sub drops every item naming require_sub; "
                       "gripd checks the session's subscriptions, as for HTTP holds and as documented")


def set_meta(name, value=None) -> tuple:
    msg = {"type": "set-meta", "name": name}
    if value is not None:
        msg["value"] = value
    return ("TEXT", control(msg))


def subscribe(channel, *filters) -> tuple:
    msg = {"type": "subscribe", "channel": channel}
    if filters:
        msg["filters"] = list(filters)
    return ("TEXT", control(msg))


def item(channel, content, content_filters=None, **meta) -> dict:
    i = ws_item(channel, content)
    if content_filters is not None:
        i["formats"]["ws-message"]["content-filters"] = content_filters
    if meta:
        i["meta"] = meta
    return i


def start_woh(woh, start_proxy, *events, prefix=None):
    """A proxy whose over_http backend sends every new client `events` after OPEN, and relays
    the client's "do:<x>" as the backend text <x> (so a test can send control messages later)."""
    woh.on_open = lambda r: list(events)
    woh.on_text = lambda t, r: [("TEXT", t[3:])] if t.startswith("do:") else []
    cond = f"*,prefix={prefix}" if prefix else "*"
    return start_proxy(routes=f"{cond} {woh.addr},over_http")


async def expect(p, ws, items, wanted):
    """Publish `items` in order; the client receives exactly `wanted`, in order."""
    for i in items:
        publish(p, i)
    for w in wanted:
        assert await recv(ws) == w
    assert await no_message(ws, 0.3)


def deliveries(p, items, wanted):
    """One client, settled, then expect()."""
    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        await expect(p, ws, items, wanted)
        await ws.close()
    run(main())


def test_skip_self(woh, start_proxy):
    p = start_woh(woh, start_proxy, set_meta("user", "alice"), subscribe("room", "skip-self"))
    deliveries(p, [item("room", "from alice", sender="alice"), item("room", "from bob", sender="bob"),
                   item("room", "from nobody")],
               ["from bob", "from nobody"])


def test_skip_self_without_user_meta_delivers(woh, start_proxy):
    p = start_woh(woh, start_proxy, subscribe("room", "skip-self"))
    deliveries(p, [item("room", "from alice", sender="alice")], ["from alice"])


def test_skip_users(woh, start_proxy):
    p = start_woh(woh, start_proxy, set_meta("user", "carol"), subscribe("room", "skip-users"))
    deliveries(p, [item("room", "not for carol", skip_users="alice, carol"),
                   item("room", "not for carol either", skip_users="carol"),
                   item("room", "for carol", skip_users="alice,caroline")],
               ["for carol"])


def test_filters_apply_per_subscription(woh, start_proxy):
    """Only the channel subscribed with the filter drops the sender's own messages."""
    p = start_woh(woh, start_proxy, set_meta("user", "alice"), subscribe("filtered", "skip-self"),
                  subscribe("plain"))
    deliveries(p, [item("filtered", "dropped", sender="alice"), item("plain", "kept", sender="alice")],
               ["kept"])


def test_set_meta_later_and_delete(woh, start_proxy):
    """The filters see the meta as it is when an item arrives: a set-meta after subscribing
    counts, and a set-meta without a value deletes the entry."""
    p = start_woh(woh, start_proxy, subscribe("room", "skip-self"))

    async def command(ws, event):
        n = len(woh.requests)
        await ws.send("do:" + event[1])
        await woh.async_wait(n + 1)
        await asyncio.sleep(SETTLE)

    async def main():
        ws = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        await command(ws, set_meta("user", "alice"))
        await expect(p, ws, [item("room", "dropped", sender="alice"), item("room", "first", sender="bob")],
                     ["first"])
        await command(ws, set_meta("user"))
        await expect(p, ws, [item("room", "delivered again", sender="alice")], ["delivered again"])
        await ws.close()
    run(main())


def test_other_subscribers_unaffected(woh, start_proxy):
    """A session's meta only filters its own deliveries."""
    users = iter(["alice", "bob"])
    woh.on_open = lambda r: [set_meta("user", next(users)), subscribe("room", "skip-self")]
    p = start_proxy(routes=f"* {woh.addr},over_http")

    async def main():
        alice = await connect(p, "/")
        bob = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        await expect(p, bob, [item("room", "said by alice", sender="alice")], ["said by alice"])
        assert await no_message(alice, 0.3)
        await alice.close()
        await bob.close()
    run(main())


def test_set_meta_response_header_is_not_filter_meta(woh, start_proxy):
    """Set-Meta-* response headers are the WebSocket-over-HTTP connection's meta (sent back as
    Meta-*), not the subscription meta the filters read: pushpin 1.36 keeps them apart."""
    woh.open_headers = [("Set-Meta-user", "alice")]
    p = start_woh(woh, start_proxy, subscribe("room", "skip-self"))
    deliveries(p, [item("room", "from alice", sender="alice")], ["from alice"])


@pytest.mark.gripd_only(REQUIRE_SUB_DIFFERS)
def test_require_sub(woh, start_proxy):
    """Deliberate difference: see REQUIRE_SUB_DIFFERS (test_require_sub_on_pushpin is pushpin's side)."""
    p = start_woh(woh, start_proxy, subscribe("a", "require-sub"), subscribe("b"))
    deliveries(p, [item("a", "needs c", require_sub="c"), item("a", "needs b", require_sub="b"),
                   item("a", "needs nothing")],
               ["needs b", "needs nothing"])


@pytest.mark.pushpin_only(REQUIRE_SUB_DIFFERS)
def test_require_sub_on_pushpin(woh, start_proxy):
    """What pushpin 1.36 does instead: any non-empty require_sub drops the item."""
    p = start_woh(woh, start_proxy, subscribe("a", "require-sub"), subscribe("b"))
    deliveries(p, [item("a", "needs b", require_sub="b"), item("a", "needs nothing", require_sub="")],
               ["needs nothing"])


@pytest.mark.gripd_only(REQUIRE_SUB_DIFFERS)
def test_require_sub_uses_prefixed_names(woh, start_proxy):
    """require_sub names a full channel name, route prefix included (channels are published so)."""
    p = start_woh(woh, start_proxy, subscribe("a", "require-sub"), subscribe("b"), prefix="p-")
    deliveries(p, [item("p-a", "unprefixed", require_sub="b"), item("p-a", "prefixed", require_sub="p-b")],
               ["prefixed"])


def test_content_filters_compare_only_content_filters(woh, start_proxy):
    """An item's `content-filters` must equal the subscription's content filters (build-id,
    var-subst) alone: delivery filters such as skip-self take no part in the comparison."""
    p = start_woh(woh, start_proxy, subscribe("room", "skip-self", "var-subst"))
    deliveries(p, [item("room", "none", []), item("room", "both", ["skip-self", "var-subst"]),
                   item("room", "content only", ["var-subst"])],
               ["content only"])


def test_content_filters_of_other_formats_do_not_apply(woh, start_proxy):
    """A WebSocket subscription is compared with the ws-message format's `content-filters` only: an
    http-stream format of the same item, listed first, with filters of its own does not matter."""
    p = start_woh(woh, start_proxy, subscribe("room"))

    def both(content, ws_filters=None):
        i = item("room", content, ws_filters)
        i["formats"] = {"http-stream": {"content": "for streams\n", "content-filters": ["var-subst"]},
                        **i["formats"]}
        return i
    deliveries(p, [both("plain"), both("filtered", ["var-subst"]), both("empty list", [])],
               ["plain", "empty list"])


def test_passthrough_skip_self(start_proxy):
    """The same on a WebSocket (passthrough) backend using the grip extension."""
    async def handler(ws, path):
        await ws.send(set_meta("user", "alice")[1])
        await ws.send(subscribe("pt", "skip-self")[1])
        async for _ in ws:
            pass
    b = WsBackend(handler=handler, extra_headers=[("Sec-WebSocket-Extensions", "grip")])
    try:
        p = start_proxy(routes=f"* {b.addr}")
        deliveries(p, [item("pt", "from alice", sender="alice"), item("pt", "from bob", sender="bob")],
                   ["from bob"])
    finally:
        b.stop()
