#!/usr/bin/env bash
# Cross-instance delivery (issue 17, README "Many instances"): time from a publish to the last
# subscriber having it, p50/p99, for SUBS subscribers (default 1000 and 10000), in one run:
#   single     one gripd without a bus: subscribers on it, publishes to it (the single-instance figure)
#   single-bus instance A with the Redis bus: subscribers on A, publishes to A (through Redis and back)
#   cross      publishes to instance A, subscribers split over instances B and C (A has none)
# The three bus instances are bound on 127.0.0.2, .3 and .4 and share one redis-server; the single
# instance is on 127.0.0.5. Every instance and the load generator (realtime_bench fanout, with
# --also to spread subscribers over B and C) share this machine's cores: this shows what the bus hop
# costs, not how a fleet of machines scales. A benchmark program: it prints figures, never fails
# on them.
#
# Environment knobs (defaults): GRIPD_BIN (build/gripd)  GRIPD_WORKERS (1 per instance)
#   SUBS ("1000 10000")  MESSAGES (20)  GAP_MS (200)  SCENARIOS ("single single-bus cross")
#   CONCURRENCY (50)  REALTIME_BENCH (a built realtime_bench; else compiled into the temp dir)
#   KEEP_TMP (keep the temp dir with the logs)
# Run it under `nice -n -15` on a shared machine.
set -u

source "$(dirname "$0")/common.sh"

GRIPD_WORKERS=${GRIPD_WORKERS:-1}
SUBS=${SUBS:-1000 10000}
MESSAGES=${MESSAGES:-20}
GAP_MS=${GAP_MS:-200}
SCENARIOS=${SCENARIOS:-single single-bus cross}
CONCURRENCY=${CONCURRENCY:-50}

TMP=$(mktemp -d /tmp/gripd-bench-cross.XXXXXX)
cleanup() {
    stop_all_bg
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
raise_nofile

[ -n "$(gripd_bin)" ] || { echo "gripd binary not found (GRIPD_BIN or build/gripd)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 2; }

BIN=${REALTIME_BENCH:-}
MESON_BIN=$REPO_ROOT/build/test/bench/realtime_bench
if [ -z "$BIN" ] && [ -x "$MESON_BIN" ] &&
    [ -z "$(find "$BENCH_DIR/realtime" -newer "$MESON_BIN" -print -quit)" ]; then
    BIN=$MESON_BIN
fi
if [ -z "$BIN" ]; then
    BIN=$TMP/realtime_bench
    log "compiling realtime_bench"
    g++ -O2 -std=c++20 -I"$REPO_ROOT/include" "$BENCH_DIR"/realtime/*.cpp "$REPO_ROOT/src/ws/events.cpp" \
        "$REPO_ROOT/src/core/strings.cpp" -o "$BIN" -luv || { echo "build failed" >&2; exit 2; }
fi

mapfile -t PORTS < <(free_ports 2)
BACKEND_PORT=${PORTS[0]}
REDIS_PORT=${PORTS[1]}
start_bg "$TMP/backend.log" "$BIN" backend --listen "127.0.0.1:$BACKEND_PORT"
wait_http "http://127.0.0.1:$BACKEND_PORT/" 10 "$STARTED_PID" || { log "backend failed"; exit 1; }
mkdir -p "$TMP/redis"
start_bg "$TMP/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --save "" \
    --appendonly no
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

# start_instance NAME ADDR BUS: one gripd bound on ADDR (client and control listeners); sets
# HTTP_<NAME> and CTL_<NAME>.
start_instance() {
    local name=$1 addr=$2 bus=$3 dir=$TMP/$1
    write_grip_conf "$dir" "$BACKEND_PORT" "$GRIPD_WORKERS" ""
    sed -i -e "s/^http_port=127.0.0.1:/http_port=$addr:/" -e "s/^push_in_http_addr=127.0.0.1/push_in_http_addr=$addr/" \
        "$dir/pushpin.conf"
    [ -n "$bus" ] && printf 'bus=%s\n' "$bus" >>"$dir/pushpin.conf"
    start_bg "$dir/runner.log" "$(gripd_bin)" --config "$dir/pushpin.conf"
    wait_http "http://$addr:$CONF_HTTP_PORT/" 20 "$STARTED_PID" 200 &&
        wait_http "http://$addr:$CONF_CONTROL_PORT/" 10 "$STARTED_PID" ||
        { log "$name did not start"; tail -n 5 "$dir/runner.log" >&2; exit 1; }
    printf -v "HTTP_$name" '%s' "$addr:$CONF_HTTP_PORT"
    printf -v "CTL_$name" '%s' "$addr:$CONF_CONTROL_PORT"
}
start_instance A 127.0.0.2 "redis://127.0.0.1:$REDIS_PORT"
start_instance B 127.0.0.3 "redis://127.0.0.1:$REDIS_PORT"
start_instance C 127.0.0.4 "redis://127.0.0.1:$REDIS_PORT"
start_instance S 127.0.0.5 ""

RESULTS=$TMP/results.tsv
: >"$RESULTS"
echo "== cross-instance delivery: gripd, ${GRIPD_WORKERS} worker(s) per instance, $MESSAGES publishes $GAP_MS ms apart"
cores_note
for n in $SUBS; do
    for sc in $SCENARIOS; do
        case $sc in
        single) args=(--url "http://$HTTP_S/stream/" --publish "http://$CTL_S") ;;
        single-bus) args=(--url "http://$HTTP_A/stream/" --publish "http://$CTL_A") ;;
        cross) args=(--url "http://$HTTP_B/stream/" --also "http://$HTTP_C/stream/" --publish "http://$CTL_A") ;;
        *) log "unknown scenario $sc"; continue ;;
        esac
        args=(fanout "${args[@]}" --subs "$n" --messages "$MESSAGES" --gap "$GAP_MS" --concurrency "$CONCURRENCY"
            --max-seconds 300 --channel "x-$sc-$n")
        log "$sc $n: $(basename "$BIN") ${args[*]}"
        line=$(timeout 330 "$BIN" "${args[@]}" 2>"$TMP/client-$sc-$n.log" | grep '^RESULT' | tail -n1)
        [ -n "$line" ] || line="RESULT mode=fanout status=failed reason=no_result"
        printf '%s\t%s\t%s\n' "$sc" "$n" "$line" >>"$RESULTS"
        sleep 1
    done
done
for name in A B C S; do
    dir=$TMP/$name
    grep -q -i "error\|crash" "$dir/runner.log" && log "$name logged errors: $(grep -i -m3 'error\|crash' "$dir/runner.log")"
done
"$PY" - "$RESULTS" <<'EOF'
import sys
rows = []
for ln in open(sys.argv[1]):
    sc, n, line = ln.rstrip("\n").split("\t", 2)
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    rows.append((sc, n, kv))
cols = [("subs open", "subs_open"), ("last p50 ms", "last_p50_ms"), ("last p99 ms", "last_p99_ms"),
        ("first p50 ms", "first_p50_ms"), ("missed", "missed_deliveries"), ("status", "status")]
head = ["scenario", "subscribers"] + [c for c, _ in cols]
table = [head] + [[sc, n] + [kv.get(k, "-") for _, k in cols] for sc, n, kv in rows]
w = [max(len(str(r[i])) for r in table) for i in range(len(head))]
for r in table:
    print("  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)))
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
