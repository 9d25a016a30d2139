#!/usr/bin/python3
"""What emitting stats costs the delivery path, measured so that the other processes on the machine
skew it much: the CPU time the proxy's processes spend per delivered item (`perf stat -e
task-clock` on them while one round is published and delivered: the time they ran, not the time
they waited for a core; hardware instruction counters are not available on the VMs we build on),
beside the deliveries per second (which the machine's load does skew: shown with their spread).

Cases run side by side (all proxies up at once, rounds interleaved case by case, ROUNDS times):
`unset` (no stats_spec), `set` (Debian's stats_spec, nobody subscribed to it), `listening` (a SUB
socket reads every stats event). Each round publishes MESSAGES items one by one over the ZeroMQ
PULL input to SUBS held streams (the built-in `test` target). Prints, per case, the median and the
range over the rounds, and the ratios to `unset`. A benchmark program: it never fails on figures.

Environment: GRIPD_TARGET (gripd|pushpin), GRIPD_BIN, SUBS (100), MESSAGES (1000), ROUNDS (5),
CASES ("unset set listening"), WORKERS (gripd's --workers; default: the config's), MEASURE
(`cpu`, the default, or `callgrind`: exact instructions per delivery, immune to the machine's load;
run gripd under callgrind_gripd.sh then: GRIPD_BIN=callgrind_gripd.sh GRIPD_REAL_BIN=... CG_DIR=...,
with GRIPD_TEST_STARTUP_TIMEOUT raised and a smaller MESSAGES: callgrind runs it ~50 times slower)."""

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import zmq  # noqa: E402

from harness.proxy import IS_PUSHPIN, TARGET, Proxy  # noqa: E402
from zmq_publish_bench import Subscribers, item  # noqa: E402

