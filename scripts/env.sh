# Sourced by the other scripts: use the active virtual environment, or create .venv, and install
# lensbox with the pinned tool chain once per change of requirements.txt or pyproject.toml.
PY=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "Creating the virtual environment .venv with $($PY --version)" >&2
    "$PY" -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
stamp="$VIRTUAL_ENV/.lensbox-$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing requirements.txt and lensbox into $VIRTUAL_ENV" >&2
  python -m pip install -q --upgrade pip
  python -m pip install -q -r requirements.txt -e .
  touch "$stamp"
fi
