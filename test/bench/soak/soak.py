"""Soak: minutes of churn against one proxy, checking it stays alive, delivers every item to every
live subscriber, and keeps RSS and open fds flat after warm-up. Run through test/bench/soak.sh.

Traffic (asyncio clients, modest rates; the machine is shared):
  streams    STREAMS stream holds on channels s0..s{CH-1}; each lives 5-30 s, then reconnects;
  websockets WS clients on the built-in `test` target (?channel=w0..), same lifetimes;
  polls      POLLS long-poll clients on r0..; released by publishes or a 5 s timeout, then again;
  requests   REQ_RATE/s short requests on new connections: /plain, and /flaky, which the backend
             answers with a 500, a reset or a slow reply at random;
  publishes  every channel gets one item every PUB_MS ms (stream, ws and response formats).
Checks: every stream/WebSocket subscriber sees consecutive sequence numbers from its first item to
its last (no gap, no reorder) and, alive at the end, the last one published; long-polls get 200s;
the proxy never dies. Every SAMPLE_S s a CSV row: time, RSS, fds, deliveries, errors.
"""

import asyncio
import os
import random
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))

from harness.backend import Backend, Response  # noqa: E402
from harness.proxy import Proxy, TARGET  # noqa: E402

DURATION = float(os.environ.get("SOAK_SECONDS", "1800"))
WARMUP = float(os.environ.get("WARMUP_SECONDS", str(min(120.0, DURATION / 4))))
CH = int(os.environ.get("CHANNELS", "8"))
STREAMS = int(os.environ.get("STREAMS", "100"))
WS = int(os.environ.get("WEBSOCKETS", "100"))
POLLS = int(os.environ.get("POLLS", "40"))
REQ_RATE = float(os.environ.get("REQ_RATE", "40"))
PUB_MS = float(os.environ.get("PUB_MS", "200"))
SAMPLE_S = float(os.environ.get("SAMPLE_S", "5"))
CSV = os.environ.get("SOAK_CSV", "soak.csv")

ITEM_RE = re.compile(rb"([SW])(\d+):(\d+);")


class Stats:
    def __init__(self):
        self.delivered = 0
        self.gaps = 0
        self.gap_examples = []
        self.polls_ok = 0
        self.polls_bad = 0
        self.req = {}
        self.conn_errors = 0
        self.pub_reconnects = 0
        self.last_pub = {}  # (kind, ch) -> last seq published


stats = Stats()


class SeqCheck:
    """Per subscriber: consecutive sequence numbers from the first one seen."""

    def __init__(self, kind, ch):
        self.kind, self.ch, self.last = kind, ch, None

    def feed(self, kind, ch, seq):
        if kind != self.kind or ch != self.ch:
            stats.gaps += 1
            return
        if self.last is not None and seq != self.last + 1:
            stats.gaps += 1
            if len(stats.gap_examples) < 5:
                stats.gap_examples.append(f"{kind}{ch}: {self.last} -> {seq}")
        self.last = seq
        stats.delivered += 1


