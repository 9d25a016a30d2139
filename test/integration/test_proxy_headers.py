"""Headers the proxy removes, adds or rewrites: hop-by-hop, X-Forwarded-*,
Grip-Sig / Grip-Feature, no_grip, upstream_key trust. Observed on Debian's
pushpin 1.36.0 (the base config is Debian's: sig_key=changeme, sig_iss=pushpin,
set_x_forwarded_protocol=proto-only, x_forwarded_for empty)."""

import base64
import json
import os
import time

import pytest

from harness import jwt, raw
from harness.backend import Response

# Grip-Feature values pushpin 1.36 sends (gripd adds link:gone, as pushpin 1.41)
FEATURES_1_36 = {"status", "session", "link:next", "filter:skip-self", "filter:skip-users",
                 "filter:require-sub", "filter:build-id", "filter:var-subst"}


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only: do not wait for the control API port


def up(proxy, path="/x", headers=(), host="x"):
    """Request through the proxy; return the headers the echo backend saw."""
    r = raw.get(proxy.port, path, host=host, headers=headers)
    assert r.status == 200, r.body
    return json.loads(r.body)["headers"]


def values(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def one(headers, name):
    v = values(headers, name)
    return ", ".join(v) if v else None


# --- hop-by-hop -----------------------------------------------------------------

def test_hop_by_hop_request_headers_removed(proxy, backend):
    hs = up(proxy, headers=[("Connection", "keep-alive"), ("Keep-Alive", "timeout=5, max=10"),
                            ("X-End-To-End", "1")])
    assert values(hs, "Connection") == []
    assert values(hs, "Keep-Alive") == []
    assert one(hs, "X-End-To-End") == "1"


def test_expect_not_forwarded(proxy, backend):
    with raw.RawConn(proxy.port) as c:
        c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert c.recv_response(interim=True).status == 100
        c.send(b"ok")
        assert c.recv_response().status == 200
    assert backend.last.header("Expect") is None
    assert backend.last.body == b"ok"


def test_client_transfer_encoding_not_forwarded_verbatim(proxy, backend):
    data = (b"POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n")
    with raw.RawConn(proxy.port) as c:
        c.send(data)
        assert c.recv_response().status == 200
    req = backend.last
    assert req.body == b"abc"
    # the proxy frames the upstream body itself: Content-Length or its own chunking
    te = req.header_all("Transfer-Encoding")
    assert te in ([], ["chunked"])
    assert (req.header("Content-Length") is None) == (te == ["chunked"])


def test_hop_by_hop_response_headers_removed(proxy, backend):
    backend.route("/r", Response(200, b"body", [("Connection", "keep-alive"), ("Keep-Alive", "timeout=5, max=100"),
                                               ("X-End-To-End", "1")]))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response()
    assert r.body == b"body"
    assert r.header("Keep-Alive") is None
    assert r.header("X-End-To-End") == "1"
    assert (r.header("Connection") or "").lower() in ("", "keep-alive", "transfer-encoding")


def test_response_framing_rewritten(proxy, backend):
    backend.route("/c", Response(200, b"chunked-body", framing="chunked"))
    with raw.RawConn(proxy.port) as c:
        c.send(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response()
    assert r.body == b"chunked-body"
    # exactly one framing for the client
    assert not (r.header("Content-Length") and r.header("Transfer-Encoding"))
    assert len(r.header_all("Transfer-Encoding")) <= 1


@pytest.mark.gripd_only("pushpin 1.36 forwards TE and headers named in Connection; RFC 9110 7.6.1 "
                        "requires a proxy to drop them (the issue lists TE as hop-by-hop)")
def test_connection_nominated_and_te_removed(proxy, backend):
    backend.route("/r", Response(200, b"b", [("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1")]))
    hs = up(proxy, headers=[("Connection", "X-Custom-Hop"), ("X-Custom-Hop", "1"), ("TE", "trailers")])
    assert values(hs, "X-Custom-Hop") == []
    assert values(hs, "TE") == []
    r = raw.get(proxy.port, "/r")
    assert r.header("X-Resp-Hop") is None


def test_end_to_end_headers_pushpin_keeps(proxy, backend):
    # pushpin 1.36 forwards these; gripd must not drop them. (pushpin also forwards
    # Proxy-Authorization; RFC 9110 11.7.2 lets a proxy consume it, so it is not checked.)
    hs = up(proxy, headers=[("Via", "1.1 a"), ("Forwarded", "for=192.0.2.9"), ("Cookie", "a=b")])
    assert one(hs, "Via") == "1.1 a"
    assert one(hs, "Forwarded") == "for=192.0.2.9"
    assert one(hs, "Cookie") == "a=b"


# --- X-Forwarded-For / -Proto ------------------------------------------------------

XFF_CASES = [
    # (x_forwarded_for, client XFF or None, expected upstream XFF or None)
    ("", None, None),
    ("", "1.1.1.1, 2.2.2.2", "1.1.1.1, 2.2.2.2"),
    ("append", None, "127.0.0.1"),
    ("append", "1.1.1.1, 2.2.2.2", "1.1.1.1, 2.2.2.2, 127.0.0.1"),
    ("truncate:1", None, None),
    ("truncate:1", "1.1.1.1, 2.2.2.2", "2.2.2.2"),
    ("truncate:1,append", "1.1.1.1, 2.2.2.2", "2.2.2.2, 127.0.0.1"),
    ("truncate:0,append", "9.9.9.9", "127.0.0.1"),
]


@pytest.mark.parametrize("rule,client,expected", XFF_CASES)
def test_x_forwarded_for(start_proxy, backend, rule, client, expected):
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"proxy": {"x_forwarded_for": rule}})
    hs = up(p, headers=[("X-Forwarded-For", client)] if client else [])
    assert one(hs, "X-Forwarded-For") == expected


