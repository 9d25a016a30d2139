"""Pushpin's ZeroMQ publish inputs (PROTOCOL.md §4.3): the PULL socket on `push_in_spec` and the
ZRPC command socket on `command_spec`, driven with python3-zmq. Checked on Debian's pushpin 1.36
with the same generated config (the harness gives every spec a free port).

Observed on pushpin 1.36:
- PULL takes one-part messages: `J` + a JSON item, a TNetString item with or without a leading
  `T`; TNetString bytes go to clients as they are (no base64); a malformed message, a message of
  two parts or an item without a channel is skipped and the input goes on.
- The command socket is a ROUTER speaking ZRPC: replies `{id, success: true, value}` (value null
  for publish/recover), `{id, success: false, condition}` with `method-not-found`,
  `bad-request` (publish without items); get-zmq-uris answers `command` and `publish-pull`
  (and `publish-sub` when the SUB socket binds).
- An item published over HTTP and the next over ZeroMQ share one channel sequence (prev-id).
"""

import base64
import json
import time

import pytest

from griputil import after_sync, hold, hs_item, publish, sync_stream
from harness.backend import Response
from zmqutil import Command, Pusher, j, tn, wait_for

zmq = pytest.importorskip("zmq")


def stream_route(backend, path, channel):
    backend.route(path, Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel)]))


def hs(channel, content, **extra):
    f = {"content": content} if isinstance(content, str) else {"content-bin": base64.b64encode(content).decode()}
    it = {"channel": channel, "formats": {"http-stream": f}}
    it.update(extra)
    return it


@pytest.fixture
def stream(proxy, backend):
    """A held stream on channel `z`, certainly subscribed."""
    stream_route(backend, "/z", "z")
    c = hold(proxy, backend, "/z", stream=True)
    sync_stream(proxy, "z", [c])
    yield c
    c.close()


@pytest.fixture
def pusher(proxy):
    p = Pusher(proxy.push_in_spec)
    yield p
    p.close()


@pytest.fixture
def command(proxy):
    c = Command(proxy.command_spec)
    yield c
    c.close()


def got(c, text: bytes, timeout: float = 10.0) -> bool:
    return wait_for(lambda: text in after_sync(c), timeout)


def test_pull_json_and_tnetstring_items_reach_a_stream(stream, pusher):
    pusher.send(j(hs("z", "json item\n")))
    pusher.send(b"T" + tn({"channel": "z", "formats": {"http-stream": {"content": b"tnet \xff\x00 raw\n"}}}))
    pusher.send(tn({"channel": "z", "formats": {"http-stream": {"content": "bare tnet\n"}}}))
    assert got(stream, b"bare tnet\n")
    assert after_sync(stream) == b"json item\ntnet \xff\x00 raw\nbare tnet\n"


@pytest.mark.gripd_only("pushpin 1.36 reads http-stream content-bin only from JSON items and skips a TNetString "
                        "item holding it; gripd sends its raw bytes, as pushpin does for ws-message content-bin")
def test_pull_tnetstring_content_bin_is_raw_bytes(stream, pusher):
    pusher.send(tn({"channel": "z", "formats": {"http-stream": {"content-bin": b"\x01\x02bin\n"}}}))
    pusher.send(j(hs("z", "end\n")))
    assert got(stream, b"end\n")
    assert after_sync(stream) == b"\x01\x02bin\nend\n"


def test_pull_bad_messages_are_skipped_and_the_input_goes_on(stream, pusher):
    pusher.send(b"garbage")
    pusher.send(b"J{not json")
    pusher.send(b"J[1,2]")
    pusher.send(b"5:hello,")                               # not a dict
    pusher.send(j(hs("z", "two parts\n")), b"second")      # parts != 1
    pusher.send(j({"formats": {"http-stream": {"content": "no channel\n"}}}))
    pusher.send(j({"channel": "z", "formats": {"http-stream": {"action": "bogus"}}}))
    pusher.send(j(hs("z", "good\n")))
    assert got(stream, b"good\n")
    assert after_sync(stream) == b"good\n"


@pytest.mark.gripd_only("pushpin 1.36's PULL input takes nothing more after a TNetString whose length runs past "
                        "the message's end (observed: later good items never arrive)")
def test_pull_truncated_tnetstring_does_not_stop_the_input(stream, pusher):
    pusher.send(b"99:short,")
    pusher.send(b"T10:abc")
    pusher.send(j(hs("z", "good\n")))
    assert got(stream, b"good\n")
    assert after_sync(stream) == b"good\n"


def test_json_item_holding_two_objects_is_one_bad_message(stream, pusher):
    # `J` + text that would read as two items if pasted into {"items":[...]} is refused whole.
    pusher.send(b"J" + json.dumps(hs("z", "a\n")).encode() + b"," + json.dumps(hs("z", "b\n")).encode())
    pusher.send(j(hs("z", "after\n")))
    assert got(stream, b"after\n")
    assert after_sync(stream) == b"after\n"


