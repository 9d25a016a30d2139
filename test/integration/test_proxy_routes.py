"""Routes file: route choice, rewrites, failover, error answers, reload, CLI
overrides, the Debian config. Observed on Debian's pushpin 1.36.0."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from harness import raw
from harness.backend import Response
from harness.proxy import DATA, dead_port, unique_free_port

NO_ROUTE_CT = "text/plain"
ORIGIN_ERROR_BODY = b"Error while proxying to origin.\n"


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only: do not wait for the control API port


@pytest.fixture
def named(make_backend):
    """named("A", "B", ...) -> backends answering {"b": name, "target", "headers"}."""
    def _make(*names):
        out = []
        for n in names:
            out.append(make_backend(lambda req, n=n: {"b": n, "target": req.target, "headers": req.headers}))
        return out
    return _make


def who(proxy, path="/", host="x", headers=()):
    r = raw.get(proxy.port, path, host=host, headers=headers)
    if r.status != 200:
        return (r.status, r.body)
    return json.loads(r.body)["b"]


def upstream(proxy, path="/", host="x", headers=()):
    r = raw.get(proxy.port, path, host=host, headers=headers)
    assert r.status == 200, r.body
    return json.loads(r.body)


def hdr(e, name):
    vals = [v for k, v in e["headers"] if k.lower() == name.lower()]
    return vals[0] if vals else None


# --- route choice ---------------------------------------------------------------

def test_host_rule_beats_star(start_proxy, named):
    a, s = named("host", "star")
    p = start_proxy(routes=f"* {s.addr}\na.example {a.addr}\n")
    assert who(p, host="a.example") == "host"
    assert who(p, host="other.example") == "star"


def test_host_rule_beats_star_path_rule(start_proxy, named):
    a, api = named("host", "api")
    p = start_proxy(routes=f"*,path_beg=/api {api.addr}\na.example {a.addr}\n")
    assert who(p, "/api/x", host="a.example") == "host"
    assert who(p, "/api/x", host="b.example") == "api"


def test_host_match_ignores_port_and_case(start_proxy, named):
    a, s = named("host", "star")
    p = start_proxy(routes=f"a.example {a.addr}\n* {s.addr}\n")
    assert who(p, host="a.example:7999") == "host"
    assert who(p, host="A.Example") == "host"


def test_host_with_rules_but_no_match_does_not_fall_back(start_proxy, named):
    b, s = named("b", "star")
    p = start_proxy(routes=f"b.example,path_beg=/only {b.addr}\n* {s.addr}\n")
    assert who(p, "/only/x", host="b.example") == "b"
    r = raw.get(p.port, "/x", host="b.example")
    assert r.status == 502
    assert r.body == b"No route for host: b.example\n"
    assert s.requests == []


def test_path_beg_longest_wins_any_order(start_proxy, named):
    a, b, c, s = named("a", "ab", "abc", "star")
    p = start_proxy(routes=f"*,path_beg=/a/b/c {c.addr}\n*,path_beg=/a {a.addr}\n"
                           f"* {s.addr}\n*,path_beg=/a/b {b.addr}\n")
    assert who(p, "/a/b/c/d") == "abc"
    assert who(p, "/a/b/x") == "ab"
    assert who(p, "/a/x") == "a"
    assert who(p, "/zzz") == "star"
    # plain string prefix, not a path-segment match
    assert who(p, "/abc") == "a"


def test_path_beg_does_not_see_query(start_proxy, named):
    a, s = named("a", "star")
    p = start_proxy(routes=f"*,path_beg=/a {a.addr}\n* {s.addr}\n")
    assert who(p, "/x?/a") == "star"
    assert who(p, "/a?x") == "a"


def test_proto_http_rule_preferred_over_plain(start_proxy, named):
    h, s = named("http", "star")
    p = start_proxy(routes=f"* {s.addr}\n*,proto=http {h.addr}\n")
    assert who(p) == "http"


def test_proto_ws_rule_not_used_for_http(start_proxy, named):
    w, s = named("ws", "star")
    p = start_proxy(routes=f"*,proto=ws {w.addr}\n* {s.addr}\n")
    assert who(p) == "star"
    p2 = start_proxy(routes=f"*,proto=ws {w.addr}\n")
    r = raw.get(p2.port, "/", host="x")
    assert r.status == 502 and r.body == b"No route for host: x\n"


def test_ssl_condition_on_plain_connection(start_proxy, named):
    no, yes, s = named("ssl-no", "ssl-yes", "star")
    p = start_proxy(routes=f"*,path_beg=/s,ssl=no {no.addr}\n*,path_beg=/t,ssl=yes {yes.addr}\n* {s.addr}\n")
    assert who(p, "/s") == "ssl-no"
    assert who(p, "/t") == "star"


def test_ssl_no_rule_preferred_for_same_prefix(start_proxy, named):
    no, plain = named("ssl-no", "plain")
    p = start_proxy(routes=f"*,path_beg=/s {plain.addr}\n*,path_beg=/s,ssl=no {no.addr}\n")
    assert who(p, "/s") == "ssl-no"


def test_duplicate_condition_first_kept(start_proxy, named):
    a, b = named("first", "second")
    p = start_proxy(routes=f"* {a.addr}\n* {b.addr}\n")
    assert who(p) == "first"


def test_comments_blank_lines_and_route_id(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"# a comment\n\n   \n*,id=main-route {a.addr}\n# another\n")
    assert who(p) == "a"


# --- error answers --------------------------------------------------------------

def test_no_route_502(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"a.example {a.addr}\n")
    with raw.RawConn(p.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: c.example:1234\r\n\r\n")
        r = c.recv_response()
        assert r.status == 502
        assert r.reason == "Bad Gateway"
        assert r.header("Content-Type") == NO_ROUTE_CT
        # pushpin 1.36 wording (newer releases say "Route not found"); port not included
        assert r.body == b"No route for host: c.example\n"
        # the connection stays usable
        c.send(b"GET /y HTTP/1.1\r\nHost: a.example\r\n\r\n")
        assert c.recv_response().status == 200
    assert [r.target for r in a.requests] == ["/y"]


def test_no_route_empty_routes_file(start_proxy):
    p = start_proxy(routes="")
    r = raw.get(p.port, "/", host="any.example")
    assert r.status == 502
    assert r.body == b"No route for host: any.example\n"


def test_failover_first_target_dead(start_proxy, named):
    (a,) = named("alive")
    p = start_proxy(routes=f"* 127.0.0.1:{dead_port()} {a.addr}\n")
    for i in range(3):
        assert who(p, f"/f{i}") == "alive"


def test_target_by_host_name(start_proxy, named):
    """A target given by name is resolved (localhost: IPv4 where the backend listens)."""
    (a,) = named("by-name")
    port = a.addr.rsplit(":", 1)[1]
    p = start_proxy(routes=f"* localhost:{port}\n")
    assert [who(p, f"/n{i}") for i in range(3)] == ["by-name"] * 3


def test_failover_from_unresolvable_target(start_proxy, named):
    (a,) = named("alive")
    p = start_proxy(routes=f"* no-such-host.invalid:80 {a.addr}\n")
    assert who(p, "/f") == "alive"


def test_first_target_used_when_alive(start_proxy, named):
    a, b = named("first", "second")
    p = start_proxy(routes=f"* {a.addr} {b.addr}\n")
    assert [who(p) for _ in range(4)] == ["first"] * 4
    assert b.requests == []


def test_all_targets_down_502(start_proxy):
    p = start_proxy(routes=f"* 127.0.0.1:{dead_port()} 127.0.0.1:{dead_port()}\n")
    with raw.RawConn(p.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.recv_response(timeout=10)
        assert r.status == 502
        assert r.reason == "Bad Gateway"
        assert r.header("Content-Type") == "text/plain"
        assert r.body == ORIGIN_ERROR_BODY
        # keep-alive kept after the 502
        c.send(b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv_response(timeout=10).status == 502


@pytest.mark.parametrize("kind", ["refused", "unresolvable"])
def test_single_target_down_502(start_proxy, kind):
    """A refused connection or a name that does not resolve (.invalid never does, RFC 2606)."""
    target = f"127.0.0.1:{dead_port()}" if kind == "refused" else "no-such-host.invalid:80"
    p = start_proxy(routes=f"* {target}\n")
    r = raw.get(p.port, "/x", timeout=15)
    assert r.status == 502
    assert r.body == ORIGIN_ERROR_BODY


# --- rewrites -------------------------------------------------------------------

def test_path_rem(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,path_beg=/rem,path_rem=4 {a.addr}\n")
    assert upstream(p, "/rem/abc?x=1")["target"] == "/abc?x=1"
    assert upstream(p, "/rem")["target"] == "/"


def test_path_rem_longer_than_path(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,path_rem=100 {a.addr}\n")
    assert upstream(p, "/short")["target"] == "/"


def test_replace_beg(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,path_beg=/old,replace_beg=/new {a.addr}\n")
    assert upstream(p, "/old/abc?x=1")["target"] == "/new/abc?x=1"
    assert upstream(p, "/oldx")["target"] == "/newx"


def test_replace_beg_empty(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,path_beg=/api,replace_beg= {a.addr}\n")
    assert upstream(p, "/api/x?q")["target"] == "/x?q"
    assert upstream(p, "/api")["target"] == "/"


def test_as_host(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,as_host=rewritten.example:8080 {a.addr}\n")
    e = upstream(p, "/p?q=1", host="client.example")
    assert hdr(e, "Host") == "rewritten.example:8080"
    assert e["target"] == "/p?q=1"


def test_route_header_set_replace_remove(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,header=X-Added:yes,header=User-Agent:,header=X-Replaced:route {a.addr}\n")
    e = upstream(p, "/", headers=[("User-Agent", "ua"), ("X-Replaced", "client")])
    assert hdr(e, "X-Added") == "yes"
    assert hdr(e, "User-Agent") is None
    assert [v for k, v in e["headers"] if k.lower() == "x-replaced"] == ["route"]


def test_route_header_quoted_value(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f'*,header="X-Quoted:hello world",header=X-Two:2 {a.addr}\n')
    e = upstream(p, "/")
    assert hdr(e, "X-Quoted") == "hello world"
    assert hdr(e, "X-Two") == "2"


def test_target_host_prop(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"* {a.addr},host=target-host.example\n")
    e = upstream(p, "/t", host="client.example")
    assert hdr(e, "Host") == "target-host.example"
    assert e["target"] == "/t"


# --- reload ---------------------------------------------------------------------

def _wait_for_backend(p, name, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if who(p) == name:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"routes not reloaded to {name} within {timeout}s")


@pytest.mark.parametrize("atomic", [False, True], ids=["in-place", "rename"])
def test_routes_reload_on_file_change_keeps_keepalive(start_proxy, named, atomic):
    one, two = named("one", "two")
    p = start_proxy(routes=f"* {one.addr}\n")
    with raw.RawConn(p.port) as c:
        c.send(b"GET /ka1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(c.recv_response().body)["b"] == "one"
        p.write_routes(f"* {two.addr}\n", atomic=atomic)
        _wait_for_backend(p, "two")
        # the keep-alive connection opened before the reload is still served, by the new routes
        c.send(b"GET /ka2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(c.recv_response().body)["b"] == "two"
        # and a second change is picked up too
        p.write_routes(f"* {one.addr}\n", atomic=atomic)
        _wait_for_backend(p, "one")
        c.send(b"GET /ka3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(c.recv_response().body)["b"] == "one"


def test_routes_reload_keeps_in_flight_request(start_proxy, named, make_backend):
    slow = make_backend(lambda req: Response(200, b"slow-done", delay=1.5))
    (two,) = named("two")
    p = start_proxy(routes=f"* {slow.addr}\n")
    with raw.RawConn(p.port, timeout=10) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.wait_requests(1)
        p.write_routes(f"* {two.addr}\n")
        r = c.recv_response()
        assert r.body == b"slow-done"
    _wait_for_backend(p, "two")


def test_routes_reload_on_sighup(start_proxy, named):
    """pushpin reloads the routes file on SIGHUP at once (its file watcher needs
    about 1 s); gripd does the same (DESIGN: SIGHUP reloads the routes file)."""
    one, two = named("one", "two")
    p = start_proxy(routes=f"* {one.addr}\n")
    assert who(p) == "one"
    p.write_routes(f"* {two.addr}\n")
    p.signal(signal.SIGHUP)
    t0 = time.monotonic()
    _wait_for_backend(p, "two", timeout=5)
    assert time.monotonic() - t0 < 0.6, "SIGHUP did not reload the routes promptly"
    assert p.alive()


def test_invalid_route_lines_skipped(start_proxy, named):
    """pushpin logs a warning per bad line and loads the others."""
    (a,) = named("a")
    p = start_proxy(routes=f"*\nthis is ,,, not a valid = route\n*,path_beg=/ok {a.addr}\n")
    assert who(p, "/ok") == "a"
    r = raw.get(p.port, "/other", host="x")
    assert r.status == 502 and r.body == b"No route for host: x\n"


def test_unknown_route_options_ignored(start_proxy, named):
    (a,) = named("a")
    p = start_proxy(routes=f"*,bogus_option=1 {a.addr},bogus_target_opt\n")
    assert who(p) == "a"


def test_bad_routes_reload_keeps_running(start_proxy, named):
    one, two = named("one", "two")
    p = start_proxy(routes=f"* {one.addr}\n")
    p.write_routes(f"*\n*,path_beg=/two {two.addr}\n")
    deadline = time.monotonic() + 10
    while who(p, "/two") != "two":
        assert time.monotonic() < deadline, "reload not applied"
        time.sleep(0.05)
    assert p.alive()
    assert who(p, "/x") == (502, b"No route for host: x\n")


# --- command line and config ------------------------------------------------------

def test_cli_route_overrides_routes_file(start_proxy, named):
    a, b = named("file", "cli")
    p = start_proxy(routes=f"* {a.addr}\n", args=["--route", f"* {b.addr}"])
    assert who(p) == "cli"
    assert a.requests == []


def test_cli_route_repeatable(start_proxy, named):
    a, b = named("a", "b")
    p = start_proxy(routes="", args=["--route", f"* {a.addr}", "--route", f"*,path_beg=/b {b.addr}"])
    assert who(p, "/x") == "a"
    assert who(p, "/b/x") == "b"


def test_cli_port_overrides_http_port(start_proxy, named):
    (a,) = named("a")
    port = unique_free_port()
    p = start_proxy(routes=f"* {a.addr}\n", args=["--port", str(port)], wait=False)
    conf_port = p.port
    p.port = port
    p.wait_ready()
    assert who(p) == "a"
    assert raw.get(port, "/").status == 200
    # the configured http_port is not opened
    with pytest.raises(OSError):
        raw.RawConn(conf_port, timeout=1).close()


def test_debian_pushpin_conf_loads_and_serves(start_proxy):
    """Debian's /etc/pushpin/pushpin.conf and routes ("* test"), with only rundir,
    logdir and ports rewritten, load and serve the built-in test handler."""
    conf = Path("/etc/pushpin/pushpin.conf")
    template = conf.read_text() if conf.exists() else (DATA / "debian-pushpin.conf").read_text()
    routes_src = Path("/etc/pushpin/routes")
    routes = routes_src.read_text() if routes_src.exists() else (DATA / "debian-routes").read_text()
    p = start_proxy(routes=routes, conf_template=template, plumbing=False, wait_publish=True)
    r = raw.get(p.port, "/", host="localhost")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain"
    assert r.body == b"Hello from the Pushpin test handler!\n"
    # the publish (control) port is up too
    assert raw.get(p.publish_port, "/").status == 200
