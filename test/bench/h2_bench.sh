#!/usr/bin/env bash
# HTTP/2 figures (issue 16), all on loopback with free ports:
#  1. proxy throughput with h2load (Debian's nghttp2-client) over h2c prior knowledge, against
#     nginx (`listen ... http2`, proxy_pass with upstream keepalive) and gripd, both in front of
#     the same static nginx backend, in one run;
#  2. memory per idle SSE stream: gripd's RSS growth for STREAMS stream holds on one HTTP/2
#     connection, beside STREAMS stream holds each on its own HTTP/1.1 connection;
#  3. fan-out time: one publish to FANOUT stream holds over HTTP/2 (FANOUT/100 connections, 100
#     streams each) beside FANOUT HTTP/1.1 connections, until every client has it, with the CPU
#     time gripd spent meanwhile (its own share: the Python clients are the slower side).
# A benchmark program: it prints figures and never fails on them.
#
# Environment knobs (defaults): GRIPD_BIN (build/gripd)  GRIPD_WORKERS (2)  NGINX_WORKERS (2)
#   CLIENTS (50) STREAMS_PER_CLIENT (10) DURATION (10s) BODY_BYTES (100) STREAMS (100) FANOUT (10000) FAN_BYTES (4096: the
#   published item's size; shared payloads of 256 bytes or more are not copied per client)
#   SKIP_THROUGHPUT (unset; set to run only the held-stream figures)
set -u

source "$(dirname "$0")/common.sh"

GRIPD_WORKERS=${GRIPD_WORKERS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-2}
CLIENTS=${CLIENTS:-50}
STREAMS_PER_CLIENT=${STREAMS_PER_CLIENT:-10}
DURATION=${DURATION:-10s}
BODY_BYTES=${BODY_BYTES:-100}
STREAMS=${STREAMS:-100}
FANOUT=${FANOUT:-10000}
FAN_BYTES=${FAN_BYTES:-4096}

for tool in h2load nginx curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client nginx curl)" >&2; exit 2; }
done
[ -n "$(gripd_bin)" ] || { echo "no gripd binary (set GRIPD_BIN)" >&2; exit 2; }

make_bench_tmp h2
raise_nofile

mapfile -t P < <(free_ports 3)
BACKEND_PORT=${P[0]}
NGINX_PORT=${P[1]}
SSE_PORT=${P[2]}
start_static_backend "$TMP" "$BACKEND_PORT" "$BODY_BYTES"
mkdir -p "$TMP/nginx"
nginx_conf "$TMP/nginx" "$NGINX_WORKERS" "$(nginx_proxy_block "$NGINX_PORT" "$BACKEND_PORT" http2)"

RESULTS=$TMP/results.tsv
: >"$RESULTS"
h2bench() { # NAME URL NOTE
    local name=$1 url=$2 note=$3 out
    local cmd=(h2load -c"$CLIENTS" -m"$STREAMS_PER_CLIENT" -t2 -D"${DURATION%s}" "$url")
    h2load -c"$CLIENTS" -m"$STREAMS_PER_CLIENT" -t2 -D2 "$url" >/dev/null 2>&1 # warm-up
    log "measuring $name (load $(cut -d' ' -f1 /proc/loadavg)): ${cmd[*]}"
    out=$(timeout 120 "${cmd[@]}" 2>&1)
    printf '%s\n' "$out" >"$TMP/h2load-$name.txt"
    local rps ok fail
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    ok=$(sed -n 's/.*status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
    fail=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' <<<"$out")
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "${rps:-failed}" "${ok:--}" "${fail:--}" "$note" >>"$RESULTS"
}

if [ -z "${SKIP_THROUGHPUT:-}" ]; then
echo "== HTTP/2 proxy throughput: GET /$FILE, h2load -c$CLIENTS -m$STREAMS_PER_CLIENT -D$DURATION (h2c)"
cores_note
start_bg "$TMP/nginx/stdout.log" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
pid=$STARTED_PID
sleep 0.5
h2bench nginx "http://127.0.0.1:$NGINX_PORT/$FILE" "nginx listen http2 (h2c), $NGINX_WORKERS workers, upstream keepalive 64"
stop_bg "$pid"

dir=$TMP/gripd
write_grip_conf "$dir" "$BACKEND_PORT" "$GRIPD_WORKERS"
start_grip_server gripd "$dir" "/$FILE" || { log "gripd failed: $START_ERROR"; exit 1; }
h2bench gripd "http://127.0.0.1:$CONF_HTTP_PORT/$FILE" "gripd workers=$GRIPD_WORKERS (h2c prior knowledge)"
stop_bg "$SERVER_PID"

printf '%-8s %12s %10s %8s  %s\n' target "req/s" 2xx failed note
while IFS=$'\t' read -r n r o f note; do printf '%-8s %12s %10s %8s  %s\n' "$n" "$r" "$o" "$f" "$note"; done <"$RESULTS"
fi

# --- 2 and 3: held SSE streams (a tiny GRIP backend answering every request with a stream hold)
echo
echo "== memory per idle SSE stream and fan-out time (gripd workers=1)"
cat >"$TMP/sse_backend.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        for k, v in (("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "bench"),
                     ("Content-Length", "0")):
            self.send_header(k, v)
        self.end_headers()
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 4096  # gripd opens many backend connections at once
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
start_bg "$TMP/sse.log" "$PY" "$TMP/sse_backend.py" "$SSE_PORT"
sleep 0.5
dir=$TMP/gripd-sse
write_grip_conf "$dir" "$SSE_PORT" 1
start_grip_server gripd "$dir" "/ready" || { log "gripd failed: $START_ERROR"; exit 1; }
"$PY" - "$SERVER_PID" "$CONF_HTTP_PORT" "$CONF_CONTROL_PORT" "$STREAMS" "$FANOUT" "$REPO_ROOT/test/integration" "$FAN_BYTES" <<'EOF'
import json, os, select, socket, sys, threading, time, urllib.request
pid, port, cport, streams, fanout = (int(x) for x in sys.argv[1:6])
sys.path.insert(0, sys.argv[6])
fan_bytes = int(sys.argv[7])
from harness.h2client import H2Conn

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def cpu_ms():  # gripd's user + system time
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")

