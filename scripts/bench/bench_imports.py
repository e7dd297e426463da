"""Benchmark import time: `import crucible_bench` against `import scipy.stats` and `import pingouin`.

    uv run --package crucible-bench --group bench python scripts/bench/bench_imports.py \
        [--runs 7] [--modules crucible_bench crucible_core crucible ...] [--first-use STATEMENT ...]

Each statement runs in a fresh interpreter, `--runs` times, and the median wall time of the
statement is reported three ways:

- bytecode cached: every `.pyc` exists (a warm-up run writes them first), the usual case;
- own code not cached: the package's own modules are compiled from source while everything else
  (the standard library, numpy, attrs, ...) comes from bytecode: the state after `pip install` of
  the package without precompiling, or after editing its source. Done with a private
  `PYTHONPYCACHEPREFIX`: one warm-up run fills it with the `.pyc` of every module the statement
  loads, then the mirror of the package's own directories is deleted from it, and the timed runs
  use it with `PYTHONDONTWRITEBYTECODE=1` so it stays that way. "Own" is every installed
  `crucible*` package for crucible's statements, `scipy` for scipy.stats, `pingouin` for pingouin.
  The script checks that the prefix holds no `.pyc` of the own packages and some of the others;
- nothing cached: `PYTHONPYCACHEPREFIX` points at an empty directory (and
  `PYTHONDONTWRITEBYTECODE=1`), so every module, numpy and the standard library included, is
  compiled from source, as on the first import after an install that did not precompile anything.

`import crucible_bench` loads its tests on first use (PEP 562), so the statements of `--first-use`
(by default `from crucible_bench import compare`, which loads nearly all of them, numpy and attrs)
are timed too: that is what a script pays before its first test; scipy.stats and pingouin load
everything at import, so their import is their first use.

For each statement, one `python -X importtime` run is summarised: its cumulative time, the
top-level packages that cost most (self time summed per package), and whether it loaded a module
`import crucible_bench` must not load (`ssl`, `aiohttp`, `importlib.metadata`,
`crucible_core.models`, `scipy`, numpy, attrs). Target (issue 22): `import crucible_bench` <= 0.2 s
with bytecode cached and with its own code not cached. The machine is shared and noisy: CPU time
(`time.process_time`) is printed beside wall time, since on a loaded machine the wall time mostly
measures waiting for a core; compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PEERS = ("import scipy.stats", "import pingouin")
MUST_NOT_LOAD = (
    "ssl",
    "aiohttp",
    "importlib.metadata",
    "crucible_core.models",
    "scipy",
    "numpy",
    "attrs",
)
MODES = ("cached", "own not cached", "nothing cached")

_TIMED = """
import sys, time
t, c = time.perf_counter(), time.process_time()
{statement}
took, cpu = time.perf_counter() - t, time.process_time() - c
print(took, cpu, *[name in sys.modules for name in {names!r}])
"""

_OWN_DIRS = """
import importlib.util, json, pkgutil, sys
names = {names!r}
if names is None:  # every installed crucible package
    names = [m.name for m in pkgutil.iter_modules() if m.name.split("_")[0] == "crucible"]
dirs = []
for name in names:
    spec = importlib.util.find_spec(name)
    dirs += list(spec.submodule_search_locations or []) if spec else []
