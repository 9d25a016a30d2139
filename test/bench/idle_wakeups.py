#!/usr/bin/env python3
"""How often an idle proxy wakes up: the epoll_wait calls of every thread over SECONDS (10) with
nothing to do (no client, no publish), counted with `strace -c -f`, with `stats_spec` unset and set
(Debian's pushpin.conf sets it). Environment: GRIPD_TARGET (gripd/pushpin), GRIPD_BIN, SECONDS,
WORKERS (2, gripd's --workers). Prints one line per case: wakeups per second."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness.proxy import IS_PUSHPIN, Proxy  # noqa: E402

SECONDS = float(os.environ.get("SECONDS_IDLE", os.environ.get("SECONDS", "10")))
WORKERS = os.environ.get("WORKERS", "2")


def wakeups(pid: int) -> dict:
    p = subprocess.Popen(["strace", "-c", "-f", "-e", "trace=epoll_wait,epoll_pwait,poll,ppoll,select",
                          "-p", str(pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(SECONDS)
    p.send_signal(2)
    _, err = p.communicate(timeout=30)
    calls = {}
    for line in err.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m:
            if m.group(2) != "total":
                calls[m.group(2)] = int(m.group(1))
    return calls


def main():
    for stats in ("unset", "set"):
        conf = {} if stats == "set" else {"handler.stats_spec": None}
        args = [] if IS_PUSHPIN else ["--workers", WORKERS]
        p = Proxy(routes="* test", conf=conf, args=args)
        try:
            time.sleep(2)  # startup work settles
            pids = [p.proc.pid]
            if IS_PUSHPIN:  # the runner's children do the work
                kids = subprocess.run(["pgrep", "-P", str(p.proc.pid)], capture_output=True, text=True).stdout.split()
                pids += [int(k) for k in kids]
            total = {}
            for pid in pids:
                for k, v in wakeups(pid).items():
                    total[k] = total.get(k, 0) + v
            n = sum(total.values())
            print(f"{'pushpin' if IS_PUSHPIN else 'gripd'} stats_spec {stats}: {n / SECONDS:.1f} wakeups/s "
                  f"({total})", flush=True)
        finally:
            p.close()


if __name__ == "__main__":
    main()