def test_x_forwarded_for_multiple_client_headers_append(start_proxy, backend):
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"proxy": {"x_forwarded_for": "append"}})
    hs = up(p, headers=[("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")])
    assert one(hs, "X-Forwarded-For") == "1.1.1.1, 2.2.2.2, 127.0.0.1"


PROTO_CASES = [
    # (accept_x_forwarded_protocol, set_x_forwarded_protocol, client header, expected {name: value})
    ("false", "proto-only", ("X-Forwarded-Proto", "https"), {}),            # Debian defaults
    ("false", "proto-only", ("X-Forwarded-Protocol", "https"), {}),
    ("false", "proto-only", None, {}),
    ("true", "true", ("X-Forwarded-Proto", "https"),
     {"X-Forwarded-Proto": "https", "X-Forwarded-Protocol": "https"}),
    ("true", "true", ("X-Forwarded-Protocol", "https"),
     {"X-Forwarded-Proto": "https", "X-Forwarded-Protocol": "https"}),
    ("true", "true", ("X-Forwarded-Proto", "http"), {}),
    ("true", "proto-only", ("X-Forwarded-Proto", "https"), {"X-Forwarded-Proto": "https"}),
    ("true", "proto-only", ("X-Forwarded-Protocol", "https"), {"X-Forwarded-Proto": "https"}),
    ("true", "false", ("X-Forwarded-Proto", "https"), {}),
    ("false", "false", ("X-Forwarded-Proto", "https"), {"X-Forwarded-Proto": "https"}),
    ("false", "false", ("X-Forwarded-Protocol", "https"), {"X-Forwarded-Protocol": "https"}),
    ("false", "false", ("X-Forwarded-Proto", "http"), {"X-Forwarded-Proto": "http"}),
]


@pytest.mark.parametrize("accept,setp,client,expected", PROTO_CASES)
def test_x_forwarded_proto(start_proxy, backend, accept, setp, client, expected):
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"proxy": {
        "accept_x_forwarded_protocol": accept, "set_x_forwarded_protocol": setp}})
    hs = up(p, headers=[client] if client else [])
    got = {k: v for k, v in hs if k.lower() in ("x-forwarded-proto", "x-forwarded-protocol")}
    assert {k.lower(): v for k, v in got.items()} == {k.lower(): v for k, v in expected.items()}


# --- Grip-Sig / Grip-Feature ---------------------------------------------------------

def _sig(hs):
    v = values(hs, "Grip-Sig")
    assert len(v) == 1, f"expected one Grip-Sig, got {v}"
    return v[0]


def test_grip_sig_debian_defaults(proxy, backend):
    hs = up(proxy)
    payload = jwt.verify_hs256(_sig(hs), "changeme")
    assert payload["iss"] == "pushpin"
    assert abs(payload["exp"] - (time.time() + 3600)) < 15


@pytest.mark.proxy(conf={"proxy": {"sig_key": "s3cret-key", "sig_iss": "my-issuer"}})
def test_grip_sig_configured_key_and_issuer(proxy, backend):
    token = _sig(up(proxy))
    header, payload, _, _ = jwt.decode(token)
    assert header["alg"] == "HS256"
    assert payload == jwt.verify_hs256(token, "s3cret-key")
    assert payload["iss"] == "my-issuer"
    assert isinstance(payload["exp"], int)
    assert abs(payload["exp"] - (time.time() + 3600)) < 15
    with pytest.raises(AssertionError):
        jwt.verify_hs256(token, "changeme")


def test_grip_sig_base64_key(start_proxy, backend):
    key = os.urandom(32)
    p = start_proxy(routes=f"* {backend.addr}\n",
                    conf={"proxy": {"sig_key": "base64:" + base64.b64encode(key).decode()}})
    assert jwt.verify_hs256(_sig(up(p)), key)["iss"] == "pushpin"


