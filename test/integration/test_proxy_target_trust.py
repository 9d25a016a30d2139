"""Target options `untrusted` and `trust_connect_host` (routes file, PROTOCOL.md 2.2).

`untrusted`: Pushpin 1.36 then applies its outbound access policy to the target (zurl's, as
Debian ships it: deny 127.*, 10.*, 192.168.*, *.local); a denied origin gets
`502 Error while proxying to origin.` at once (debug: `Error: Origin host/IP blocked.`) and the
route's next targets are not tried. Targets are trusted by default."""

import pytest

from harness.raw import get


@pytest.mark.proxy(routes="* {backend},untrusted")
def test_an_untrusted_loopback_target_is_blocked(proxy, backend):
    r = get(proxy.port, "/u")
    assert r.status == 502
    assert r.body == b"Error while proxying to origin.\n"
    assert not any(q.path == "/u" for q in backend.requests)


@pytest.mark.proxy(routes="* {backend},untrusted {backend}")
def test_a_blocked_target_is_not_failed_over(proxy, backend):
    r = get(proxy.port, "/u")
    assert r.status == 502
    assert not any(q.path == "/u" for q in backend.requests)


@pytest.mark.proxy(routes="* {backend},untrusted", conf={"proxy": {"debug": "true"}})
def test_debug_names_the_block(proxy, backend):
    r = get(proxy.port, "/u")
    assert r.status == 502
    assert r.body == b"Error: Origin host/IP blocked.\n"


def test_a_name_resolving_to_loopback_is_blocked_too(start_proxy, backend):
    proxy = start_proxy(routes=f"* localhost:{backend.port},untrusted")
    r = get(proxy.port, "/u")
    assert r.status == 502
    assert not any(q.path == "/u" for q in backend.requests)


@pytest.mark.proxy(routes="* {backend}")
def test_targets_are_trusted_by_default(proxy, backend):
    assert get(proxy.port, "/t").status == 200


# trust_connect_host: the backend's certificate is checked against the host connected to
# instead of the Host header sent upstream (host= or the client's).
from harness.backend import Response  # noqa: E402
from test_proxy_tls import certs, server_tls, tls_backend, trust_test_ca  # noqa: E402,F401


def test_trust_connect_host_checks_the_certificate_against_the_connect_host(tls_backend, trust_test_ca,
                                                                            start_proxy):
    tls_backend.route("/hello", Response(200, b"verified", [("Content-Type", "text/plain")]))
    # the certificate is for localhost and 127.0.0.1, not api.example.net
    p = start_proxy(routes=f"* localhost:{tls_backend.port},ssl,host=api.example.net,trust_connect_host")
    r = get(p.port, "/hello", host="localhost")
    assert (r.status, r.body) == (200, b"verified")
    assert tls_backend.requests[-1].header("Host") == "api.example.net"


@pytest.mark.gripd_only("observed: pushpin 1.36 (through zurl) answers 502 for an IP connect host even though "
                        "the certificate names that IP (subjectAltName IP:127.0.0.1); gripd checks IP names")
def test_trust_connect_host_with_an_ip_and_the_clients_host(tls_backend, trust_test_ca, start_proxy):
    tls_backend.route("/hello", Response(200, b"verified", [("Content-Type", "text/plain")]))
    p = start_proxy(routes=f"* 127.0.0.1:{tls_backend.port},ssl,trust_connect_host")
    r = get(p.port, "/hello", host="example.com")
    assert (r.status, r.body) == (200, b"verified")


def test_without_trust_connect_host_the_host_header_name_is_checked(tls_backend, trust_test_ca, start_proxy):
    tls_backend.route("/hello", Response(200, b"must not arrive"))
    p = start_proxy(routes=f"* localhost:{tls_backend.port},ssl,host=api.example.net")
    r = get(p.port, "/hello", host="localhost")
    assert r.status == 502
    assert tls_backend.requests == []


def test_an_untrusted_websocket_target_is_blocked_without_failover(start_proxy):
    from wsutil import RawWs, WsBackend
    b = WsBackend()
    try:
        p = start_proxy(routes=f"* {b.addr},untrusted {b.addr}")
        raw = RawWs(p.port, "/")
        assert raw.status == 502
        raw.close()
    finally:
        b.stop()
