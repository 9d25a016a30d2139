"""http-response `body-patch` (PROTOCOL.md 3.5, 4.2): a JSON Patch (RFC 6902) applied to the held
response's own body, observed on Debian's pushpin 1.36.0 (src/handler/httpsession.cpp,
applyBodyPatch; jsonpatch.cpp, jsonpointer.cpp).

Observed pushpin details encoded here:
- the hold's body (the instruct response's body) must be a JSON object or array; the patch is
  applied to it and the result written as compact JSON, keeping a trailing "\\n" or "\\r\\n" of the
  original body; Content-Length describes the patched body; the publish's code and headers apply
  as for a plain body.
- a patch that fails (a `test` that does not hold, a missing location, an unknown op), or a hold
  body that is not a JSON object/array: the held client gets `502 Bad Gateway`, text/plain,
  `Error while proxying to origin.\\n` (the patched body is null, and the filter stack turns a null
  body into an error); other holds on the channel are unaffected.
- pushpin writes object members sorted by name (Qt's QJsonObject); gripd keeps their order. The
  tests compare parsed JSON, not bytes.
- pushpin's `add` into an array at an index replaces the element there and refuses index == size;
  RFC 6902 inserts (gripd does: gripd_only test).
"""

import json

import pytest

from harness.backend import Response
from griputil import hold, item, publish


def patch_item(channel, ops, code=None, headers=None):
    f = {"body-patch": ops}
    if code is not None:
        f["code"] = code
    if headers is not None:
        f["headers"] = headers
    return item(channel, {"http-response": f})


def held(backend, path, channel, body, extra=()):
    backend.route(path, Response(200, body, [("Grip-Hold", "response"), ("Grip-Channel", channel),
                                             ("Content-Type", "application/json"), *extra]))


def test_patch_applies_to_the_held_body(proxy, backend):
    held(backend, "/p", "p", b'{"a": 1, "list": [1, 2], "obj": {"x": "y"}, "gone": true}\n')
    c = hold(proxy, backend, "/p")
    publish(proxy, [patch_item("p", [
        {"op": "replace", "path": "/a", "value": 2},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "add", "path": "/obj/new", "value": {"n": [None, False]}},
        {"op": "remove", "path": "/gone"},
        {"op": "copy", "from": "/a", "path": "/b"},
        {"op": "move", "from": "/obj/x", "path": "/moved"},
        {"op": "test", "path": "/b", "value": 2},
    ], code=201, headers={"X-P": "1"})])
    body = c.wait_complete()
    assert c.head.status == 201 and c.head.header("X-P") == "1"
    assert c.head.header("Content-Type") == "application/json"
    assert c.head.header("Content-Length") == str(len(body))
    assert body.endswith(b"}\n") and b" " not in body  # compact, the original's newline kept
    assert json.loads(body) == {"a": 2, "list": [1, 2, 3], "obj": {"new": {"n": [None, False]}},
                                "b": 2, "moved": "y"}


def test_patch_on_an_array_body_and_crlf_kept(proxy, backend):
    held(backend, "/arr", "arr", b'[{"k": "v"}, 2]\r\n')
    c = hold(proxy, backend, "/arr")
    publish(proxy, [patch_item("arr", [{"op": "replace", "path": "/0/k", "value": "w~/"},
                                       {"op": "remove", "path": "/1"}])])
    body = c.wait_complete()
    assert c.head.status == 200
    assert body.endswith(b"]\r\n")
    assert json.loads(body) == [{"k": "w~/"}]


