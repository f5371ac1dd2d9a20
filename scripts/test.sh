#!/usr/bin/env bash
# Every test, at smoke scale: a strict website build first (a failing cell or a Sphinx warning
# fails it; it also writes the Colab notebooks), then pytest: unit tests, every chapter via nbval,
# every generated Colab notebook run with plain nbconvert, and the site opened in headless
# Chromium (installed with apt-get when missing). Screenshots: _build/smoke/_build/screenshots/.
# Extra arguments go to pytest only (no website build), e.g. `bash scripts/test.sh -x tests/test_optim.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export LENSBOX_SCALE=smoke
if [ $# -gt 0 ]; then
  python -m pytest "$@"
  exit
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
  && ! command -v google-chrome >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests" >&2
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
start=$(date +%s)
rm -rf _build/smoke
bash scripts/build.sh --path-output _build/smoke
echo "strict smoke-scale website build took $(( $(date +%s) - start )) s" >&2
start=$(date +%s)
LENSBOX_SITE=_build/smoke/_build/html LENSBOX_REQUIRE_SITE=1 python -m pytest
echo "pytest took $(( $(date +%s) - start )) s" >&2
