#!/usr/bin/env bash
# Every test, at smoke scale, each chapter executed once per purpose:
#   1. the strict website build executes every chapter (a failing cell or a Sphinx warning fails
#      it) and writes the Colab notebooks;
#   2. pytest, on 2 workers (pytest-xdist): the unit tests; every generated Colab notebook run by
#      nbval, cell by cell, in a plain Jupyter kernel in a folder with nothing else (this is how
#      the chapters run as tests: one run checks the chapter and its Colab version); every
#      chapter's `paper` code path on small real-format files; and the built site opened in
#      headless Chromium (installed with apt-get when missing). Screenshots:
#      _build/smoke/_build/screenshots/.
# JAX's persistent compilation cache (_build/jax-cache, kept between runs) is shared by all of
# them, so a program compiled once is not compiled again by the next process that runs it.
#
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --unit     the quick loop: unit tests only, no chapter executed
#   bash scripts/test.sh ARGS...    pytest ARGS only (no website build),
#                                   e.g. `bash scripts/test.sh -x tests/engine/test_optim.py`
#                                   or one chapter through nbval: `... book/smoothers.ipynb`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export LENSBOX_SCALE=smoke
export JAX_COMPILATION_CACHE_DIR="$PWD/_build/jax-cache"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
# Smoke-sized tests spend their time compiling, not computing: without XLA's backend (LLVM)
# optimisation, compiling takes a fifth less (measured: unit tests 160 s -> 127 s on 2 cores).
# The website build (scripts/build.sh alone) keeps XLA's default.
export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_backend_optimization_level=0"
# A notebook's cells stay on one worker (conftest.py), as do the browser tests (one rendering).
PARALLEL=(-n "${LENSBOX_TEST_WORKERS:-2}" --dist loadgroup)
if [ "${1:-}" = "--unit" ]; then
  shift
  exec python -m pytest "${PARALLEL[@]}" -m "not chapters" tests "$@"
fi
if [ $# -gt 0 ]; then
  exec python -m pytest "$@"
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
  && ! command -v google-chrome >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests" >&2
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
rm -rf _build/smoke
start=$(date +%s)
# The chapters are executed side by side, one per core (book/_ext/lensbox_book.py).
LENSBOX_PARALLEL_EXECUTION=1 bash scripts/build.sh --path-output _build/smoke
echo "strict smoke-scale website build took $(( $(date +%s) - start )) s" >&2
start=$(date +%s)
site=_build/smoke/_build/html
python scripts/colab_for_nbval.py "$site" _build/smoke/colab-nbval
LENSBOX_SITE=$site LENSBOX_REQUIRE_SITE=1 python -m pytest "${PARALLEL[@]}" \
  tests _build/smoke/colab-nbval
echo "pytest took $(( $(date +%s) - start )) s" >&2
