#!/usr/bin/env bash
# Runs one example on loopback: gripd with gripd.conf and the example's routes, and its Node
# backend. Open http://127.0.0.1:7999/ then; Ctrl-C stops both.
#   bash test/examples/run.sh chat|leaderboard|todo|webhook-inbox|editor
# GRIPD=/path/to/gripd picks another binary (default: build/gripd of this tree).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-}
if [ -z "$name" ] || [ ! -f "$here/$name/server.js" ]; then
    echo "usage: $0 chat|leaderboard|todo|webhook-inbox|editor" >&2
    exit 2
fi
[ -d "$here/node_modules/@fanoutio/serve-grip" ] || (cd "$here" && npm ci --no-audit --no-fund)
route=$(grep -v '^#' "$here/$name/routes" | head -n 1)     # e.g. `* 127.0.0.1:3001`
port=${route##*127.0.0.1:}; port=${port%%,*}
"${GRIPD:-$here/../../build/gripd}" --config "$here/gripd.conf" --route "$route" &
gripd_pid=$!
trap 'kill "$gripd_pid" 2>/dev/null; wait "$gripd_pid" 2>/dev/null' EXIT
PORT=$port GRIP_CONTROL_URI=http://127.0.0.1:5561/ GRIP_SIG_KEY=changeme node "$here/$name/server.js"
