#!/usr/bin/env bash
# Build the website, executing every chapter at the scale in LENSBOX_SCALE (default: book).
# The build is strict: a failing cell or a Sphinx warning fails it. At smoke scale a cell that
# runs over 5 minutes fails, naming the cell (book/_ext/lensbox_book.py). It also writes one
# Colab-ready notebook per chapter to <site>/colab/ and the claims of every chapter to
# _build/claims/ (the "Paper vs this book" page). Output: _build/html/index.html
# Extra arguments go to `jupyter-book build`, e.g. `--path-output _build/smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export LENSBOX_SCALE=${LENSBOX_SCALE:-book}
start=$(date +%s)
jupyter-book build . -W -n --keep-going "$@"
echo "website built at scale $LENSBOX_SCALE in $(( $(date +%s) - start )) s: open _build/html/index.html" >&2