def publish(text):
    body = json.dumps({"items": [{"channel": "bench", "formats": {"http-stream": {"content": text}}}]}).encode()
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{cport}/publish/", data=body,
                           headers={"Content-Type": "application/json"}), timeout=10).read()

def h1_streams(n):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(f"GET /s?{i} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        socks.append(s)
    for s in socks:  # the response head: each is held
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
    return socks

def h2_streams(n, per_conn=100):
    conns, sts = [], []
    for c in range((n + per_conn - 1) // per_conn):
        conn = H2Conn(port, timeout=60)
        conns.append(conn)
        for i in range(min(per_conn, n - c * per_conn)):
            sts.append(conn.request(f"/s?{c}-{i}"))
    for conn in conns:
        conn.wait(lambda: all(st.head is not None for st in sts if st.conn is conn), 60, "heads")
    return conns, sts

def settle():
    time.sleep(1.0)
    return rss_kib()

base = settle()
socks = h1_streams(streams)
h1 = settle()
for s in socks: s.close()
time.sleep(1.5)
base2 = settle()
conns, sts = h2_streams(streams)
h2 = settle()
print(f"idle SSE streams: {streams}; RSS growth per stream: HTTP/1.1 (one connection each) "
      f"{(h1 - base) * 1024 / streams:.0f} B, HTTP/2 (one connection) {(h2 - base2) * 1024 / streams:.0f} B")
for c in conns: c.close()
time.sleep(1.5)

def fan(kind, n):
    marker = b"go-" + kind.encode()
    if kind == "h1":
        socks = h1_streams(n)
        ep = select.epoll()
        for i, s in enumerate(socks):
            s.setblocking(False)
            ep.register(s.fileno(), select.EPOLLIN)
        by_fd = {s.fileno(): i for i, s in enumerate(socks)}
        time.sleep(1.0)
        c0 = cpu_ms(); t0 = time.monotonic(); publish(marker.decode() + "x" * fan_bytes + "\n")
        pending = set(range(n)); bufs = [b""] * n
        while pending and time.monotonic() - t0 < 60:
            for fd, _ in ep.poll(1.0):
                i = by_fd[fd]
                try:
                    bufs[i] += socks[i].recv(4096)
                except BlockingIOError:
                    continue
                if marker in bufs[i]:
                    pending.discard(i)
                    ep.unregister(fd)
        dt, dc = time.monotonic() - t0, cpu_ms() - c0
        for s in socks: s.close()
        return dt, dc, n - len(pending)
    conns, sts = h2_streams(n)
    time.sleep(1.0)
    got = [0]
    done = threading.Event()
    for st in sts:  # called by each connection's reader thread on the stream's events
        def seen(st=st):
            if not getattr(st, "got", False) and marker in st.body:
                st.got = True
                got[0] += 1  # under the connection's lock; a lost count only delays the end
                if got[0] >= n: done.set()
        st.listeners.append(seen)
    c0 = cpu_ms(); t0 = time.monotonic(); publish(marker.decode() + "x" * fan_bytes + "\n")
    done.wait(60)
    dt, dc = time.monotonic() - t0, cpu_ms() - c0
    received = sum(marker in st.body for st in sts)
    for c in conns: c.close()
    return dt, dc, received

for kind in ("h1", "h2"):
    dt, dc, got = fan(kind, fanout)
    label = "HTTP/1.1 connections" if kind == "h1" else f"HTTP/2 streams ({(fanout + 99) // 100} connections)"
    print(f"fan-out of one {fan_bytes + 10}-byte publish to {fanout} {label}: {got} received in {dt * 1000:.0f} ms "
          f"(gripd CPU {dc:.0f} ms)")
    time.sleep(1.5)
EOF
stop_bg "$SERVER_PID"
