"""ZeroMQ helpers for the tests of Pushpin's ZeroMQ inputs (python3-zmq): TNetString encoding,
a PUSH publisher and a ZRPC client for the command socket."""

import json
import time

import zmq


def tn(v) -> bytes:
    """TNetString encoding (str as UTF-8 bytes)."""
    if isinstance(v, bytes):
        return b"%d:%s," % (len(v), v)
    if isinstance(v, str):
        return tn(v.encode())
    if isinstance(v, bool):
        p = b"true" if v else b"false"
        return b"%d:%s!" % (len(p), p)
    if isinstance(v, int):
        p = str(v).encode()
        return b"%d:%s#" % (len(p), p)
    if v is None:
        return b"0:~"
    if isinstance(v, dict):
        p = b"".join(tn(k) + tn(x) for k, x in v.items())
        return b"%d:%s}" % (len(p), p)
    if isinstance(v, (list, tuple)):
        p = b"".join(tn(x) for x in v)
        return b"%d:%s]" % (len(p), p)
    raise TypeError(type(v))


def untn(data: bytes):
    """Decodes one TNetString (strings stay bytes); returns (value, rest)."""
    colon = data.index(b":")
    n = int(data[:colon])
    payload, t, rest = data[colon + 1:colon + 1 + n], data[colon + 1 + n:colon + 2 + n], data[colon + 2 + n:]
    if t == b",":
        return payload, rest
    if t == b"#":
        return int(payload), rest
    if t == b"!":
        return payload == b"true", rest
    if t == b"~":
        return None, rest
    if t == b"}":
        d = {}
        while payload:
            k, payload = untn(payload)
            v, payload = untn(payload)
            d[k.decode()] = v
        return d, rest
    if t == b"]":
        out = []
        while payload:
            v, payload = untn(payload)
            out.append(v)
        return out, rest
    raise ValueError(t)


def j(item: dict) -> bytes:
    return b"J" + json.dumps(item).encode()


class Pusher:
    """A PUSH socket connected to the proxy's push_in_spec."""

    def __init__(self, spec: str):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDTIMEO, 10000)
        self.sock.connect(spec)

    def send(self, *parts: bytes):
        self.sock.send_multipart(list(parts))

    def close(self):
        self.sock.close()


class Command:
    """A REQ client of the command socket (ZRPC)."""

    def __init__(self, spec: str, timeout_ms: int = 10000):
        self.ctx = zmq.Context.instance()
        self.spec = spec
        self.timeout_ms = timeout_ms
        self._open()
        self.n = 0

    def _open(self):
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self.sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        self.sock.connect(self.spec)

    def raw(self, payload: bytes):
        """Sends one request part; returns the decoded reply, or None on timeout (the socket is
        then reopened, as a REQ socket without a reply cannot send again)."""
        self.sock.send(payload)
        try:
            reply = self.sock.recv()
        except zmq.Again:
            self.sock.close()
            self._open()
            return None
        v, rest = untn(reply)
        assert rest == b""
        return v

    def call(self, method: str, args=None):
        self.n += 1
        req = {"id": str(self.n), "method": method}
        if args is not None:
            req["args"] = args
        r = self.raw(tn(req))
        assert r is not None, f"no reply to {method}"
        assert r.get("id") == str(self.n).encode()
        return r

    def close(self):
        self.sock.close()


def wait_for(pred, timeout: float = 10.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
