# Sourced by the scripts: finds uv, installing it when missing, and exports UV and ROOT.
# Works on a fresh machine with only Python and pip, including a distribution's Python that refuses
# `pip install` into itself (PEP 668, "externally-managed-environment"): uv then goes into a private
# virtual environment under the user's cache, and the system Python is never modified.
set -euo pipefail
ORIGINAL_PWD="$PWD"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
BOOTSTRAP_DIR="${CRUCIBLE_BOOTSTRAP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/crucible/bootstrap}"

_find_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV="uv"
  elif [ -x "$BOOTSTRAP_DIR/venv/bin/uv" ]; then
    UV="$BOOTSTRAP_DIR/venv/bin/uv"
  elif [ -x "$BOOTSTRAP_DIR/target/bin/uv" ]; then
    UV="$BOOTSTRAP_DIR/target/bin/uv"
  elif "$PYTHON" -m uv --version >/dev/null 2>&1; then
    UV="$PYTHON -m uv"
  else
    return 1
  fi
}

_install_uv() {
  echo "uv not found: installing it into $BOOTSTRAP_DIR (private; the system Python is not touched)" >&2
  mkdir -p "$BOOTSTRAP_DIR"
  # 1. A private virtual environment with its own pip (the usual case).
  if "$PYTHON" -m venv "$BOOTSTRAP_DIR/venv" >/dev/null 2>&1 \
    && "$BOOTSTRAP_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check uv; then
    UV="$BOOTSTRAP_DIR/venv/bin/uv"
    return 0
  fi
  rm -rf "$BOOTSTRAP_DIR/venv"
  # 2. No working venv (e.g. Debian without python3-venv): pip installs uv into a private folder,
  #    which PEP 668 allows, since it does not write into the interpreter's own site-packages.
  if "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$BOOTSTRAP_DIR/target" uv; then
    UV="$BOOTSTRAP_DIR/target/bin/uv"
    return 0
  fi
  cat >&2 <<MSG
error: could not install uv: $PYTHON has neither a working 'venv' module nor pip.
Install one of them (Debian/Ubuntu: 'apt install python3-venv' or 'apt install python3-pip'),
or install uv yourself (https://docs.astral.sh/uv/getting-started/installation/), then run this again.
MSG
  exit 1
}

_find_uv || _install_uv
export UV
