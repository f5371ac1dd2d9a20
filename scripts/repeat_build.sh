#!/usr/bin/env bash
# Run the strict smoke-scale website build N times in a row (default 10), to show that it never
# hangs: each build must finish within LIMIT seconds (default 1200; a stuck cell fails after
# 300 s at smoke scale, naming the cell). Prints one line per build and a summary.
# Usage: bash scripts/repeat_build.sh [N] [LIMIT]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export LENSBOX_SCALE=smoke
n=${1:-10}
limit=${2:-1200}
ok=0
for i in $(seq 1 "$n"); do
  rm -rf _build/repeat
  start=$(date +%s)
  timeout "$limit" jupyter-book build . --path-output _build/repeat -W -n --keep-going \
    >"_build/repeat-$i.log" 2>&1
  rc=$?
  echo "build $i/$n: exit $rc after $(( $(date +%s) - start )) s (log: _build/repeat-$i.log)"
  [ "$rc" -eq 0 ] && ok=$((ok + 1))
done
echo "$ok of $n smoke builds succeeded, none waited past the $limit s limit unless its exit is 124"
[ "$ok" -eq "$n" ]
