#!/usr/bin/env bash
# The engine benchmark with neural-tangents timed in the same run (line (a') of benchmarks/bench.py).
# neural-tangents 0.6.5 imports only with JAX <= 0.4.30, so it gets its own virtual environment,
# .venv-nt (made once, needs the package registry); lensbox runs in .venv as usual and sends the
# block's parameters and rows to it. Extra arguments go to `python -m benchmarks.bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ ! -x .venv-nt/bin/python ] || ! .venv-nt/bin/python -c "import neural_tangents" 2>/dev/null; then
  echo "Creating .venv-nt with neural-tangents 0.6.5 and JAX 0.4.30" >&2
  python3 -m venv .venv-nt
  .venv-nt/bin/python -m pip install -q "jax[cpu]==0.4.30" "neural-tangents==0.6.5"
fi
python -m benchmarks.bench --neural-tangents .venv-nt/bin/python "$@"
