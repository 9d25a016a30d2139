#!/usr/bin/env bash
# TLS for clients: memory per idle TLS connection and handshake rate, gripd beside nginx (and
# pushpin, and gripd's own plaintext connections, for the memory figure).
#
# Starts, one at a time and each fresh, all on loopback with free ports and the same certificate
# (self-signed EC P-256, made here; clients send SNI bench.test, which every server answers with
# its default certificate):
#   gripd-plain  gripd ($GRIPD_BIN, default build/gripd), route `* test`, plaintext port
#   gripd        the same on its https_ports port (certificate runner/certs/default_<port>.*)
#   gripd-base   the same with $BASE_GRIPD_BIN (another build, for before/after figures of a change:
#                RATE_TARGETS="gripd-base gripd nginx")
#   pushpin      Debian's pushpin 1.36, same config (its condure terminates TLS)
#   nginx        Debian's nginx, `return 200`, ssl_protocols TLSv1.2 TLSv1.3, keepalive 600 s; its
#                workers share one accept queue (nginx's default) unless NGINX_REUSEPORT=1, which
#                gives each worker its own SO_REUSEPORT socket (gripd shares one socket on TLS ports)
# For each: RSS of all its processes (sum over its session) before and after CONNS idle
# connections (handshake, one GET answered, then idle), and the difference per connection.
# Then the handshake rate (full, and resumed with a session ticket) of gripd and nginx with the
# same client (build/test/bench/tls_bench_client, THREADS blocking threads for DURATION s each),
# measured in turns ROUNDS times (median shown).
# A benchmark program: it prints figures and never fails on them.
#
# Environment knobs (defaults):
#   GRIPD_BIN (build/gripd)  GRIPD_WORKERS (2)  NGINX_WORKERS (2)  NGINX_REUSEPORT (unset)
#   CONNS (10000)  DURATION (10)
#   THREADS (4)  ROUNDS (3)  TARGETS ("gripd-plain gripd pushpin nginx")  RATE_TARGETS ("gripd nginx")
#   NGINX_SSL_EXTRA (unset; directives added to nginx's server block, e.g. gripd's suite choice:
#     "ssl_prefer_server_ciphers on; ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;")
#   BASE_GRIPD_BIN (unset)  CLIENT (build/test/bench/tls_bench_client)  KEEP_TMP (unset; set to keep the temp dir)
# Run it niced on a shared machine: nice -n 10 test/bench/tls_bench.sh
set -u

source "$(dirname "$0")/common.sh"

CONNS=${CONNS:-10000}
DURATION=${DURATION:-10}
THREADS=${THREADS:-4}
ROUNDS=${ROUNDS:-3}
GRIPD_WORKERS=${GRIPD_WORKERS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-2}
NGINX_LISTEN_FLAGS=
[ -n "${NGINX_REUSEPORT:-}" ] && NGINX_LISTEN_FLAGS=reuseport
TARGETS=${TARGETS-gripd-plain gripd pushpin nginx}
RATE_TARGETS=${RATE_TARGETS:-gripd nginx}
CLIENT=${CLIENT:-$REPO_ROOT/build/test/bench/tls_bench_client}

for tool in openssl nginx curl; do
    command -v "$tool" >/dev/null || { log "missing $tool (apt-get install -y $tool)"; exit 1; }
done
[ -x "$CLIENT" ] || { log "missing $CLIENT: ninja -C build test/bench/tls_bench_client"; exit 1; }
raise_nofile

make_bench_tmp tls
make_bench_cert || exit 1

