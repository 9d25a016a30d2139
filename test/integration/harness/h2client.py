"""HTTP/2 clients for the tests (Debian's python3-h2 as the codec, plain sockets).

H2Conn: one connection (h2c with prior knowledge, or TLS with ALPN h2) on which any number of
streams are opened; a background thread reads frames and keeps, per stream, the head, the body
pieces and how it ended. H2StreamClient (in griputil) puts one stream behind the StreamClient
interface so that GRIP tests run over HTTP/2 unchanged."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Optional

import h2.config
import h2.connection
import h2.events
import h2.settings

from harness import raw


class H2Stream:
    def __init__(self, conn: "H2Conn", sid: int):
        self.conn = conn
        self.id = sid
        self.head: Optional[raw.RawResponse] = None
        self.body = b""
        self.events: list = []
        self.complete = False   # END_STREAM from the server
        self.reset: Optional[int] = None  # RST_STREAM error code
        self.listeners: list = []

    @property
    def ended(self) -> bool:
        return self.complete or self.reset is not None or self.conn.closed


class H2Conn:
    """One HTTP/2 connection. `window`: our initial stream window (0 = the server may send no body
    until we open it); `read_body=False` keeps our windows shut (we never acknowledge data)."""

    def __init__(self, port: int, host: str = "127.0.0.1", tls: bool = False, timeout: float = 30.0,
                 window: Optional[int] = None, read_body: bool = True, settings: Optional[dict] = None):
        self.timeout = timeout
        self.read_body = read_body
        self.cond = threading.Condition()
        self.streams: dict = {}
        self.closed = False
        self.goaway: Optional[h2.events.ConnectionTerminated] = None
        self.remote_settings: dict = {}
        self.error: Optional[BaseException] = None
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            self.alpn = sock.selected_alpn_protocol()
        else:
            self.alpn = None
        self.sock = sock
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        local = dict(settings or {})
        if window is not None:
            local[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = window
        if local:
            self.h2.update_settings(local)
        self._send_pending()
        self._stop = False
        self._inbuf = b""
        self.after_goaway: list = []
        self._thread = threading.Thread(target=self._run, daemon=True, name="h2conn")
        self._thread.start()

    # --- sending ---
    def _send_pending(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, target: str = "/", method: str = "GET", host: str = "example.com", headers=(),
                body: bytes = b"", end: bool = True) -> H2Stream:
        with self.cond:
            sid = self.h2.get_next_available_stream_id()
            st = H2Stream(self, sid)
            self.streams[sid] = st
            hdrs = [(":method", method), (":path", target), (":scheme", "http"), (":authority", host)]
            hdrs += [(k.lower(), v) for k, v in headers]
            if body:
                hdrs.append(("content-length", str(len(body))))
            self.h2.send_headers(sid, hdrs, end_stream=end and not body)
            self._send_pending()
        if body:
            self.send_body(st, body, end)
        return st

    def send_body(self, st: H2Stream, body: bytes, end: bool = True, timeout: float = 30.0):
        """DATA frames as the server's windows allow (the reader thread sees its WINDOW_UPDATEs)."""
        deadline = time.monotonic() + timeout
        off = 0
        with self.cond:
            while off < len(body):
                n = min(self.h2.local_flow_control_window(st.id), self.h2.max_outbound_frame_size,
                        len(body) - off)
                if n <= 0:
                    assert time.monotonic() < deadline, "h2: no window for the request body"
                    assert not self.closed, "h2: closed while sending a body"
                    self.cond.wait(0.2)
                    continue
                self.h2.send_data(st.id, body[off:off + n], end_stream=end and off + n == len(body))
                off += n
                self._send_pending()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def reset_stream(self, st: H2Stream, code: int = 8):
        with self.cond:
            self.h2.reset_stream(st.id, code)
            self._send_pending()

    def open_window(self, st: H2Stream, n: int):
        with self.cond:
            self.h2.increment_flow_control_window(n, stream_id=st.id)
            self.h2.increment_flow_control_window(n)
            self._send_pending()

    # --- reading ---
    def _run(self):
        try:
            while not self._stop:
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                if not data:
                    break
                with self.cond:
                    # Frame by frame: python-h2 refuses every frame after a GOAWAY (it closes at
                    # once), and would lose the GOAWAY itself if it came in one batch with them.
                    self._inbuf += data
                    while len(self._inbuf) >= 9:
                        n = 9 + int.from_bytes(self._inbuf[:3], "big")
                        if len(self._inbuf) < n:
                            break
                        one, self._inbuf = self._inbuf[:n], self._inbuf[n:]
                        if self.goaway is not None:
                            self.after_goaway.append(one[3])  # frame types seen after it
                            continue
                        for ev in self.h2.receive_data(one):
                            self._on_event(ev)
                    try:
                        self._send_pending()
                    except OSError:
                        pass
                    self.cond.notify_all()
        except BaseException as e:  # pragma: no cover - surfaced via .error
            self.error = e
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()
                for st in self.streams.values():
                    for fn in st.listeners:
                        fn()

    def _on_event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st:
            hdrs = [(k, v) for k, v in ev.headers]
            status = int(dict(hdrs)[":status"])
            st.head = raw.RawResponse(version="HTTP/2", status=status, reason="",
                                      headers=[(k, v) for k, v in hdrs if not k.startswith(":")], body=b"")
        elif isinstance(ev, h2.events.DataReceived) and st:
            st.body += ev.data
            st.events.append((time.monotonic(), ev.data))
            if self.read_body and ev.flow_controlled_length:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.complete = True
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value
        if st:
            for fn in st.listeners:
                fn()

    def wait(self, pred, timeout: float = 5.0, what: str = "condition") -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"h2: {what} not seen within {timeout}s (closed={self.closed}, "
                                         f"goaway={self.goaway}, error={self.error!r})")
                self.cond.wait(min(left, 0.2))
        return True

    def get(self, target: str = "/", timeout: float = 5.0, **kw) -> H2Stream:
        """One whole request/response."""
        st = self.request(target, **kw)
        self.wait(lambda: st.ended, timeout, f"end of {target}")
        return st

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
