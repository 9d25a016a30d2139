#!/bin/bash
# Soak benchmark: SOAK_MINUTES (default 30; SOAK_SECONDS overrides) of churn against gripd (or
# GRIPD_TARGET=pushpin): stream holds, WebSockets on the test target, long-polls, short requests to
# a backend that sometimes fails, steady publishes. Samples RSS, fds and deliveries into a CSV
# (SOAK_CSV, default soak-<target>.csv), checks every item reached every live subscriber and that
# the process never died, then prints an ASCII chart of RSS over time (and writes a PNG next to the
# CSV if gnuplot is installed). Exit status 0 only if every check passed.
#   SOAK_MINUTES=10 bash test/bench/soak.sh
#   SOAK_SECONDS=20 bash test/bench/soak.sh        # CI-sized
# Rates: CHANNELS, STREAMS, WEBSOCKETS, POLLS, REQ_RATE (/s), PUB_MS, SAMPLE_S (see soak/soak.py).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export GRIPD_BIN=${GRIPD_BIN:-$repo/build/gripd}
export GRIPD_TARGET=${GRIPD_TARGET:-gripd}
export SOAK_SECONDS=${SOAK_SECONDS:-$(( ${SOAK_MINUTES:-30} * 60 ))}
if [ "$SOAK_SECONDS" -le 60 ]; then
    export SAMPLE_S=${SAMPLE_S:-1} STREAMS=${STREAMS:-40} WEBSOCKETS=${WEBSOCKETS:-40} POLLS=${POLLS:-20}
fi
export SOAK_CSV=${SOAK_CSV:-$PWD/soak-$GRIPD_TARGET.csv}
/usr/bin/python3 "$here/soak/soak.py"
rc=$?
/usr/bin/python3 "$here/soak/chart.py" "$SOAK_CSV"
if command -v gnuplot >/dev/null; then
    png=${SOAK_CSV%.csv}.png
    gnuplot -e "set terminal png size 900,500; set output '$png'; set datafile separator ',';
        set xlabel 'seconds'; set ylabel 'RSS MiB'; set yrange [0:*]; set y2range [0:*]; set y2label 'fds'; set y2tics; set key top left;
        plot '$SOAK_CSV' using 1:(\$2/1024) skip 1 with lines title 'RSS (MiB)',
             '' using 1:3 skip 1 axes x1y2 with lines title 'open fds'" && echo "chart: $png"
fi
exit $rc
