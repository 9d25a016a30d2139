"""Operations keys as Pushpin 1.36 has them (observed on Debian's pushpin 1.36.0):

- [runner] logdir: per-process files; the proxy's `pushpin-proxy.log` carries the access lines
  (`-m` writes none: everything goes to the runner's output).
- The access line at log level 2: `METHOD URI -> TARGET [from=IP] [ref=REFERER] [route=ID]
  code=N BYTES|accept|error [retry] [ua=UA]`; from= needs [proxy] log_from, ua= needs
  [proxy] log_user_agent, route= only for a route with an explicit id, the Referer percent-encoded.
- [proxy] debug and the route option `debug`: detailed error texts instead of
  `Error while proxying to origin.`.
- [proxy] prometheus_port beside [handler] prometheus_port: two listeners, each with its prefix.
"""

import re
import time
import urllib.request

import pytest

from harness.backend import Response, grip_hold
from harness.proxy import dead_port, unique_free_port, IS_PUSHPIN
from harness.raw import get
from griputil import StreamClient

UA = "ua/1 test"
REF = "http://ref.example/a b?x=1"
REF_LOGGED = "http://ref.example/a%20b?x=1"
GENERIC = b"Error while proxying to origin.\n"


@pytest.fixture
def proxy_wait_publish():
    return False


