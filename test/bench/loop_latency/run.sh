#!/bin/bash
# Loop latency while one connection floods: p50/p99/max of a control-API `GET /` and of another
# client's delivery, for gripd and pushpin side by side (see loop_latency.py for the scenarios).
#   TARGETS="gripd pushpin" SECONDS_PER_SCENARIO=5 FLOOD_SUBS=200 ITEMS=5000 BIG=$((64<<20)) \
#   SCENARIOS="idle publish wsframes download" FLOOD_NICE=0 SERVER_CPUS=0 CLIENT_CPUS=1 \
#   bash test/bench/loop_latency/run.sh
# SERVER_CPUS/CLIENT_CPUS pin the server and the load generator apart (as separate machines); gripd
# then runs one loop per CPU it may use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
export GRIPD_BIN=${GRIPD_BIN:-$repo/build/gripd}
for t in ${TARGETS:-gripd pushpin}; do
    GRIPD_TARGET=$t /usr/bin/python3 "$here/loop_latency.py"
done
