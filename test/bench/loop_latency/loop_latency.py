"""Loop latency under one flooding connection (see run.sh).

Two probes run during each scenario:
  control  a keep-alive `GET /` to the control API every 10 ms: request -> response time;
  deliver  a stream subscriber on channel "probe", published to every 20 ms from another control
           connection: publish sent -> item received by the subscriber (whenever the publish is
           answered);
  answer   the same publishes: publish sent -> its answer (a server may hold a publisher back
           while its deliveries catch up).
Scenarios (one flooder each, back to back, `SECONDS` each):
  idle      nothing else;
  publish   publishes of ITEMS small items each to channel "flood", with FLOOD_SUBS stream
            subscribers reading everything (ITEMS x FLOOD_SUBS deliveries per publish);
  wsframes  one WebSocket client (route to the `test` target) sending empty text frames as fast
            as it can;
  download  a client fetching a BIG-byte backend answer, again and again, reading as fast as it
            can.
The flooder and the probes run in child processes of their own, apart from each other and from the
test backend: no GIL is shared, so the probes time the server, not this program.
Prints one line per scenario and probe: p50, p99, max (ms) and the sample count. The target is
the integration harness's (GRIPD_TARGET=gripd|pushpin).
"""

import multiprocessing
import os
import select
import selectors
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))

from harness.backend import Backend, Response  # noqa: E402
from harness.proxy import Proxy, TARGET, free_port  # noqa: E402

SECONDS = float(os.environ.get("SECONDS_PER_SCENARIO", "5"))
FLOOD_SUBS = int(os.environ.get("FLOOD_SUBS", "200"))
ITEMS = int(os.environ.get("ITEMS", "5000"))
BIG = int(os.environ.get("BIG", str(64 * 1024 * 1024)))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s, buf=b""):
    """One HTTP/1.1 response with Content-Length on a keep-alive socket; returns (body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed")
        rest += d
    return rest[:n], rest[n:]


def publish_req(items_json: bytes) -> bytes:
    body = b'{"items":[' + items_json + b"]}"
    return (b"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


class Readers(threading.Thread):
    """Reads (and drops) everything on many sockets."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.stop = False
        self.bytes = 0
        self.start()

    def add(self, s):
        s.setblocking(False)
        with self.lock:
            self.sel.register(s, selectors.EVENT_READ)

    def run(self):
        while not self.stop:
            with self.lock:
                if not self.sel.get_map():
                    events = []
                else:
                    events = self.sel.select(0.05)
            if not events:
                time.sleep(0.01)
            for key, _ in events:
                try:
                    d = key.fileobj.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                if not d:
                    with self.lock:
                        self.sel.unregister(key.fileobj)
                    continue
                self.bytes += len(d)


