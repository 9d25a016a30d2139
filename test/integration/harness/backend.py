"""A fully controllable HTTP/1.1 test backend (origin server).

Standard library only. Every request is recorded (method, target, headers in
wire order with duplicates, body, peer port of the connection). Answers are
produced by per-test handlers:

    backend.handler = lambda req: Response(200, b"hi")      # catch-all
    backend.route("/x", Response(404, b"nope"))             # exact path
    backend.route("/y", lambda req: {"any": "json"})        # callable
    backend.route("/z", grip_hold("stream", "chan"))         # see helpers

A handler returns a Response, bytes/str (200 text/plain), a dict/list
(200 application/json) or None (echo). The default handler is `echo`, which
answers with a JSON description of the request (see `echo_payload`).

Handlers run on the connection's own thread, so they may block (e.g. wait on
a threading.Event) to emulate slow origins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Union

MAX_HEAD = 1 << 20

# Put ABORT (or ABORT_RST) in Response.chunks to drop the connection at that point.
ABORT = object()
ABORT_RST = object()


class BackendError(Exception):
    pass


@dataclass
class Request:
    method: str
    target: str                      # request-target exactly as received
    version: str                     # "HTTP/1.1"
    headers: list                    # [(name, value)] in wire order
    body: bytes
    peer_port: int                   # client port of the connection (reuse check)
    conn_id: int                     # ordinal of the connection (1-based)
    seq_on_conn: int                 # ordinal of the request on its connection (1-based)
    chunked: bool = False            # body arrived with chunked transfer coding
    raw_head: bytes = b""
    sent_100_continue: bool = False
    time: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name: str) -> list:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None

    def header_names(self) -> list:
        return [k.lower() for k, _ in self.headers]


@dataclass
class Response:
    """What the backend sends back.

    framing: "length" (Content-Length, default), "chunked", or "close"
             (no length, body delimited by closing the connection).
    chunks:  optional list mixing bytes (sent as one chunk / write), floats
             (sleep that many seconds) and ABORT / ABORT_RST (close the
             connection right there) - used instead of `body`.
    delay:   seconds to sleep before sending anything.
    wait:    a threading.Event to wait on (max `wait_timeout`) before sending.
    close:   close the connection after this response (adds Connection: close).
    abort_after: write only this many bytes of the serialized response
             (head included), then close the socket (RST if abort_rst).
    raw:     bytes written verbatim instead of a generated response.
    """

    status: int = 200
    body: Union[bytes, str] = b""
    headers: Union[list, dict, None] = None
    reason: Optional[str] = None
    framing: str = "length"
    chunks: Optional[list] = None
    delay: float = 0.0
    wait: Optional[threading.Event] = None
    wait_timeout: float = 10.0
    close: bool = False
    abort_after: Optional[int] = None
    abort_rst: bool = False
    raw: Optional[bytes] = None
    chunk_size: int = 65536

    def header_list(self) -> list:
        if self.headers is None:
            return []
        if isinstance(self.headers, dict):
            return list(self.headers.items())
        return list(self.headers)


Spec = Union[Response, bytes, str, dict, list, None, Callable[[Request], object]]

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 302: "Found", 304: "Not Modified",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 411: "Length Required",
    413: "Payload Too Large", 418: "I'm a teapot", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


def echo_payload(req: Request) -> dict:
    try:
        body_text = req.body.decode("utf-8")
        body_b64 = None
    except UnicodeDecodeError:
        body_text = None
        body_b64 = base64.b64encode(req.body).decode()
    return {
        "method": req.method,
        "target": req.target,
        "path": req.path,
        "query": req.query,
        "version": req.version,
        "headers": [[k, v] for k, v in req.headers],
        "body": body_text,
        "body_b64": body_b64,
        "body_len": len(req.body),
        "body_sha256": hashlib.sha256(req.body).hexdigest(),
        "chunked": req.chunked,
        "peer_port": req.peer_port,
        "conn_id": req.conn_id,
    }


def echo(req: Request) -> Response:
    body = json.dumps(echo_payload(req)).encode()
    return Response(200, body, [("Content-Type", "application/json")])


def json_response(obj, status=200, headers=None) -> Response:
    h = [("Content-Type", "application/json")] + (list(headers.items()) if isinstance(headers, dict) else list(headers or []))
    return Response(status, json.dumps(obj).encode(), h)


def grip_hold(mode: str, *channels: str, body=b"", headers=None, status=200, **extra_grip) -> Response:
    """Response with Grip-Hold/Grip-Channel headers. extra_grip: timeout=..,
    keep_alive=.., link=.. become Grip-Timeout / Grip-Keep-Alive / Grip-Link."""
    h = [("Grip-Hold", mode)]
    for c in channels:
        h.append(("Grip-Channel", c))
    for k, v in extra_grip.items():
        name = "Grip-" + "-".join(p.capitalize() for p in k.split("_"))
        h.append((name, str(v)))
    if headers:
        h += list(headers.items()) if isinstance(headers, dict) else list(headers)
    if not any(k.lower() == "content-type" for k, _ in h):
        h.append(("Content-Type", "text/plain"))
    return Response(status, body, h)


def _to_response(spec, req: Request) -> Response:
    if callable(spec) and not isinstance(spec, Response):
        spec = spec(req)
    if spec is None:
        return echo(req)
    if isinstance(spec, Response):
        return spec
    if isinstance(spec, (bytes, bytearray)):
        return Response(200, bytes(spec), [("Content-Type", "text/plain")])
    if isinstance(spec, str):
        return Response(200, spec.encode(), [("Content-Type", "text/plain")])
    if isinstance(spec, (dict, list)):
        return json_response(spec)
    raise BackendError(f"handler returned unsupported {type(spec)!r}")


class _Conn:
    def __init__(self, backend: "Backend", sock: socket.socket, conn_id: int):
        self.backend = backend
        self.sock = sock
        self.conn_id = conn_id
        self.peer_port = sock.getpeername()[1]
        self.buf = b""
        self.closed = False

    # --- reading -------------------------------------------------------
    def _fill(self) -> bool:
        try:
            data = self.sock.recv(262144)
        except (OSError, ValueError):
            return False
        if not data:
            return False
        self.buf += data
        return True

    def _read_line(self) -> Optional[bytes]:
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self._fill():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n: int) -> Optional[bytes]:
        # The reads are joined once at the end: appending each to one bytes object copies all of
        # it every time, quadratic in the body (a 96 MiB upload took over a minute on a busy
        # machine, with the proxy rightly pausing the client behind it).
        parts, have = [self.buf], len(self.buf)
        while have < n:
            try:
                data = self.sock.recv(262144)
            except (OSError, ValueError):
                data = b""
            if not data:
                self.buf = b"".join(parts)
                return None
            parts.append(data)
            have += len(data)
        whole = b"".join(parts)
        data, self.buf = whole[:n], whole[n:]
        return data

    def _read_head(self) -> Optional[bytes]:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def _read_chunked(self) -> Optional[bytes]:
        out = bytearray()
        while True:
            line = self._read_line()
            if line is None:
                return None
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers
                while True:
                    t = self._read_line()
                    if t is None:
                        return None
                    if t == b"":
                        return bytes(out)
            data = self._read_exact(size)
            if data is None or self._read_exact(2) != b"\r\n":
                return None
            out += data

    # --- writing -------------------------------------------------------
    def _send(self, data: bytes, budget: list) -> bool:
        """Send data; budget[0] is remaining bytes before abort (None = no limit)."""
        if budget[0] is not None:
            if budget[0] <= 0:
                return False
            if len(data) > budget[0]:
                data = data[: budget[0]]
                self.sock.sendall(data)
                budget[0] = 0
                return False
            budget[0] -= len(data)
        self.sock.sendall(data)
        return True

    def _write_response(self, req: Request, resp: Response) -> bool:
        """Returns True if the connection may be kept alive."""
        if resp.wait is not None:
            resp.wait.wait(resp.wait_timeout)
        if resp.delay:
            time.sleep(resp.delay)
        budget = [resp.abort_after]
        if resp.raw is not None:
            ok = self._send(resp.raw, budget)
            if not ok or resp.close or resp.abort_after is not None:
                self._abort(resp)
                return False
            return True
        body = resp.body.encode() if isinstance(resp.body, str) else bytes(resp.body)
        headers = resp.header_list()
        names = {k.lower() for k, _ in headers}
        is_head = req.method == "HEAD"
        no_body_status = resp.status in (204, 304) or 100 <= resp.status < 200
        if resp.chunks is not None and resp.framing == "length" and "content-length" not in names:
            total = sum(len(c) for c in resp.chunks if isinstance(c, (bytes, bytearray)))
            if resp.body:  # declared length for an aborted/partial send
                total = len(resp.body) if isinstance(resp.body, (bytes, bytearray)) else len(resp.body.encode())
            headers.append(("Content-Length", str(total)))
        elif resp.framing == "length" and "content-length" not in names and not no_body_status:
            headers.append(("Content-Length", str(len(body))))
        elif resp.framing == "chunked" and "transfer-encoding" not in names:
            headers.append(("Transfer-Encoding", "chunked"))
        keep = not resp.close and resp.framing != "close"
        if not keep and "connection" not in names:
            headers.append(("Connection", "close"))
        reason = resp.reason if resp.reason is not None else REASONS.get(resp.status, "Unknown")
        head = f"HTTP/1.1 {resp.status} {reason}\r\n".encode("latin-1")
        for k, v in headers:
            head += f"{k}: {v}\r\n".encode("latin-1")
        head += b"\r\n"
        try:
            if not self._send(head, budget):
                self._abort(resp)
                return False
            if not is_head and not no_body_status:
                pieces: Iterable = resp.chunks if resp.chunks is not None else (
                    [body[i:i + resp.chunk_size] for i in range(0, len(body), resp.chunk_size)] if body else [])
                for p in pieces:
                    if p is ABORT or p is ABORT_RST:
                        resp.abort_rst = p is ABORT_RST
                        self._abort(resp)
                        return False
                    if isinstance(p, (int, float)) and not isinstance(p, bool):
                        time.sleep(p)
                        continue
                    if not p:
                        continue
                    data = (b"%x\r\n" % len(p) + bytes(p) + b"\r\n") if resp.framing == "chunked" else bytes(p)
                    if not self._send(data, budget):
                        self._abort(resp)
                        return False
                if resp.framing == "chunked":
                    if not self._send(b"0\r\n\r\n", budget):
                        self._abort(resp)
                        return False
        except OSError:
            return False
        if resp.abort_after is not None:
            self._abort(resp)
            return False
        return keep

    def _abort(self, resp: Response):
        try:
            if resp.abort_rst:
                import struct
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    # --- main loop -----------------------------------------------------
    def run(self):
        seq = 0
        if self.backend.tls is not None:
            try:  # the handshake runs here, not in the accept loop
                self.sock = self.backend.tls.wrap_socket(self.sock, server_side=True)
            except (OSError, ValueError) as e:
                with self.backend._lock:
                    self.backend.tls_errors.append(str(e))
                self.close()
                self.backend._conn_done(self)
                return
        try:
            while not self.backend._stopping:
                head = self._read_head()
                if head is None:
                    break
                lines = head.split(b"\r\n")
                try:
                    method, target, version = lines[0].decode("latin-1").split(" ", 2)
                except ValueError:
                    self.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    break
                headers = []
                for ln in lines[1:]:
                    if b":" not in ln:
                        continue
                    k, v = ln.split(b":", 1)
                    headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
                seq += 1
                req = Request(method, target, version, headers, b"", self.peer_port,
                              self.conn_id, seq, raw_head=head)
                te = (req.header("Transfer-Encoding") or "").lower()
                if req.header("Expect", "").lower() == "100-continue" and self.backend.send_100_continue:
                    self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    req.sent_100_continue = True
                if "chunked" in te:
                    body = self._read_chunked()
                    req.chunked = True
                elif req.header("Content-Length") is not None:
                    body = self._read_exact(int(req.header("Content-Length")))
                else:
                    body = b""
                if body is None:
                    break
                req.body = body
                if req.header("Pushpin-Check") is not None:
                    # harness readiness probe forwarded by a proxy: not recorded
                    self.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    with self.backend._lock:
                        self.backend.probe_requests.append(req)
                    break
                self.backend._record(req)
                try:
                    resp = _to_response(self.backend._lookup(req), req)
                except Exception as e:  # handler bug: surface it as 500
                    self.backend.errors.append(e)
                    resp = Response(500, f"backend handler error: {e!r}".encode(), close=True)
                keep = self._write_response(req, resp)
                conn_hdr = (req.header("Connection") or "").lower()
                if "close" in conn_hdr or (version == "HTTP/1.0" and "keep-alive" not in conn_hdr):
                    keep = False
                if not keep:
                    break
        finally:
            self.close()
            self.backend._conn_done(self)


class Backend:
    """Threaded HTTP/1.1 origin on 127.0.0.1:<free port> (over TLS with `tls`, a server-side
    ssl.SSLContext; failed handshakes are listed in tls_errors)."""

    def __init__(self, handler: Spec = None, host: str = "127.0.0.1", tls=None):
        self.host = host
        self.tls = tls
        self.tls_errors: list = []
        self.handler: Spec = handler
        self.routes: dict = {}
        self.requests: list = []
        self.errors: list = []
        self.send_100_continue = True
        self.connections_accepted = 0
        self.probe_requests: list = []   # forwarded harness readiness probes (not in .requests)
        self._conns: set = set()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopping = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, 0))
        self._lsock.listen(128)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"backend-{self.port}")
        self._thread.start()

    # --- configuration -------------------------------------------------
    @property
    def addr(self) -> str:
        """host:port, as written in a routes file target."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def route(self, path: str, spec: Spec):
        """Answer requests whose path (or full target) equals `path` with spec."""
        self.routes[path] = spec
        return self

    def _lookup(self, req: Request):
        if req.target in self.routes:
            return self.routes[req.target]
        if req.path in self.routes:
            return self.routes[req.path]
        return self.handler

    # --- recording -----------------------------------------------------
    def _record(self, req: Request):
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()

    def wait_requests(self, n: int = 1, timeout: float = 5.0) -> list:
        """Block until at least n requests were recorded; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"backend got {len(self.requests)} requests, expected {n}")
                self._cond.wait(left)
            return list(self.requests)

    @property
    def last(self) -> Request:
        with self._lock:
            if not self.requests:
                raise AssertionError("backend received no request")
            return self.requests[-1]

    def peer_ports(self) -> set:
        with self._lock:
            return {r.peer_port for r in self.requests}

    def clear(self):
        with self._lock:
            self.requests.clear()

    # --- lifecycle -----------------------------------------------------
    def _accept_loop(self):
        while not self._stopping:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                break
            if self._stopping:
                s.close()
                break
            with self._lock:
                self.connections_accepted += 1
                c = _Conn(self, s, self.connections_accepted)
                self._conns.add(c)
            threading.Thread(target=c.run, daemon=True, name=f"backend-{self.port}-c{c.conn_id}").start()

    def _conn_done(self, c: _Conn):
        with self._lock:
            self._conns.discard(c)

    def close_connections(self):
        """Close every open connection (keeps listening)."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def stop(self):
        self._stopping = True
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._lsock.close()
        except OSError:
            pass
        self.close_connections()
        self._thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