@pytest.mark.proxy(conf={"proxy": {"sig_key": "s3cret-key"}})
def test_client_grip_sig_replaced(proxy, backend):
    forged = jwt.sign_hs256({"iss": "evil", "exp": jwt.now() + 600}, "other-key")
    hs = up(proxy, headers=[("Grip-Sig", forged)])
    token = _sig(hs)
    assert token != forged
    assert jwt.verify_hs256(token, "s3cret-key")["iss"] == "pushpin"


def test_client_grip_headers_stripped(proxy, backend):
    hs = up(proxy, headers=[("Grip-Sig", "junk"), ("Grip-Foo", "x"), ("grip-hold", "stream"),
                            ("Grip-Feature", "evil")])
    names = [k.lower() for k, _ in hs]
    assert "grip-foo" not in names
    assert "grip-hold" not in names
    assert values(hs, "Grip-Sig") != ["junk"]
    assert "evil" not in (one(hs, "Grip-Feature") or "")


def test_grip_feature_present(proxy, backend, target):
    hs = up(proxy)
    feats = {f.strip() for f in (one(hs, "Grip-Feature") or "").split(",") if f.strip()}
    # gripd follows gone links (test_grip_gone_link.py) and says so, as pushpin 1.41 does
    assert feats == (FEATURES_1_36 | {"link:gone"} if target == "gripd" else FEATURES_1_36)


def test_grip_sig_per_route_key_and_issuer(start_proxy, backend):
    p = start_proxy(routes=f"* {backend.addr}\n*,path_beg=/rs,sig_key=route-key,sig_iss=route-iss {backend.addr}\n",
                    conf={"proxy": {"sig_key": "global-key", "sig_iss": "global-iss"}})
    assert jwt.verify_hs256(_sig(up(p, "/x")), "global-key")["iss"] == "global-iss"
    assert jwt.verify_hs256(_sig(up(p, "/rs/x")), "route-key")["iss"] == "route-iss"


def test_grip_sig_fresh_per_request(proxy, backend):
    first = jwt.decode(_sig(up(proxy)))[1]["exp"]
    time.sleep(1.1)
    second = jwt.decode(_sig(up(proxy)))[1]["exp"]
    assert second > first


# --- no_grip ---------------------------------------------------------------------------

def test_no_grip_route_passes_grip_response_untouched(start_proxy, backend):
    backend.route("/ng/grip", Response(200, b"verbatim", [
        ("Grip-Hold", "response"), ("Grip-Channel", "c1"), ("X-Other", "1"),
        ("Content-Type", "application/grip-instruct")]))
    p = start_proxy(routes=f"*,path_beg=/ng,no_grip {backend.addr}\n* {backend.addr}\n")
    t0 = time.monotonic()
    r = raw.get(p.port, "/ng/grip")
    assert time.monotonic() - t0 < 3, "no_grip response was held"
    assert r.status == 200
    assert r.body == b"verbatim"
    assert r.header("Grip-Hold") == "response"
    assert r.header("Grip-Channel") == "c1"
    assert r.header("Content-Type") == "application/grip-instruct"
    assert r.header("X-Other") == "1"


def test_no_grip_route_upstream_unsigned(start_proxy, backend):
    p = start_proxy(routes=f"*,no_grip {backend.addr}\n", conf={"proxy": {"sig_key": "k"}})
    hs = up(p, headers=[("Grip-Sig", "client-sig"), ("Grip-Other", "o"), ("X-Keep", "1")])
    names = [k.lower() for k, _ in hs]
    assert "grip-sig" not in names
    assert "grip-feature" not in names
    assert "grip-other" not in names
    assert one(hs, "X-Keep") == "1"


# --- upstream_key (trusted client) -------------------------------------------------------

@pytest.mark.proxy(conf={"proxy": {"upstream_key": "up-key", "sig_key": "own-key"}})
def test_upstream_key_trusted_client_grip_headers_pass(proxy, backend):
    tok = jwt.sign_hs256({"iss": "cdn", "exp": jwt.now() + 600}, "up-key")
    hs = up(proxy, headers=[("Grip-Sig", tok), ("Grip-Foo", "bar")])
    assert values(hs, "Grip-Sig") == [tok]
    assert one(hs, "Grip-Foo") == "bar"
    assert values(hs, "Grip-Feature") == []


@pytest.mark.parametrize("why", ["expired", "wrong-key"])
@pytest.mark.proxy(conf={"proxy": {"upstream_key": "up-key", "sig_key": "own-key"}})
def test_upstream_key_untrusted_client_resigned(proxy, backend, why):
    if why == "expired":
        tok = jwt.sign_hs256({"iss": "cdn", "exp": jwt.now() - 600}, "up-key")
    else:
        tok = jwt.sign_hs256({"iss": "cdn", "exp": jwt.now() + 600}, "not-the-key")
    hs = up(proxy, headers=[("Grip-Sig", tok), ("Grip-Foo", "bar")])
    assert jwt.verify_hs256(_sig(hs), "own-key")["iss"] == "pushpin"
    assert values(hs, "Grip-Foo") == []
