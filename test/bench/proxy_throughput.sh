#!/usr/bin/env bash
# Proxy throughput benchmark: plain (non-GRIP) requests through each proxy to one static backend.
#
# Starts, all on loopback with free ports:
#   backend  nginx serving a BODY_BYTES static file
#   nginx    proxy_pass reverse proxy to the backend (upstream keepalive)
#   pushpin  Debian's pushpin (runner + condure + zurl + pushpin-proxy + pushpin-handler), routes `* 127.0.0.1:<backend>`
#   gripd    $GRIPD_BIN (default build/gripd), same generated pushpin.conf, [gripd] workers=$GRIPD_WORKERS
# then runs `wrk -t$THREADS -c$CONNS -d$DURATION --latency` against each and prints a table.
# A benchmark program: it prints figures and never fails on them.
#
# Environment knobs (defaults):
#   GRIPD_BIN (build/gripd)  GRIPD_ARGS ("")  GRIPD_WORKERS (2)  NGINX_WORKERS (2)
#   THREADS (2)  CONNS (50)  DURATION (10s)  WARMUP (2s, 0 to skip)  BODY_BYTES (100)
#   TARGETS ("direct nginx pushpin gripd")  KEEP_TMP (unset; set to keep the temp dir)
set -u

source "$(dirname "$0")/common.sh"

THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
BODY_BYTES=${BODY_BYTES:-100}
GRIPD_WORKERS=${GRIPD_WORKERS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-2}
TARGETS=${TARGETS:-direct nginx pushpin gripd}

for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install $tool)" >&2; exit 2; }
done

make_bench_tmp proxy
raise_nofile

mapfile -t P < <(free_ports 2)
BACKEND_PORT=${P[0]}
NGINX_PORT=${P[1]}

# --- backend: nginx with a static file
start_static_backend "$TMP" "$BACKEND_PORT" "$BODY_BYTES"
mkdir -p "$TMP/nginx"
nginx_conf "$TMP/nginx" "$NGINX_WORKERS" "$(nginx_proxy_block "$NGINX_PORT" "$BACKEND_PORT")"

# --- result rows: name \t rps \t p50 \t p99 \t errors \t note
RESULTS=$TMP/results.tsv
: >"$RESULTS"
COMMANDS=()

# to_ms VALUE: wrk latency ("812.00us", "1.23ms", "2.00s") -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

# bench NAME URL NOTE: warm up, then measure with wrk and append a row.
bench() {
    local name=$1 url=$2 note=$3 out rps p50 p99 non2xx sockerr
    local cmd=(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url")
    if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
        wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$url" >/dev/null 2>&1
    fi
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    log "measuring $name (load average $load): ${cmd[*]}"
    COMMANDS+=("$name: ${cmd[*]}")
    out=$(timeout 120 "${cmd[@]}" 2>&1)
    printf '%s\n' "$out" >"$TMP/wrk-$name.txt"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk -F': ' '/Non-2xx or 3xx responses/ {print $2}' <<<"$out")
    sockerr=$(sed -n 's/.*Socket errors: //p' <<<"$out")
    if [ -z "$rps" ]; then
        printf '%s\tfailed\t-\t-\t-\t%s\twrk produced no result: %s\n' "$name" "$load" "$(tail -n1 <<<"$out")" >>"$RESULTS"
        return
    fi
    local errs=""
    [ -n "$non2xx" ] && errs="non-2xx $non2xx"
    [ -n "$sockerr" ] && errs="${errs:+$errs; }socket $sockerr"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" "${errs:-0}" "$load" "$note" >>"$RESULTS"
}

failed_row() { printf '%s\tfailed\t-\t-\t-\t-\t%s\n' "$1" "$2" >>"$RESULTS"; }

echo "== proxy throughput: GET /$FILE (${BODY_BYTES}-byte static file), wrk -t$THREADS -c$CONNS -d$DURATION"
cores_note

for target in $TARGETS; do
    case $target in
    direct)
        bench direct "http://127.0.0.1:$BACKEND_PORT/$FILE" "backend nginx, 1 worker"
        ;;
    nginx)
        start_bg "$TMP/nginx/stdout.log" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
        pid=$STARTED_PID
        if wait_http "http://127.0.0.1:$NGINX_PORT/$FILE" 10 "$pid"; then
            bench nginx "http://127.0.0.1:$NGINX_PORT/$FILE" "nginx proxy_pass, $NGINX_WORKERS workers, upstream keepalive 64"
        else
            failed_row nginx "did not start: $(tail -n1 "$TMP/nginx/error.log" 2>/dev/null)"
        fi
        stop_bg "$pid"
        ;;
    pushpin | gripd)
        if [ "$target" = gripd ] && [ -z "$(gripd_bin)" ]; then
            log "skipping gripd: no executable at ${GRIPD_BIN:-$REPO_ROOT/build/gripd} (set GRIPD_BIN)"
            failed_row gripd "skipped: binary missing (${GRIPD_BIN:-build/gripd})"
            continue
        fi
        dir=$TMP/$target
        write_grip_conf "$dir" "$BACKEND_PORT" "$GRIPD_WORKERS"
        if ! start_grip_server "$target" "$dir" "/$FILE"; then
            failed_row "$target" "$START_ERROR"
            continue
        fi
        if [ "$target" = pushpin ]; then
            note="pushpin 1.36: condure + zurl + pushpin-proxy + pushpin-handler"
            COMMANDS+=("pushpin server: pushpin --config $dir/pushpin.conf")
        else
            note="gripd workers=$GRIPD_WORKERS"
            COMMANDS+=("gripd server: $(gripd_bin) --config $dir/pushpin.conf ${GRIPD_ARGS:-}")
        fi
        bench "$target" "http://127.0.0.1:$CONF_HTTP_PORT/$FILE" "$note"
        stop_bg "$SERVER_PID"
        ;;
    *) log "unknown target $target" ;;
    esac
done

echo
echo "Processes sharing the $(nproc) cores during each measurement: wrk ($THREADS threads), the backend"
echo "nginx (1 worker) and the target (nginx $NGINX_WORKERS workers | pushpin's 5 processes | gripd $GRIPD_WORKERS workers)."
echo "Other proxies are stopped while one is measured. load1 = 1-minute load average when the"
echo "measurement started (anything above ~0 means other work shared the cores too)."
echo
"$PY" - "$RESULTS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
num = {}
for r in rows:
    try:
        num[r[0]] = float(r[1])
    except ValueError:
        pass
def ratio(a, b):
    return f"{num[a] / num[b]:.3f}" if a in num and b in num and num[b] > 0 else "-"
hdr = ["target", "req/s", "p50 ms", "p99 ms", "vs direct", "errors", "load1", "notes"]
out = [hdr]
for r in rows:
    rps = f"{float(r[1]):,.0f}" if r[0] in num else r[1]
    out.append([r[0], rps, r[2], r[3], ratio(r[0], "direct"), r[4], r[5], r[6]])
w = [max(len(x[i]) for x in out) for i in range(len(hdr) - 1)]
for x in out:
    print("  ".join(x[i].ljust(w[i]) if i == 0 else x[i].rjust(w[i]) for i in range(len(w))) + "  " + x[-1])
print()
print(f"gripd/pushpin  {ratio('gripd', 'pushpin')}")
print(f"gripd/nginx    {ratio('gripd', 'nginx')}")
print(f"pushpin/nginx  {ratio('pushpin', 'nginx')}")
EOF
echo
echo "Commands:"
for c in "${COMMANDS[@]}"; do echo "  $c"; done
echo "  (raw wrk output is kept with KEEP_TMP=1 in the temp dir)"
