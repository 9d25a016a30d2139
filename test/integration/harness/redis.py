"""Throwaway Redis servers for the bus tests, and the little RESP the tests speak to them (Debian's
redis-server, redis-sentinel and redis-cli, on free loopback ports; files under the test's tmp_path).

    r = Redis(tmp_path)            a redis-server on a free port; r.stop() / r.start() keep the port;
                                   r.pause() / r.resume() stop it with SIGSTOP (a Redis that stalls)
    r.cmd("XLEN", "k")             one command, the reply decoded (str, int, list, None; errors raise)
    resp_command(port, *args)      the same for any port
    SentinelSet(tmp_path)          1 master + 1 replica + 3 sentinels; .url .failover()
    Cluster(tmp_path)              3 masters (sharded pub/sub); .url .owner(key) .move_slot(...)
    with silent_port() as port:    a port whose connections are never completed (connect hangs)

The older launchers (test_bus_redis.Redis, harness/deployment.Redis, redis_ha.py) are thin layers over
this module and keep their names and reply shapes for the tests that import them."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

from .proxy import unique_free_port

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
SENTINEL = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def have(*binaries) -> bool:
    return all(shutil.which(b) or Path(b).exists() for b in binaries)


def encode(*args) -> bytes:
    """A command as a RESP array of bulk strings."""
    req = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        req += f"${len(b)}\r\n".encode() + b + b"\r\n"
    return req


def read_reply(f):
    """One whole reply from a binary file: strings, ints, lists, None; an error raises RuntimeError."""
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode(errors="replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise RuntimeError(f"bad reply {line!r}")


def resp_command(port, *args, timeout=3.0):
    """One command to 127.0.0.1:port; the whole reply decoded (read_reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(encode(*args))
        return read_reply(s.makefile("rb"))


def _ask(port, args, complete, timeout):
    """Sends one command; reads until complete(data) is not None (or the connection ends)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(encode(*args))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return None, data
            data += chunk
            got = complete(data)
            if got is not None:
                return got, data


def raw_reply(port, *args, timeout=3.0) -> bytes:
    """One command; the reply's bytes as they came (at least its first line)."""
    return _ask(port, args, lambda d: d if b"\r\n" in d else None, timeout)[1]


def flat_reply(port, *args, timeout=2.0) -> list:
    """One command; the reply's simple values in order, flattened (bulk strings as bytes, integers
    and status as their bytes, nil as None); an error reply raises OSError."""
    got, _ = _ask(port, args, _parse_flat, timeout)
    if got is None:
        raise OSError("redis closed the connection")
    return got


def _parse_flat(data: bytes):
    """A complete RESP reply as a flat list, or None while incomplete."""
    out, pos, need = [], 0, 1
    while need:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        kind, val = data[pos:pos + 1], data[pos + 1:end]
        pos = end + 2
        need -= 1
        if kind == b"*":
            need += max(int(val), 0)
        elif kind == b"$":
            n = int(val)
            if n >= 0:
                if len(data) < pos + n + 2:
                    return None
                out.append(data[pos:pos + n])
                pos += n + 2
            else:
                out.append(None)
        elif kind == b"-":
            raise OSError("redis: " + val.decode(errors="replace"))
        else:
            out.append(val)
    return out


def wait_until(cond, timeout, what):
    """Polls cond() (OSError and RuntimeError count as not yet) until true, else fails with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except (OSError, RuntimeError):
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def numsub(port, channel) -> int:
    return int(resp_command(port, "PUBSUB", "NUMSUB", channel)[1])


def shard_numsub(port, channel) -> int:
    return int(resp_command(port, "PUBSUB", "SHARDNUMSUB", channel)[1])


class Server:
    """One redis-server (or redis-sentinel) on a free port; stop() and start() keep the port."""

    def __init__(self, tmp: Optional[Path], name: str = "redis", args=(), binary=None):
        self.port = unique_free_port()
        self.dir = Path(tmp) / name if tmp is not None else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.binary = binary or REDIS
        self.proc: Optional[subprocess.Popen] = None
        self.paused = False

    def start(self, conf_text=None, timeout=10.0):
        if conf_text is not None:
            conf = self.dir / "redis.conf"
            conf.write_text(conf_text)
            cmd = [self.binary, str(conf)]
        else:
            cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            if self.dir is not None:
                cmd += ["--dir", str(self.dir)]
            cmd += self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: resp_command(self.port, "PING") == "PONG", timeout,
                       f"redis on {self.port} did not start")
        except AssertionError:
            self.stop()
            raise RuntimeError(f"redis-server on {self.port} did not start") from None

    def stop(self):
        if self.proc:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def pause(self):
        """SIGSTOP: connections stay open, nothing is read or answered (a stalled Redis)."""
        if self.proc and not self.paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.proc and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def cmd(self, *args):
        return resp_command(self.port, *args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


class Redis(Server):
    """A throwaway redis-server, started (skips the test when redis-server is not installed)."""

    def __init__(self, tmp: Optional[Path] = None, name: str = "redis"):
        if not have(REDIS):
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        super().__init__(tmp, name)
        self.start()

    def subscribers(self, channel: str) -> int:
        """Instances subscribed to gripd's Redis channel for `channel` (PUBSUB NUMSUB)."""
        return numsub(self.port, "gripd:" + channel)


class SentinelSet:
    """1 master + 1 replica + 3 sentinels watching them under `name`."""

    def __init__(self, tmp, name="gripdbus"):
        if not have(REDIS, SENTINEL):
            pytest.skip("redis-server and redis-sentinel are needed (apt-get install redis-server redis-sentinel)")
        self.name = name
        self.master = Server(tmp, "master")
        self.master.start()
        self.replica = Server(tmp, "replica", ["--replicaof", "127.0.0.1", str(self.master.port)])
        self.replica.start()
        self.sentinels = []
        for i in range(3):
            s = Server(tmp, f"sentinel{i}", binary=SENTINEL)
            s.start(f"port {s.port}\nbind 127.0.0.1\ndir {s.dir}\n"
                    f"sentinel monitor {name} 127.0.0.1 {self.master.port} 2\n"
                    f"sentinel down-after-milliseconds {name} 2000\n"
                    f"sentinel failover-timeout {name} 10000\n")
            self.sentinels.append(s)

        # Ready for a failover once every sentinel knows the replica (in sync) and the others.
        def ready():
            for s in self.sentinels:
                reps = s.cmd("SENTINEL", "REPLICAS", name)
                if not reps or "master-link-status" not in reps[0]:
                    return False
                info = dict(zip(reps[0][::2], reps[0][1::2]))
                if info["master-link-status"] != "ok" or "s_down" in info["flags"]:
                    return False
                if len(s.cmd("SENTINEL", "SENTINELS", name)) < 2:
                    return False
            return True
        wait_until(ready, 30, "the sentinels did not discover the replica and each other")

    def url_with(self, *extra_first):
        """The bus URL; `extra_first` ("host:port") are listed before the real sentinels."""
        nodes = list(extra_first) + [f"127.0.0.1:{s.port}" for s in self.sentinels]
        return "redis-sentinel://" + ",".join(nodes) + "/" + self.name

    @property
    def url(self):
        return self.url_with()

    def master_port(self):
        return int(self.sentinels[0].cmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1])

    def failover(self):
        """Forces a failover and waits until every sentinel names the replica as the master."""
        old = self.master_port()
        self.sentinels[0].cmd("SENTINEL", "FAILOVER", self.name)
        wait_until(lambda: all(int(s.cmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1]) != old
                               for s in self.sentinels), 30, "the failover did not complete")
        return self.master_port()

    def stop(self):
        for s in self.sentinels + [self.replica, self.master]:
            s.stop()


