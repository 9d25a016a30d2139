"""Closing one connection from the publisher side (gripd; Pushpin 1.36 has no such feature: its
`http-stream` and `ws-message` `close` end every subscriber of the channel, and it gives HTTP
requests no id; src/handler/httpsession.cpp, engine.cpp).

- every request gripd forwards on a GRIP route (client not trusted) carries `Grip-Connection-Id`,
  a UUID; an `http-stream` `close` with `"connection-id": <that id>` ends only that client's
  stream; without it, every stream on the channel ends (as in Pushpin);
- a `ws-message` `close` with `"connection-id"` closes only the WebSocket-over-HTTP session whose
  `Connection-Id` that is (with the item's code and reason);
- a close naming an id nobody has ends nothing; the field must be a string (400 otherwise).
"""

import asyncio
import re

import pytest

from harness.backend import Response
from griputil import after_sync, hold, hs_item, publish, publish_raw, sync_stream
from wsutil import SETTLE, closed, connect, no_message, recv, run, woh  # noqa: F401
from wsutil import publish as ws_publish
from wsutil import ws_item
from test_ws_filters import start_woh, subscribe

NO_TARGETED_CLOSE = "pushpin 1.36 has no per-connection close (gripd extension)"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def close_item(channel, connection_id=None):
    it = hs_item(channel, action="close")
    if connection_id is not None:
        it["formats"]["http-stream"]["connection-id"] = connection_id
    return it


@pytest.mark.gripd_only(NO_TARGETED_CLOSE)
def test_stream_close_targets_one_connection(proxy, backend):
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "one")]))
    a = hold(proxy, backend, "/s", stream=True)
    b = hold(proxy, backend, "/s", stream=True)
    ids = [r.header("Grip-Connection-Id") for r in backend.requests if r.path == "/s"]
    assert len(ids) == 2 and all(UUID.match(i) for i in ids) and ids[0] != ids[1]
    sync_stream(proxy, "one", [a, b])
    publish(proxy, [close_item("one", "00000000-0000-4000-8000-000000000000")])  # nobody's
    publish(proxy, [close_item("one", ids[0])])
    a.wait_complete()
    publish(proxy, [hs_item("one", "b still here\n")])
    b.wait_body(lambda x: x.endswith(b"b still here\n"))
    assert not b.closed and b.complete is False
    assert after_sync(a) == b""
    publish(proxy, [close_item("one")])  # untargeted: every stream on the channel
    b.wait_complete()


def test_untargeted_stream_close_ends_every_stream(proxy, backend):
    backend.route("/s", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "all")]))
    a = hold(proxy, backend, "/s", stream=True)
    b = hold(proxy, backend, "/s", stream=True)
    sync_stream(proxy, "all", [a, b])
    publish(proxy, [close_item("all")])
    a.wait_complete()
    b.wait_complete()


@pytest.mark.gripd_only(NO_TARGETED_CLOSE)
def test_connection_id_must_be_a_string(proxy):
    r = publish_raw(proxy, [close_item("x", 5)])
    assert r.status == 400
    assert r.body == b"Invalid format: 'http-stream' contains 'connection-id' with wrong type\n"


@pytest.mark.gripd_only(NO_TARGETED_CLOSE)
def test_ws_close_targets_one_woh_session(woh, start_proxy):
    p = start_woh(woh, start_proxy, subscribe("room"))

    async def main():
        a = await connect(p, "/")
        b = await connect(p, "/")
        await asyncio.sleep(SETTLE)
        cids = []
        for r in woh.requests:
            cid = r.header("Connection-Id")
            if cid not in cids:
                cids.append(cid)
        assert len(cids) == 2
        # Which client has which id: the first OPEN is the first client's.
        close = ws_item("room", action="close", code=4001, reason="just you")
        close["formats"]["ws-message"]["connection-id"] = cids[0]
        ws_publish(p, close)
        assert await closed(a) == (4001, "just you")
        ws_publish(p, ws_item("room", "still here"))
        assert await recv(b) == "still here"
        await b.close()
    run(main())
