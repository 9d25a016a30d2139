#!/usr/bin/env bash
# Publishing over HTTP, ZeroMQ PULL and ZeroMQ SUB: deliveries per second to SUBS (100) held
# streams, gripd and pushpin in one run (zmq_publish_bench.py says what it measures). Run under
# `nice -n 10`. Environment: TARGETS ("pushpin gripd"), SUBS (100), MESSAGES (1000), GRIPD_BIN.
set -u
cd "$(dirname "$0")"
for t in ${TARGETS:-pushpin gripd}; do
    GRIPD_TARGET=$t /usr/bin/python3 zmq_publish_bench.py
done
