#!/usr/bin/env bash
# TLS handshake cost, gripd beside nginx, in CPU instructions (callgrind), which the other load on
# a shared machine cannot skew the way it skews a handshake rate (tls_bench.sh).
#
# Each server runs alone under `valgrind --tool=callgrind` on loopback with the same certificate
# (self-signed EC P-256, made here): gripd ($GRIPD_BIN, default build/gripd) with one worker on its
# https_ports port, route `* test`; Debian's nginx in one process (master_process off), `return 200`,
# ssl_protocols TLSv1.2 TLSv1.3. For each MODE (full, resumed) the same client
# (build/test/bench/tls_bench_client, 2 threads, SECONDS s) connects, handshakes, sends `GET /`,
# reads the answer and closes, over and over; the server's instructions are zeroed before that run
# and dumped after it. Printed: instructions per handshake (and per connection's whole life: accept,
# handshake, request, answer, close), and gripd/nginx.
# A benchmark program: it prints figures and never fails on them.
#
# Environment knobs (defaults): GRIPD_BIN (build/gripd)  SECONDS_PER_RUN (8)  MODES ("full resumed")
#   CLIENT (build/test/bench/tls_bench_client)  KEEP_TMP (unset; set to keep the temp dir)
set -u

source "$(dirname "$0")/common.sh"

SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
MODES=${MODES:-full resumed}
CLIENT=${CLIENT:-$REPO_ROOT/build/test/bench/tls_bench_client}
GRIPD=$(gripd_bin)
for tool in openssl nginx curl valgrind callgrind_control; do
    command -v "$tool" >/dev/null || { log "missing $tool (apt-get install -y ${tool%%_*})"; exit 1; }
done
[ -n "$GRIPD" ] || { log "missing gripd: build it (ninja -C build)"; exit 1; }
[ -x "$CLIENT" ] || { log "missing $CLIENT: ninja -C build test/bench/tls_bench_client"; exit 1; }

make_bench_tmp tls-cost
make_bench_cert || exit 1

# start_server NAME: starts it under callgrind; sets PORT and SERVER_PID (valgrind's pid is the server's).
start_server() {
    local dir=$TMP/$1
    mkdir -p "$dir"
    case $1 in
    gripd)
        write_grip_conf "$dir" 1 1
        PORT=$(free_ports 1)
        echo '* test' >"$dir/routes"
        sed -i "s/^http_port=.*/&\nhttps_ports=127.0.0.1:$PORT/" "$dir/pushpin.conf"
        mkdir -p "$dir/runner/certs"
        cp "$TMP/cert.crt" "$dir/runner/certs/default_$PORT.crt"
        cp "$TMP/cert.key" "$dir/runner/certs/default_$PORT.key"
        start_bg "$dir/out.log" valgrind --tool=callgrind --callgrind-out-file="$dir/cg" \
            "$GRIPD" --config "$dir/pushpin.conf"
        ;;
    nginx)
        PORT=$(free_ports 1)
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $TMP/cert.crt;
        ssl_certificate_key $TMP/cert.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "ok\n"; }
    }
}
EOF
        start_bg "$dir/out.log" valgrind --tool=callgrind --callgrind-out-file="$dir/cg" \
            nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        ;;
    esac
    SERVER_PID=$STARTED_PID
    local i
    for ((i = 0; i < 300; i++)); do # valgrind starts slowly
        [ "$(curl -sk -o /dev/null -m 2 -w '%{http_code}' "https://127.0.0.1:$PORT/")" = 200 ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    log "$1 did not answer on $PORT under valgrind"
    return 1
}

# measure NAME MODE: prints instructions per handshake.
measure() {
    local dir=$TMP/$1 out total before
    "$CLIENT" rate "$PORT" 2 1 "$2" >/dev/null 2>&1 # warm up (first allocations, the ticket keys)
    before=$(ls "$dir"/cg* 2>/dev/null | wc -l)
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    out=$("$CLIENT" rate "$PORT" "$SECONDS_PER_RUN" 2 "$2")
    callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
    local i
    for ((i = 0; i < 50; i++)); do # the dump is written by the server's next turn
        [ "$(ls "$dir"/cg* 2>/dev/null | wc -l)" -gt "$before" ] && break
        sleep 0.2
    done
    total=$(echo "$out" | awk '{for (i = 1; i < NF; i++) if ($i == "total") print $(i + 1)}')
    local file ir
    file=$(ls -t "$dir"/cg.* 2>/dev/null | head -1)
    ir=$(awk '/^summary:/ {print $2}' "$file")
    if [ -z "$total" ] || [ "$total" -eq 0 ] || [ -z "$ir" ]; then
        echo "n/a"
        return
    fi
    echo $((ir / total))
}

declare -A COST
for name in gripd nginx; do
    if ! start_server "$name"; then
        stop_all_bg
        continue
    fi
    for mode in $MODES; do
        COST[$name.$mode]=$(measure "$name" "$mode")
    done
    stop_all_bg
done

printf '%-8s %16s %16s\n' mode "gripd Ir/hs" "nginx Ir/hs"
for mode in $MODES; do
    g=${COST[gripd.$mode]:-n/a}
    n=${COST[nginx.$mode]:-n/a}
    ratio=n/a
    [[ "$g" =~ ^[0-9]+$ && "$n" =~ ^[0-9]+$ ]] && ratio=$(awk -v g="$g" -v n="$n" 'BEGIN {printf "%.3f", g / n}')
    printf '%-8s %16s %16s   gripd/nginx %s\n' "$mode" "$g" "$n" "$ratio"
done
echo "Ir/hs: instructions the server ran per connection (accept, handshake, GET / answered, close),"
echo "counted by callgrind over ${SECONDS_PER_RUN} s of 2 client threads; gripd 1 worker, nginx 1 process, same"
echo "certificate (EC P-256) and OpenSSL ($(openssl version | cut -d' ' -f1-2))."