def control_probe(proxy, stop, out):
    """A new connection per request (pushpin's control API closes each one): connect included."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            s = connect(proxy.publish_port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            read_response(s)
            s.close()
        except OSError as e:
            print(f"control probe: {e!r}", file=sys.stderr, flush=True)
            time.sleep(0.1)
            continue
        out.append((time.monotonic() - t0) * 1000)
        time.sleep(0.01)


class Publisher:
    """POSTs publishes, reconnecting whenever the server closed the connection."""

    def __init__(self, port):
        self.port, self.s, self.rest = port, None, b""

    def _closed_by_server(self):
        """Whether the server closed the idle keep-alive connection (pushpin does, now and then)."""
        readable, _, _ = select.select([self.s], [], [], 0)
        if not readable:
            return False
        try:
            return self.s.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def send(self, req):
        """Sends without waiting for the answer (answer() reads it); False if the connection failed."""
        if self.s is not None and not self.rest and self._closed_by_server():
            self.s.close()
            self.s = None
        if self.s is None:
            self.s, self.rest = connect(self.port), b""
            self.s.settimeout(120)
        try:
            self.s.sendall(req)
            return True
        except (ConnectionError, OSError):
            self.s.close()
            self.s = None
            return False

    def answer(self):
        _, self.rest = read_response(self.s, self.rest)

    def publish(self, req):
        for _ in range(2):
            if self.s is None:
                self.s, self.rest = connect(self.port), b""
                self.s.settimeout(120)
            try:
                self.s.sendall(req)
                _, self.rest = read_response(self.s, self.rest)
                return
            except (ConnectionError, OSError):
                self.s.close()
                self.s = None
        raise ConnectionError("publish failed twice")

    def close(self):
        if self.s:
            self.s.close()


def delivery_probe(proxy, stop, out, answers, ready):
    try:
        delivery_probe_run(proxy, stop, out, answers, ready)
    except Exception as e:  # noqa: BLE001 - reported, the scenario goes on
        print(f"delivery probe: {e!r}", file=sys.stderr, flush=True)


def delivery_probe_run(proxy, stop, out, answers, ready):
    sub = connect(proxy.port)
    sub.sendall(b"GET /probe HTTP/1.1\r\nHost: example.com\r\n\r\n")
    pub = Publisher(proxy.publish_port)
    sent = {}
    buf = b""
    # wait until subscribed: publish a marker until it arrives
    sub.settimeout(0.2)
    for _ in range(100):
        pub.publish(publish_req(b'{"channel":"probe","formats":{"http-stream":{"content":"sync\\n"}}}'))
        try:
            buf += sub.recv(65536)
        except socket.timeout:
            pass
        if b"sync\n" in buf:
            break
    sub.settimeout(5)
    ready.set()
    seq = 0
    while not stop.is_set():
        seq += 1
        req = publish_req(b'{"channel":"probe","formats":{"http-stream":{"content":"p%d\\n"}}}' % seq)
        sent[seq] = time.monotonic()
        if not pub.send(req):
            pub.publish(req)  # reconnected: this one is timed with its answer
        while b"p%d\n" % seq not in buf:
            try:
                d = sub.recv(65536)
            except socket.timeout:
                break
            if not d:
                raise ConnectionError("probe subscriber closed")
            buf += d
        out.append((time.monotonic() - sent[seq]) * 1000)
        if pub.s is not None:
            try:
                pub.answer()
                answers.append((time.monotonic() - sent[seq]) * 1000)
            except (ConnectionError, OSError):  # closed after the item went out: no answer time
                pub.s.close()
                pub.s = None
        buf = buf[-64:]
        time.sleep(0.02)
    sub.close()
    pub.close()


def flood_publish(proxy, stop):
    readers = Readers()
    for _ in range(FLOOD_SUBS):
        s = connect(proxy.port)
        s.sendall(b"GET /flood HTTP/1.1\r\nHost: example.com\r\n\r\n")
        readers.add(s)
    time.sleep(1.0)
    item = b'{"channel":"flood","formats":{"http-stream":{"content":"0123456789abcdef\\n"}}}'
    req = publish_req(b",".join([item] * ITEMS))
    pub = Publisher(proxy.publish_port)
    n = 0
    while not stop.is_set():
        pub.publish(req)
        n += 1
    pub.close()
    readers.stop = True
    return f"{n} publishes x {ITEMS} items x {FLOOD_SUBS} subscribers, {readers.bytes >> 20} MiB delivered"


def flood_wsframes(proxy, stop):
    s = connect(proxy.port)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: ws.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    if b" 101 " not in head.split(b"\r\n")[0]:
        return "no WebSocket: " + head.split(b"\r\n")[0].decode()
    readers = Readers()
    r = s.dup()
    readers.add(r)
    frame = b"\x81\x80\x00\x00\x00\x00"  # FIN text, masked, empty
    chunk = frame * 10000
    s.settimeout(1)
    sent = 0
    while not stop.is_set():
        try:
            s.sendall(chunk)
            sent += 10000
        except socket.timeout:
            continue
        except OSError:
            break
    readers.stop = True
    s.close()
    return f"{sent} empty frames sent"


def flood_download(proxy, stop):
    n = 0
    total = 0
    while not stop.is_set():
        s = connect(proxy.port)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            total += len(d)
        s.close()
        n += 1
    return f"{n} downloads, {total >> 20} MiB"


def run_flood(flood, proxy, stop, results):
    """In the child process: the flood until `stop`, then its note. FLOOD_NICE (default 0) lowers its
    priority: on a machine with fewer cores than busy processes, the flooder's own reading otherwise
    preempts the server, and the probes time the CPU scheduler rather than the server's loop."""
    os.nice(int(os.environ.get("FLOOD_NICE", "0")))
    try:
        results.put(flood(proxy, stop))
    except Exception as e:  # the note says what went wrong; the probes' figures still print
        results.put(f"flood failed: {e!r}")


def run_probes(proxy, seconds, results):
    """In the probe process: both probes for `seconds` after the probe subscriber is subscribed."""
    stop = threading.Event()
    ready = threading.Event()
    ctl, dlv, ans = [], [], []
    probes = [threading.Thread(target=control_probe, args=(proxy, stop, ctl), daemon=True),
              threading.Thread(target=delivery_probe, args=(proxy, stop, dlv, ans, ready), daemon=True)]
    for t in probes:
        t.start()
    ready.wait(30)
    del ctl[:]
    time.sleep(seconds)
    stop.set()
    for t in probes:
        t.join(60)
    results.put((ctl, dlv, ans))


