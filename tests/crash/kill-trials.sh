#!/usr/bin/env bash
# Crash-safety trials (issue [10]): `kill -9` a build at a random moment,
# rerun it, and check that every rerun succeeds and that no temporary file
# or tree of a dead process (`.tmp-*`) is left in the cache or dist/.
#
# It is a measurement, not a unit test (cache.rs has the test of the
# cleanup itself). It works in a scratch cache that starts with the usual
# cache's verified downloads, tools, OpenSSL and dependency builds
# (hard links), and removes the CPython and source entries before each
# trial so that the kill lands in real work: extraction, patching,
# configure, make, install, post-install or packaging.
#
#   tests/crash/kill-trials.sh [TRIALS=10] [MAX_SECONDS=150] [xtask build args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-10}
max=${2:-150}
shift $(( $# < 2 ? $# : 2 ))
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--python 2.7 --profile quick)
main_cache=${TLSFORGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tlsforge}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tlsforge-kill-trials.XXXXXX")
export TLSFORGE_CACHE=$scratch/cache TLSFORGE_DIST=$scratch/dist
mkdir -p "$TLSFORGE_CACHE" "$TLSFORGE_DIST"
for stage in downloads apt tools openssl deps; do
  [ -d "$main_cache/$stage" ] && cp -al "$main_cache/$stage" "$TLSFORGE_CACHE/$stage"
done
cargo build -q -p xtask
xtask=$PWD/target/debug/xtask
"$xtask" build "${args[@]}" >"$scratch/warm.log" 2>&1 || { echo "warm-up build failed: $scratch/warm.log"; exit 1; }

leftovers() { find "$TLSFORGE_CACHE" "$TLSFORGE_DIST" -maxdepth 3 -name '.tmp*' 2>/dev/null; }
failed=0
for i in $(seq 1 "$trials"); do
  rm -rf "$TLSFORGE_CACHE"/cpython "$TLSFORGE_CACHE"/src "$TLSFORGE_DIST"/*
  at=$(( RANDOM % max + 1 ))
  setsid "$xtask" build "${args[@]}" >"$scratch/trial-$i.log" 2>&1 &
  pid=$!
  sleep "$at"
  stage=$(grep -o 'cpython [0-9.]*: [a-z ,()0-9]*' "$scratch/trial-$i.log" | tail -1 || true)
  # the whole process group: xtask, make, the compilers
  kill -9 -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  debris=$(leftovers | wc -l)
  start=$(date +%s)
  if "$xtask" build "${args[@]}" >"$scratch/rerun-$i.log" 2>&1; then rerun=ok; else rerun=FAILED; failed=$((failed+1)); fi
  took=$(( $(date +%s) - start ))
  left=$(leftovers | wc -l)
  freed=$(grep -o 'removed [0-9]* temporary.*' "$scratch/rerun-$i.log" || echo "nothing to remove")
  [ "$left" -eq 0 ] || failed=$((failed+1))
  printf 'trial %2d: killed at %3ds (last finished stage: %s); %d temporaries left by the kill; rerun %s in %ds: %s; afterwards %d left\n' \
    "$i" "$at" "${stage:-before CPython}" "$debris" "$rerun" "$took" "$freed" "$left"
done
echo "$trials trials, $failed failure(s); logs in $scratch"
[ "$failed" -eq 0 ] && rm -rf "$scratch"
exit $(( failed > 0 ))
