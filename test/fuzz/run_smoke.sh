#!/bin/sh
# Builds the libFuzzer targets with clang and runs each one for N seconds (default 30) from its seed
# corpus, with its dictionary (HTTP for the HTTP codecs, json.dict for publish bodies, GRIP
# instructions and core::json, ws.dict for WebSocket-over-HTTP events and control messages, none for
# binary frames).
# New inputs go to a temporary directory, never into the tree.
# Usage: test/fuzz/run_smoke.sh [seconds] [build-dir]    (exit status non-zero on any finding)
set -eu

seconds=${1:-30}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$src/build-fuzz}
targets="request_parser response_parser proxy_request publish instruct ws_frame ws_events ws_control json jsonp"

if [ ! -f "$build/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup "$build" "$src" -Dfuzz=true
fi
ninja_targets=""
for t in $targets; do ninja_targets="$ninja_targets test/fuzz/${t}_fuzz"; done
# shellcheck disable=SC2086
ninja -C "$build" -j"${JOBS:-2}" $ninja_targets

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dict_args TARGET: the -dict option for TARGET, if it has a dictionary.
dict_args() {
    case $1 in
    request_parser | response_parser | proxy_request) echo "-dict=$src/test/fuzz/http.dict" ;;
    publish | instruct | json | jsonp) echo "-dict=$src/test/fuzz/json.dict" ;;
    ws_events | ws_control) echo "-dict=$src/test/fuzz/ws.dict" ;;
    esac
}

status=0
for t in $targets; do
    mkdir -p "$work/$t"
    echo "== $t: ${seconds}s"
    # shellcheck disable=SC2046
    if ! (cd "$work" && "$build/test/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            $(dict_args "$t") -print_final_stats=1 "$work/$t" "$src/test/fuzz/corpus/$t"); then
        echo "!! $t found a problem; reproducer in $work (copied to $build/fuzz-findings/$t)"
        mkdir -p "$build/fuzz-findings/$t"
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$build/fuzz-findings/$t/" 2>/dev/null || true
        status=1
    fi
done
exit $status
