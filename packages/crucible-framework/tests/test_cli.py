from __future__ import annotations

from pathlib import Path

import pytest

import crucible
from crucible._cli import main
from crucible._versions import check_member_versions
from crucible_core.exceptions import ConfigurationError
from crucible_core.export import load_records


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"crucible {crucible.__version__}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_models_list_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--provider", "sim"]) == 0
    out = capsys.readouterr().out
    assert "sim:gpt-4" in out and "openai" not in out
    assert (
        main(
            [
                "models",
                "run",
                "sim:gpt-4",
                "What is 2 + 2?",
                "--reference",
                "4",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert "via sim" in captured.err and "$0.005" in captured.err


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "run", "nosuch:model", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crucible: error:") and "nosuch" in err


def test_demo_runs_the_main_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "demo",
                "--output",
                str(tmp_path),
                "--items",
                "6",
                "--repeats",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    (run_dir,) = tmp_path.iterdir()
    assert f"report: {run_dir / 'report.html'}" in out
    for name in (
        "report.md",
        "report.html",
        "report.tex",
        "report.ipynb",
        "analysis.json",
        "results.parquet",
        "tasks.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    rows = load_records(run_dir / "tasks.jsonl")
    assert len(rows) == 3 * 6 * 2
    assert {r["condition"] for r in rows} == {"gpt-4", "majority-5", "hedged-gpt-4"}
    assert all(r["status"] == "ok" for r in rows), [
        r["error"] for r in rows if r["status"] != "ok"
    ][:3]
    # completions were really executed: the simulated models' wrong code fails its tests
    assert any(r["correct"] for r in rows) and all(
        isinstance(r["correct"], bool) for r in rows
    )


EXPERIMENT = """
from crucible_core.models import SimulatedModel
from crucible_harness import Condition, Experiment, HarnessItem

items = [HarnessItem(id=f"q{i}", input=f"What is {i} + {i}?", expected=str(2 * i)) for i in range(12)]
experiment = Experiment(
    name="cli-arith",
    dataset=items,
    conditions=[Condition(name="a", target=SimulatedModel("gpt-4", virtual_time=True)),
                Condition(name="b", target=SimulatedModel("llama-3-70b", virtual_time=True))],
    repeats=2,
)
"""


def test_run_estimate_report_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    assert main(["estimate", str(script)]) == 0
    assert "Estimate: 48 tasks" in capsys.readouterr().out
    assert (
        main(["run", str(script), "--output", str(tmp_path / "runs"), "--dry-run"]) == 0
    )
    assert not (tmp_path / "runs").exists()
    assert (
        main(["run", str(script), "--output", str(tmp_path / "runs")]) == 1
    )  # no --yes, no terminal
    assert "--yes" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                str(script),
                "--output",
                str(tmp_path / "runs"),
                "--yes",
                "--quiet",
                "--format",
                "markdown",
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "report.md").is_file()
    capsys.readouterr()
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    assert "analysis.json" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 1
    assert "not a crucible run directory" in capsys.readouterr().err


def test_run_rejects_files_without_an_experiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "empty.py"
    script.write_text("x = 1\n")
    assert main(["estimate", str(script)]) == 1
    assert "must define `experiment = Experiment(...)`" in capsys.readouterr().err
    assert main(["estimate", str(tmp_path / "missing.py")]) == 1


def test_version_guard_names_the_mismatch() -> None:
    check_member_versions(crucible.__version__)
    with pytest.raises(
        ConfigurationError, match=r"needs every member at 9\.9\.9.*crucible-core=="
    ) as info:
        check_member_versions("9.9.9")
    assert "crucible-bench==" + crucible.__version__ in info.value.found


def test_version_guard_reads_each_members_version_file_at_import(
    tmp_path: Path,
) -> None:
    """A member whose `_version.py` says otherwise stops `import crucible`, no member imported."""
    import subprocess
    import sys

    stale = tmp_path / "crucible_bench"
    stale.mkdir()
    (stale / "__init__.py").write_text(
        "raise ImportError('the guard must not import me')\n"
    )
    (stale / "_version.py").write_text('__version__ = "0.0.1"\n')
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "try:\n"
        "    import crucible\n"
        "except Exception as err:\n"
        "    print(type(err).__name__, err.found)\n"
        "print(sorted(m for m in sys.modules if m.startswith('crucible_bench')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "ConfigurationError ['crucible-bench==0.0.1']",
        "[]",
    ]
    assert crucible._versions.member_version("crucible_bench") == crucible.__version__
    assert crucible._versions.member_version("no_such_package_here") is None


def test_config_prints_values_and_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    (tmp_path / "crucible.toml").write_text(
        'results_dir = "runs"\n[providers]\ntimeout = 9\n'
    )
    monkeypatch.setenv("CRUCIBLE_PROVIDER_MAX_TOKENS", "77")
    assert main(["config", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"project file: {tmp_path / 'crucible.toml'}" in out
    assert "environment (CRUCIBLE_PROVIDER_MAX_TOKENS)" in out
    assert main(["config", "--project", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["results_dir"] == {
        "value": "runs",
        "source": f"file ({tmp_path / 'crucible.toml'})",
    }
    assert data["settings"]["providers.max_tokens"]["value"] == 77
    assert data["settings"]["hedging.policy"]["source"] == "built-in"
    (tmp_path / "crucible.toml").write_text("[providers]\ntimeuot = 9\n")
    assert main(["config", "--project", str(tmp_path)]) == 1
    assert "'providers.timeuot' is not a crucible setting" in capsys.readouterr().err


def test_status_and_repair_of_a_tampered_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from crucible_harness._store import RunLock

    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    argv = ["run", str(script), "--output", str(tmp_path / "runs"), "--yes", "--quiet"]
    assert main([*argv, "--format", "json"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    assert "complete" in capsys.readouterr().out

    tasks = run_dir / "tasks.jsonl"
    lines = tasks.read_bytes().splitlines(keepends=True)
    flipped = json.loads(lines[3])
    flipped["correct"] = not flipped["correct"]
    tasks.write_bytes(
        b"".join([*lines, lines[0], json.dumps(flipped).encode() + b"\n"])
    )
    assert main(["status", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert f"line {len(lines) + 2}:" in err and f"crucible repair {run_dir}" in err
    assert "KeyError" not in err and "Traceback" not in err

    assert main(["repair", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "rewritten" in out and "tasks.jsonl.orig-" in out
    # the first record of each task is kept: the run is whole again
    assert main(["status", str(run_dir)]) == 0
    assert "pending      0" in capsys.readouterr().out
    kept = tasks.read_bytes().splitlines(keepends=True)
    tasks.write_bytes(b"".join(kept[:-1]))  # lose a task: it is pending
    assert main(["status", str(run_dir)]) == 3
    assert "interrupted" in capsys.readouterr().out

    lock = RunLock.acquire(run_dir)  # another writer holds the run
    try:
        assert main([*argv, "--resume", str(run_dir)]) == 1
        assert "is being written by pid" in capsys.readouterr().err
    finally:
        lock.release()
    assert main([*argv, "--resume", str(run_dir), "--format", "markdown"]) == 0
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0


def test_monitor_once_alerts_on_a_degraded_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    import crucible_telemetry as ct
    from crucible_core import events

    path = tmp_path / "telemetry.db"
    store = ct.SQLiteStore(path)
    rng = np.random.default_rng(2)
    with ct.experiment("prod", store=store) as base:
        for ok in rng.random(4000) < 0.92:
            events.emit(
                events.HARNESS_TASK_STOP, {"duration": 0.1}, {"correct": bool(ok)}
            )
    with ct.experiment("prod", store=store):
        for ok in rng.random(3000) < 0.8:
            events.emit(
                events.HARNESS_TASK_STOP, {"duration": 0.1}, {"correct": bool(ok)}
            )
    store.close()
    code = main(["monitor", "--store", str(path), "--baseline", base.id, "--experiment", "prod",
                 "--arl0", "1000", "--once"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 3
    assert "Monitoring baseline" in out and "Alert: accuracy degraded" in out
    # a stable store raises nothing
    quiet = tmp_path / "quiet.db"
    store = ct.SQLiteStore(quiet)
    with ct.experiment("prod", store=store) as base:
        for ok in rng.random(4000) < 0.92:
            events.emit(
                events.HARNESS_TASK_STOP, {"duration": 0.1}, {"correct": bool(ok)}
            )
    with ct.experiment("prod", store=store):
        for ok in rng.random(2000) < 0.92:
            events.emit(
                events.HARNESS_TASK_STOP, {"duration": 0.1}, {"correct": bool(ok)}
            )
    store.close()
    assert (
        main(
            [
                "monitor",
                "--store",
                str(quiet),
                "--baseline",
                base.id,
                "--once",
                "--arl0",
                "1e6",
            ]
        )
        == 0
    )


SEQUENTIAL = """
import random
from crucible_harness import AnalysisConfig, Budget, Condition, ConditionOutput, EarlyStopping, Experiment, HarnessItem

def model(accuracy, salt):
    def answer(item, ctx):
        right = random.Random(f"{salt}|{ctx.seed}").random() < accuracy
        return ConditionOutput(prediction=item.expected if right else "wrong", cost=0.01)
    answer.__qualname__ = f"model_{salt}"
    return answer

items = [HarnessItem(id=f"q{i:03d}", input=f"{i} + {i}", expected=str(2 * i)) for i in range(400)]
experiment = Experiment(
    name="cli-sequential", dataset=items,
    conditions=[Condition(name="base", target=model(0.6, "a")), Condition(name="new", target=model(0.9, "b"))],
    analysis=AnalysisConfig(sequential=EarlyStopping(min_items=30)),
    budget=Budget(max_total=BUDGET),
)
"""


def test_a_run_the_sequential_rule_stopped_early_exits_0_and_a_budget_stop_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crucible_harness import load_run

    for budget, code, state in ((100.0, 0, "stopped"), (0.5, 3, "budget")):
        script = tmp_path / f"seq-{state}.py"
        script.write_text(SEQUENTIAL.replace("BUDGET", repr(budget)))
        out = tmp_path / state
        argv = ["run", str(script), "--output", str(out), "--yes", "--quiet"]
        assert main([*argv, "--format", "markdown"]) == code
        (run_dir,) = out.iterdir()
        result = load_run(run_dir)
        assert result.status == state and result.pending > 0
        capsys.readouterr()
        assert main(["status", str(run_dir)]) == code
        shown = capsys.readouterr().out
        assert f"Run {result.run_id}: {state}" in shown
        if state == "stopped":
            assert "sequential stop after" in shown  # the reason
            assert main(["report", str(run_dir)]) == 0
            report = capsys.readouterr().out
            assert "Sequential comparisons" in report and "anytime-valid" in report
    assert main([*argv, "--resume", str(run_dir)]) == 3  # still over its budget
    help_text = _help(["status", "--help"]) + _help(["run", "--help"])
    assert (
        help_text.count("exit 0: complete, or stopped early by its sequential rule")
        == 2
    )


def _help(argv: list[str]) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        main(argv)
    return " ".join(buffer.getvalue().split())
