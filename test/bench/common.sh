# Shared helpers for the benchmark scripts in test/bench/ (sourced, not run).
# Everything binds loopback only; every wait is bounded.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
PY=/usr/bin/python3

# Processes this script started (pids of process-group leaders made with setsid).
BENCH_PIDS=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# free_ports N: prints N distinct free loopback TCP ports, one per line.
free_ports() {
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# raise_nofile: raise the soft open-file limit to the hard limit (20,000 on the build machines).
raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    ulimit -n "$hard" 2>/dev/null || true
}

# nginx_conf DIR WORKERS SERVER_BLOCK: writes DIR/nginx.conf (foreground, files under DIR, no access
# log, long keep-alives) around SERVER_BLOCK (upstreams and servers). Shared by proxy_throughput.sh
# and h2_bench.sh so both measure nginx configured the same way.
nginx_conf() {
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    http2_max_requests 10000000;
    $3
}
EOF
}

# nginx_proxy_block PORT BACKEND_PORT [LISTEN_FLAGS]: an nginx proxy (upstream keepalive 64) in front
# of BACKEND_PORT, for nginx_conf; LISTEN_FLAGS e.g. "http2".
nginx_proxy_block() {
    printf '%s' "upstream backend {
        server 127.0.0.1:$2;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$1 ${3:-};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
}

# nginx_static_block PORT ROOT: nginx serving files from ROOT (the backend both proxies share).
nginx_static_block() {
    printf '%s' "server {
        listen 127.0.0.1:$1;
        root $2;
        default_type text/plain;
    }"
}

# make_bench_tmp NAME: sets TMP to a new /tmp/gripd-bench-NAME.XXXXXX that nginx's workers can read
# (they run as nobody when started by root); at exit every background process is stopped and TMP
# removed (KEEP_TMP=1 keeps it).
make_bench_tmp() {
    TMP=$(mktemp -d "/tmp/gripd-bench-$1.XXXXXX")
    chmod 755 "$TMP"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}
bench_cleanup() {
    stop_all_bg
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}

# make_bench_cert: a self-signed EC P-256 certificate for bench.test in $TMP/cert.crt and
# $TMP/cert.key (the TLS benchmarks give every server the same one). Returns 1 if openssl fails.
make_bench_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench.test \
        -keyout "$TMP/cert.key" -out "$TMP/cert.crt" 2>/dev/null || { log "openssl failed"; return 1; }
}

# start_static_backend DIR PORT BYTES: an nginx (one worker, its files under DIR) on PORT serving
# one file of BYTES bytes, the backend both proxies share. Sets FILE (its name) and BACKEND_PID.
start_static_backend() {
    local dir=$1 port=$2 bytes=$3
    FILE=b${bytes}.txt
    mkdir -p "$dir/www" "$dir/backend"
    chmod 755 "$dir/www"
    head -c "$bytes" /dev/zero | tr '\0' 'x' >"$dir/www/$FILE"
    chmod 644 "$dir/www/$FILE"
    nginx_conf "$dir/backend" 1 "$(nginx_static_block "$port" "$dir/www")"
    start_bg "$dir/backend/stdout.log" nginx -p "$dir/backend" -c "$dir/backend/nginx.conf" -e "$dir/backend/error.log"
    BACKEND_PID=$STARTED_PID
    wait_http "http://127.0.0.1:$port/$FILE" 10 "$BACKEND_PID" || {
        log "backend nginx failed"
        cat "$dir/backend/error.log" >&2
        exit 1
    }
}

# start_bg LOGFILE CMD...: start CMD in its own session (so its whole process group can be stopped
# by id), output to LOGFILE. Sets STARTED_PID.
start_bg() {
    local logfile=$1
    shift
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    STARTED_PID=$!
    BENCH_PIDS+=("$STARTED_PID")
}

# stop_bg PID: SIGTERM the process PID (a session leader made by start_bg; pushpin's runner then
# stops its children), wait up to 10 s for every process of that session to exit, then SIGKILL the
# ones left, each by pid. Sets STOPPED_STATUS to PID's exit status (128+N: killed by signal N).
stop_bg() {
    local pid=$1 i left
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        left=$(pgrep -s "$pid" 2>/dev/null)
        [ -z "$left" ] && break
        sleep 0.1
    done
    for left in $(pgrep -s "$pid" 2>/dev/null); do
        kill -KILL "$left" 2>/dev/null
    done
    wait "$pid" 2>/dev/null
    STOPPED_STATUS=$?
    return 0
}

stop_all_bg() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        stop_bg "$pid"
    done
    BENCH_PIDS=()
}