print(json.dumps(dirs))
"""


def own_dirs(statement: str) -> list[Path]:
    """The source directories of the packages whose code is "own" for `statement`."""
    module = statement.split()[1]
    names = None if module.startswith("crucible") else [module.split(".")[0]]
    out = subprocess.run(
        [sys.executable, "-c", _OWN_DIRS.format(names=names)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [Path(d) for d in json.loads(out)]


def _mirror(prefix: Path, source_dir: Path) -> list[Path]:
    """Where `PYTHONPYCACHEPREFIX=prefix` puts the `.pyc` of `source_dir` (as given and resolved)."""
    return [
        prefix / source_dir.relative_to("/"),  # find_spec gives absolute paths
        prefix / source_dir.resolve().relative_to("/"),
    ]


def _pycs(path: Path) -> int:
    return sum(1 for _ in path.rglob("*.pyc")) if path.exists() else 0


def _env(prefix: str) -> dict[str, str]:
    """Bytecode read from `prefix` only, and none written."""
    return dict(os.environ, PYTHONPYCACHEPREFIX=prefix, PYTHONDONTWRITEBYTECODE="1")


def _run(
    statement: str, env: dict[str, str], *, importtime: bool = False
) -> tuple[str, str]:
    args = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    args += ["-c", _TIMED.format(statement=statement, names=MUST_NOT_LOAD)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return done.stdout, done.stderr


def own_uncached_prefix(statement: str, prefix: Path) -> tuple[int, int]:
    """Fill `prefix` with the bytecode of all `statement` loads except its own packages'.

    Returns the numbers of `.pyc` files left in `prefix` and of own ones (0, or the mode is wrong).
    """
    env = _env(str(prefix))
    env.pop("PYTHONDONTWRITEBYTECODE")
    _run(statement, env)
    own = own_dirs(statement)
    for source_dir in own:
        for mirror in _mirror(prefix, source_dir):
            shutil.rmtree(mirror, ignore_errors=True)
    left_own = sum(_pycs(m) for d in own for m in _mirror(prefix, d))
    return _pycs(prefix), left_own


def timed(statement: str, mode: str, runs: int) -> tuple[float, float, dict[str, bool]]:
    """Median wall and CPU seconds of `statement` in fresh interpreters; what it loaded.

    Every mode reads bytecode from a private `PYTHONPYCACHEPREFIX` (warmed, warmed but for the
    own packages, empty), so the three differ only in what is compiled.
    """
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "cached":
            env = _env(tmp)
            env.pop("PYTHONDONTWRITEBYTECODE")
            _run(statement, env)  # writes the .pyc files
        elif mode == "own not cached":
            kept, left_own = own_uncached_prefix(statement, Path(tmp))
            if left_own or not kept:
                raise RuntimeError(
                    f"{statement}: the prefix holds {left_own} own .pyc and {kept} in all"
                )
        env = _env(tmp)
        walls, cpus = [], []
        loaded: dict[str, bool] = {}
        for _ in range(runs):
            out, _ = _run(statement, env)
            took, cpu, *flags = out.split()
            walls.append(float(took))
            cpus.append(float(cpu))
            loaded = dict(zip(MUST_NOT_LOAD, (f == "True" for f in flags), strict=True))
    return statistics.median(walls), statistics.median(cpus), loaded


def summary(statement: str, top: int = 6) -> tuple[float, list[tuple[str, float]]]:
    """One `-X importtime` run (bytecode cached): seconds, costliest top-level packages.

    The seconds are the self times summed over every module the statement loaded (the modules of
    interpreter start-up, as `-c pass` loads them, are left out): nesting is no guide here, since
    a module a PEP 562 `__getattr__` imports is logged at the top level.
    """
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(tmp)
        env.pop("PYTHONDONTWRITEBYTECODE")
        _run(statement, env)  # the prefix holds every .pyc
        _, startup = _run("pass", env, importtime=True)
        _, err = _run(statement, env, importtime=True)
    skip = {name for _, name in _importtime(startup)}
    per_package: dict[str, float] = defaultdict(float)
    for self_s, name in _importtime(err):
        if name not in skip:
            per_package[name.split(".")[0]] += self_s
    ranked = sorted(per_package.items(), key=lambda kv: -kv[1])[:top]
    return sum(per_package.values()), ranked


def _importtime(stderr: str) -> list[tuple[float, str]]:
    """(self seconds, module) per line of `-X importtime` output."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _, name = line.split(":", 1)[1].split("|")
            rows.append((int(self_us) / 1e6, name.strip()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--modules", nargs="*", default=["crucible_bench"])
    parser.add_argument(
        "--first-use", nargs="*", default=["from crucible_bench import compare"]
    )
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, median of {args.runs} fresh interpreters "
        f"(bytecode cached; {max(3, args.runs // 2)} otherwise), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    ours = [f"import {m}" for m in args.modules] + list(args.first_use)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for statement in [*ours, *PEERS]:
        row: dict[str, tuple[float, float]] = {}
        try:
            for mode in MODES:
                runs = args.runs if mode == "cached" else max(3, args.runs // 2)
                wall, cpu, loaded = timed(statement, mode, runs)
                row[mode] = (wall, cpu)
        except subprocess.CalledProcessError as err:
            print(f"{statement:36s} not runnable here: {err.stderr.strip()[-200:]}")
            continue
        results[statement] = row
        total, ranked = summary(statement)
        print(
            f"{statement:36s} "
            + "   ".join(
                f"{mode} {wall:6.3f} s (CPU {cpu:.3f})"
                for mode, (wall, cpu) in row.items()
            )
        )
        print(
            f"    -X importtime {total:.3f} s; costliest packages (self time): "
            + ", ".join(f"{name} {seconds * 1e3:.0f} ms" for name, seconds in ranked)
        )
        if statement in ours:
            bad = [name for name, hit in loaded.items() if hit]
            print(
                f"    loaded of {', '.join(MUST_NOT_LOAD)}: {', '.join(bad) or 'none'}"
            )
    for statement in ours:
        if statement not in results:
            continue
        for peer in PEERS:
            if peer in results:
                print(
                    f"ratio {statement} / {peer}: "
                    + ", ".join(
                        f"{mode} {results[statement][mode][0] / results[peer][mode][0]:.2f}x"
                        f" (CPU {results[statement][mode][1] / results[peer][mode][1]:.2f}x)"
                        for mode in MODES
                    )
                )
    target = "import crucible_bench"
    if target in results:
        row = results[target]
        for what, index in (("wall", 0), ("CPU", 1)):
            worst = max(row["cached"][index], row["own not cached"][index])
            print(
                f"target {target} <= 0.2 s cached and own code not cached: "
                f"{'met' if worst <= 0.2 else 'not met'} in {what} time (worst {worst:.3f} s); "
                f"nothing cached: {row['nothing cached'][index]:.3f} s"
            )


if __name__ == "__main__":
    main()