# cpu_split PID: "USER_TICKS SYSTEM_TICKS CONTEXT_SWITCHES" summed over every thread of every process
# in PID's session (where the time goes: a thread's wake-ups and syscalls show as system time and
# switches, which an instruction count of user code does not see).
cpu_split() {
    local p
    for p in $(pgrep -s "$1" 2>/dev/null); do
        cat /proc/"$p"/task/*/stat 2>/dev/null | awk '{u += $14; s += $15} END {print "t", u + 0, s + 0}'
        cat /proc/"$p"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {c += $2} END {print "c", c + 0}'
    done | awk '$1 == "t" {u += $2; s += $3} $1 == "c" {c += $2} END {print u + 0, s + 0, c + 0}'
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# rss_kib PID: the RSS of every process in PID's session, in KiB.
rss_kib() {
    local total=0 p v
    for p in $(pgrep -s "$1" 2>/dev/null); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# start_target NAME: starts NAME fresh; sets SERVER_PID, PORT (the port the clients use) and TLS
# ("" for plaintext). Returns 1 if it did not come up.
start_target() {
    local name=$1 dir="$TMP/$1"
    mkdir -p "$dir"
    TLS=tls
    case "$name" in
    nginx)
        PORT=$(free_ports 1)
        cat >"$dir/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $dir/nginx.pid;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http {
    access_log off;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
    server {
        listen 127.0.0.1:$PORT ssl $NGINX_LISTEN_FLAGS;
        ssl_certificate $TMP/cert.crt;
        ssl_certificate_key $TMP/cert.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ${NGINX_SSL_EXTRA:-}
        location / { return 200 "ok\n"; }
    }
}
EOF
        start_bg "$dir/stdout.log" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        SERVER_PID=$STARTED_PID
        ;;
    gripd-plain | gripd | gripd-base | pushpin)
        write_grip_conf "$dir" 1 "$GRIPD_WORKERS"
        PORT=$(free_ports 1)
        echo '* test' >"$dir/routes"
        sed -i "s/^http_port=.*/&\nhttps_ports=127.0.0.1:$PORT/" "$dir/pushpin.conf"
        echo "idle_timeout=600" >>"$dir/pushpin.conf" # [gripd] is the last section
        mkdir -p "$dir/runner/certs"
        cp "$TMP/cert.crt" "$dir/runner/certs/default_$PORT.crt"
        cp "$TMP/cert.key" "$dir/runner/certs/default_$PORT.key"
        local server=gripd bin=${GRIPD_BIN:-}
        [ "$name" = pushpin ] && server=pushpin
        [ "$name" = gripd-base ] && bin=$BASE_GRIPD_BIN
        GRIPD_BIN=$bin start_grip_server "$server" "$dir" / || return 1
        if [ "$name" = gripd-plain ]; then
            PORT=$CONF_HTTP_PORT
            TLS=plain
        fi
        ;;
    esac
    local i scheme=https
    [ "$TLS" = plain ] && scheme=http
    for ((i = 0; i < 100; i++)); do
        [ "$(curl -sk -o /dev/null -m 1 -w '%{http_code}' "$scheme://127.0.0.1:$PORT/")" = 200 ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not answer on $PORT"
    return 1
}

declare -A PER_CONN
printf '%-12s %10s %10s %10s %12s\n' target conns "rss0 KiB" "rss1 KiB" "KiB/conn"
for t in $TARGETS; do
    if ! start_target "$t"; then
        printf '%-12s did not start\n' "$t"
        stop_all_bg
        continue
    fi
    sleep 1
    # Warm up (first allocations, a few handshakes), then the baseline.
    "$CLIENT" rate "$PORT" 0.5 1 full >/dev/null 2>&1
    sleep 0.5
    before=$(rss_kib "$SERVER_PID")
    fifo="$TMP/$t.fifo"
    mkfifo "$fifo"
    "$CLIENT" hold "$PORT" "$CONNS" "$TLS" <"$fifo" >"$TMP/$t.hold" 2>&1 &
    client_pid=$!
    exec 9>"$fifo" # the client holds its connections until this closes
    for ((i = 0; i < 3000; i++)); do
        grep -q '^held' "$TMP/$t.hold" 2>/dev/null && break
        kill -0 "$client_pid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1
    after=$(rss_kib "$SERVER_PID")
    held=$(awk '/^held/ {print $2}' "$TMP/$t.hold")
    exec 9>&-
    wait "$client_pid" 2>/dev/null
    if [ -n "$held" ] && [ "$held" -gt 0 ]; then
        per=$(awk -v a="$after" -v b="$before" -v n="$held" 'BEGIN {printf "%.2f", (a - b) / n}')
    else
        per=n/a
    fi
    PER_CONN[$t]=$per
    printf '%-12s %10s %10s %10s %12s\n' "$t" "${held:-0}" "$before" "$after" "$per"
    stop_all_bg
done

echo
# The rate targets run side by side (idle ones cost nothing) and are measured in turns, ROUNDS
# times, so that a change in the machine's load hits each of them alike; the median is the figure.
declare -A RATE_PORT RATE_PID
for t in $RATE_TARGETS; do
    if start_target "$t"; then
        RATE_PORT[$t]=$PORT
        RATE_PID[$t]=$SERVER_PID
        "$CLIENT" rate "$PORT" 1 "$THREADS" full >/dev/null 2>&1 # warm-up
    else
        printf '%-12s did not start\n' "$t"
    fi
done
# rate_run T MODE: prints "HANDSHAKES_PER_S SERVER_CPU_US_PER_HANDSHAKE RESUMED_PERCENT", and appends
# "T MODE USER_US SYSTEM_US SWITCHES" per handshake to $TMP/split.
rate_run() {
    local u0 s0 x0 u1 s1 x1 out
    read -r u0 s0 x0 < <(cpu_split "${RATE_PID[$1]}")
    out=$("$CLIENT" rate "${RATE_PORT[$1]}" "$DURATION" "$THREADS" "$2")
    read -r u1 s1 x1 < <(cpu_split "${RATE_PID[$1]}")
    echo "$out" | awk -v d="$DURATION" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v x=$((x1 - x0)) -v us="$TICK_US" \
        -v t="$1" -v m="$2" -v outf="$TMP/split" \
        '{n = $2 * d; if (n <= 0) n = 1
          printf "%s %.0f %s\n", $2, (u + s) * us / n, $4
          printf "%s %s %.0f %.0f %.2f\n", t, m, u * us / n, s * us / n, x / n >> outf}'
}
declare -A FULL RESUMED FULL_CPU RESUMED_CPU RESUMED_PCT
for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${!RATE_PORT[@]}"; do
        read -r f fc _ < <(rate_run "$t" full)
        read -r m mc mp < <(rate_run "$t" resumed)
        FULL[$t]="${FULL[$t]:-} $f"
        RESUMED[$t]="${RESUMED[$t]:-} $m"
        FULL_CPU[$t]="${FULL_CPU[$t]:-} $fc"
        RESUMED_CPU[$t]="${RESUMED_CPU[$t]:-} $mc"
        RESUMED_PCT[$t]="${RESUMED_PCT[$t]:-} $mp"
    done
