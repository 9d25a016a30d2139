#!/usr/bin/env bash
# clang-tidy (checks in .clang-tidy) on every source in src/. Needs a meson build dir for
# compile_commands.json: .ci/tidy.sh [build-dir] (default: build-ci, then build). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
if [ -z "$dir" ]; then
    for d in build-ci build; do
        if [ -f "$d/compile_commands.json" ]; then dir=$d; break; fi
    done
fi
if [ -z "$dir" ] || [ ! -f "$dir/compile_commands.json" ]; then
    echo "tidy: no compile_commands.json (run meson setup first, or pass the build dir)" >&2
    exit 2
fi
tidy=$(command -v run-clang-tidy-14 || command -v run-clang-tidy)
# run-clang-tidy exits non-zero when a file has a finding (WarningsAsErrors in .clang-tidy). grep
# exits 1 when it prints nothing (a clean run), so only the first status counts.
set +e
# RapidJSON 1.1's member iterators trip clang's C++20 reversed-operator warning, which -Werror builds
# (CI's) would turn into a finding in every file that walks a JSON object; gcc builds the code clean.
"$tidy" -p "$dir" -j "$(nproc)" -quiet -extra-arg=-Wno-ambiguous-reversed-operator "$PWD/src/" 2>&1 |
    grep -v -E '^clang-tidy(-[0-9]+)? |^[0-9]+ warnings? generated|^Suppressed|^Use -header-filter|^$'
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