# wait_http URL SECONDS [PID [STATUS]]: wait until URL answers with STATUS (default: any HTTP
# status). Returns 1 on timeout or if PID (when given) has exited.
wait_http() {
    local url=$1 secs=$2 pid=${3:-} want=${4:-} i code
    for ((i = 0; i < secs * 10; i++)); do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" 2>/dev/null)
        if [ -n "$code" ] && [ "$code" != "000" ] && { [ -z "$want" ] || [ "$code" = "$want" ]; }; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# write_grip_conf DIR BACKEND_PORT WORKERS [EXTRA_HANDLER_LINES] [TARGET_PROPS]: writes DIR/pushpin.conf
# and DIR/routes (`* 127.0.0.1:BACKEND_PORT<TARGET_PROPS>`, e.g. TARGET_PROPS=,over_http for
# WebSocket-over-HTTP) for one pushpin/gripd instance on fresh free ports. Values follow Debian's shipped
# /etc/pushpin/pushpin.conf except the ports and directories. Sets CONF_HTTP_PORT and
# CONF_CONTROL_PORT. The same file is given to gripd (it reads [gripd] workers; pushpin ignores it).
# Debian's pushpin 1.36 makes its backend requests through zurl, which Debian runs as a separate
# system service on /var/run/zurl; here the runner starts a private zurl (service `zurl`, config
# from its template in rundir) and [proxy] zurl_* point at it (they override internal.conf).
write_grip_conf() {
    local dir=$1 backend_port=$2 workers=$3 extra=${4:-} target_props=${5:-}
    local ports
    mapfile -t ports < <(free_ports 5)
    CONF_HTTP_PORT=${ports[0]}
    CONF_CONTROL_PORT=${ports[1]}
    mkdir -p "$dir/run" "$dir/log"
    printf '* 127.0.0.1:%s%s\n' "$backend_port" "$target_props" >"$dir/routes"
    cat >"$dir/pushpin.conf" <<EOF
[global]
include={libdir}/internal.conf
rundir=$dir/run
ipc_prefix=pushpin-
port_offset=0
stats_connection_ttl=120

[runner]
services=zurl,condure,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:${ports[0]}
logdir=$dir/log
log_level=1
client_buffer_size=8192
client_maxconn=50000

[proxy]
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out
routesfile=routes
debug=false
auto_cross_origin=false
set_x_forwarded_protocol=proto-only
sig_iss=pushpin
sig_key=changeme

[handler]
push_in_spec=tcp://127.0.0.1:${ports[2]}
push_in_sub_specs=tcp://127.0.0.1:${ports[3]}
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=${ports[1]}
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=tcp://127.0.0.1:${ports[4]}
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
$extra

[gripd]
workers=$workers
EOF
}

# gripd_bin: prints the gripd binary to use ($GRIPD_BIN, else build/gripd), or nothing.
gripd_bin() {
    local bin=${GRIPD_BIN:-$REPO_ROOT/build/gripd}
    [ -x "$bin" ] && printf '%s\n' "$bin"
}

# start_grip_server NAME DIR READY_PATH: start pushpin or gripd on DIR/pushpin.conf and wait until
# GET READY_PATH through it answers 200 (the backend is reached) and its control port answers. Sets SERVER_PID. Returns 1 and sets START_ERROR if
# it does not come up within 30 s.
start_grip_server() {
    local name=$1 dir=$2 ready=$3
    if [ "$name" = pushpin ]; then
        start_bg "$dir/runner.log" pushpin --config "$dir/pushpin.conf"
    else
        # shellcheck disable=SC2086
        start_bg "$dir/runner.log" "$(gripd_bin)" --config "$dir/pushpin.conf" ${GRIPD_ARGS:-}
    fi
    SERVER_PID=$STARTED_PID
    START_ERROR=
    if ! wait_http "http://127.0.0.1:$CONF_HTTP_PORT$ready" 20 "$SERVER_PID" 200 ||
        ! wait_http "http://127.0.0.1:$CONF_CONTROL_PORT/" 10 "$SERVER_PID"; then
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            START_ERROR="no 200 for GET $ready on 127.0.0.1:$CONF_HTTP_PORT or no answer on control 127.0.0.1:$CONF_CONTROL_PORT within 30 s"
        else
            wait "$SERVER_PID" 2>/dev/null
            local rc=$?
            if [ "$rc" -gt 128 ]; then
                START_ERROR="exited on signal $((rc - 128)) at startup"
            else
                START_ERROR="exited with status $rc at startup"
            fi
        fi
        log "$name: $START_ERROR; log tail:"
        tail -n 5 "$dir/runner.log" >&2 2>/dev/null
        stop_bg "$SERVER_PID"
        SERVER_PID=
        return 1
    fi
    return 0
}

# cores_note: one line saying what shares the machine's cores.
cores_note() {
    printf 'machine: %s cores, load average before run: %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
