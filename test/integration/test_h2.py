"""HTTP/2 for clients (issue 16): h2c with prior knowledge on the HTTP port, ALPN h2 on
https_ports, SETTINGS limits, flow control per stream, GOAWAY on shutdown, RST_STREAM for
backend failures, and the known HTTP/2 attacks bounded. The GRIP features themselves run over
HTTP/2 in the hold/stream/CORS tests (the client_proto fixture).

Pushpin 1.36 serves HTTP/1.1 only (an HTTP/2 preface gets no HTTP/2 answer), so every test
here is gripd_only."""

import signal
import socket
import struct
import subprocess
import time

import pytest
import h2.errors
import h2.exceptions
import h2.settings

from harness.backend import Response
from harness.h2client import H2Conn
from griputil import hs_item, publish, hr_item
from test_client_tls import ca, tls  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gripd_only("pushpin 1.36 serves HTTP/1.1 only; HTTP/2 is gripd's (issue 16)")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def stream_route(backend, path, channel, body=b"init\n"):
    backend.route(path, Response(200, body, [("Grip-Hold", "stream"), ("Grip-Channel", channel),
                                             ("Content-Type", "text/plain")]))


def read_until_closed(s: socket.socket, limit_s: float = 20.0) -> bytes:
    out = b""
    deadline = time.monotonic() + limit_s
    s.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return out
        if not d:
            return out
        out += d
    raise AssertionError("the connection was not closed")


def test_h2c_prior_knowledge_and_http11_share_the_port(proxy, backend):
    with H2Conn(proxy.port) as c:
        st = c.get("/hello?x=1", host="example.com", headers=[("X-Custom", "v")])
        assert st.head.status == 200 and st.complete
        assert backend.last.target == "/hello?x=1"
        assert backend.last.header("Host") == "example.com"  # :authority becomes Host
        assert backend.last.header("X-Custom") == "v"
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          f"http://127.0.0.1:{proxy.port}/c"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "2 200"
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          f"http://127.0.0.1:{proxy.port}/c"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "1.1 200"


def test_settings_advertise_the_limits(proxy):
    with H2Conn(proxy.port) as c:
        c.wait(lambda: h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in c.remote_settings, what="SETTINGS")
        s = c.remote_settings
        assert s[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 128
        assert s[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 65536
        assert s[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == 8192  # client_buffer_size


def test_request_body_reaches_the_backend(proxy, backend):
    body = bytes(range(256)) * 4096  # 1 MiB: many windows' worth
    with H2Conn(proxy.port) as c:
        st = c.get("/up", method="POST", body=body, timeout=30)
        assert st.head.status == 200
    assert backend.last.body == body
    assert backend.last.method == "POST"


def test_many_stream_holds_on_one_connection_all_get_publishes(proxy, backend):
    stream_route(backend, "/s", "multi")
    with H2Conn(proxy.port) as c:
        streams = [c.request(f"/s?i={i}") for i in range(40)]
        c.wait(lambda: all(b"init\n" in st.body for st in streams), 10, "initial bodies")
        deadline = time.monotonic() + 10
        while not all(b"sync\n" in st.body for st in streams):
            assert time.monotonic() < deadline
            publish(proxy, [hs_item("multi", "sync\n")])
            time.sleep(0.2)
        publish(proxy, [hs_item("multi", "payload\n")])
        c.wait(lambda: all(st.body.endswith(b"payload\n") for st in streams), 10, "payload on every stream")
        publish(proxy, [hs_item("multi", action="close")])
        c.wait(lambda: all(st.complete for st in streams), 10, "END_STREAM on every stream")
        assert not c.closed  # the connection outlives its streams


def test_response_hold_released_by_publish_over_h2(proxy, backend):
    backend.route("/lp", Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "lp"),
                                                       ("Grip-Timeout", "20")]))
    with H2Conn(proxy.port) as c:
        st = c.request("/lp")
        backend.wait_requests(1)
        deadline = time.monotonic() + 10
        while not st.ended:
            assert time.monotonic() < deadline
            publish(proxy, [hr_item("lp", "released\n")])
            c.wait(lambda: st.ended, 0.5, "release") if False else time.sleep(0.3)
        assert st.head.status == 200 and st.body == b"released\n" and st.complete


def test_stream_without_window_is_reset_and_others_go_on(start_proxy, backend):
    p = start_proxy(routes=f"* {backend.addr}", conf={"gripd": {"send_timeout": "1"}})
    stream_route(backend, "/s", "win")
    with H2Conn(p.port, window=0) as c:
        stuck = c.request("/s?stuck")
        live = c.request("/s?live")
        c.open_window(live, 1 << 20)
        c.wait(lambda: stuck.head is not None and b"init\n" in live.body, 10, "heads")
        deadline = time.monotonic() + 10
        while b"sync\n" not in live.body:
            assert time.monotonic() < deadline
            publish(proxy_of(p), [hs_item("win", "sync\n")])
            time.sleep(0.2)
        c.wait(lambda: stuck.reset is not None, 10, "RST_STREAM on the stream that got no window")
        assert stuck.reset == h2.errors.ErrorCodes.CANCEL
        assert stuck.body == b""
        publish(proxy_of(p), [hs_item("win", "after\n")])
        c.wait(lambda: live.body.endswith(b"after\n"), 10, "the other stream goes on")
        assert not c.closed and live.reset is None


