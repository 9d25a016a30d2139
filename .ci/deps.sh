#!/usr/bin/env bash
# Installs what gripd needs to build and test on Debian 12 (idempotent; run as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
PKGS=(meson ninja-build pkg-config g++ libuv1-dev libssl-dev rapidjson-dev libwslay-dev catch2 node-llhttp
      curl chromium python3-pytest python3-websockets python3-aiohttp python3-requests clang libclang-rt-14-dev
      clang-format clang-tidy openssl libhiredis-dev redis-server nginx libzmq3-dev python3-zmq)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The second WebSocket client library for the tests (Node's `ws`, pinned by package-lock.json).
# npm from Debian only when there is none: a machine may have Node (and npm) from elsewhere, which
# Debian's npm package would conflict with.
if ! command -v npm >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm
fi
if command -v npm >/dev/null 2>&1 && [ ! -d test/integration/node/node_modules/ws ]; then
    (cd test/integration/node && npm ci --silent --no-audit --no-fund) || echo "npm ci failed: the Node ws check will be skipped"
fi