done
stop_all_bg
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print (NR ? a[int((NR + 1) / 2)] : "n/a")}'; }
printf '%-12s %10s %12s %10s %12s %9s   %s\n' target "full hs/s" "full us/hs" "res. hs/s" "res. us/hs" \
    "resumed" "(each round: full | resumed)"
for t in $RATE_TARGETS; do
    [ -n "${RATE_PORT[$t]:-}" ] || continue
    printf '%-12s %10s %12s %10s %12s %9s   (%s |%s)\n' "$t" "$(echo "${FULL[$t]}" | median)" \
        "$(echo "${FULL_CPU[$t]}" | median)" "$(echo "${RESUMED[$t]}" | median)" \
        "$(echo "${RESUMED_CPU[$t]}" | median)" "$(echo "${RESUMED_PCT[$t]}" | median)" \
        "${FULL[$t]# }" "${RESUMED[$t]}"
done
echo "us/hs: the server's CPU time (user + system, all its processes) per handshake, including the"
echo "connection and the one request it serves."
echo
echo "Per handshake, each round (user us, system us, context switches of all the server's threads):"
sort -k1,2 -s "$TMP/split" 2>/dev/null | awk '{printf "%-12s %-8s user %5s  system %5s  switches %5s\n", $1, $2, $3, $4, $5}'
echo
cores_note
echo "gripd $GRIPD_WORKERS workers (one shared accept queue on the TLS port), nginx $NGINX_WORKERS workers ($([ -n "$NGINX_LISTEN_FLAGS" ] && echo "SO_REUSEPORT socket each" || echo "one shared accept queue")), client $THREADS threads, $CONNS idle connections."
