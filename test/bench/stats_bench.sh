#!/usr/bin/env bash
# What the stats socket costs the delivery path: deliveries per second to SUBS (100) held streams,
# publishing over the ZeroMQ PULL input (MODES), with `stats_spec` unset, set with nobody
# subscribed, and set with a subscriber reading every event; gripd and pushpin in one run.
# Run under `nice -n -15`. Environment: TARGETS ("pushpin gripd"), SUBS, MESSAGES (2000), MODES (pull).
set -u
cd "$(dirname "$0")"
for t in ${TARGETS:-pushpin gripd}; do
    for s in unset set listening; do
        GRIPD_TARGET=$t STATS=$s MODES="${MODES:-pull}" MESSAGES="${MESSAGES:-2000}" /usr/bin/python3 zmq_publish_bench.py
    done
done
