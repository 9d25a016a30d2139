#!/bin/sh
# gripd under callgrind, for stats_cost_bench.py MEASURE=callgrind (GRIPD_BIN=this script):
# GRIPD_REAL_BIN is the binary, CG_DIR where the profiles go (one file per dump).
exec valgrind --tool=callgrind --callgrind-out-file="${CG_DIR:-/tmp}/cg.%p" --dump-instr=no \
    "${GRIPD_REAL_BIN:-$(dirname "$0")/../../build/gripd}" "$@"
