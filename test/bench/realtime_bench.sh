#!/usr/bin/env bash
# Realtime benchmarks, pushpin and gripd side by side in one run (a benchmark program: it prints
# figures, it never fails on them).
#
# Modes (realtime/held.cpp, fanout.cpp and throughput.cpp say what each measures; the ws- modes are
# held and fanout with WebSocket subscribers):
#   held   HELD_CONNS idle stream holds (default 10000,18000); RSS per held connection of the
#          server's whole process tree (pushpin: runner, condure, zurl, pushpin-proxy, pushpin-handler)
#   fanout FANOUT_SUBS subscribers on one channel, FANOUT_MESSAGES publishes, time to the last one
#   tp1    TP_SUBS subscribers, TP_PUBLISHERS publishers back to back for TP_DURATION s, 1 item/request
#   tp10   same with 10 items per request
#   ws-held   WS_HELD_CONNS idle WebSockets (default 10000, or HELD_CONNS when that is set), each
#          subscribed to its own channel through a WebSocket-over-HTTP (`over_http`) route; RSS per
#          WebSocket of the server's process tree
#   ws-fanout FANOUT_SUBS WebSockets on one channel, FANOUT_MESSAGES ws-message publishes, time to the
#          last one
# Each mode runs against a freshly started server (same generated pushpin.conf for both), with the
# built-in GRIP backend (`realtime_bench backend`, which also answers WebSocket-over-HTTP: OPEN, then
# a `c:` subscribe), all on loopback with free ports. Pushpin makes its over_http requests through
# zurl, which the generated config starts (see common.sh).
#
# Environment knobs (defaults):
#   GRIPD_BIN (build/gripd)  GRIPD_ARGS ("")  GRIPD_WORKERS (2)  TARGETS ("pushpin gripd")
#   MODES ("held fanout tp1 tp10 ws-held ws-fanout")  HELD_CONNS (10000,18000)  FANOUT_SUBS (10000)
#   WS_HELD_CONNS (HELD_CONNS if set, else 10000)
#   FANOUT_MESSAGES (20)  TP_SUBS (100)  TP_PUBLISHERS (2)  TP_DURATION (10)  CONCURRENCY (50)
#   PUSHPIN_MESSAGE_RATE / PUSHPIN_MESSAGE_HWM (unset: keys left out, pushpin's limiter is off).
#     Setting message_rate, even to 1000000, turns pushpin 1.36's limiter on; measured here it then
#     held back every delivery while publishes kept coming (first delivery ~2.9 s into a 5 s run,
#     p50 latency 3.4 s) and dropped some, so the limiter, not the engine, was measured.
#   WS_IDS (unset): 1 = the ws- modes' subscribes ask for gripd's ids (`"ids":true`) and every
#     ws-message publish has an id, so gripd writes a gripd-id message before each item (pushpin
#     ignores both): the cost of WebSocket ids
#   REALTIME_BENCH (path to a built realtime_bench; else build/test/bench/realtime_bench when newer
#   than its sources, else it is compiled with g++ into the temp dir)
#   KEEP_TMP (set to keep the temp dir with logs)
#   FLOOR (1): with a fan-out mode (fanout, ws-fanout), also run tcp_fanout_floor (the same number
#     of loopback sockets written by GRIPD_WORKERS threads with no proxy in between) and print the
#     kernel's floor beside the servers' fan-out times
#   TCP_FANOUT_FLOOR (path to a built tcp_fanout_floor; else as for REALTIME_BENCH)
set -u

source "$(dirname "$0")/common.sh"

GRIPD_WORKERS=${GRIPD_WORKERS:-2}
TARGETS=${TARGETS:-pushpin gripd}
MODES=${MODES:-held fanout tp1 tp10 ws-held ws-fanout}
WS_HELD_CONNS=${WS_HELD_CONNS:-${HELD_CONNS:-10000}}
HELD_CONNS=${HELD_CONNS:-10000,18000}
FANOUT_SUBS=${FANOUT_SUBS:-10000}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-20}
TP_SUBS=${TP_SUBS:-100}
TP_PUBLISHERS=${TP_PUBLISHERS:-2}
TP_DURATION=${TP_DURATION:-10}
CONCURRENCY=${CONCURRENCY:-50}

