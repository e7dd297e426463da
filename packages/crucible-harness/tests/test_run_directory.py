"""A run directory that cannot lie: one writer, checked records, write failures, streamed events."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crucible_harness import (
    ConditionOutput,
    Experiment,
    HarnessItem,
    RunConfig,
    RunDirectoryError,
    RunDirectoryWarning,
    RunLockedError,
    RunRecordsError,
    RunWriteError,
    load_run,
    repair,
    resume,
    run,
    status,
)
from crucible_harness._store import encode_record

ITEMS = [HarnessItem(id=f"i{i:02d}", input=str(i), expected=str(i)) for i in range(20)]

# An experiment file for subprocesses: every task sleeps `DELAY` seconds, answers right on even
# items, and appends its key to `CALLS` (a file) so the test can count what was paid for.
SCRIPT = """
import asyncio, os
from crucible_harness import ConditionOutput, Experiment, HarnessItem, RunConfig

DELAY = float(os.environ.get("DELAY", "0.05"))
CALLS = os.environ.get("CALLS")

def make(name):
    async def condition(item, ctx):
        if CALLS:
            with open(CALLS, "a") as fh:
                fh.write(f"{name}|{item.id}|{ctx.repeat}\\n")
        await asyncio.sleep(DELAY)
        answer = item.expected if int(item.id[1:]) % 2 == 0 else "no"
        return ConditionOutput(prediction=answer, cost=0.001)
    condition.__qualname__ = name
    return condition

experiment = Experiment(
    name="locked",
    dataset=[HarnessItem(id=f"i{i:02d}", input=str(i), expected=str(i)) for i in range(20)],
    conditions={"a": make("a"), "b": make("b")},
    repeats=2,
    run=RunConfig(max_concurrency=4, seed=3),
)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "locked.py"
    path.write_text(SCRIPT)
    return path


def _load(script: Path) -> Experiment:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"locked_{id(script)}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    experiment: Experiment = module.experiment
    return experiment


