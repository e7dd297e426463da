# Sourced by the scripts: finds uv, installing it with pip when missing, and exports UV.
# Works on a fresh machine with only Python and pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
if command -v uv >/dev/null 2>&1; then
  UV="uv"
elif "$PYTHON" -m uv --version >/dev/null 2>&1; then
  UV="$PYTHON -m uv"
else
  echo "uv not found: installing it with pip" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv \
    || "$PYTHON" -m pip install --quiet --disable-pip-version-check --user uv
  UV="$PYTHON -m uv"
fi
export UV
