#!/usr/bin/python3
"""Bus throughput benchmark (README "Many instances"): three gripd instances on 127.0.0.2, .3 and .4
joined by the Redis bus, in one run for each bus kind: a single redis-server, and Redis Sentinel
(1 master + 1 replica + 3 sentinels; the publishes go through the master gripd asks the sentinels
for), and a three-master Redis Cluster (sharded pub/sub, no replicas).

SSE subscribers (--subs per instance, spread over --channels channels) are connected through each
instance; --publishers threads post batches of --batch items, publisher p to instance p % 3, until
--items items are published. Figures: publishes/s (items accepted by the control APIs) and
deliveries/s (items received by subscribers, until the last subscriber has its last item), with a
check that every subscriber got every item of its channel exactly once and each publisher's items
in order. The client side (Python) is usually the bottleneck on a small machine: compare the bus
kinds with each other, within one run.
Usage: bus_bench.py [--gripd build/gripd] [--subs 100] [--channels 10] [--items 3000]"""

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(host, port, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def redis_cmd(port, *args):
    req = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(str(a).encode())}\r\n{a}\r\n".encode() for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(req)
        return s.recv(65536)


class Procs:
    def __init__(self):
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="busbench-")

    def start(self, cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def redis(self, *extra):
        port = free_port()
        d = tempfile.mkdtemp(dir=self.dir)
        self.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                    "no", "--dir", d, *extra])
        wait_port("127.0.0.1", port, "redis-server")
        return port

    def sentinel(self, master_port, name):
        port = free_port()
        d = tempfile.mkdtemp(dir=self.dir)
        conf = os.path.join(d, "s.conf")
        with open(conf, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\nsentinel monitor {name} 127.0.0.1 {master_port} 2\n"
                    f"sentinel down-after-milliseconds {name} 2000\n")
        self.start(["redis-sentinel", conf])
        wait_port("127.0.0.1", port, "redis-sentinel")
        return port

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_gripd(procs, binary, host, bus):
    port, ctl = free_port(host), free_port(host)
    d = tempfile.mkdtemp(dir=procs.dir)
    conf = os.path.join(d, "gripd.conf")
    with open(conf, "w") as f:
        f.write(f"[runner]\nhttp_port={host}:{port}\nrundir={d}\nlogdir={d}\n"
                f"[handler]\npush_in_http_addr={host}\npush_in_http_port={ctl}\nmessage_rate=0\n"
                f"[gripd]\nworkers=1\nbus={bus}\n")
    procs.start([binary, "--config", conf, "--loglevel", "1", "--route", "* test"])
    wait_port(host, ctl, "gripd")
    wait_port(host, port, "gripd")
    return port, ctl


ITEM = re.compile(rb"#(\d+)\.(\d+)\.(\d+)\n")


async def subscriber(host, port, channel, want, results, opened):
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET /stream?channel={channel} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    buf = b""
    while b"[stream opened]" not in buf:
        buf += await r.read(65536)
    opened.release()
    count = 0
    while count < want:
        chunk = await asyncio.wait_for(r.read(65536), 60)
        if not chunk:
            break
        buf += chunk
        count = buf.count(b"#")
    results.append((channel, buf, time.monotonic()))
    w.close()