def turn_histogram(port):
    """gripd's loop turn histogram ({le: cumulative count}) and its recent longest turn (s)."""
    if not port:
        return {}, 0.0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
    except OSError:
        return {}, 0.0
    buckets, longest = {}, 0.0
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("gripd_loop_turn_seconds_bucket{le=\""):
            le = line.split('"')[1]
            buckets[float("inf") if le == "+Inf" else float(le)] = int(line.split()[-1])
        elif line.startswith("gripd_loop_turn_max_seconds{"):
            longest = max(longest, float(line.split()[-1]))
    return buckets, longest


def turn_line(before, after, longest):
    """Turn-time quantiles as bucket bounds (ms) from two histogram scrapes."""
    delta = sorted((le, after.get(le, 0) - before.get(le, 0)) for le in after)
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return "no turns"

    def q(p):
        for le, c in delta:
            if c >= total * p:
                return "<=%g" % (le * 1e3) if le != float("inf") else ">1000"
        return "?"
    return f"loop turns p50 {q(0.5)} p99 {q(0.99)} p99.9 {q(0.999)} ms, longest {longest * 1e3:.2f} ms, n={total}"


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def cpus(var):
    v = os.environ.get(var, "")
    return {int(c) for c in v.split(",")} if v else None


def main():
    # SERVER_CPUS / CLIENT_CPUS (e.g. 0 and 1): the server on its own CPUs and every client of this
    # benchmark (backend, probes, flooder) on the others, as if they were separate machines; without
    # them, everything shares every CPU and a probe's latency includes the flooder's CPU time.
    server_cpus, client_cpus = cpus("SERVER_CPUS"), cpus("CLIENT_CPUS")
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # threads and processes started from here inherit it
    backend = Backend()
    big = b"x" * BIG
    backend.route("/probe", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "probe"),
                                                ("Content-Type", "text/plain")]))
    backend.route("/flood", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "flood"),
                                                ("Content-Type", "text/plain")]))
    backend.route("/big", Response(200, big))
    routes = f"ws.local test\n* {backend.addr}\n"
    # No message_rate / message_hwm (Debian's pushpin.conf sets message_rate=2500): both servers'
    # limiters off, so the flood reaches the engine instead of waiting in a rate limiter.
    # gripd: its Prometheus port, for the loop turn times (what the server's own loops did, apart
    # from the scheduling delays the probes also see).
    metrics_port = free_port() if TARGET == "gripd" else 0
    conf = {"runner": {"log_level": "1"},
            "handler": {"push_in_http_max_body_size": "2000000", "message_rate": None, "message_hwm": None,
                        "prometheus_port": str(metrics_port) if metrics_port else None}}
    if server_cpus:
        os.sched_setaffinity(0, server_cpus)  # the proxy (and pushpin's processes) inherit it
    proxy = Proxy(routes=routes, conf=conf)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    try:
        scenarios = [("idle", None), ("publish", flood_publish), ("wsframes", flood_wsframes),
                     ("download", flood_download)]
        only = os.environ.get("SCENARIOS")
        for name, flood in scenarios:
            if only and name not in only.split():
                continue
            ctl, dlv, ans, note = [], [], [], [""]
            fl = None
            mp = multiprocessing.get_context("fork")
            flood_stop, flood_results = mp.Event(), mp.Queue()
            if flood:
                fl = mp.Process(target=run_flood, args=(flood, proxy, flood_stop, flood_results), daemon=True)
                fl.start()
                time.sleep(1.5)  # let it get going
            turns_before, _ = turn_histogram(metrics_port)
            probe_results = mp.Queue()
            pr = mp.Process(target=run_probes, args=(proxy, SECONDS, probe_results), daemon=True)
            pr.start()
            try:
                ctl, dlv, ans = probe_results.get(timeout=SECONDS + 150)
            except Exception:
                print("probes did not report", file=sys.stderr, flush=True)
            pr.join(10)
            turns_after, longest = turn_histogram(metrics_port)
            flood_stop.set()
            if fl:
                try:
                    note[0] = flood_results.get(timeout=120)
                except Exception:
                    note[0] = "flood did not report"
                fl.join(10)
                if fl.is_alive():
                    fl.kill()
            alive = proxy.alive()
            for probe, v in (("control", ctl), ("deliver", dlv), ("answer", ans)):
                print(f"{TARGET:8s} {name:9s} {probe:8s} p50 {pct(v, 0.5):8.2f}  p99 {pct(v, 0.99):8.2f}  "
                      f"max {max(v) if v else float('nan'):8.2f} ms  n={len(v)}", flush=True)
            print(f"{TARGET:8s} {name:9s} ({note[0]}){'' if alive else ' PROXY DIED'}", flush=True)
            if metrics_port:
                print(f"{TARGET:8s} {name:9s} {turn_line(turns_before, turns_after, longest)}", flush=True)
            time.sleep(1)
    finally:
        proxy.close()
        proxy.cleanup()
        backend.stop()


if __name__ == "__main__":
    main()