SUBS = int(os.environ.get("SUBS", "100"))
MESSAGES = int(os.environ.get("MESSAGES", "1000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
CASES = os.environ.get("CASES", "unset set listening").split()
WORKERS = os.environ.get("WORKERS", "")
MEASURE = os.environ.get("MEASURE", "cpu")
CG_DIR = os.environ.get("CG_DIR", "/tmp")


class Case:
    def __init__(self, name: str):
        self.name = name
        # message_rate off (Debian sets 2500/s): the engines are measured, not the limiters.
        conf = {"handler.message_rate": None, "handler.message_hwm": None}
        if name == "unset":
            conf["handler.stats_spec"] = None
        args = ["--workers", WORKERS] if WORKERS and not IS_PUSHPIN else []
        self.proxy = Proxy(routes="* test", conf=conf, args=args)
        self.events = [0]
        self.reader = None
        if name == "listening":
            self.reader = zmq.Context.instance().socket(zmq.SUB)
            self.reader.setsockopt(zmq.SUBSCRIBE, b"")
            self.reader.setsockopt(zmq.RCVTIMEO, 200)
            self.reader.connect(f"ipc://{self.proxy.rundir}/pushpin-stats")
            self.stop = False
            threading.Thread(target=self._drain, daemon=True).start()
        self.push = zmq.Context.instance().socket(zmq.PUSH)
        self.push.connect(self.proxy.push_in_spec)
        self.subs = Subscribers(self.proxy.port, "bench", SUBS)
        self.rates = []
        self.cpd = []  # CPU ns per delivery

    def _drain(self):
        while not self.stop:
            try:
                self.reader.recv()
                self.events[0] += 1
            except zmq.Again:
                continue
            except zmq.ZMQError:
                return

    def pids(self) -> list:
        pids = [self.proxy.proc.pid]
        if IS_PUSHPIN:  # the runner's children do the work
            out = subprocess.run(["pgrep", "-P", str(self.proxy.proc.pid)], capture_output=True, text=True)
            pids += [int(p) for p in out.stdout.split()]
        return pids

    def send(self, text: str):
        self.push.send(b"J" + json.dumps(item("bench", text)).encode())

    def warm(self) -> bool:
        self.subs.reset()
        end = time.monotonic() + 20
        while time.monotonic() < end:
            self.send("warm\n")
            if self.subs.wait_all(b"warm\n", 1, 0.2):
                time.sleep(0.3)
                self.subs.wait_all(b"\x00", 0, 0.2)  # drain extra warm-ups
                return True
        return False

    def callgrind_round(self, n: int):
        """Instructions (callgrind's Ir, every thread) spent between zeroing and dumping the counters."""
        marker = f"<r{n}>"
        self.subs.reset()
        pid = self.proxy.proc.pid
        subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=60)
        t0 = time.monotonic()
        for i in range(MESSAGES):
            self.send(f"{'x' * 64}{marker}{i}\n")
        ok = self.subs.wait_all(marker.encode(), MESSAGES, 120)
        elapsed = time.monotonic() - t0
        before = set(os.listdir(CG_DIR))
        subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, timeout=60)
        ir = None
        for name in sorted(set(os.listdir(CG_DIR)) - before):
            if not name.startswith(f"cg.{pid}"):
                continue
            with open(os.path.join(CG_DIR, name)) as f:
                for line in f:
                    if line.startswith("totals:") or line.startswith("summary:"):
                        ir = (ir or 0) + int(line.split()[1])
                        break
        got = sum(self.subs.counts.values())
        self.rates.append(got / elapsed)
        if ir is not None and got:
            self.cpd.append(ir / got)
        if not ok:
            print(f"{TARGET} {self.name}: round {n} INCOMPLETE ({got} of {MESSAGES * SUBS})", flush=True)

    def round(self, n: int):
        if MEASURE == "callgrind":
            return self.callgrind_round(n)
        marker = f"<r{n}>"
        self.subs.reset()
        perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "task-clock", "-p",
                                 ",".join(str(p) for p in self.pids())],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)  # perf attached
        t0 = time.monotonic()
        for i in range(MESSAGES):
            self.send(f"{'x' * 64}{marker}{i}\n")
        ok = self.subs.wait_all(marker.encode(), MESSAGES, 60)
        elapsed = time.monotonic() - t0
        perf.send_signal(signal.SIGINT)
        _, err = perf.communicate(timeout=20)
        cpu_ms = None
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[2].startswith("task-clock"):
                try:
                    cpu_ms = float(f[0])
                except ValueError:
                    pass
        got = sum(self.subs.counts.values())
        self.rates.append(got / elapsed)
        if cpu_ms is not None and got:
            self.cpd.append(cpu_ms * 1e6 / got)
        if not ok:
            print(f"{TARGET} {self.name}: round {n} INCOMPLETE ({got} of {MESSAGES * SUBS})", flush=True)

    def close(self):
        if self.reader is not None:
            self.stop = True
            time.sleep(0.3)
            self.reader.close()
        self.push.close()
        self.subs.close()
        self.proxy.stop()


def spread(v: list) -> str:
    if not v:
        return "n/a"
    return f"{statistics.median(v):10.0f} (range {min(v):.0f}-{max(v):.0f})"


def main():
    cases = [Case(n) for n in CASES]
    try:
        time.sleep(1.0)
        for c in cases:
            if not c.warm():
                print(f"{TARGET} {c.name}: warm-up never reached every subscriber")
                return
        for r in range(ROUNDS):
            for c in (cases if r % 2 == 0 else list(reversed(cases))):
                c.round(r)
        base = next((c for c in cases if c.name == "unset"), None)
        for c in cases:
            line = (f"{TARGET:8s} stats={c.name:9s} {SUBS} subs x {MESSAGES} msgs x {ROUNDS} rounds: "
                    f"{'instructions' if MEASURE == 'callgrind' else 'CPU ns'}/delivery {spread(c.cpd)}; "
                    f"deliveries/s {spread(c.rates)}")
            if base is not None and c is not base and c.cpd and base.cpd:
                line += (f"; vs unset: {'instructions' if MEASURE == 'callgrind' else 'CPU'} x{statistics.median(c.cpd) / statistics.median(base.cpd):.3f}"
                         f", rate x{statistics.median(c.rates) / statistics.median(base.rates):.2f}")
            if c.reader is not None:
                line += f"; stats events read {c.events[0]}"
            print(line, flush=True)
    finally:
        for c in cases:
            c.close()


if __name__ == "__main__":
    main()
