#!/usr/bin/env bash
# crucible-lora's tests WITH the local adapter's stack (torch CPU, transformers, peft).
#
#   packages/crucible-lora/scripts/test-local.sh [pytest args]
#
# 1. `uv venv --seed` makes a dedicated environment (default .venvs/lora-torch; override with
#    CRUCIBLE_LORA_TORCH_VENV) that has pip in it;
# 2. `uv sync --locked --inexact` installs crucible-lora, its declared dependencies, all its extras and
#    the dev group from uv.lock (inexact, so pip's torch and pip itself survive later syncs), then
#    crucible-bench, which only the SciFact example (examples/scifact_lora.py) uses, and
#    crucible-ensemble, which only the adapters-as-members test uses;
# 3. pip installs scripts/local-requirements.txt: the CPU torch wheel from the machine's wheel store
#    (pip is configured to search it; uv is not) and peft from the registry;
# 4. pytest runs the package's tests with CRUCIBLE_REQUIRE_TORCH=1, so a LocalAdapter test that
#    would skip for want of torch fails instead.
# uv.lock never contains torch, and `uv sync --all-packages --all-extras` never installs it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
cd "$ROOT"
UV="${UV:-uv}"
VENV="${CRUCIBLE_LORA_TORCH_VENV:-$ROOT/.venvs/lora-torch}"
start=$SECONDS

if [ ! -x "$VENV/bin/python" ]; then
  $UV venv --quiet --seed --python 3.11 "$VENV"
fi
UV_PROJECT_ENVIRONMENT="$VENV" $UV sync --quiet --locked --inexact \
  --package crucible-lora --all-extras --group dev
# crucible-bench for the SciFact example's paired comparison (tests/test_scifact_example.py). It is
# not a dependency of crucible-lora, not even an extra: lora sits beside bench, not above it.
UV_PROJECT_ENVIRONMENT="$VENV" $UV sync --quiet --locked --inexact \
  --package crucible-bench --no-default-groups
# crucible-ensemble for the test that votes with LoRA adapters as members
# (tests/test_adapter_model.py): again beside lora, not below it.
UV_PROJECT_ENVIRONMENT="$VENV" $UV sync --quiet --locked --inexact \
  --package crucible-ensemble --no-default-groups
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  $UV pip install --quiet --python "$VENV/bin/python" pip
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$HERE/local-requirements.txt"
echo "test-local: environment ready in $((SECONDS - start)) s ($VENV)"

# Tiny models gain nothing from a second thread, and on a busy machine two threads per
# process made a step 20x slower (measured): default to one.
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" CRUCIBLE_REQUIRE_TORCH=1 "$VENV/bin/python" -m pytest packages/crucible-lora \
  -p no:cacheprovider -q "$@"
echo "test-local: finished in $((SECONDS - start)) s"