def wait_log_line(proxy, pattern, name="pushpin-proxy.log", timeout=10.0):
    """The first line of logdir/<name> matching `pattern` (a regex), waiting up to `timeout`."""
    path = proxy.logdir / name
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            if rx.search(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matching {pattern!r} in {path}:\n{text[-3000:]}")
        time.sleep(0.1)


def access_part(line):
    """The access line without the log prefix (`[INFO] date time ` and gripd's `[proxy] `)."""
    m = re.match(r"\[INFO\] \S+ \S+ (?:\[[a-z]+\] )?(.*)$", line)
    assert m, line
    return m.group(1)


def request(proxy, path, host="a.example", headers=None):
    return get(proxy.port, path, host=host,
               headers=headers if headers is not None else [("User-Agent", UA), ("Referer", REF)])


# ---- the access line -----------------------------------------------------------------------------

def test_access_line_with_log_from_and_log_user_agent(start_proxy, backend):
    backend.route("/p", Response(200, b"hello"))
    p = start_proxy(routes=f"a.example,id=myid {backend.addr}\n* {backend.addr}\n",
                    conf={"proxy": {"log_from": "true", "log_user_agent": "true"}})
    r = request(p, "/p?q=1")
    assert r.status == 200 and r.body == b"hello"
    line = access_part(wait_log_line(p, r"GET http://a\.example/p\?q=1 "))
    assert line == (f"GET http://a.example/p?q=1 -> {backend.addr} from=127.0.0.1 ref={REF_LOGGED} "
                    f"route=myid code=200 5 ua={UA}")


def test_access_line_by_default_has_no_from_no_ua_and_no_generated_route_id(start_proxy, backend):
    backend.route("/p", Response(200, b"hello"))
    p = start_proxy(routes=f"* {backend.addr}\n")
    assert request(p, "/p").status == 200
    assert request(p, "/q", headers=[]).status == 200
    assert access_part(wait_log_line(p, r"GET http://a\.example/p ")) == \
        f"GET http://a.example/p -> {backend.addr} ref={REF_LOGGED} code=200 5"
    # No Referer: no ref=.
    line = access_part(wait_log_line(p, r"GET http://a\.example/q "))
    assert re.fullmatch(rf"GET http://a\.example/q -> {re.escape(backend.addr)} code=200 \d+", line), line


def test_access_line_of_a_held_request_says_accept(start_proxy, backend):
    backend.route("/hold", grip_hold("stream", "ops-accept"))
    p = start_proxy(routes=f"* {backend.addr}\n", wait_publish=True)
    c = StreamClient(p.port, "/hold", host="a.example")
    try:
        c.wait_head()
        line = access_part(wait_log_line(p, r"GET http://a\.example/hold "))
        assert line == f"GET http://a.example/hold -> {backend.addr} accept"
    finally:
        c.close()


def test_access_line_of_a_failed_request_names_the_last_target_tried(start_proxy):
    d1, d2 = dead_port(), dead_port()
    p = start_proxy(routes=f"* 127.0.0.1:{d1} 127.0.0.1:{d2}\n")
    r = request(p, "/x", headers=[])
    assert r.status == 502 and r.body == GENERIC
    line = access_part(wait_log_line(p, r"GET http://a\.example/x "))
    assert line == f"GET http://a.example/x -> 127.0.0.1:{d2} code=502 {len(GENERIC)}"


# ---- [runner] logdir -------------------------------------------------------------------------------

def test_logdir_gets_the_proxy_and_handler_files(start_proxy, backend):
    p = start_proxy(routes=f"* {backend.addr}\n")
    assert request(p, "/in-file").status == 200
    wait_log_line(p, r"GET http://a\.example/in-file ")
    assert (p.logdir / "pushpin-handler.log").exists()
    # The access line is in the proxy's file only, not in the runner's output.
    assert "/in-file" not in p.stdout_path.read_text(errors="replace")


def test_merge_output_writes_no_log_files(start_proxy, backend):
    p = start_proxy(routes=f"* {backend.addr}\n", args=["-m"])
    assert request(p, "/merged").status == 200
    deadline = time.monotonic() + 10
    while "/merged" not in p.stdout_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, p.log()
        time.sleep(0.1)
    assert not list(p.logdir.glob("pushpin-*.log"))


# ---- debug ------------------------------------------------------------------------------------------

def _debug_routes(backend, d1, d2, route_debug):
    opt = ",debug" if route_debug else ""
    return f"dead.example{opt} 127.0.0.1:{d1} 127.0.0.1:{d2},ssl\n*{opt} {backend.addr}\n"


@pytest.mark.parametrize("where", ["config", "route"])
def test_debug_gives_pushpins_detailed_error_texts(start_proxy, backend, where):
    backend.route("/badgrip", Response(200, b"{bad", [("Content-Type", "application/grip-instruct")]))
    backend.route("/big", Response(200, b"x" * 200000, [("Grip-Hold", "response"), ("Grip-Channel", "c")]))
    backend.route("/garbage", Response(200, b"", raw=b"garbage\r\n\r\n"))
    d1, d2 = dead_port(), dead_port()
    # wait_publish: Pushpin's handler, which parses GRIP instructions, must be wired up first.
    p = start_proxy(routes=_debug_routes(backend, d1, d2, where == "route"),
                    conf={"proxy": {"debug": "true" if where == "config" else "false"}}, wait_publish=True)
    r = request(p, "/", host="dead.example")
    assert (r.status, r.reason, r.body) == (
        502, "Bad Gateway", f"Unable to connect to any targets. Tried: 127.0.0.1:{d1}, 127.0.0.1:{d2}\n".encode())
    assert r.header("Content-Type") == "text/plain"
    r = request(p, "/badgrip")
    assert (r.status, r.body) == (
        502, b"Failed to parse accept instructions: failed to parse application/grip-instruct content as JSON\n")
    r = request(p, "/big")
    assert (r.status, r.body) == (502, f"GRIP instruct response too large from {backend.addr}\n".encode())
    # A broken response has no detailed text in Pushpin 1.36 either.
    r = request(p, "/garbage")
    assert (r.status, r.body) == (502, GENERIC)


def test_without_debug_errors_are_generic(start_proxy, backend):
    backend.route("/badgrip", Response(200, b"{bad", [("Content-Type", "application/grip-instruct")]))
    backend.route("/big", Response(200, b"x" * 200000, [("Grip-Hold", "response"), ("Grip-Channel", "c")]))
    d1, d2 = dead_port(), dead_port()
    p = start_proxy(routes=_debug_routes(backend, d1, d2, False), conf={"proxy": {"debug": "false"}},
                    wait_publish=True)
    for host, path in [("dead.example", "/"), ("a.example", "/badgrip"), ("a.example", "/big")]:
        r = request(p, path, host=host)
        assert (r.status, r.body) == (502, GENERIC), (host, path)


# ---- prometheus_port in [proxy] and [handler] ------------------------------------------------------

def _scrape(port):
    deadline = time.monotonic() + 10
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _value(text, name):
    m = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
    assert m, (name, text[:2000])
    return int(m.group(1))


def test_proxy_and_handler_prometheus_ports_both_serve_metrics(start_proxy, backend):
    pport, hport = unique_free_port(), unique_free_port()
    p = start_proxy(routes=f"* {backend.addr}\n",
                    conf={"proxy": {"prometheus_port": f"127.0.0.1:{pport}", "prometheus_prefix": "px_"},
                          "handler": {"prometheus_port": str(hport), "prometheus_prefix": "hd_"}})
    before = _value(_scrape(pport), "px_request_received")
    for _ in range(3):
        assert request(p, "/m").status == 200
    # Pushpin reports its counters every few seconds; wait until the proxy's listener shows them.
    deadline = time.monotonic() + 30
    while _value(_scrape(pport), "px_request_received") < before + 3:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    proxy_text, handler_text = _scrape(pport), _scrape(hport)
    for name in ("request_received", "connection_connected", "connection_minute", "message_received",
                 "message_sent"):
        assert f"# TYPE px_{name} " in proxy_text
        assert f"# TYPE hd_{name} " in handler_text
    assert "hd_" not in proxy_text and "px_" not in handler_text


# ---- no silent ignores: Debian's shipped config ----------------------------------------------------

@pytest.mark.gripd_only("checks gripd's own startup warnings (Pushpin ignores what it does not read in silence)")
def test_debian_conf_and_routes_warn_exactly_for_what_gripd_does_not_do(start_proxy):
    """Debian's /etc/pushpin/pushpin.conf and routes (ports and dirs rewritten) start gripd, and each
    key gripd does not act on gets exactly one WARN line with the file and line, naming the key; no other
    startup line is a warning. (The lead updates the list as keys become supported.)"""
    from pathlib import Path
    from harness.proxy import DATA
    conf = Path("/etc/pushpin/pushpin.conf")
    template = conf.read_text() if conf.exists() else (DATA / "debian-pushpin.conf").read_text()
    routes_src = Path("/etc/pushpin/routes")
    routes = routes_src.read_text() if routes_src.exists() else (DATA / "debian-routes").read_text()
    p = start_proxy(routes=routes, conf_template=template, plumbing=False, wait_publish=True)
    assert raw_get_ok(p)
    text = p.stdout_path.read_text(errors="replace")
    warnings = [l for l in text.splitlines() if l.startswith("[WARN]")]
    expected = []  # every key of Debian's config works (stats_spec, the last one, since the stats socket)
    conf_lines = p.conf_path.read_text().splitlines()
    for key in expected:
        hits = [w for w in warnings if key in w]
        assert len(hits) == 1, (key, warnings)
        m = re.search(rf"{re.escape(str(p.conf_path))}:(\d+): ", hits[0])
        assert m, hits[0]
        # The line named is the key's line.
        assert conf_lines[int(m.group(1)) - 1].startswith(key.split("] ")[1]), hits[0]
    assert len(warnings) == len(expected), warnings


def raw_get_ok(p):
    r = get(p.port, "/", host="localhost")
    return r.status == 200 and r.body == b"Hello from the Pushpin test handler!\n"


WS_UPGRADE = ("GET /ws HTTP/1.1\r\nHost: dead.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


@pytest.mark.parametrize("debug", [True, False])
def test_websocket_to_dead_targets_gets_the_debug_text(start_proxy, debug):
    from harness import raw
    d1, d2 = dead_port(), dead_port()
    p = start_proxy(routes=f"dead.example 127.0.0.1:{d1} 127.0.0.1:{d2}\n",
                    conf={"proxy": {"debug": "true" if debug else "false"}})
    with raw.RawConn(p.port, timeout=5) as c:
        c.send(WS_UPGRADE)
        r = c.recv_response()
    assert r.status == 502
    want = (f"Unable to connect to any targets. Tried: 127.0.0.1:{d1}, 127.0.0.1:{d2}\n".encode()
            if debug else GENERIC)
    assert r.body == want


def test_logdir_files_carry_the_instance_prefix_with_id(start_proxy, backend):
    p = start_proxy(routes=f"* {backend.addr}\n", args=["--id", "3"])
    assert request(p, "/with-id").status == 200
    wait_log_line(p, r"GET http://a\.example/with-id ", name="p3-pushpin-proxy.log")
    assert not (p.logdir / "pushpin-proxy.log").exists()


def test_access_line_of_the_test_target(start_proxy):
    p = start_proxy(routes="* test\n", conf={"proxy": {"log_from": "true"}})
    r = get(p.port, "/", host="a.example")
    assert r.status == 200
    line = access_part(wait_log_line(p, r"GET http://a\.example/ "))
    assert line == f"GET http://a.example/ -> test from=127.0.0.1 code=200 {len(r.body)}"


def test_access_line_of_a_websocket(start_proxy):
    from harness import raw
    from wsutil import WsBackend
    b = WsBackend()
    try:
        p = start_proxy(routes=f"* {b.addr}\n", conf={"proxy": {"log_from": "true"}})
        with raw.RawConn(p.port, timeout=5) as c:
            c.send(WS_UPGRADE.replace(b"GET /ws ", b"GET /ws?x=1 ").replace(b"dead.example", b"a.example")
                   .replace(b"\r\n\r\n", b"\r\nReferer: http://r.example/\r\n\r\n"))
            assert c.recv_response().status == 101
            line = access_part(wait_log_line(p, r"GET ws://a\.example/ws"))
        assert line == f"GET ws://a.example/ws?x=1 -> {b.addr} from=127.0.0.1 ref=http://r.example/ code=101 0"
    finally:
        b.stop()


# ---- no silent ignores: a config that sets every key once ------------------------------------------

def _reference_tables():
    """(works, warns, infos): (section, key, type) rows of gripd's config reference (README's tables)."""
    import subprocess
    from harness.proxy import proxy_command
    text = subprocess.run(proxy_command() + ["--print-config-reference"], capture_output=True, text=True,
                          check=True, timeout=10).stdout
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("| Section |") or line.startswith("| Where |"):
            current = []
            tables.append(current)
        elif line.startswith("|---"):
            continue
        elif line.startswith("| ") and current is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            current.append(cells)
        else:
            current = None
    return tables[0], tables[1], tables[2]


def _value_for(section, key, type_text, default="", warns_when=""):
    if re.fullmatch(r"`-?\d+`", default) and not warns_when:
        return default.strip("`")  # a working value (client_maxconn=1 would refuse the test's requests)
    if "boolean" in type_text:
        return "true"
    if type_text.startswith("list of `[addr"):
        return "127.0.0.1:7999"
    if type_text.startswith("list of `path"):
        return "/tmp/gripd-every-key.sock"
    if type_text.startswith("`truncate"):
        return "append"
    if type_text.startswith("`true`"):
        return "true"
    if type_text.startswith("`N`"):
        return "2"
    if type_text.startswith("`[addr:]port`"):
        return str(unique_free_port())
    if type_text.startswith("bytes (`k`"):
        return "1G"
    m = re.search(r"(-?\d+)(?:–(\d+)| or more)", type_text)
    if m:
        low = int(m.group(1))
        if warns_when.startswith("not `") and warns_when[5:].split("`")[0] == str(low):
            return str(low + 1)
        return str(max(low, 1))
    if type_text == "path":
        return "routes"
    return "true" if warns_when == "true" else "x"


@pytest.mark.gripd_only("checks gripd's own startup warnings (Pushpin ignores what it does not read in silence)")
def test_a_config_setting_every_key_once_starts_and_warns_exactly_for_the_unsupported_ones(start_proxy):
    works, warns, infos = _reference_tables()
    # Left out: [global] include (reads a file), listeners the harness sets or that need more than a
    # value (https_ports needs certificates, local_ports a socket path), and the Redis bus.
    skip = {("global", "include"), ("runner", "http_port"), ("runner", "https_ports"), ("runner", "local_ports"),
            ("gripd", "bus"), ("handler", "push_in_http_port"), ("handler", "push_in_http_addr"),
            ("proxy", "routesfile"), ("runner", "logdir"), ("global", "rundir"), ("runner", "rundir"),
            ("global", "libdir"), ("global", "workers"), ("gripd", "workers"), ("global", "port_offset"),
            # ZeroMQ sockets: the harness writes working specs on free ports.
            ("handler", "push_in_spec"), ("handler", "push_in_sub_specs"), ("handler", "push_in_sub_spec"),
            ("handler", "command_spec"), ("handler", "stats_spec")}
    conf = {}
    for row in works:
        if (row[0], row[1].strip("`")) not in skip:
            conf.setdefault(row[0], {})[row[1].strip("`")] = _value_for(row[0], row[1].strip("`"), row[2], row[3])
    expected = []
    for row in warns:
        key = row[1].strip("`")
        if (row[0], key) in skip:
            continue
        conf.setdefault(row[0], {})[key] = _value_for(row[0], key, row[2], row[3], row[4])
        expected.append(f"[{row[0]}] {key}=")
    for row in infos:
        if row[1].startswith("`"):
            conf.setdefault(row[0], {}).setdefault(row[1].strip("`"), "x")
    # share_all works, but warns about what it shares less than Pushpin (src/proxy/request_share.hpp).
    if conf.get("handler", {}).get("share_all") == "true":
        expected.append("[handler] share_all=")
    # Options whose values must still be valid numbers where the info rows hold integers.
    for sec, key, value in [("handler", "message_hwm", "100"), ("handler", "subscription_linger", "60"),
                            ("handler", "stats_report_interval", "10")]:
        conf.setdefault(sec, {})[key] = value
    p = start_proxy(routes="* test\n", conf_template="", conf=conf, plumbing=False)
    assert raw_get_ok(p)
    warnings = [l for l in p.stdout_path.read_text(errors="replace").splitlines()
                if l.startswith("[WARN]") and str(p.conf_path) in l]
    for key in expected:
        hits = [w for w in warnings if f"{p.conf_path}:" in w and key in w]
        assert len(hits) == 1, (key, warnings)
    assert len(warnings) == len(expected), warnings
    assert not [w for w in warnings if "unknown key" in w]
