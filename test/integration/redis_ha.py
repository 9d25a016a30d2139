"""Throwaway Redis Sentinel and Redis Cluster sets for the bus tests (Debian's redis-server and
redis-sentinel, on free loopback ports, files under the test's tmp_path)."""

import shutil
import socket
import subprocess
import time

import pytest

from harness.proxy import unique_free_port

REDIS = shutil.which("redis-server")
SENTINEL = shutil.which("redis-sentinel")
REDIS_CLI = shutil.which("redis-cli")


def resp_command(port, *args, timeout=3.0):
    """One command to 127.0.0.1:port; the whole reply decoded (strings, ints, lists, errors as
    RuntimeError)."""
    req = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        req += f"${len(b)}\r\n".encode() + b + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        f = s.makefile("rb")
        return _read(f)


def _read(f):
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
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise RuntimeError(f"bad reply {line!r}")


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except (OSError, RuntimeError):
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


class Server:
    def __init__(self, tmp, name, args=(), binary=None):
        self.port = unique_free_port()
        self.dir = tmp / name
        self.dir.mkdir()
        self.args = list(args)
        self.binary = binary or REDIS
        self.proc = None

    def start(self, conf_text=None):
        if conf_text is not None:
            conf = self.dir / "redis.conf"
            conf.write_text(conf_text)
            cmd = [self.binary, str(conf)]
        else:
            cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.dir)] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: resp_command(self.port, "PING") == "PONG", 10, f"redis on {self.port} did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def cmd(self, *args):
        return resp_command(self.port, *args)


class SentinelSet:
    """1 master + 1 replica + 3 sentinels watching them under `name`."""

    def __init__(self, tmp, name="gripdbus"):
        if not (REDIS and SENTINEL):
            pytest.skip("redis-server and redis-sentinel are needed (apt-get install redis-server redis-sentinel)")
        self.name = name
        self.master = Server(tmp, "master")
        self.master.start()
        self.replica = Server(tmp, "replica", ["--replicaof", "127.0.0.1", ""])
        self.replica.args[-1] = str(self.master.port)
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

    @property
    def url(self):
        return "redis-sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + "/" + self.name

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


def numsub(port, channel) -> int:
    return int(resp_command(port, "PUBSUB", "NUMSUB", channel)[1])


class Cluster:
    """A 3-master Redis Cluster, no replicas (`redis-cli --cluster create`)."""

    def __init__(self, tmp):
        if not (REDIS and REDIS_CLI):
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

    @property
    def url(self):
        return "redis-cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.nodes[:2])

    def node_id(self, s):
        return s.cmd("CLUSTER", "MYID")

    def owner(self, key):
        """The node serving key's slot."""
        slot = self.nodes[0].cmd("CLUSTER", "KEYSLOT", key)
        for s in self.nodes:
            for lo, hi, *_ in s.cmd("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    for n in self.nodes:
                        if n.port == int(_[0][1]):
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


def shard_numsub(port, channel) -> int:
    return int(resp_command(port, "PUBSUB", "SHARDNUMSUB", channel)[1])
