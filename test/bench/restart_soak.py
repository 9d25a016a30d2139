"""Zero-downtime upgrade soak (README "Zero-downtime restart and upgrade"): 4 client threads send
requests on fresh connections while gripd is replaced by SIGUSR2 N times in a row; prints the
requests answered and every failure. Usage:
    GRIPD_BIN=build/gripd /usr/bin/python3 test/bench/restart_soak.py 50
Not a benchmark (no timing): a correctness run too long for the test suite."""
import os, re, signal, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness.proxy import Proxy
from harness.backend import Backend, Response
import test_restart as tr
b = Backend(); b.route("/ok", Response(200, b"ok"))
p = Proxy(routes=f"* {b.addr}\n", conf={"gripd": {"shutdown_grace": "5", "workers": "2"}})
load = tr.Load(port=p.port, threads=4)
pids = []
n = int(sys.argv[1])
t0 = time.time()
cur = p.pid
try:
    load.wait_more(100)
    for i in range(n):
        os.kill(cur, signal.SIGUSR2)
        deadline = time.time() + 15
        while True:
            found = re.findall(r"upgrade: started \S+ as process (\d+)", open(p.stdout_path, errors="replace").read())
            if len(found) > i: break
            assert time.time() < deadline, (i, [l for l in p.log().splitlines() if "[main]" in l][-12:])
            time.sleep(0.02)
        new = int(found[i])
        while tr.pid_alive(cur):
            assert time.time() < deadline, "old did not exit"
            time.sleep(0.02)
        cur = new
        load.wait_more(100)
finally:
    load.stop()
    tr.stop_pid(cur)
    p.close(); b.stop()
print(f"upgrades={n} requests_ok={load.ok} failures={len(load.failures)} secs={time.time()-t0:.1f}", load.failures[:5])
