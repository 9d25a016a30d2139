#!/usr/bin/env bash
# What emitting stats costs the delivery path (issue 14 point 4), in one run:
#  1. CPU time per delivery, pushpin and gripd side by side (stats_spec unset / set with nobody
#     subscribed / a subscriber reading every event), rounds interleaved: skewed by the machine's
#     load, so read the medians with their ranges;
#  2. gripd's exact instructions per delivery under callgrind (1 and 2 workers), which the load
#     cannot skew.
# Run as: flock /tmp/bench.lock nice -n -15 bash test/bench/stats_cost_bench.sh
set -u
cd "$(dirname "$0")"
bin=${GRIPD_BIN:-$PWD/../../build/gripd}
for t in ${TARGETS:-pushpin gripd}; do
    GRIPD_TARGET=$t GRIPD_BIN=$bin ROUNDS=${ROUNDS:-9} MESSAGES=${MESSAGES:-2000} /usr/bin/python3 stats_cost_bench.py
done
cg=$(mktemp -d)
for w in 1 2; do
    echo "workers=$w (callgrind)"
    GRIPD_BIN=$PWD/callgrind_gripd.sh GRIPD_REAL_BIN=$bin CG_DIR=$cg MEASURE=callgrind GRIPD_TEST_STARTUP_TIMEOUT=120 \
        WORKERS=$w ROUNDS=5 MESSAGES=300 /usr/bin/python3 stats_cost_bench.py
done
rm -rf "$cg"
