#!/usr/bin/env bash
# Install the third-party servers that tests-integration/real_servers runs crucible against, each in
# its own virtual environment, so none of them enters uv.lock:
#
#   scripts/real-servers.sh [install]   make (or reuse) every venv and the tiny model
#   scripts/real-servers.sh env         print the `export` lines the tests read
#   scripts/real-servers.sh test [ARGS] install, then run tests-integration/real_servers as CI
#                                       does (servers required; ARGS go to pytest)
#
# Everything lives under $CRUCIBLE_REAL_SERVERS_HOME (default ~/.cache/crucible-ci/real-servers,
# outside the work tree, so a fresh clone in CI reuses what an earlier run on the machine made):
#   litellm/       the LiteLLM proxy (requirements/litellm.txt)
#   sdk/           the official openai, anthropic and google-genai SDKs (CRUCIBLE_SDK_PYTHON)
#   transformers/  CPU torch from the machine's wheel store (pip), then transformers[serving]
#   tiny-gpt2/     a 2-layer GPT-2 and a tokenizer trained here (tiny_model.py), no download
# CI (.ci/run) installs here and runs the suite within scripts/test's integration step.
# Each part carries a stamp (a hash of its requirements and the Python version); a part whose stamp
# matches is skipped, so a second run takes about a second. nginx is Debian's nginx-light (with its
# echo module), installed by .ci/run. The servers themselves are started on free ports by the
# pytest fixtures in tests-integration/real_servers/conftest.py, once per test session.
source "$(dirname "$0")/_bootstrap.sh"
HERE="$ROOT/tests-integration/real_servers"
HOME_DIR="${CRUCIBLE_REAL_SERVERS_HOME:-$HOME/.cache/crucible-ci/real-servers}"
PY_VERSION="${CRUCIBLE_REAL_SERVERS_PYTHON:-3.11}"
mode="${1:-install}"

print_env() {
  echo "export CRUCIBLE_REAL_SERVERS_HOME=$HOME_DIR"
  echo "export CRUCIBLE_SDK_PYTHON=$HOME_DIR/sdk/bin/python"
}

stamp_of() {  # the files that decide what a part holds, and the Python version
  { cat "$@"; echo "python $PY_VERSION"; } | sha256sum | cut -c1-16
}

fresh() {  # fresh DIR STAMP: DIR was built with STAMP
  [ -f "$1/.crucible-stamp" ] && [ "$(cat "$1/.crucible-stamp")" = "$2" ]
}

venv_with_uv() {  # venv_with_uv NAME: a uv-made venv holding requirements/NAME.txt
  local dir="$HOME_DIR/$1" req="$HERE/requirements/$1.txt" stamp
  stamp="$(stamp_of "$req")"
  fresh "$dir" "$stamp" && return 0
  rm -rf "$dir"
  $UV venv --quiet --python "$PY_VERSION" "$dir"
  VIRTUAL_ENV="$dir" $UV pip install --quiet -r "$req"
  echo "$stamp" >"$dir/.crucible-stamp"
}

venv_transformers() {  # pip (not uv) sees the wheel store that holds the CPU torch build
  local dir="$HOME_DIR/transformers" req="$HERE/requirements/transformers.txt" stamp
  stamp="$(stamp_of "$req")"
  fresh "$dir" "$stamp" && return 0
  rm -rf "$dir"
  $UV venv --quiet --seed --python "$PY_VERSION" "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0+cpu"
  VIRTUAL_ENV="$dir" $UV pip install --quiet -r "$req"
  echo "$stamp" >"$dir/.crucible-stamp"
}

tiny_model() {
  local dir="$HOME_DIR/tiny-gpt2" stamp
  stamp="$(stamp_of "$HERE/tiny_model.py" "$HERE/requirements/transformers.txt")"
  fresh "$dir" "$stamp" && return 0
  rm -rf "$dir"
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 \
    "$HOME_DIR/transformers/bin/python" "$HERE/tiny_model.py" build "$dir" >/dev/null 2>&1
  echo "$stamp" >"$dir/.crucible-stamp"
}

run_part() {  # run_part NAME COMMAND...: log to $HOME_DIR/NAME.log, say how long it took
  local name="$1" start=$SECONDS
  shift
  if "$@" >"$HOME_DIR/$name.log" 2>&1; then
    echo "real-servers: $name ready in $((SECONDS - start)) s" >&2
  else
    echo "real-servers: $name FAILED after $((SECONDS - start)) s; its log:" >&2
    cat "$HOME_DIR/$name.log" >&2
    return 1
  fi
}

install() {
  local start=$SECONDS failed=0 pids=()
  mkdir -p "$HOME_DIR"
  # outside the workspace: its [tool.uv] settings (exclude-newer) are not for these
  (
    cd "$HOME_DIR"
    # The three venvs in parallel (downloads overlap), then the model, which needs torch.
    run_part litellm venv_with_uv litellm & pids+=($!)
    run_part sdk venv_with_uv sdk & pids+=($!)
    run_part transformers venv_transformers & pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    if [ -x "$HOME_DIR/transformers/bin/python" ]; then
      run_part tiny-gpt2 tiny_model || failed=1
    fi
    exit "$failed"
  ) || failed=1
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "real-servers: nginx is missing (apt-get install nginx-light)" >&2
    failed=1
  fi
  echo "real-servers: installed in $((SECONDS - start)) s under $HOME_DIR" >&2
  return "$failed"
}

case "$mode" in
  env)
    print_env
    ;;
  install)
    install
    ;;
  test)
    shift
    install || echo "real-servers: the install failed; the tests will say what is missing" >&2
    eval "$(print_env)"
    export CRUCIBLE_REQUIRE_REAL_SERVERS=1
    start=$SECONDS
    status=0
    $UV run --locked --all-packages --all-extras \
      pytest tests-integration/real_servers -p no:cacheprovider -q "$@" || status=$?
    echo "real-servers: the suite ran in $((SECONDS - start)) s (servers started included)" >&2
    exit "$status"
    ;;
  *)
    echo "usage: scripts/real-servers.sh [install|env|test [pytest args]]" >&2
    exit 2
    ;;
esac
