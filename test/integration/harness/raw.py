"""Raw-socket HTTP/1.1 client helpers: exact bytes in, parsed responses out.

    with RawConn(proxy.port) as c:
        c.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        r = c.recv_response()          # RawResponse
        assert c.is_closed() is False

    data = send_raw(proxy.port, b"garbage\\r\\n\\r\\n")   # bytes until close/timeout
    responses = parse_responses(data)
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: list                        # [(name, value)] in wire order
    body: bytes
    chunked: bool = False
    interim: list = field(default_factory=list)   # 1xx responses seen before this one
    raw_head: bytes = b""

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

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class IncompleteResponse(Exception):
    def __init__(self, msg, data=b""):
        super().__init__(msg)
        self.data = data


def _b(data: Union[bytes, str]) -> bytes:
    return data.encode("latin-1") if isinstance(data, str) else data


class RawConn:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: Union[bytes, str]):
        self.sock.sendall(_b(data))

    def _fill(self, deadline: float) -> bool:
        """Read more into buf. False on EOF/reset. Raises socket.timeout at deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, pred, deadline, what):
        while not pred():
            if not self._fill(deadline):
                raise IncompleteResponse(f"connection closed while reading {what}", self.buf)

    def recv_response(self, timeout: Optional[float] = None, head_request: bool = False,
                      interim: bool = False) -> RawResponse:
        """Read one full response. 1xx interim responses are skipped and collected
        in .interim of the final one, unless interim=True: then a 1xx is returned
        as soon as it arrives. head_request=True: no body whatever the headers say."""
        want_interim = interim
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        interim = []
        while True:
            self._need(lambda: b"\r\n\r\n" in self.buf, deadline, "response head")
            head, rest = self.buf.split(b"\r\n\r\n", 1)
            self.buf = rest
            lines = head.split(b"\r\n")
            parts = lines[0].decode("latin-1").split(" ", 2)
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.decode("latin-1").partition(":")
                headers.append((k.strip(), v.strip()))
            resp = RawResponse(version, status, reason, headers, b"", raw_head=head)
            if 100 <= status < 200 and status != 101:
                if want_interim:
                    return resp
                interim.append(resp)
                continue
            break
        resp.interim = interim
        te = (resp.header("Transfer-Encoding") or "").lower()
        if head_request or status in (204, 304, 101):
            return resp
        if "chunked" in te:
            resp.chunked = True
            body = bytearray()
            while True:
                self._need(lambda: b"\r\n" in self.buf, deadline, "chunk size")
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:
                        self._need(lambda: b"\r\n" in self.buf, deadline, "trailer")
                        t, self.buf = self.buf.split(b"\r\n", 1)
                        if t == b"":
                            break
                    break
                self._need(lambda: len(self.buf) >= size + 2, deadline, "chunk data")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
            resp.body = bytes(body)
        elif resp.header("Content-Length") is not None:
            n = int(resp.header("Content-Length"))
            self._need(lambda: len(self.buf) >= n, deadline, "body")
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            # close-delimited
            try:
                while self._fill(deadline):
                    pass
            except socket.timeout:
                raise IncompleteResponse("close-delimited body not closed in time", self.buf)
            resp.body, self.buf = self.buf, b""
        return resp

    def wait_for(self, marker: bytes, timeout: Optional[float] = None) -> bool:
        """Read until marker appears in the unread buffer (nothing is consumed,
        so recv_response() can parse it afterwards). False on EOF or timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        try:
            while marker not in self.buf:
                if not self._fill(deadline):
                    return False
        except (socket.timeout, TimeoutError):
            return False
        return True

    def read_until_close(self, timeout: Optional[float] = None) -> bytes:
        """Everything until EOF or timeout (no exception on timeout)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        try:
            while self._fill(deadline):
                pass
        except (socket.timeout, TimeoutError):
            pass
        data, self.buf = self.buf, b""
        return data

    def is_closed(self, timeout: float = 2.0) -> bool:
        """True if the peer closes (EOF/RST) within timeout; unread data is discarded."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                self.buf = b""
        except (socket.timeout, TimeoutError):
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_raw(port: int, data: Union[bytes, str], timeout: float = 5.0, host: str = "127.0.0.1",
             shut_write: bool = False) -> bytes:
    """Connect, send data, return all bytes received until close or timeout."""
    with RawConn(port, host, timeout) as c:
        c.send(data)
        if shut_write:
            c.sock.shutdown(socket.SHUT_WR)
        return c.read_until_close(timeout)


def parse_responses(data: bytes, head_requests=()) -> list:
    """Parse a byte string holding zero or more complete responses (in order).
    A trailing incomplete response is dropped. head_requests: indexes of
    responses that answer HEAD requests."""
    out = []

    class _Buf(RawConn):
        def __init__(self, data):
            self.buf = data
            self.eof = True
            self.timeout = 0.1

    b = _Buf(data)
    i = 0
    while b.buf:
        try:
            out.append(b.recv_response(head_request=i in head_requests))
        except (IncompleteResponse, ValueError, IndexError):
            break
        i += 1
    return out


def get(port: int, target: str = "/", host: str = "example.com", headers=(), method: str = "GET",
        body: bytes = b"", timeout: float = 5.0) -> RawResponse:
    """One request on a fresh connection, raw headers exactly as given."""
    req = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
    for k, v in headers:
        req += f"{k}: {v}\r\n"
    if body:
        req += f"Content-Length: {len(body)}\r\n"
    req += "Connection: close\r\n\r\n"
    with RawConn(port, timeout=timeout) as c:
        c.send(_b(req) + body)
        return c.recv_response(head_request=(method == "HEAD"))