def _child(
    script: Path, body: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    code = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('locked', {str(script)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "from crucible_harness import run, resume\n" + body
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _end(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str]:
    """Wait for a child; its exit code and its output (stdout then stderr)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode() + err.decode()


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def _killed_run(script: Path, out: Path, *, after: int, delay: str) -> tuple[int, Path]:
    """Run the script's experiment in a child, SIGKILL it once `after` tasks are recorded."""
    proc = _child(
        script,
        f"run(m.experiment, output_dir={str(out)!r}, formats=())\n",
        {"DELAY": delay},
    )
    _wait_for(
        lambda: (
            out.exists()
            and any(out.iterdir())
            and _lines(_only_run_dir(out) / "tasks.jsonl") >= after
        )
    )
    os.killpg(proc.pid, signal.SIGKILL)
    _end(proc, 30)
    return proc.pid, _only_run_dir(out)


def _budget_stopped(tmp_path: Path, experiment: Experiment) -> Path:
    """A run directory with some tasks recorded (budget-stopped), to resume or tamper with."""
    import attrs

    from crucible_harness import Budget

    stopped = attrs.evolve(experiment, budget=Budget(max_total=0.02))
    result = run(stopped, output_dir=tmp_path / "runs", formats=())
    assert result.status == "budget" and 0 < len(result.records) < 80
    return result.run_dir


# -- one writer per run directory -------------------------------------------------------------------


def test_a_second_process_is_refused_with_the_holder_named(
    script: Path, tmp_path: Path
) -> None:
    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    first = _child(
        script,
        f"resume({str(run_dir)!r}, m.experiment, formats=())\n",
        {"DELAY": "0.3"},
    )
    try:
        _wait_for(lambda: str(first.pid) in (run_dir / "lock").read_text())
        with pytest.raises(RunLockedError, match=rf"pid {first.pid} on host") as info:
            resume(run_dir, experiment, formats=())
        assert info.value.pid == first.pid
        code, output = _end(first)
        assert code == 0, output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    done = status(run_dir)
    assert done.status == "complete" and done.recorded == 80 and done.pending == 0


def test_two_concurrent_resumes_one_runs_one_is_refused(
    script: Path, tmp_path: Path
) -> None:
    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    calls = tmp_path / "calls.txt"
    body = (
        "from crucible_harness import RunLockedError\n"
        "try:\n"
        f"    resume({str(run_dir)!r}, m.experiment, formats=())\n"
        "except RunLockedError as err:\n"
        "    print('LOCKED', err.pid); raise SystemExit(7)\n"
    )
    env = {"DELAY": "0.1", "CALLS": str(calls)}
    procs = [_child(script, body, env), _child(script, body, env)]
    ends = [_end(p) for p in procs]
    assert sorted(code for code, _ in ends) == [0, 7], ends
    keys = calls.read_text().splitlines()
    assert len(keys) == len(set(keys)), "a task was paid twice"
    lines = (run_dir / "tasks.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 80 == len({r["key"] for r in records})
    assert status(run_dir).pending == 0


def test_a_lock_left_by_a_killed_process_is_taken_over(
    script: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid, run_dir = _killed_run(script, tmp_path / "runs", after=4, delay="0.2")
    assert str(pid) in (run_dir / "lock").read_text()  # the dead holder is still named
    assert status(run_dir).status == "interrupted"
    with caplog.at_level(logging.WARNING, logger="crucible_harness"):
        result = resume(run_dir, _load(script), formats=())
    assert result.status == "complete" and len(result.records) == 80
    assert any(
        "taking over the lock" in r.message and str(pid) in r.message
        for r in caplog.records
    )
    assert (run_dir / "lock").read_text() == ""  # released on exit


async def test_two_resumes_in_one_process_are_refused_too(
    script: Path, tmp_path: Path
) -> None:
    from crucible_harness import resume_async

    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    results = await asyncio.gather(
        resume_async(run_dir, experiment, formats=()),
        resume_async(run_dir, experiment, formats=()),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, RunLockedError)]
    finished = [r for r in results if not isinstance(r, BaseException)]
    assert len(refused) == 1 and len(finished) == 1
    assert f"pid {os.getpid()}" in str(refused[0])
    assert len(finished[0].records) == 80


# -- records are checked when read ------------------------------------------------------------------


def _tamper(run_dir: Path, edit: Any) -> list[bytes]:
    tasks = run_dir / "tasks.jsonl"
    lines = tasks.read_bytes().splitlines(keepends=True)
    lines = edit(lines)
    tasks.write_bytes(b"".join(lines))
    return lines


def test_every_line_carries_its_key_and_a_checksum(
    script: Path, tmp_path: Path
) -> None:
    run_dir = _budget_stopped(tmp_path, _load(script))
    for line in (run_dir / "tasks.jsonl").read_bytes().splitlines():
        record = json.loads(line)
        assert (
            record["key"]
            == f"{record['condition']}\x1f{record['item']}\x1f{record['repeat']}"
        )
        assert len(record["checksum"]) == 32


def test_an_exact_duplicate_is_dropped_with_a_warning(
    script: Path, tmp_path: Path
) -> None:
    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    before = status(run_dir)
    _tamper(run_dir, lambda lines: lines + lines[:5])
    with pytest.warns(RunDirectoryWarning, match="dropped 5 exact duplicate"):
        again = status(run_dir)
    assert again.recorded == before.recorded and again.pending == before.pending
    with pytest.warns(RunDirectoryWarning):
        loaded = load_run(run_dir)
    assert len(loaded.records) == before.recorded
    with pytest.warns(RunDirectoryWarning):
        final = resume(run_dir, experiment, formats=())
    assert (
        final.status == "complete" and len(final.records) == 80 and final.pending == 0
    )


def _rewrite(line: bytes, **changes: Any) -> bytes:
    """The line with fields changed, and a valid checksum (as a writer would have made it)."""
    record = json.loads(line)
    record.pop("checksum")
    record.update(changes)
    return encode_record(record)


def _flip(line: bytes) -> bytes:
    return _rewrite(
        line, correct=not json.loads(line)["correct"], prediction="tampered"
    )


def _foreign(line: bytes) -> bytes:
    record = json.loads(line)
    return _rewrite(
        line, condition="zz", key=f"zz\x1f{record['item']}\x1f{record['repeat']}"
    )


@pytest.mark.parametrize(
    ("case", "edit", "why"),
    [
        ("conflict", lambda ls: [*ls, _flip(ls[2])], "a second, different record of task"),
        ("foreign", lambda ls: [*ls, _foreign(ls[0])], "no task of this run has condition 'zz'"),
        ("missing", lambda ls: [*ls, b'{"key":"a\\u001fi00\\u001f0","item":"i00","repeat":0,"status":"ok","cost":0.0}\n'], "missing field"),
        ("edited", lambda ls: [ls[0].replace(b'"cost":0.001', b'"cost":0.000'), *ls[1:]], "checksum does not match"),
        ("unchecked", lambda ls: [*ls[:-1], json.dumps({k: v for k, v in json.loads(ls[-1]).items() if k != "checksum"}).encode() + b"\n"], "carries no checksum"),
        ("garbage", lambda ls: [ls[0], b"{not json\n", *ls[1:]], "not valid JSON"),
    ],
)  # fmt: skip
def test_bad_records_stop_resume_status_and_report_until_repaired(
    script: Path, tmp_path: Path, case: str, edit: Any, why: str
) -> None:
    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    recorded = status(run_dir).recorded
    _tamper(run_dir, edit)
    for attempt in (
        lambda: status(run_dir),
        lambda: load_run(run_dir),
        lambda: resume(run_dir, experiment, formats=()),
    ):
        with pytest.raises(RunRecordsError, match=why) as info:
            attempt()
        assert f"crucible repair {run_dir}" in str(info.value)
        assert info.value.lines and all(isinstance(n, int) for n in info.value.lines)
        assert f"line {info.value.lines[0]}:" in str(info.value)
    original = (run_dir / "tasks.jsonl").read_bytes()
    fixed = repair(run_dir)
    assert fixed.changed and fixed.backup is not None
    assert fixed.backup.read_bytes() == original  # the original is kept
    assert set(fixed.dropped) == set(info.value.lines)
    assert repair(run_dir).changed is False  # idempotent
    progress = status(run_dir)
    assert progress.pending >= 0 and progress.recorded in (recorded, recorded - 1)
    final = resume(run_dir, experiment, formats=())
    assert final.status == "complete" and len(final.records) == 80
    assert len({r["key"] for r in final.records}) == 80


def test_a_record_missing_its_condition_is_an_error_not_a_key_error(
    script: Path, tmp_path: Path
) -> None:
    run_dir = _budget_stopped(tmp_path, _load(script))
    _tamper(run_dir, lambda ls: [*ls, b'{"key":"x","item":"i00"}\n'])
    with pytest.raises(RunRecordsError, match=r"missing field.*condition"):
        status(run_dir)


def test_format_1_run_directories_are_read_and_repair_adds_checksums(
    script: Path, tmp_path: Path
) -> None:
    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    _tamper(
        run_dir,
        lambda ls: [
            json.dumps({k: v for k, v in json.loads(line).items() if k != "checksum"}).encode() + b"\n"
            for line in ls
        ],
    )  # fmt: skip
    recorded = len(load_run(run_dir).records)
    fixed = repair(run_dir)
    assert fixed.checksummed == recorded and fixed.changed
    assert json.loads((run_dir / "manifest.json").read_text())["format"] == 2
    assert all(
        "checksum" in json.loads(line)
        for line in (run_dir / "tasks.jsonl").read_bytes().splitlines()
    )
    final = resume(run_dir, experiment, formats=())
    assert final.status == "complete" and len(final.records) == 80


def test_repair_keeps_the_spend_of_dropped_records_in_the_budget(
    script: Path, tmp_path: Path
) -> None:
    import attrs

    from crucible_harness import Budget

    experiment = _load(script)
    run_dir = _budget_stopped(tmp_path, experiment)
    _tamper(run_dir, lambda ls: [*ls, _flip(ls[0])])
    repair(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["repairs"][0]["dropped_cost"] == {"a": pytest.approx(0.001)}
    before = status(run_dir)
    limit = before.spent + 0.001 + 0.0025
    result = resume(
        run_dir, attrs.evolve(experiment, budget=Budget(max_total=limit)), formats=()
    )
    # the dropped record's 0.001 still counts: two more tasks fit, not three
    assert result.status == "budget"
    assert len(result.records) == before.recorded + 2
    assert result.spent + 0.001 <= limit + 1e-12


# -- results independent of completion order -------------------------------------------------------


def _deterministic(tmp_path: Path) -> Experiment:
    """Outcomes and latencies fixed by (condition, item, repeat); completion order varies."""
    import random

    def make(name: str, accuracy: float) -> Any:
        async def condition(item: HarnessItem, ctx: Any) -> ConditionOutput:
            rng = random.Random(f"{name}|{item.id}|{ctx.repeat}")
            await asyncio.sleep(rng.random() * 0.01)  # finish in a scrambled order
            right = rng.random() < accuracy
            return ConditionOutput(
                prediction=item.expected if right else "no",
                cost=0.001,
                latency=rng.lognormvariate(0, 0.5),
            )

        condition.__qualname__ = name
        return condition

    return Experiment(
        name="ordered",
        dataset=ITEMS,
        conditions={"a": make("a", 0.6), "b": make("b", 0.75)},
        repeats=3,
        run=RunConfig(max_concurrency=8, seed=5),
    )


def _numbers(result: Any) -> str:
    data = result.analysis.to_dict()
    for volatile in ("manifest", "records"):  # run ids, wall-clock timestamps
        data.pop(volatile)
    return json.dumps(data, sort_keys=True)


def test_a_resumed_or_shuffled_run_gives_the_same_intervals_as_a_straight_one(
    tmp_path: Path,
) -> None:
    import random

    import attrs

    from crucible_harness import Budget

    experiment = _deterministic(tmp_path)
    straight = run(experiment, output_dir=tmp_path / "straight", formats=())
    stopped = run(
        attrs.evolve(experiment, budget=Budget(max_total=0.05)),
        output_dir=tmp_path / "resumed",
        formats=(),
    )
    assert stopped.status == "budget"
    resumed = resume(stopped.run_dir, experiment, formats=())
    assert resumed.status == "complete"
    straight_order = [r["key"] for r in straight.records]
    assert straight_order != sorted(straight_order)  # the tasks did finish out of order
    assert [r["key"] for r in resumed.records] != straight_order
    assert _numbers(resumed) == _numbers(straight)
    assert _numbers(load_run(resumed.run_dir)) == _numbers(straight)
    tasks = resumed.run_dir / "tasks.jsonl"
    lines = tasks.read_bytes().splitlines(keepends=True)
    random.Random(1).shuffle(lines)
    tasks.write_bytes(b"".join(lines))
    assert _numbers(load_run(resumed.run_dir)) == _numbers(straight)


# -- incomplete runs say so ------------------------------------------------------------------------


def test_reports_of_a_budget_stopped_run_show_status_pending_and_what_they_cover(
    script: Path, tmp_path: Path
) -> None:
    import attrs

    from crucible_harness import Budget

    experiment = attrs.evolve(_load(script), budget=Budget(max_total=0.02))
    formats = ("markdown", "html", "latex", "notebook", "json")
    result = run(experiment, output_dir=tmp_path / "runs", formats=formats)
    assert result.status == "budget"
    used = len({r["item"] for r in result.records})
    pending = {
        c: 40 - sum(r["condition"] == c for r in result.records) for c in ("a", "b")
    }
    assert 0 < used < 20 and sum(pending.values()) == result.pending > 0
    headline = f"budget-stopped: {result.pending} of 80 tasks pending"
    for loaded in (result, load_run(result.run_dir, formats=formats)):
        md = loaded.reports["markdown"].read_text()
        assert f"| status | {headline} |" in md
        assert f"| items | {used} of 20 (the analysis covers" in md
        assert f"| tasks recorded | {len(result.records)} of 80 |" in md
        for c, n in pending.items():
            done = 40 - n
            assert f"| {c} | {done} | {n} |" in md  # the progress table
        html = loaded.reports["html"].read_text()
        assert headline in html and "Run progress" in html
        assert headline in loaded.reports["latex"].read_text()
        assert headline in loaded.reports["notebook"].read_text()
        data = json.loads(loaded.reports["json"].read_text())
        assert data["status"] == headline
        assert data["run_state"]["pending"] == pending
        # the analysis counts what it used: the header agrees with its tables
        assert sum(c.tasks for c in loaded.analysis.conditions) == len(result.records)
    final = resume(result.run_dir, _load(script), formats=("markdown",))
    md = final.reports["markdown"].read_text()
    assert "| status | complete |" in md and "Run progress" not in md
    assert "| items | 20 |" in md and "| tasks recorded | 80 |" in md


# -- names and paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x\n"},
        {"name": "x\r\n"},
        {"conditions": {"d\n": lambda item: "1", "e": lambda item: "1"}},
    ],
)
def test_names_with_a_trailing_newline_are_refused(bad: dict[str, Any]) -> None:
    from crucible_harness import ExperimentDefinitionError

    args: dict[str, Any] = {
        "name": "ok",
        "dataset": ITEMS,
        "conditions": {"a": lambda item: "1", "b": lambda item: "1"},
    }
    with pytest.raises(ExperimentDefinitionError):
        Experiment(**{**args, **bad})


def test_control_characters_of_tags_and_text_never_reach_reports(
    tmp_path: Path,
) -> None:
    exp = Experiment(
        name="ctl",
        dataset=ITEMS[:4],
        conditions={"a": lambda item: item.expected, "b": lambda item: "no"},
        tags=("ok", "bell\x07", "esc\x1b[31mred", "csi\x9b2J"),
        author="A\x1b]0;title\x07",
        description="line one\nline two\x1b[2J",
    )
    result = run(exp, output_dir=tmp_path, formats=("markdown", "html", "latex"))
    for path in result.reports.values():
        text = path.read_text()
        assert not any(ch in text for ch in "\x07\x1b\x9b"), path.name
    md = result.reports["markdown"].read_text()
    assert "bell " in md and "31mred" in md and "csi 2J" in md  # the text stays


def test_run_directories_that_are_not_writable_give_crucible_errors(
    script: Path, tmp_path: Path, read_only: Any
) -> None:
    experiment = _load(script)
    mount = read_only()
    with pytest.raises(RunDirectoryError, match="read-only") as info:
        run(experiment, output_dir=mount / "runs", formats=())
    assert not isinstance(info.value, OSError)


# -- write failures ---------------------------------------------------------------------------------


def test_an_output_json_cannot_hold_fails_that_task_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    outputs = {"i03": "bad \ud800 half", "i07": {"nested": ["\udfff"]}}

    def condition(item: HarnessItem, ctx: Any) -> ConditionOutput:
        return ConditionOutput(
            prediction=outputs.get(item.id, item.expected),
            cost=0.002,
            metadata={"raw": outputs.get(item.id, "")},
        )

    exp = Experiment(
        name="surrogates", dataset=ITEMS, conditions={"c": condition}, repeats=2
    )
    result = run(exp, output_dir=tmp_path, formats=("markdown", "json"))
    assert result.status == "complete" and len(result.records) == 40
    bad = [r for r in result.records if r["item"] in outputs]
    assert len(bad) == 4
    for r in bad:
        assert r["status"] == "error" and r["error_type"] == "SerializationError"
        assert (
            r["correct"] is False and r["cost"] == 0.002
        )  # paid, and counted as wrong
        assert ast.literal_eval(r["raw_output"]) == outputs[r["item"]]  # lossless
    loaded = load_run(result.run_dir)
    assert [dict(r) for r in loaded.records] == [dict(r) for r in result.records]
    assert status(result.run_dir).errors == 4


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Any]:
    """Mount small tmpfs file systems (root only); skip where mounting is not allowed."""
    mounts: list[Path] = []

    def mount(size: str, *, options: str = "") -> Path:
        point = tmp_path / f"mnt{len(mounts)}"
        point.mkdir()
        opts = f"size={size}" + (f",{options}" if options else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(
                f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root"
            )
        mounts.append(point)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def read_only(tmpfs: Any) -> Any:
    def make() -> Path:
        point: Path = tmpfs("1m")
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    return make


def _remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_full_disk_stops_the_run_and_resume_finishes_it(
    script: Path, tmp_path: Path, tmpfs: Any
) -> None:
    disk = tmpfs("96k")
    calls = tmp_path / "calls.txt"
    big = "x" * 900  # ~1 KB per record: the disk holds a few dozen of them

    def make(name: str) -> Any:
        async def condition(item: HarnessItem, ctx: Any) -> ConditionOutput:
            with calls.open("a") as fh:
                fh.write(f"{name}|{item.id}|{ctx.repeat}\n")
            await asyncio.sleep(0.01)
            return ConditionOutput(prediction=big, cost=0.001)

        condition.__qualname__ = name
        return condition

    items = [
        HarnessItem(id=f"i{i:03d}", input=str(i), expected="x") for i in range(100)
    ]
    exp = Experiment(name="full", dataset=items, conditions={"a": make("a"), "b": make("b")},
                     run=RunConfig(max_concurrency=4, seed=1))  # fmt: skip
    with pytest.raises(RunWriteError, match="No space left on device") as info:
        run(exp, output_dir=disk, formats=())
    run_dir = _only_run_dir(disk)
    on_disk = [
        json.loads(line) for line in (run_dir / "tasks.jsonl").read_bytes().splitlines()
    ]
    paid = _calls(calls)
    assert 0 < len(on_disk) < 200
    assert info.value.recorded == len(on_disk)
    # stopped at once: only the tasks in flight (and those queued for the failed write) were paid
    assert len(paid) - len(on_disk) == info.value.unwritten <= 4 * 4
    state = json.loads((run_dir / "status.json").read_text())
    assert state["status"] == "failed" and "No space left on device" in state["reason"]
    assert state["recorded"] == len(on_disk)
    progress = status(run_dir)
    assert progress.status == "failed" and progress.recorded == len(on_disk)
    assert "No space left" in (progress.reason or "")
    with pytest.raises(RunWriteError):  # still full: refused before paying anything
        resume(run_dir, exp, formats=())
    assert len(_calls(calls)) == len(paid)

    _remount(disk, "size=16m")  # the disk is fixed
    final = resume(run_dir, exp, formats=())
    assert final.status == "complete" and len(final.records) == 200
    assert len({r["key"] for r in final.records}) == 200
    keys = {f"{r['condition']}|{r['item']}|{r['repeat']}" for r in on_disk}
    paid_again = _calls(calls)[len(paid) :]
    assert not keys & set(paid_again), (
        "a task recorded before the failure was paid again"
    )
    assert len(paid_again) == 200 - len(on_disk)


def test_a_disk_filled_by_another_process_mid_run_stops_it_cleanly(
    script: Path, tmp_path: Path, tmpfs: Any
) -> None:
    disk = tmpfs("4m")
    calls = tmp_path / "calls.txt"
    out = disk / "runs"
    proc = _child(
        script,
        "from crucible_harness import RunWriteError\n"
        "try:\n"
        f"    run(m.experiment, output_dir={str(out)!r}, formats=())\n"
        "except RunWriteError as err:\n"
        "    print('WRITE', err.errno, err.recorded); raise SystemExit(9)\n",
        {"DELAY": "0.05", "CALLS": str(calls)},
    )
    _wait_for(
        lambda: (
            out.exists()
            and any(out.iterdir())
            and _lines(_only_run_dir(out) / "tasks.jsonl") >= 6
        )
    )
    filler = disk / "filler"
    with filler.open("wb") as fh, contextlib.suppress(OSError):
        while True:  # fill the disk to the last byte
            fh.write(b"\0" * 65536)
            fh.flush()
    code, output = _end(proc, 60)
    assert code == 9, output
    assert "WRITE 28" in output  # ENOSPC
    run_dir = _only_run_dir(out)
    recorded = _lines(run_dir / "tasks.jsonl")
    assert len(_calls(calls)) - recorded <= 4 * 4
    assert status(run_dir).status == "failed"
    filler.unlink()  # space is back
    final = resume(run_dir, _load(script), formats=())
    assert final.status == "complete" and len(final.records) == 80


def test_a_disk_too_full_for_the_reports_is_a_clear_error_and_keeps_the_run(
    tmp_path: Path, tmpfs: Any
) -> None:
    disk = tmpfs("1m")
    filler = disk / "filler"

    def condition(item: HarnessItem, ctx: Any) -> ConditionOutput:
        if item.id == ITEMS[5].id:  # the last task: leave room for records, not reports
            st = os.statvfs(disk)
            filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 12 * 1024))
        return ConditionOutput(prediction=item.expected, cost=0.001)

    exp = Experiment(name="reports", dataset=ITEMS[:6], conditions={"a": condition},
                     run=RunConfig(max_concurrency=1))  # fmt: skip
    with pytest.raises(RunDirectoryError, match="cannot write the reports") as info:
        run(exp, output_dir=disk, formats=("html", "markdown"))
    assert not isinstance(info.value, OSError) and info.value.errno == 28
    run_dir = _only_run_dir(disk)
    assert status(run_dir).status == "complete"  # every task is recorded
    filler.unlink()
    assert load_run(run_dir, formats=("html",)).reports["html"].stat().st_size > 0


def test_resuming_a_read_only_run_directory_is_a_clear_error(
    script: Path, tmpfs: Any
) -> None:
    import attrs

    from crucible_harness import Budget

    disk = tmpfs("4m")
    experiment = _load(script)
    stopped = run(
        attrs.evolve(experiment, budget=Budget(max_total=0.02)),
        output_dir=disk,
        formats=(),
    )
    _remount(disk, "ro")
    with pytest.raises(RunDirectoryError, match="read-only") as info:
        resume(stopped.run_dir, experiment, formats=())
    assert not isinstance(info.value, OSError) and info.value.errno == 30
    # reading needs no write access
    assert status(stopped.run_dir).status == "budget"
    assert len(load_run(stopped.run_dir).records) == len(stopped.records)
    with pytest.raises(RunDirectoryError, match="read-only"):
        load_run(stopped.run_dir, formats=("markdown",))


# -- events are streamed ----------------------------------------------------------------------------


def test_events_survive_a_sigkill_and_resume_appends(
    script: Path, tmp_path: Path
) -> None:
    _, run_dir = _killed_run(script, tmp_path / "runs", after=20, delay="0.05")
    events = run_dir / "events.jsonl"
    raw = events.read_bytes()
    kept = [json.loads(line) for line in raw[: raw.rfind(b"\n") + 1].splitlines()]
    recorded = {
        json.loads(line)["key"]
        for line in (run_dir / "tasks.jsonl").read_bytes().splitlines()
    }
    stops = {
        f"{e['condition']}\x1f{e['item']}\x1f{e['repeat']}"
        for e in kept
        if e["name"] == "crucible.harness.task.stop"
    }
    assert kept[0]["name"] == "crucible.harness.run.start"
    # every task recorded before the kill has its events (they are in the same group commits)
    assert len(stops) >= len(recorded) - 4 * 2 and len(stops) >= 12
    result = resume(run_dir, _load(script), formats=())
    assert result.status == "complete"
    after = events.read_bytes()
    assert after.startswith(raw[: raw.rfind(b"\n") + 1])  # appended, nothing lost
    names = [json.loads(line)["name"] for line in after.splitlines()]
    assert names.count("crucible.harness.run.start") == 2
    assert names[-1] == "crucible.harness.run.stop"
    stops_all = {
        json.loads(line)["item"]
        + str(json.loads(line)["repeat"])
        + json.loads(line)["condition"]
        for line in after.splitlines()
        if json.loads(line)["name"] == "crucible.harness.task.stop"
    }
    assert len(stops_all) >= 80 - 4 * 2


def test_tasks_that_never_suspend_are_written_in_groups_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain function never yields the loop: the writer must still get turns, queue bounded.

    Before, such a run held every record, line and event in memory and wrote them all at the
    end (nothing durable until then, and 4 KiB of encoder buffer per event at that moment).
    """
    from crucible_harness import _store

    monkeypatch.setattr(_store, "_GROUP", 8)
    monkeypatch.setattr(_store, "_BACKLOG", 32)
    n, in_flight = 600, 4
    seen: list[
        tuple[int, int]
    ] = []  # (tasks called so far, task lines durable on disk)

    def condition(item: HarnessItem, ctx: Any) -> str:
        logs = list(tmp_path.glob("groups-*/tasks.jsonl"))
        if len(seen) % 10 == 0 and logs:
            seen.append((len(seen), logs[0].read_bytes().count(b"\n")))
        else:
            seen.append((len(seen), -1))
        return str(item.expected)

    items = [
        HarnessItem(id=f"q{i:04d}", input=str(i), expected=str(i)) for i in range(n)
    ]
    exp = Experiment(name="groups", dataset=items, conditions={"f": condition},
                     run=RunConfig(max_concurrency=in_flight, timeout=None, retries=0))  # fmt: skip
    result = run(exp, output_dir=tmp_path, formats=())
    assert result.status == "complete" and len(result.records) == n
    checked = [(k, on_disk) for k, on_disk in seen if on_disk >= 0]
    assert len(checked) >= n // 10 - 1
    # durable as the run goes: at most the queue (32) and the group being written (<= 32 + the
    # tasks in flight) are not on disk yet, whatever the task count
    slack = 2 * (32 + 8 + in_flight)
    assert all(on_disk >= k - slack for k, on_disk in checked), checked[-5:]
    assert checked[-1][1] >= n - slack > 0
    lines = (result.run_dir / "tasks.jsonl").read_bytes().splitlines()
    assert sorted(json.loads(line)["item"] for line in lines) == [i.id for i in items]
    events = [
        json.loads(line)
        for line in (result.run_dir / "events.jsonl").read_bytes().splitlines()
    ]
    assert sum(e["name"] == "crucible.harness.task.stop" for e in events) == n
    assert events[0]["name"] == "crucible.harness.run.start"
    assert events[-1]["name"] == "crucible.harness.run.stop"
