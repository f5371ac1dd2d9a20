#!/usr/bin/env bash
# Build the website, executing every chapter at the scale in LENSBOX_SCALE (default: book).
# The build is strict: a failing cell or a Sphinx warning fails it. Output: _build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export LENSBOX_SCALE=${LENSBOX_SCALE:-book}
start=$(date +%s)
jupyter-book build . -W -n --keep-going
echo "website built at scale $LENSBOX_SCALE in $(( $(date +%s) - start )) s: open _build/html/index.html" >&2
