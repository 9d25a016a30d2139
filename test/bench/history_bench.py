#!/usr/bin/python3
"""History benchmarks (README "History and resume"), against a gripd it starts on loopback:
  1. memory per history item: RSS growth / items kept, after publishing N items with ids;
  2. publish throughput with history off, on, and on with assigned ids (items/s through POST /publish/,
     500 items per request over --conns keep-alive connections, 16 by default: with 4, how the
     kernel happened to spread them over gripd's 2 workers moved the figures by up to 2x from run to
     run), in-process and on the Redis bus (Streams), with gripd's CPU time per item;
  3. replay: C SSE clients reconnect at once with Last-Event-ID = the first of H kept items; time
     until the last one has all H-1 items.
Usage: history_bench.py [--gripd build/gripd] [--items 20000] [--redis-items 20000] [--no-redis]
                        [--clients 200] [--replay 1000] [--nchan] [--conns 16] [--rounds 2]
Every wait is bounded; run it briefly, under nice."""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Gripd:
    def __init__(self, binary, history_size, backend_port, bus="", assign=False):
        self.dir = tempfile.mkdtemp(prefix="hbench-")
        self.port, self.ctl = free_port(), free_port()
        conf = os.path.join(self.dir, "gripd.conf")
        with open(conf, "w") as f:
            f.write(f"[runner]\nhttp_port={self.port}\nrundir={self.dir}\nlogdir={self.dir}\n"
                    f"[handler]\npush_in_http_addr=127.0.0.1\npush_in_http_port={self.ctl}\nmessage_rate=0\n"
                    f"[gripd]\nworkers=2\nhistory_size={history_size}\nhistory_channel_bytes=268435456\n"
                    f"history_max_bytes=1073741824\n"
                    + (f"bus={bus}\n" if bus else "") + ("history_assign_ids=true\n" if assign else ""))
        self.proc = subprocess.Popen([binary, "--config", conf, "-m", "--loglevel", "1",
                                      "--route", f"* 127.0.0.1:{backend_port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ctl), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gripd did not start")

    def publish(self, items):
        req = urllib.request.Request(f"http://127.0.0.1:{self.ctl}/publish/", data=json.dumps({"items": items}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def sse_backend():
    """A tiny backend: every request is held as an SSE stream on channel `feed`."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    body = b":ok\n\n"
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nGrip-Hold: stream\r\nGrip-Channel: feed\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def serve():
        async def handle(r, w):
            try:
                while True:
                    head = await r.readuntil(b"\r\n\r\n")
                    if not head:
                        break
                    w.write(resp)
                    await w.drain()
            except Exception:
                pass
            w.close()
        server = await asyncio.start_server(handle, sock=srv)
        await server.serve_forever()

    import threading
    t = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    t.start()
    return srv.getsockname()[1]


def items(start, n, size=100):
    pad = "x" * max(0, size - 20)
    return [{"channel": "feed", "id": str(i), "formats": {"http-stream": {"content": f"id: {i}\ndata: {pad}\n\n"}}}
            for i in range(start, start + n)]


def fast_publish(port, bodies, conns):
    """POSTs the pre-encoded bodies over `conns` keep-alive connections at once (threads; each
    request carries many items, so gripd's parsing and delivery, not Python, is the bound).
    Returns the seconds from the first request to the last answer."""
    import threading
    share = [bodies[i::conns] for i in range(conns)]
    errors = []

    def run(mine):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        try:
            for body in mine:
                s.sendall(b"POST /publish/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                status = f.readline()
                length = 0
                while True:
                    line = f.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                f.read(length)
                if b" 200 " not in status:
                    errors.append(status)
        finally:
            s.close()
    threads = [threading.Thread(target=run, args=(m,)) for m in share]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise RuntimeError(f"publish failed: {errors[:3]}")
    return time.monotonic() - t0


def publish_bodies(total, per_request, channels, with_ids=True):
    out = []
    for s in range(0, total, per_request):
        batch = items(s, min(per_request, total - s))
        for k, it in enumerate(batch):
            it["channel"] = f"feed{(s + k) % channels}"
            if not with_ids:
                del it["id"]
        out.append(json.dumps({"items": batch}).encode())
    return out


def bench_publish(binary, backend, history, total, bus="", assign=False, per_request=500, conns=4,
                  channels=8, with_cpu=False):
    g = Gripd(binary, history, backend, bus=bus, assign=assign)
    try:
        bodies = publish_bodies(total, per_request, channels, with_ids=not assign)
        fast_publish(g.ctl, bodies[:2], 2)  # warm up (connections, first allocations)
        rss0 = rss_kib(g.proc.pid)
        c0 = cpu_seconds(g.proc.pid)
        dt = fast_publish(g.ctl, bodies, conns)
        cpu = cpu_seconds(g.proc.pid) - c0
        time.sleep(0.3)
        rss1 = rss_kib(g.proc.pid)
        if with_cpu:
            return total / dt, (rss1 - rss0) * 1024 / total, cpu
        return total / dt, (rss1 - rss0) * 1024 / total
    finally:
        g.stop()


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def flush(self):
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(100)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


async def replay_client(port, last, want, deadline):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Last-Event-ID: {last}\r\n" if last else ""
    w.write(f"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    await w.drain()
    seen = 0
    buf = b""
    while seen < want:
        chunk = await asyncio.wait_for(r.read(65536), timeout=max(0.1, deadline - time.monotonic()))
        if not chunk:
            break
        buf += chunk
        seen = buf.count(b"data: ")
    w.close()
    return time.monotonic(), seen


def bench_replay(binary, backend, clients, kept):
    g = Gripd(binary, kept, backend)
    try:
        for s in range(0, kept, 100):
            g.publish(items(s, min(100, kept - s)))

        async def run():
            deadline = time.monotonic() + 120
            t0 = time.monotonic()
            res = await asyncio.gather(*[replay_client(g.port, "0", kept - 1, deadline) for _ in range(clients)])
            return max(t for t, _ in res) - t0, min(n for _, n in res)
        return asyncio.run(run())
    finally:
        g.stop()


class Nchan:
    """nginx with Nchan's message buffer (Debian's libnginx-mod-nchan), for the same replay."""

    def __init__(self, kept):
        self.dir = tempfile.mkdtemp(prefix="hbench-nchan-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off; worker_processes 2; pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;
events {{ worker_connections 8192; }}
http {{ access_log off; client_body_temp_path {self.dir}; proxy_temp_path {self.dir};
  fastcgi_temp_path {self.dir}; uwsgi_temp_path {self.dir}; scgi_temp_path {self.dir};
  nchan_max_reserved_memory 256M;
  server {{ listen 127.0.0.1:{self.port};
    location = /pub {{ nchan_publisher; nchan_channel_id feed; nchan_message_buffer_length {kept};
      nchan_message_timeout 1h; }}
    location = /events {{ nchan_subscriber eventsource; nchan_channel_id feed;
      nchan_subscriber_first_message oldest; nchan_message_buffer_length {kept}; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def publish_one(self, i):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/pub", data=f"item {i}".encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status in (200, 201, 202)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def bench_nchan(clients, kept):
    n = Nchan(kept)
    try:
        t0 = time.monotonic()
        for i in range(kept):
            n.publish_one(i)
        rate = kept / (time.monotonic() - t0)

        async def run():
            deadline = time.monotonic() + 120
            t0 = time.monotonic()
            res = await asyncio.gather(*[replay_client(n.port, "", kept - 1, deadline) for _ in range(clients)])
            return max(t for t, _ in res) - t0, min(c for _, c in res)
        took, least = asyncio.run(run())
        return rate, took, least
    finally:
        n.stop()


def median(values):
    v = sorted(values)
    return v[len(v) // 2]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_redis(a, backend):
    """Publish throughput on the Redis bus with history off, on and on with assigned ids, with the
    CPU time redis-server and gripd spent per item (where the time goes); alternating, medians."""
    r = RedisServer()
    try:
        rruns = {}
        for rnd in range(a.rounds):
            for name, hist, assign in (("off", 0, False), ("on", 1000, False), ("on+assign", 1000, True)):
                r.flush()
                c0 = cpu_seconds(r.proc.pid)
                rate, _, gcpu = bench_publish(a.gripd, backend, hist, a.redis_items, bus=f"redis://127.0.0.1:{r.port}",
                                              assign=assign, with_cpu=True, conns=a.conns)
                rcpu = cpu_seconds(r.proc.pid) - c0
                rruns.setdefault(name, []).append((rate, rcpu, gcpu))

        def fig(name, k):
            return median(x[k] for x in rruns[name])
        print(f"Redis bus publish ({a.redis_items} items, 500 per request, {a.conns} connections, 8 channels), "
              f"median of {a.rounds}:")
        for name in ("off", "on", "on+assign"):
            rate = fig(name, 0)
            print(f"  history {name:10s} {rate:>10,.0f} items/s ({100 * rate / fig('off', 0):.0f}% of off); CPU us "
                  f"per item: redis-server {1e6 * fig(name, 1) / a.redis_items:.2f}, gripd "
                  f"{1e6 * fig(name, 2) / a.redis_items:.2f}")
    finally:
        r.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gripd", default=os.path.join(os.path.dirname(__file__), "../../build/gripd"))
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--replay", type=int, default=1000)
    ap.add_argument("--redis-items", type=int, default=20000)
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--redis-only", action="store_true", help="only the Redis bus publish figures")
    ap.add_argument("--nchan", action="store_true", help="also run the replay against nginx + Nchan")
    ap.add_argument("--conns", type=int, default=16, help="keep-alive publish connections")
    ap.add_argument("--rounds", type=int, default=2, help="in-process rounds (each setting, alternating)")
    a = ap.parse_args()
    backend = sse_backend()
    # Side by side, alternating off/on, the median of each (the machine is shared).
    runs = {}
    for rnd in range(0 if a.redis_only else a.rounds):
        # "on": 1,000 items per channel, full after the first 8,000 (the steady state: each item kept
        # drops the oldest); "growing": every item kept (memory grows all along: page faults).
        for name, hist, assign in (("off", 0, False), ("on", 1000, False), ("on+assign", 1000, True),
                                   ("growing", a.items, False)):
            rate, mem, cpu = bench_publish(a.gripd, backend, hist, a.items, assign=assign, conns=a.conns,
                                           with_cpu=True)
            runs.setdefault(name, []).append((rate, mem, 1e6 * cpu / a.items))
    if a.redis_only:
        bench_redis(a, backend)
        return
    def fig(name, k):
        return median(r[k] for r in runs[name])
    off_rate, off_mem = fig("off", 0), min(r[1] for r in runs["off"])
    print(f"in-process publish ({a.items} items, 500 per request, {a.conns} connections, 8 channels), "
          f"median of {a.rounds}:")
    for name in ("off", "on", "on+assign", "growing"):
        rate = fig(name, 0)
        print(f"  history {name:10s} {rate:>10,.0f} items/s ({100 * rate / off_rate:.0f}% of off), gripd CPU "
              f"{fig(name, 2):.2f} us/item, RSS growth {min(r[1] for r in runs[name]):.0f} B/item")
    print(f"  memory per kept item: {min(r[1] for r in runs['growing']) - off_mem:.0f} B (100-byte content)")
    if not a.no_redis:
        bench_redis(a, backend)
    took, least = bench_replay(a.gripd, backend, a.clients, a.replay)
    print(f"replay of {a.replay - 1} items to {a.clients} clients reconnecting at once: last done after "
          f"{took * 1000:.0f} ms (fewest items a client got: {least})")
    if a.nchan:
        g = Gripd(a.gripd, a.replay, backend)
        try:
            t0 = time.monotonic()
            for i in range(a.replay):
                g.publish(items(i, 1))
            one = a.replay / (time.monotonic() - t0)
        finally:
            g.stop()
        rate, took, least = bench_nchan(a.clients, a.replay)
        print(f"one item per publish request: gripd {one:,.0f}/s, nchan {rate:,.0f}/s")
        print(f"nchan: {a.replay - 1}+ buffered items to {a.clients} clients at once (first_message oldest): "
              f"last done after {took * 1000:.0f} ms (fewest items a client got: {least})")


if __name__ == "__main__":
    main()