TMP=$(mktemp -d /tmp/gripd-bench-realtime.XXXXXX)
cleanup() {
    stop_all_bg
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
raise_nofile

# --- the load generator
BIN=${REALTIME_BENCH:-}
MESON_BIN=$REPO_ROOT/build/test/bench/realtime_bench
# Its sources: test/bench/realtime/ and gripd's WebSocket-over-HTTP event codec (for the backend).
BIN_SOURCES=("$BENCH_DIR"/realtime/*.cpp "$REPO_ROOT/src/ws/events.cpp" "$REPO_ROOT/src/core/strings.cpp")
if [ -z "$BIN" ] && [ -x "$MESON_BIN" ] &&
    [ -z "$(find "$BENCH_DIR/realtime" "$REPO_ROOT/src/ws/events.cpp" "$REPO_ROOT/include/gripd/ws/events.hpp" \
        -newer "$MESON_BIN" -print -quit)" ]; then
    BIN=$MESON_BIN
fi
if [ -z "$BIN" ]; then
    BIN=$TMP/realtime_bench
    log "compiling realtime_bench"
    g++ -O2 -std=c++20 -I"$REPO_ROOT/include" "${BIN_SOURCES[@]}" -o "$BIN" -luv ||
        { echo "build failed" >&2; exit 2; }
fi

FLOOR=${FLOOR:-1}
FLOOR_BIN=${TCP_FANOUT_FLOOR:-}
MESON_FLOOR_BIN=$REPO_ROOT/build/test/bench/tcp_fanout_floor
if [ -z "$FLOOR_BIN" ] && [ -x "$MESON_FLOOR_BIN" ] && [ "$MESON_FLOOR_BIN" -nt "$BENCH_DIR/tcp_fanout_floor.cpp" ]; then
    FLOOR_BIN=$MESON_FLOOR_BIN
fi
# wants_floor: whether MODES has a fan-out mode (over HTTP streams or WebSockets).
wants_floor() { [ "$FLOOR" = 1 ] && [[ " $MODES " == *" fanout "* || " $MODES " == *" ws-fanout "* ]]; }
if [ -z "$FLOOR_BIN" ] && wants_floor; then
    FLOOR_BIN=$TMP/tcp_fanout_floor
    g++ -O2 -std=c++20 -pthread "$BENCH_DIR/tcp_fanout_floor.cpp" -o "$FLOOR_BIN" || { echo "build failed" >&2; exit 2; }
fi

[ -n "${WS_IDS:-}" ] && export RTB_WS_IDS=$WS_IDS # read by the backend and the publisher
# --- the GRIP backend, shared by every run
BACKEND_PORT=$(free_ports 1)
start_bg "$TMP/backend.log" "$BIN" backend --listen "127.0.0.1:$BACKEND_PORT"
wait_http "http://127.0.0.1:$BACKEND_PORT/" 10 "$STARTED_PID" || { log "backend failed"; cat "$TMP/backend.log" >&2; exit 1; }

LIMITER=""
[ -n "${PUSHPIN_MESSAGE_RATE:-}" ] && LIMITER+="message_rate=$PUSHPIN_MESSAGE_RATE"$'\n'
[ -n "${PUSHPIN_MESSAGE_HWM:-}" ] && LIMITER+="message_hwm=$PUSHPIN_MESSAGE_HWM"$'\n'

RESULTS=$TMP/results.tsv
: >"$RESULTS"
COMMANDS=()

# run_mode TARGET MODE: start TARGET fresh, run one client mode, record its RESULT line.
run_mode() {
    local target=$1 mode=$2 dir=$TMP/$1-$2 url wsurl ctl args line limit=600 props=""
    if [ "$target" = gripd ] && [ -z "$(gripd_bin)" ]; then
        printf '%s\t%s\tRESULT mode=%s status=failed reason=skipped:_binary_missing_(%s)\n' \
            "$target" "$mode" "$mode" "${GRIPD_BIN:-build/gripd}" >>"$RESULTS"
        return
    fi
    # WebSockets reach the backend as WebSocket-over-HTTP; plain requests to it stay plain.
    [ "${mode#ws-}" != "$mode" ] && props=,over_http
    write_grip_conf "$dir" "$BACKEND_PORT" "$GRIPD_WORKERS" "$LIMITER" "$props"
    if ! start_grip_server "$target" "$dir" /; then
        printf '%s\t%s\tRESULT mode=%s status=failed reason=%s\n' "$target" "$mode" "$mode" "${START_ERROR// /_}" >>"$RESULTS"
        return
    fi
    url=http://127.0.0.1:$CONF_HTTP_PORT/stream/
    ctl=http://127.0.0.1:$CONF_CONTROL_PORT
    wsurl=ws://127.0.0.1:$CONF_HTTP_PORT/ws/
    case $mode in
    held) args=(held --url "$url" --conns "$HELD_CONNS" --pid "$SERVER_PID") ;;
    ws-held) args=(held --url "$wsurl" --conns "$WS_HELD_CONNS" --pid "$SERVER_PID") ;;
    fanout) args=(fanout --url "$url" --publish "$ctl" --subs "$FANOUT_SUBS" --messages "$FANOUT_MESSAGES") ;;
    ws-fanout) args=(fanout --url "$wsurl" --publish "$ctl" --subs "$FANOUT_SUBS" --messages "$FANOUT_MESSAGES") ;;
    tp1 | tp10)
        args=(throughput --url "$url" --publish "$ctl" --subs "$TP_SUBS" --publishers "$TP_PUBLISHERS"
            --batch "${mode#tp}" --duration "$TP_DURATION")
        ;;
    esac
    args+=(--concurrency "$CONCURRENCY" --max-seconds "$limit")
    COMMANDS+=("$target $mode: $(basename "$BIN") ${args[*]}")
    log "$target $mode: ${args[*]}"
    line=$(timeout $((limit + 30)) "$BIN" "${args[@]}" 2>"$dir/client.log" | grep '^RESULT' | tail -n1)
    if [ -z "$line" ]; then
        line="RESULT mode=$mode status=failed reason=client_printed_no_result_(see_client.log)"
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        line+=" server_exited=1"
    fi
    stop_bg "$SERVER_PID"
    # A clean stop on SIGTERM exits 0; a crash while stopping is worth a note under the table.
    if [ "${STOPPED_STATUS:-0}" -gt 128 ] && [ "$STOPPED_STATUS" -ne 143 ]; then
        line+=" server_stop=killed_by_signal_$((STOPPED_STATUS - 128))"
    fi
    printf '%s\t%s\t%s\n' "$target" "$mode" "$line" >>"$RESULTS"
    log "$target $mode: ${line#RESULT }"
    sleep 1 # let the closed connections' sockets settle
}

echo "== realtime benchmarks: pushpin 1.36 vs gripd (targets: $TARGETS; modes: $MODES)"
cores_note
for mode in $MODES; do
    for target in $TARGETS; do
        run_mode "$target" "$mode"
    done
done

FLOOR_LINE=""
if wants_floor; then
    log "kernel floor: tcp_fanout_floor --subs $FANOUT_SUBS --writers $GRIPD_WORKERS --rounds $FANOUT_MESSAGES"
    FLOOR_LINE=$(timeout 300 "$FLOOR_BIN" --subs "$FANOUT_SUBS" --writers "$GRIPD_WORKERS" --rounds "$FANOUT_MESSAGES" | grep '^RESULT' | tail -n1)
    [ -n "$FLOOR_LINE" ] || FLOOR_LINE="RESULT mode=floor status=failed reason=no_result"
    printf 'kernel\tfloor\t%s\n' "$FLOOR_LINE" >>"$RESULTS"
    COMMANDS+=("kernel floor: $(basename "$FLOOR_BIN") --subs $FANOUT_SUBS --writers $GRIPD_WORKERS --rounds $FANOUT_MESSAGES")
    log "kernel floor: ${FLOOR_LINE#RESULT }"
fi

echo
echo "Processes sharing the $(nproc) cores: realtime_bench client (1 thread), realtime_bench backend (1 thread),"
echo "and the server under test (pushpin: runner, condure, zurl, pushpin-proxy, pushpin-handler | gripd, $GRIPD_WORKERS workers)."
[ -z "$LIMITER" ] && echo "pushpin's message_rate/message_hwm are left out of the conf (its rate limiter is off)."
echo
"$PY" - "$RESULTS" "$TARGETS" <<'EOF'
import sys
rows = {}
floor = None
for line in open(sys.argv[1]):
    target, mode, res = line.rstrip("\n").split("\t", 2)
    kv = dict(p.split("=", 1) for p in res.split()[1:] if "=" in p)
    if target == "kernel":
        floor = kv
        continue
    rows[(target, mode)] = kv
targets = sys.argv[2].split()
modes = []
for (_, m) in rows:
    if m not in modes:
        modes.append(m)

def metrics(mode, kv_all):
    if mode in ("held", "ws-held"):
        steps = sorted({k[len("held_"):] for kv in kv_all for k in kv if k.startswith("held_")}, key=int)
        out = []
        for s in steps:
            out += [(f"held connections (target {s})", f"held_{s}", "="),
                    (f"KiB per held connection at {s}", f"kib_per_conn_{s}", "lower"),
                    (f"new connections/s up to {s}", f"conns_per_s_{s}", "higher")]
        return out + [("RSS before (KiB)", "rss_before_kib", "")]
    if mode in ("fanout", "ws-fanout"):
        return [("subscribers open", "subs_open", "="),
                ("time to last subscriber p50 ms", "last_p50_ms", "lower"),
                ("time to last subscriber p99 ms", "last_p99_ms", "lower"),
                ("time to first subscriber p50 ms", "first_p50_ms", "lower"),
                ("missed deliveries", "missed_deliveries", "lower"),
                ("subscribers that missed any", "subs_missing_any", "lower")]
    return [("deliveries/s", "deliveries_per_s", "higher"),
            ("items published/s", "items_per_s", "higher"),
            ("publish requests/s", "pub_req_per_s", "higher"),
            ("lost deliveries", "lost", "lower"),
            ("delivery latency p50 ms", "lat_p50_ms", "lower"),
            ("delivery latency p99 ms", "lat_p99_ms", "lower")]

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

both = "gripd" in targets and "pushpin" in targets
table = [["mode", "metric"] + targets + (["gripd/pushpin"] if both else [])]
def ran(kv):
    return kv.get("status") in ("ok", "partial")
for mode in modes:
    kvs = [rows.get((t, mode), {}) for t in targets]
    if not all(kv.get("status") == "ok" for kv in kvs):
        table.append([mode, "status"] + [("FAILED/unsupported" if kv.get("status", "failed") == "failed" else kv["status"]) for kv in kvs] + ([""] if both else []))
    for label, key, better in metrics(mode, kvs):
        row = [mode, label] + [kv.get(key, "-") if ran(kv) else "-" for kv in kvs]
        if both:
            gk, pk = rows.get(("gripd", mode), {}), rows.get(("pushpin", mode), {})
            g, p = num(gk.get(key)), num(pk.get(key))
            if ran(gk) and ran(pk) and g is not None and p:
                row.append(f"{g / p:.3f}" + (f" ({better} is better)" if better in ("lower", "higher") else ""))
            else:
                row.append("-")
        table.append(row)
w = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
for r in table:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())

if floor is not None:
    print()
    if floor.get("status") != "ok":
        print(f"kernel floor: failed ({floor.get('reason', '?')})")
    else:
        print(f"kernel floor for fan-out: {floor['subs']} loopback sockets written by {floor['writers']} threads, "
              f"no proxy: time to last p50 {floor['last_p50_ms']} ms, p99 {floor['last_p99_ms']} ms")
        for m in ("fanout", "ws-fanout"):
            for t in targets:
                kv = rows.get((t, m), {})
                if ran(kv) and num(kv.get("last_p50_ms")) and num(floor["last_p50_ms"]):
                    print(f"  {m} {t}/floor: p50 {num(kv['last_p50_ms']) / num(floor['last_p50_ms']):.2f}, "
                          f"p99 {num(kv['last_p99_ms']) / num(floor['last_p99_ms']):.2f}")

print()
def noteworthy(kv):
    drops = any(k.startswith(("dropped", "subs_dropped")) and v not in ("0", "") for k, v in kv.items())
    return kv.get("status") != "ok" or drops or "server_stop" in kv
for (t, m), kv in rows.items():
    if noteworthy(kv):
        extra = {k: v for k, v in kv.items()
                 if k in ("status", "reason", "server_exited", "server_stop") or k.startswith(("top_", "failed_attempts", "dropped", "subs_dropped", "lost", "missed"))}
        print(f"{t} {m}: " + " ".join(f"{k}={v}" for k, v in extra.items()))
EOF
echo
echo "Raw results:"
sed 's/^/  /' "$RESULTS"
echo
echo "Commands (server: pushpin|gripd --config <tmp>/<target>-<mode>/pushpin.conf):"
for c in "${COMMANDS[@]}"; do echo "  $c"; done