def proxy_of(p):
    return p


def test_backend_failure_mid_body_resets_the_stream(proxy, backend):
    backend.route("/cut", Response(200, b"x" * 100000, abort_after=1000))
    with H2Conn(proxy.port) as c:
        st = c.get("/cut", timeout=10)
        assert st.head is not None and st.head.status == 200
        assert st.reset == h2.errors.ErrorCodes.INTERNAL_ERROR and not st.complete
        ok = c.get("/fine")  # the connection is unaffected
        assert ok.head.status == 200 and ok.complete


def test_goaway_on_shutdown_and_held_streams_end(proxy, backend):
    stream_route(backend, "/s", "bye")
    with H2Conn(proxy.port) as c:
        st = c.request("/s")
        c.wait(lambda: b"init\n" in st.body, 10, "initial body")
        proxy.signal(signal.SIGTERM)
        c.wait(lambda: c.goaway is not None, 15, "GOAWAY")
        assert c.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        c.wait(lambda: c.closed, 15, "close after the held stream ended")
        assert 0x0 in c.after_goaway or 0x3 in c.after_goaway or st.ended  # DATA end or RST_STREAM
    assert proxy.proc.wait(15) == 0


def test_tls_alpn_h2(tls, backend):  # noqa: F811
    t = tls(f"* {backend.addr}")
    with H2Conn(t.port, tls=True) as c:
        assert c.alpn == "h2"
        st = c.get("/over-tls")
        # (once in a loaded run the stream ended without a head: say how, if it comes back)
        assert st.head is not None, (st.reset, c.closed, c.error, c.goaway)
        assert st.head.status == 200 and st.complete
    assert backend.last.header("X-Forwarded-Proto") in (None, "https")
    out = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                          f"https://127.0.0.1:{t.port}/c"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "2"
    out = subprocess.run(["curl", "-sk", "--http1.1", "-o", "/dev/null", "-w", "%{http_version}",
                          f"https://127.0.0.1:{t.port}/c"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "1.1"


# --- hostile input: each bound is in the README's HTTP/2 section --------------------------

def test_rapid_reset_is_cut_off(proxy, backend):
    """CVE-2023-44487: streams opened and reset at once, faster than nghttp2's reset rate limit
    (1000 burst, 33/s): the connection gets GOAWAY and is closed; others are served."""
    backend.route("/slow", Response(200, b"late", delay=5))
    with H2Conn(proxy.port) as c:
        for _ in range(40):
            with c.cond:
                try:
                    for _ in range(50):
                        sid = c.h2.get_next_available_stream_id()
                        c.h2.send_headers(sid, [(":method", "GET"), (":path", "/slow"), (":scheme", "http"),
                                                (":authority", "example.com")])
                        c.h2.reset_stream(sid, 8)
                    c._send_pending()
                except (OSError, h2.exceptions.ProtocolError):
                    break  # the server said GOAWAY (python-h2 then refuses to send) or closed
        c.wait(lambda: c.closed, 20, "connection closed")
        # nghttp2's reset rate limit answers GOAWAY(INTERNAL_ERROR), long before the 2000th stream.
        assert c.goaway is not None and c.goaway.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert c.goaway.last_stream_id < 2 * 2000 - 1
    with H2Conn(proxy.port) as c:
        assert c.get("/fine").head.status == 200


def test_continuation_flood_is_cut_off(proxy):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    s.sendall(PREFACE + frame(4, 0, 0))  # preface + empty SETTINGS
    # HEADERS without END_HEADERS, then CONTINUATION after CONTINUATION (each a literal header).
    field = b"\x00\x01a\x01b"
    s.sendall(frame(1, 0x1, 1, b"\x82\x84\x86" + field))
    sent = 0
    try:
        for _ in range(10000):
            s.sendall(frame(9, 0, 1, field))
            sent += 1
    except OSError:
        pass
    got = read_until_closed(s)  # closed: nghttp2 allows 8 CONTINUATION frames per header block
    s.close()
    assert goaway_code(got) == h2.errors.ErrorCodes.PROTOCOL_ERROR


def goaway_code(data: bytes):
    """The error code of the first GOAWAY among the server's frames, or None."""
    while len(data) >= 9:
        n = int.from_bytes(data[:3], "big")
        if data[3] == 7:
            return int.from_bytes(data[9 + 4:9 + 8], "big")
        data = data[9 + n:]
    return None


def flood_without_reading(port: int, one: bytes, count: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(PREFACE + frame(4, 0, 0))
    batch = one * 1000
    closed = False
    try:
        for _ in range(count // 1000):
            s.sendall(batch)
    except OSError:
        closed = True
    if not closed:
        read_until_closed(s)
    s.close()


def test_ping_flood_without_reading_is_cut_off(proxy):
    flood_without_reading(proxy.port, frame(6, 0, 0, b"12345678"), 300000)
    with H2Conn(proxy.port) as c:
        assert c.get("/fine").head.status == 200


def test_settings_flood_without_reading_is_cut_off(proxy):
    flood_without_reading(proxy.port, frame(4, 0, 0, struct.pack(">HI", 4, 65535)), 300000)
    with H2Conn(proxy.port) as c:
        assert c.get("/fine").head.status == 200


def test_hpack_bomb_gets_431(proxy, backend):
    """One 4000-byte header in the HPACK table, referenced 100 times: 400 KB decoded from a few
    hundred bytes. The decoded list is capped at client_buffer_size: 431, nothing forwarded."""
    n = len(backend.requests)
    with H2Conn(proxy.port) as c:
        big = "v" * 4000
        st = c.get("/bomb", headers=[("x-big", big)] * 100)
        assert st.head is not None and st.head.status == 431
        assert len(backend.requests) == n
        ok = c.get("/fine")  # the connection is still good
        assert ok.head.status == 200


# --- WebSockets over HTTP/2 (RFC 8441 extended CONNECT) -----------------------------------

def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payload < 126 bytes)."""
    mask = b"\x01\x02\x03\x04"
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_connect(c: H2Conn, path: str = "/"):
    c.wait(lambda: h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL in c.remote_settings, what="SETTINGS")
    assert c.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    return c.request(path, method="CONNECT", end=False,
                     headers=[(":protocol", "websocket"), ("sec-websocket-version", "13")])


def test_websocket_passthrough_over_a_stream(start_proxy):
    from wsutil import WsBackend
    b = WsBackend()
    try:
        p = start_proxy(routes=f"* {b.addr}")
        with H2Conn(p.port) as c:
            st = ws_connect(c, "/echo")
            c.wait(lambda: st.head is not None or st.ended, 10, "CONNECT answer")
            assert st.head.status == 200  # RFC 8441: 200, not 101
            assert not st.head.header("sec-websocket-accept")
            c.send_body(st, ws_frame(0x1, b"hello"), end=False)
            c.wait(lambda: b"\x81\x05hello" in st.body, 10, "echo")
            plain = c.get("/", timeout=10)  # other streams on the connection go on
            assert plain.head is not None
            c.send_body(st, ws_frame(0x8, b"\x03\xe8"), end=False)
            c.wait(lambda: b"\x88\x02\x03\xe8" in st.body, 10, "close frame back")
            c.wait(lambda: st.complete or st.reset is not None, 10, "stream end")
    finally:
        b.stop()


def test_websocket_over_http_on_a_stream(start_proxy):
    """WebSocket-over-HTTP (GRIP) on a stream: the backend gets OPEN, the client's TEXT, and a
    publish to the channel the backend subscribed reaches the client."""
    from wsutil import WohBackend, control, ws_item, publish as ws_publish
    woh = WohBackend()
    try:
        woh.on_open = lambda req: [("TEXT", control({"type": "subscribe", "channel": "h2ws"}))]
        p = start_proxy(routes=f"* {woh.addr},over_http")
        with H2Conn(p.port) as c:
            st = ws_connect(c, "/woh")
            c.wait(lambda: st.head is not None or st.ended, 10, "CONNECT answer")
            assert st.head.status == 200
            c.send_body(st, ws_frame(0x1, b"hi"), end=False)
            deadline = time.monotonic() + 10
            while b"pub" not in st.body:
                assert time.monotonic() < deadline, st.body
                ws_publish(p, ws_item("h2ws", "pub"))
                time.sleep(0.3)
            assert b"\x81\x03pub" in st.body
        assert any(ev[0] == "TEXT" and ev[1] in (b"hi", "hi") for ev in woh.all_events())
    finally:
        woh.stop()


def test_partial_request_head_does_not_hold_the_connection(start_proxy):
    """A HEADERS frame without END_HEADERS and then silence (slow loris): the connection is closed
    after idle_timeout, as an idle HTTP/1.1 connection is."""
    p = start_proxy(routes="* 127.0.0.1:9", conf={"gripd": {"idle_timeout": "2"}})
    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    s.sendall(PREFACE + frame(4, 0, 0) + frame(1, 0x0, 1, b"\x82\x84\x86"))  # no END_HEADERS
    read_until_closed(s, limit_s=15)  # raises if the connection is held on
    s.close()