def test_escaped_pointer_tokens(proxy, backend):
    held(backend, "/esc", "esc", b'{"a/b": 1, "m~n": 2}')
    c = hold(proxy, backend, "/esc")
    publish(proxy, [patch_item("esc", [{"op": "replace", "path": "/a~1b", "value": 10},
                                       {"op": "remove", "path": "/m~0n"}])])
    body = c.wait_complete()
    assert not body.endswith(b"\n")
    assert json.loads(body) == {"a/b": 10}


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/a", "value": 2}],
    [{"op": "replace", "path": "/missing", "value": 1}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "add", "path": "/missing/deeper", "value": 1}],
    [{"op": "frobnicate", "path": "/a", "value": 1}],
    [{"op": "add", "path": "a", "value": 1}],
    [{"op": "add", "path": "/a"}],
    [{"op": "move", "from": "/a", "path": "/a/b"}],
    [{"op": "replace", "path": "", "value": 5}],
    [1],
], ids=["test-fails", "replace-missing", "remove-missing", "add-no-parent", "unknown-op",
        "no-slash", "add-no-value", "move-into-self", "root-scalar", "op-not-object"])
def test_failed_patch_answers_502(proxy, backend, ops):
    held(backend, "/f", "f", b'{"a": 1}')
    c = hold(proxy, backend, "/f")
    publish(proxy, [patch_item("f", ops)])
    body = c.wait_complete()
    assert (c.head.status, c.head.reason) == (502, "Bad Gateway")
    assert c.head.header("Content-Type") == "text/plain"
    assert body == b"Error while proxying to origin.\n"


@pytest.mark.parametrize("hold_body", [b"not json", b"", b'"a string"'], ids=["text", "empty", "scalar"])
def test_hold_body_not_a_json_container_answers_502(proxy, backend, hold_body):
    held(backend, "/nj", "nj", hold_body)
    c = hold(proxy, backend, "/nj")
    publish(proxy, [patch_item("nj", [{"op": "add", "path": "/a", "value": 1}])])
    body = c.wait_complete()
    assert c.head.status == 502
    assert body == b"Error while proxying to origin.\n"


def test_each_hold_patches_its_own_body_and_a_failure_is_its_own(proxy, backend):
    held(backend, "/one", "many", b'{"who": "one", "n": 1}')
    held(backend, "/two", "many", b'{"who": "two", "n": 1}')
    held(backend, "/bad", "many", b'{"who": "bad"}')
    one = hold(proxy, backend, "/one")
    two = hold(proxy, backend, "/two")
    bad = hold(proxy, backend, "/bad")
    publish(proxy, [patch_item("many", [{"op": "replace", "path": "/n", "value": 2}])])
    assert json.loads(one.wait_complete()) == {"who": "one", "n": 2}
    assert json.loads(two.wait_complete()) == {"who": "two", "n": 2}
    assert bad.wait_complete() == b"Error while proxying to origin.\n"
    assert bad.head.status == 502


def test_patch_on_instruct_body_hold(proxy, backend):
    instruct = {"hold": {"mode": "response", "channels": [{"name": "ib"}]},
                "response": {"headers": {"Content-Type": "application/json"}, "body": '{"state": "old"}\n'}}
    backend.route("/ib", Response(200, json.dumps(instruct).encode(), [("Content-Type", "application/grip-instruct")]))
    c = hold(proxy, backend, "/ib")
    publish(proxy, [patch_item("ib", [{"op": "replace", "path": "/state", "value": "new"}])])
    body = c.wait_complete()
    assert c.head.status == 200
    assert json.loads(body) == {"state": "new"} and body.endswith(b"\n")


@pytest.mark.gripd_only("RFC 6902 4.1: add into an array inserts before the index (index == size appends); "
                        "pushpin 1.36 replaces the element there and refuses index == size")
def test_add_into_array_inserts(proxy, backend):
    held(backend, "/ins", "ins", b'{"l": [1, 3]}')
    c = hold(proxy, backend, "/ins")
    publish(proxy, [patch_item("ins", [{"op": "add", "path": "/l/1", "value": 2},
                                       {"op": "add", "path": "/l/3", "value": 4}])])
    assert json.loads(c.wait_complete()) == {"l": [1, 2, 3, 4]}