def publisher(ctl_host, ctl_port, p, items, channels, batch, accepted):
    conn = http.client.HTTPConnection(ctl_host, ctl_port, timeout=30)
    seq = 0
    while seq < len(items):
        chunk = items[seq:seq + batch]
        body = json.dumps({"items": [
            {"channel": f"ch{c}", "formats": {"http-stream": {"content": f"#{p}.{c}.{s}\n"}}} for s, c in chunk]})
        conn.request("POST", "/publish/", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            seq += len(chunk)
            accepted[p] += len(chunk)
        else:
            time.sleep(0.05)
    conn.close()


def run(args, kind, bus, gripds):
    # items: publisher p sends (s, channel) pairs, s its own sequence
    per_pub = args.items // args.publishers
    plan = {p: [(s, (s + p) % args.channels) for s in range(per_pub)] for p in range(args.publishers)}
    want = {c: sum(1 for p in plan for s, ch in plan[p] if ch == c) for c in range(args.channels)}
    results = []

    async def subs():
        opened = asyncio.Semaphore(0)
        tasks = []
        for i, (port, _) in enumerate(gripds):
            for j in range(args.subs):
                c = j % args.channels
                tasks.append(asyncio.ensure_future(subscriber(HOSTS[i], port, f"ch{c}", want[c], results, opened)))
        for _ in tasks:
            await asyncio.wait_for(opened.acquire(), 30)
        await asyncio.sleep(1.0)  # the SUBSCRIBEs reach Redis
        return tasks

    loop = asyncio.new_event_loop()
    tasks = loop.run_until_complete(subs())
    accepted = {p: 0 for p in plan}
    threads = [threading.Thread(target=publisher, args=(HOSTS[p % 3], gripds[p % 3][1], p, plan[p], args.channels,
                                                        args.batch, accepted)) for p in plan]
    t0 = time.monotonic()
    for t in threads:
        t.start()

    async def finish():
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    pub_end = None

    def watch():
        nonlocal pub_end
        for t in threads:
            t.join()
        pub_end = time.monotonic()
    wt = threading.Thread(target=watch)
    wt.start()
    loop.run_until_complete(finish())
    wt.join()
    t_last = max(r[2] for r in results)
    loop.close()
    # correctness: each subscriber has each item of its channel once, each publisher's in order
    bad = 0
    deliveries = 0
    for channel, buf, _ in results:
        got = [(int(a), int(b), int(c)) for a, b, c in ITEM.findall(buf)]
        deliveries += len(got)
        c = int(channel[2:])
        ok = len(got) == len(set(got)) == want[c]
        for p in plan:
            seqs = [s for (pp, cc, s) in got if pp == p]
            ok = ok and seqs == sorted(seqs) and len(seqs) == sum(1 for s, ch in plan[p] if ch == c)
        bad += not ok
    total = sum(accepted.values())
    print(f"{kind:9s} items {total:6d}  publishes/s {total / (pub_end - t0):9.0f}  "
          f"deliveries {deliveries:7d}  deliveries/s {deliveries / (t_last - t0):9.0f}  "
          f"subscribers wrong {bad}/{len(results)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gripd", default="build/gripd")
    ap.add_argument("--subs", type=int, default=100)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args()
    for kind in ("single", "sentinel", "cluster"):
        procs = Procs()
        try:
            if kind == "single":
                bus = f"redis://127.0.0.1:{procs.redis()}"
            elif kind == "sentinel":
                m = procs.redis()
                procs.redis("--replicaof", "127.0.0.1", str(m))
                ss = [procs.sentinel(m, "benchbus") for _ in range(3)]
                bus = "redis-sentinel://" + ",".join(f"127.0.0.1:{s}" for s in ss) + "/benchbus"
            else:
                ports = [procs.redis("--cluster-enabled", "yes", "--cluster-config-file", f"nodes{i}.conf",
                                     "--cluster-port", str(free_port())) for i in range(3)]
                subprocess.run(["redis-cli", "--cluster", "create"] + [f"127.0.0.1:{p}" for p in ports] +
                               ["--cluster-replicas", "0", "--cluster-yes"], check=True, timeout=60,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 30
                while not all(b"cluster_state:ok" in redis_cmd(p, "CLUSTER", "INFO") for p in ports):
                    assert time.monotonic() < deadline, "the cluster did not come up"
                    time.sleep(0.1)
                bus = "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
            gripds = [start_gripd(procs, args.gripd, h, bus) for h in HOSTS]
            time.sleep(1.0)
            run(args, kind, bus, gripds)
        finally:
            procs.stop()


if __name__ == "__main__":
    main()
