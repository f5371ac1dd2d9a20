#!/usr/bin/env bash
# Every test: unit tests and every chapter through nbval (tests/ and book/, at smoke scale),
# then a strict website build at smoke scale (a failing cell or a Sphinx warning fails it).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x tests/test_optim.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export LENSBOX_SCALE=smoke
start=$(date +%s)
python -m pytest "$@"
echo "pytest took $(( $(date +%s) - start )) s" >&2
if [ $# -eq 0 ]; then
  start=$(date +%s)
  rm -rf _build/smoke
  jupyter-book build . --path-output _build/smoke -W -n --keep-going
  echo "strict smoke-scale website build took $(( $(date +%s) - start )) s" >&2
fi
