"""A run killed with SIGKILL at any point and resumed yields the same result set as an uninterrupted run."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crucible_harness import resume, run

EXPERIMENT = """
import asyncio, hashlib
from crucible_harness import ConditionOutput, Experiment, HarnessItem, RunConfig

def _answer(name, item, repeat):
    h = int(hashlib.sha256(f"{name}|{item.id}|{repeat}".encode()).hexdigest(), 16)
    return str(item.expected) if h % 10 < 8 else "wrong", 0.03 + (h % 7) / 100

def make(name):
    async def condition(item, ctx):
        answer, delay = _answer(name, item, ctx.repeat)
        await asyncio.sleep(delay)
        return ConditionOutput(prediction=answer, cost=0.001, latency=delay)
    condition.__qualname__ = name
    return condition

experiment = Experiment(
    name="killable",
    dataset=[HarnessItem(id=f"i{i:02d}", input=str(i), expected=str(i)) for i in range(30)],
    conditions={"a": make("a"), "b": make("b"), "c": make("c")},
    repeats=2,
    run=RunConfig(max_concurrency=8, seed=11),
)
"""


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"killable_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcomes(records: Any) -> set[tuple[Any, ...]]:
    return {(r["key"], r["prediction"], r["correct"], r["cost"]) for r in records}


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "killable.py"
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture(scope="module")
def reference(
    script: Path, tmp_path_factory: pytest.TempPathFactory
) -> set[tuple[Any, ...]]:
    result = run(
        _module(script).experiment,
        output_dir=tmp_path_factory.mktemp("reference"),
        formats=(),
    )
    assert result.status == "complete"
    return _outcomes(result.records)


def _recorded(out: Path) -> int:
    logs = list(out.glob("*/tasks.jsonl"))
    return logs[0].read_bytes().count(b"\n") if logs else -1


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kill_at=st.integers(min_value=-1, max_value=175),
    extra=st.floats(min_value=0.0, max_value=0.05),
)
def test_sigkill_then_resume_matches_an_uninterrupted_run(
    script: Path,
    reference: set[tuple[Any, ...]],
    tmp_path_factory: pytest.TempPathFactory,
    kill_at: int,
    extra: float,
) -> None:
    """Kill once `kill_at` tasks are recorded (-1: before the run directory exists), plus a little."""
    out = tmp_path_factory.mktemp("killed")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('killable', {str(script)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "from crucible_harness import run\n"
        f"run(m.experiment, output_dir={str(out)!r}, formats=())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 120
    while (
        proc.poll() is None and _recorded(out) < kill_at and time.monotonic() < deadline
    ):
        time.sleep(0.002)
    time.sleep(extra)
    killed_mid_run = proc.poll() is None
    if killed_mid_run:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    event(
        f"killed mid-run with {_recorded(out)} task(s) recorded"
        if killed_mid_run
        else "finished before the kill"
    )

    experiment = _module(script).experiment
    runs = list(out.iterdir())
    if runs:
        (run_dir,) = runs
        result = resume(run_dir, experiment, formats=())
    else:  # killed before the run directory existed: nothing was recorded
        result = run(experiment, output_dir=out, formats=())
    keys = [r["key"] for r in result.records]
    assert len(keys) == len(set(keys)), "a recorded task ran twice"
    assert result.status == "complete"
    assert _outcomes(result.records) == reference
    lines = (result.run_dir / "tasks.jsonl").read_text().splitlines()
    assert len(lines) == len(reference)
