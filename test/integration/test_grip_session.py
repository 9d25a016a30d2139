"""`Grip-Session-Id` / `Grip-Session-Detect` answers and the `session` route option (PROTOCOL.md
§3). Pushpin 1.36 hands them to its handler, which passes them on only to an external
session-state service (`[handler] state_spec`, src/handler/engine.cpp AcceptWorker); no such
service ships with Pushpin, and gripd warns about `state_spec` and `session`. What a client sees:
the headers never reach it and the hold works as without them. Checked on pushpin 1.36."""

from harness import raw
from harness.backend import Response
from griputil import grip_header_names, hold, hr_item, publish

SESSION_HEADERS = [("Grip-Session-Id", "sess-1"),
                   ("Grip-Session-Detect", "path-prefix=/; sid-ptr=/sid; json-param=d")]


def test_session_headers_on_a_hold_are_not_relayed(proxy, backend):
    backend.route("/h", Response(200, b"", [("Grip-Hold", "response"), ("Grip-Channel", "sh")]
                                 + SESSION_HEADERS))
    c = hold(proxy, backend, "/h")
    publish(proxy, [hr_item("sh", "done\n")])
    assert c.wait_complete() == b"done\n"
    assert grip_header_names(c.head.headers) == []


def test_session_headers_without_hold_are_not_relayed(proxy, backend):
    backend.route("/n", Response(200, b"plain\n", [("Content-Type", "text/plain")] + SESSION_HEADERS))
    r = raw.get(proxy.port, "/n")
    assert r.status == 200 and r.body == b"plain\n"
    assert grip_header_names(r.headers) == []
