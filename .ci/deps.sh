#!/usr/bin/env bash
# Installs what gripd needs to build and test on Debian 12 (idempotent). Run it as root (a bare
# Debian has no sudo) or as a user with sudo: it calls sudo only when it is not root.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps.sh: not root and sudo is not installed: run it as root (su -c 'bash .ci/deps.sh')" >&2
        exit 1
    fi
    SUDO="sudo"
fi
PKGS=(meson ninja-build pkg-config g++ libuv1-dev libssl-dev rapidjson-dev libwslay-dev catch2 node-llhttp
      curl chromium python3-pytest python3-pytest-xdist python3-websockets python3-aiohttp python3-requests clang libclang-rt-14-dev
      clang-format clang-tidy openssl libhiredis-dev redis-server nginx groff-base libnghttp2-dev nghttp2-client
      python3-h2 libzmq3-dev python3-zmq haproxy nftables redis-sentinel redis-tools)
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
# The examples' backends (Fanout's @fanoutio/serve-grip and @fanoutio/grip, Express), pinned by
# test/examples/package-lock.json.
if command -v npm >/dev/null 2>&1 && [ ! -d test/examples/node_modules/@fanoutio/serve-grip ]; then
    (cd test/examples && npm ci --silent --no-audit --no-fund) || echo "npm ci failed: the examples' tests will be skipped"
fi