async def open_conn(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    return r, w


async def stream_client(port, stop, i):
    while not stop.is_set():
        ch = random.randrange(CH)
        life = random.uniform(5, 30)
        try:
            r, w = await open_conn(port)
            w.write(f"GET /stream/{ch} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
            chk, buf = SeqCheck(b"S", ch), b""
            end = time.monotonic() + life
            while time.monotonic() < end and not stop.is_set():
                try:
                    d = await asyncio.wait_for(r.read(65536), 1.0)
                except asyncio.TimeoutError:
                    continue
                if not d:
                    stats.conn_errors += 1
                    break
                buf += d
                last = 0
                for m in ITEM_RE.finditer(buf):
                    chk.feed(m.group(1), int(m.group(2)), int(m.group(3)))
                    last = m.end()
                buf = buf[last:] if last else buf[-64:]
            if stop.is_set():
                final_checks.append(chk)
            w.close()
        except OSError:
            stats.conn_errors += 1
            await asyncio.sleep(1)


def ws_frames(buf):
    """Complete unmasked server frames in buf -> (list of (opcode, payload), rest)."""
    out, i = [], 0
    while len(buf) - i >= 2:
        op, ln = buf[i] & 0x0F, buf[i + 1] & 0x7F
        j = i + 2
        if ln == 126:
            if len(buf) - j < 2:
                break
            ln, j = int.from_bytes(buf[j:j + 2], "big"), j + 2
        elif ln == 127:
            if len(buf) - j < 8:
                break
            ln, j = int.from_bytes(buf[j:j + 8], "big"), j + 8
        if len(buf) - j < ln:
            break
        out.append((op, buf[j:j + ln]))
        i = j + ln
    return out, buf[i:]


async def ws_client(port, stop, i):
    while not stop.is_set():
        ch = random.randrange(CH)
        life = random.uniform(5, 30)
        try:
            r, w = await open_conn(port)
            w.write((f"GET /ws?channel=w{ch} HTTP/1.1\r\nHost: ws.local\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            if b" 101 " not in head.split(b"\r\n")[0]:
                stats.conn_errors += 1
                w.close()
                await asyncio.sleep(1)
                continue
            chk, buf = SeqCheck(b"W", ch), b""
            end = time.monotonic() + life
            n = 0
            while time.monotonic() < end and not stop.is_set():
                try:
                    d = await asyncio.wait_for(r.read(65536), 1.0)
                except asyncio.TimeoutError:
                    continue
                if not d:
                    stats.conn_errors += 1
                    break
                frames, buf = ws_frames(buf + d)
                for op, payload in frames:
                    for m in ITEM_RE.finditer(payload):
                        chk.feed(m.group(1), int(m.group(2)), int(m.group(3)))
                n += 1
                if n % 7 == 0:  # some traffic the other way too (echoed by the test target)
                    w.write(b"\x81\x82\x00\x00\x00\x00hi")
            if stop.is_set():
                final_checks.append(chk)
            w.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000
            w.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            stats.conn_errors += 1
            await asyncio.sleep(1)


async def poll_client(port, stop, i):
    while not stop.is_set():
        ch = random.randrange(CH)
        try:
            r, w = await open_conn(port)
            w.write(f"GET /poll/{ch} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n".encode())
            data = await asyncio.wait_for(r.read(), 30)
            if data.startswith(b"HTTP/1.1 200"):
                stats.polls_ok += 1
            else:
                stats.polls_bad += 1
            w.close()
        except (OSError, asyncio.TimeoutError):
            stats.polls_bad += 1
            await asyncio.sleep(1)


async def requester(port, stop):
    while not stop.is_set():
        await asyncio.sleep(random.expovariate(REQ_RATE))
        path = random.choice(["/plain", "/plain", "/flaky"])
        asyncio.ensure_future(one_request(port, path))


async def one_request(port, path):
    try:
        r, w = await open_conn(port)
        w.write(f"GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(r.read(), 30)
        key = path + " " + (data[9:12].decode() if data.startswith(b"HTTP/1.1") else "none")
        w.close()
    except (OSError, asyncio.TimeoutError):
        key = path + " error"
    stats.req[key] = stats.req.get(key, 0) + 1


def publisher(proxy, stop):
    s = socket.create_connection(("127.0.0.1", proxy.publish_port), timeout=30)
    seq = 0
    while not stop.is_set():
        t0 = time.monotonic()
        seq += 1
        items = []
        for ch in range(CH):
            items.append('{"channel":"s%d","formats":{"http-stream":{"content":"S%d:%d;\\n"}}}' % (ch, ch, seq))
            items.append('{"channel":"w%d","formats":{"ws-message":{"content":"W%d:%d;"}}}' % (ch, ch, seq))
            items.append('{"channel":"r%d","formats":{"http-response":{"body":"R%d:%d;\\n"}}}' % (ch, ch, seq))
        body = ('{"items":[' + ",".join(items) + "]}").encode()
        req = (b"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        for attempt in range(2):
            # A keep-alive connection the server closed while idle (pushpin does) is opened again
            # once; a second close in a row is an error.
            try:
                s.sendall(req)
                resp = b""
                while b"Published" not in resp:
                    d = s.recv(4096)
                    if not d:
                        raise ConnectionError("publish connection closed")
                    resp += d
                break
            except (ConnectionError, OSError):
                s.close()
                if attempt == 1:
                    raise
                stats.pub_reconnects += 1
                s = socket.create_connection(("127.0.0.1", proxy.publish_port), timeout=30)
        for ch in range(CH):
            stats.last_pub[(b"S", ch)] = seq
            stats.last_pub[(b"W", ch)] = seq
        time.sleep(max(0.0, PUB_MS / 1000 - (time.monotonic() - t0)))


def flaky(req):
    x = random.random()
    if x < 0.2:
        return Response(500, b"backend trouble\n")
    if x < 0.3:
        return Response(200, b"partial", abort_after=3)
    if x < 0.4:
        return Response(200, b"slow\n", delay=0.5)
    return Response(200, b"fine\n")


final_checks = []


def process_tree(pid):
    """pid and its descendants: pushpin is a runner with condure, pushpin-proxy and
    pushpin-handler under it, and its footprint is theirs together (gripd is one process)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def fds(pid):
    """Open descriptors of pid's process tree (-1 once pid is gone)."""
    if not os.path.exists(f"/proc/{pid}"):
        return -1
    total = 0
    for p in process_tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def rss_kib(pid):
    """Resident set of pid's process tree in KiB (-1 once pid is gone)."""
    if not os.path.exists(f"/proc/{pid}"):
        return -1
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * 4
        except OSError:
            pass
    return total


def main():
    random.seed(1)
    backend = Backend()
    for ch in range(CH):
        backend.route(f"/stream/{ch}", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", f"s{ch}"),
                                                           ("Content-Type", "text/plain")]))
        backend.route(f"/poll/{ch}", Response(200, b"timeout\n", [("Grip-Hold", "response"),
                                                                  ("Grip-Channel", f"r{ch}"),
                                                                  ("Grip-Timeout", "5"),
                                                                  ("Content-Type", "text/plain")]))
    backend.route("/plain", Response(200, b"ok\n"))
    backend.route("/flaky", flaky)
    proxy = Proxy(routes=f"ws.local test\n* {backend.addr}\n", conf={"runner": {"log_level": "1"}})
    pid = proxy.pid
    stop = threading.Event()
    pub = threading.Thread(target=publisher, args=(proxy, stop), daemon=True)
    pub.start()

    loop = asyncio.new_event_loop()
    astop = asyncio.Event()

    async def clients():
        tasks = [asyncio.ensure_future(stream_client(proxy.port, astop, i)) for i in range(STREAMS)]
        tasks += [asyncio.ensure_future(ws_client(proxy.port, astop, i)) for i in range(WS)]
        tasks += [asyncio.ensure_future(poll_client(proxy.port, astop, i)) for i in range(POLLS)]
        tasks.append(asyncio.ensure_future(requester(proxy.port, astop)))
        while not stop.is_set():
            await asyncio.sleep(0.2)
        # let the last items arrive, then every live subscriber reports
        await asyncio.sleep(1.5)
        astop.set()
        await asyncio.wait(tasks, timeout=40)

    th = threading.Thread(target=lambda: loop.run_until_complete(clients()), daemon=True)
    th.start()

    t0 = time.monotonic()
    rows = []
    died = False
    with open(CSV, "w") as out:
        out.write("seconds,rss_kib,fds,delivered,gaps,polls_ok,polls_bad,requests,conn_errors\n")
        while time.monotonic() - t0 < DURATION:
            time.sleep(SAMPLE_S)
            if not proxy.alive():
                died = True
                break
            row = (round(time.monotonic() - t0), rss_kib(pid), fds(pid), stats.delivered, stats.gaps,
                   stats.polls_ok, stats.polls_bad, sum(stats.req.values()), stats.conn_errors)
            rows.append(row)
            out.write(",".join(map(str, row)) + "\n")
            out.flush()
    stop.set()
    pub.join(10)
    th.join(60)
    stale = [c for c in final_checks
             if c.last is not None and c.last != stats.last_pub.get((c.kind, c.ch))]
    alive = proxy.alive()
    proxy.close()
    backend.stop()

    # summary
    after = [r for r in rows if r[0] >= WARMUP] or rows
    fail = []
    if died or not alive:
        fail.append("the proxy died")
    if stats.gaps:
        fail.append(f"{stats.gaps} gaps or reorders, e.g. {stats.gap_examples}")
    if stale:
        fail.append(f"{len(stale)} live subscribers missed the last items")
    if after:
        r0, r1 = after[0][1], max(r[1] for r in after)
        f0, f1 = min(r[2] for r in after), max(r[2] for r in after)
        # flat: RSS after warm-up grows by at most 10% + 4 MiB; fds stay within the churn's spread
        if r1 > r0 * 1.10 + 4096:
            fail.append(f"RSS grew after warm-up: {r0} -> {r1} KiB")
        print(f"RSS after warm-up: first {r0} KiB, max {r1} KiB, last {after[-1][1]} KiB; "
              f"fds {f0}..{f1} (last {after[-1][2]})")
    print(f"deliveries checked: {stats.delivered}, gaps: {stats.gaps}, live subscribers at the end: "
          f"{len(final_checks)} (stale {len(stale)}); long-polls ok {stats.polls_ok}, bad {stats.polls_bad}; "
          f"connection errors {stats.conn_errors}; publish reconnects {stats.pub_reconnects}")
    print("requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.req.items())))
    print("RESULT: " + ("FAIL: " + "; ".join(fail) if fail else "PASS"))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