class Cluster:
    """A 3-master Redis Cluster, no replicas (`redis-cli --cluster create`)."""

    def __init__(self, tmp):
        if not have(REDIS, REDIS_CLI):
            pytest.skip("redis-server and redis-cli are needed (apt-get install redis-server redis-tools)")
        self.nodes = []
        for i in range(3):
            s = Server(tmp, f"node{i}")
            s.args = ["--cluster-enabled", "yes", "--cluster-config-file", str(s.dir / "nodes.conf"),
                      "--cluster-node-timeout", "2000", "--cluster-port", str(unique_free_port())]
            s.start()
            self.nodes.append(s)
        subprocess.run([REDIS_CLI, "--cluster", "create"] + [f"127.0.0.1:{s.port}" for s in self.nodes] +
                       ["--cluster-replicas", "0", "--cluster-yes"], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: all("cluster_state:ok" in s.cmd("CLUSTER", "INFO") for s in self.nodes), 30,
                   "the cluster did not come up")

    def url_with(self, *extra_first):
        """The bus URL (two seeds); `extra_first` ("host:port") are listed before them."""
        return "redis-cluster://" + ",".join(list(extra_first) + [f"127.0.0.1:{s.port}" for s in self.nodes[:2]])

    @property
    def url(self):
        return self.url_with()

    def node_id(self, s):
        return s.cmd("CLUSTER", "MYID")

    def owner(self, key):
        """The node serving key's slot, and the slot."""
        slot = self.nodes[0].cmd("CLUSTER", "KEYSLOT", key)
        for s in self.nodes:
            for lo, hi, *rest in s.cmd("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    for n in self.nodes:
                        if n.port == int(rest[0][1]):
                            return n, slot
        raise AssertionError("slot not served")

    def move_slot(self, slot, src, dst):
        """Moves an empty slot from src to dst (the keyless part of a resharding)."""
        dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(src))
        src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(dst))
        for s in (dst, src) + tuple(n for n in self.nodes if n not in (src, dst)):
            s.cmd("CLUSTER", "SETSLOT", slot, "NODE", self.node_id(dst))

    def stop(self):
        for s in self.nodes:
            s.stop()


@contextlib.contextmanager
def silent_port():
    """A loopback port that never completes a connection: a listening socket whose accept queue
    (backlog 0) is kept full, so the kernel drops further SYNs and a connect hangs as it does to an
    address that drops packets (no root or nftables needed)."""
    lst = socket.socket()
    filler = socket.socket()
    try:
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        filler.connect(lst.getsockname())
        yield lst.getsockname()[1]
    finally:
        filler.close()
        lst.close()