def test_http_and_pull_share_the_channel_sequence(stream, proxy, pusher):
    publish(proxy, [hs_item("z", "one\n", id="1")])
    pusher.send(j(hs("z", "two\n", **{"id": "2", "prev-id": "1"})))
    pusher.send(j(hs("z", "three\n", **{"id": "3", "prev-id": "2"})))
    assert got(stream, b"three\n")
    assert after_sync(stream) == b"one\ntwo\nthree\n"


def test_pull_keeps_the_order_of_many_items(stream, pusher):
    n = 2000
    for i in range(n):
        pusher.send(j(hs("z", f"{i}\n")))
    assert got(stream, f"{n - 1}\n".encode(), timeout=30)
    assert after_sync(stream) == "".join(f"{i}\n" for i in range(n)).encode()


def test_pull_flood_leaves_the_proxy_serving(stream, proxy, pusher):
    # A publisher much faster than delivery: gripd reads at the publish path's pace (libzmq's
    # queues and the PUSH sender wait), every item arrives, and HTTP still answers meanwhile.
    n = 5000  # Debian's conf paces publishes at message_rate=2500/s: several seconds of backlog
    payload = "x" * 200
    for i in range(n):
        pusher.send(j(hs("z", f"{payload}{i}\n")))
    r = publish(proxy, [hs_item("other", "x\n")])
    assert r.status == 200
    assert got(stream, f"{payload}{n - 1}\n".encode(), timeout=50)
    assert after_sync(stream).count(b"\n") == n


@pytest.mark.gripd_only("pushpin has no size limit on ZeroMQ input; gripd applies push_in_http_max_body_size")
@pytest.mark.proxy(conf={"handler.push_in_http_max_body_size": "2000"})
def test_pull_oversized_message_is_dropped_and_logged(stream, proxy, pusher):
    pusher.send(j(hs("z", "y" * 3000 + "\n")))
    pusher.send(j(hs("z", "small\n")))
    assert got(stream, b"small\n")
    assert after_sync(stream) == b"small\n"
    assert wait_for(lambda: "over the 2000-byte limit" in proxy.log())


@pytest.mark.gripd_only("gripd logs skipped ZeroMQ input at most once per 10 s per kind, with a count")
def test_pull_bad_input_is_logged_once_per_interval(stream, proxy, pusher):
    for _ in range(50):
        pusher.send(b"garbage")
    pusher.send(j(hs("z", "good\n")))
    assert got(stream, b"good\n")
    log = proxy.log()
    assert log.count("IN pull: received message with invalid format (tnetstring parse failed") == 1


def test_command_publish_recover_and_errors(stream, command):
    r = command.call("publish", {"items": [hs("z", "via command\n")]})
    assert r["success"] is True and r["value"] is None
    assert got(stream, b"via command\n")
    r = command.call("recover")
    assert r["success"] is True
    r = command.call("no-such-method")
    assert r["success"] is False and r["condition"] == b"method-not-found"
    r = command.call("publish", {})
    assert r["success"] is False and r["condition"] == b"bad-request"
    r = command.call("publish", {"items": "x"})
    assert r["success"] is False and r["condition"] == b"bad-request"
    # the socket still answers
    r = command.call("publish", {"items": [hs("z", "again\n")]})
    assert r["success"] is True
    assert got(stream, b"again\n")
    assert after_sync(stream) == b"via command\nagain\n"


def test_command_get_zmq_uris(proxy, command):
    r = command.call("get-zmq-uris")
    assert r["success"] is True
    v = r["value"]
    assert v["command"] == proxy.command_spec.encode()
    assert v["publish-pull"] == proxy.push_in_spec.encode()
    assert v["publish-sub"] == proxy.push_in_sub_spec.encode()


def test_command_without_id_is_answered_without_id(command):
    r = command.raw(tn({"method": "recover"}))
    assert r == {"success": True, "value": None}


@pytest.mark.gripd_only("pushpin skips a request it cannot parse, leaving a REQ client waiting forever")
def test_command_bad_request_gets_an_error_not_silence(command):
    assert command.raw(b"not a tnetstring") == {"success": False, "condition": b"bad-format"}
    assert command.raw(tn({"id": "x"})) == {"success": False, "condition": b"bad-format"}
    assert command.call("recover")["success"] is True


def test_command_refresh_needs_cid_or_channel(command):
    r = command.call("refresh", {})
    assert r["success"] is False and r["condition"] == b"bad-request"
    r = command.call("refresh", {"channel": "nobody-here"})
    assert r["success"] is True


def test_command_conncheck_needs_ids(command):
    r = command.call("conncheck", {})
    assert r["success"] is False and r["condition"] == b"bad-request"
