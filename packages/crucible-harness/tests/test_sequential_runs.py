"""Sequential runs: stop as soon as the comparisons are settled, without inflating false positives."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crucible_harness import (
    AnalysisConfig,
    Condition,
    EarlyStopping,
    Experiment,
    ExperimentDefinitionError,
    HarnessItem,
    RunConfig,
    RunDirectoryError,
    RunWriteError,
    SequentialStop,
    load_run,
    resume,
    run,
    status,
)
from crucible_harness._sequential import SequentialMonitor

ITEMS = [
    HarnessItem(id=f"q{i:04d}", input=f"{i} + {i}", expected=str(2 * i))
    for i in range(400)
]


def model(accuracy: float, salt: str) -> Any:
    """A simulated model: right with probability `accuracy`, decided by the task's seed."""

    def answer(item: HarnessItem, ctx: Any) -> str:
        rng = random.Random(f"{salt}|{ctx.seed}")
        return str(item.expected) if rng.random() < accuracy else "wrong"

    answer.__qualname__ = f"model_{salt}"
    return answer


def experiment(
    a: float, b: float, *, seed: int = 1, items: list[HarnessItem] = ITEMS, **seq: Any
) -> Experiment:
    return Experiment(
        name="seq",
        dataset=items,
        conditions=[Condition(name="base", target=model(a, "a")), Condition(name="new", target=model(b, "b"))],
        run=RunConfig(max_concurrency=4, seed=seed),
        analysis=AnalysisConfig(sequential=EarlyStopping(**seq)),
    )  # fmt: skip


def test_a_real_difference_stops_early_with_the_right_answer(tmp_path: Path) -> None:
    result = run(
        experiment(0.6, 0.9, min_items=30), output_dir=tmp_path, formats=("markdown",)
    )
    seq = result.sequential
    assert result.status == "stopped" and seq.fired
    assert seq.items_at_stop < 200 and result.pending > 0
    (comp,) = seq.comparisons
    assert (comp.a, comp.b) == ("base", "new") and comp.decided
    lo, hi = comp.confidence_interval
    assert (
        0 < lo < 0.3 < hi
    )  # the true difference, 0.3, is inside the anytime-valid interval
    assert result.reason is not None and "sequential stop" in result.reason
    text = result.render()
    assert "Sequential comparisons" in text and "anytime-valid" in text
    report = result.reports["markdown"].read_text()
    assert "Sequential run" in report and "for reference only" in report
    # items ran in a seeded random order, whole items at a time (both conditions together)
    ran = {r["item"] for r in result.records}
    per_item = {i: sum(r["item"] == i for r in result.records) for i in ran}
    assert sum(n == 2 for n in per_item.values()) >= seq.items_at_stop
    assert sorted(ran) != [i.id for i in ITEMS[: len(ran)]]


def test_resuming_a_stopped_run_sends_nothing_more(tmp_path: Path) -> None:
    exp = experiment(0.6, 0.9, min_items=30)
    first = run(exp, output_dir=tmp_path, formats=())
    again = resume(first.run_dir, exp, formats=())
    assert len(again.records) == len(first.records)
    assert again.status == "stopped"


def test_no_difference_runs_to_the_end_and_false_positives_stay_below_alpha(
    tmp_path: Path,
) -> None:
    items = ITEMS[:120]
    rejected = 0
    for seed in range(12):
        result = run(
            experiment(0.7, 0.7, seed=seed, items=items),
            output_dir=tmp_path,
            formats=(),
        )
        rejected += result.sequential.fired
        if not result.sequential.fired:
            assert result.status == "complete" and result.pending == 0
    assert rejected / 12 <= 0.05


# -- reading a sequential run back --------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "a", "b"),
    [("confidence_sequence", 0.6, 0.9), ("obrien_fleming", 0.55, 0.9), ("confidence_sequence", 0.7, 0.7)],
)  # fmt: skip
def test_load_run_reads_back_the_sequential_summary_the_run_had(
    tmp_path: Path, method: str, a: float, b: float
) -> None:
    live = run(
        experiment(a, b, method=method, min_items=30, items=ITEMS[:200] if a == b else ITEMS),
        output_dir=tmp_path, formats=(),
    )  # fmt: skip
    assert live.sequential is not None and live.sequential.fired is (a != b)
    loaded = load_run(live.run_dir, formats=("markdown", "json", "notebook"))
    assert loaded.sequential == live.sequential
    assert loaded.analysis.config == live.analysis.config  # its EarlyStopping too
    saved = json.loads(loaded.reports["json"].read_text())
    assert SequentialStop.from_dict(saved["run_state"]["sequential"]) == live.sequential
    assert isinstance(loaded.sequential, SequentialStop)
    assert (loaded.status, loaded.reason) == (live.status, live.reason)
    assert (
        loaded.render() == live.render()
    )  # the same sequential section, the same notes
    assert "Sequential comparisons" in loaded.render()
    report = loaded.reports["markdown"].read_text()
    assert "Sequential run" in report
    assert ("for reference only" in report) is live.sequential.fired
    if live.status == "stopped":  # a finished run, not one waiting to be resumed
        headline = f"stopped early by the sequential rule: {live.pending} of {2 * live.sequential.items_total} tasks not needed (sequential stop after"
        assert (
            f"| status | {headline} " in report
        )  # the reason follows (markdown-escaped)
        assert "the sequential rule stopped the run early" in report
        assert "not complete" not in report
        notebook = loaded.reports["notebook"].read_text()
        assert (
            "resuming it sends nothing more" in notebook
            and "resume the run to finish it" not in notebook
        )
    else:
        assert "| status | complete (sequential rule (" in report  # it did not fire


def test_a_run_without_a_sequential_design_loads_without_one(tmp_path: Path) -> None:
    plain = Experiment(
        name="plain", dataset=ITEMS[:20],
        conditions=[Condition(name="base", target=model(0.6, "a")), Condition(name="new", target=model(0.9, "b"))],
    )  # fmt: skip
    live = run(plain, output_dir=tmp_path, formats=())
    loaded = load_run(live.run_dir)
    assert live.sequential is None and loaded.sequential is None
    assert loaded.render() == live.render() and "Sequential" not in loaded.render()


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda s: s["comparisons"][0].update(decided="yes"), "$.comparisons[0].decided"),
        (lambda s: s.update(fired=1), "$.fired"),
        (lambda s: s["comparisons"][0].update(confidence_interval=[0.1, 0.2, 0.3]), "confidence_interval"),
        (lambda s: s.pop("items_total"), "items_total"),
        (lambda s: s.update(comparisons="none"), "comparisons"),
    ],
)  # fmt: skip
def test_a_damaged_sequential_summary_is_a_clear_error_and_resume_writes_it_again(
    tmp_path: Path, damage: Any, named: str
) -> None:
    exp = experiment(0.6, 0.9, min_items=30)
    live = run(exp, output_dir=tmp_path, formats=())
    path = live.run_dir / "status.json"
    state = json.loads(path.read_text())
    damage(state["sequential"])
    path.write_text(json.dumps(state))
    with pytest.raises(RunDirectoryError) as info:
        load_run(live.run_dir)
    message = str(info.value)
    assert str(path) in message and named in message and "resume the run" in message
    assert status(live.run_dir).status == "stopped"  # the cheap status does not need it
    again = resume(live.run_dir, exp, formats=())  # the fix the message names
    assert len(again.records) == len(live.records)
    assert load_run(live.run_dir).sequential == live.sequential


def test_status_json_reserves_room_for_the_summary_of_a_large_family(
    tmp_path: Path,
) -> None:
    """The final status must fit the file the run started with (a full disk rewrites it in place)."""
    names = [f"condition-with-a-long-name-{k}" for k in range(8)]  # 28 comparisons
    exp = Experiment(
        name="wide", dataset=ITEMS[:40],
        conditions=[Condition(name=n, target=model(0.5 + 0.05 * k, n)) for k, n in enumerate(names)],
        analysis=AnalysisConfig(sequential=EarlyStopping(min_items=10)),
    )  # fmt: skip
    started: list[int] = []
    from crucible_harness._store import RunStore

    original = RunStore.write_status

    def spy(self: RunStore, value: Any, **kw: Any) -> None:
        original(self, value, **kw)
        started.append((self.path / "status.json").stat().st_size)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunStore, "write_status", spy)
        live = run(exp, output_dir=tmp_path, formats=())
    final = (live.run_dir / "status.json").read_bytes().rstrip()
    assert len(live.sequential.comparisons) == 28 and len(final) > 4096
    assert started[0] > len(final)
    assert load_run(live.run_dir).sequential == live.sequential


def _records(
    rng: np.random.Generator, order: list[str], pa: float, pb: float
) -> list[dict[str, Any]]:
    out = []
    for item in order:
        out.append(
            {"item": item, "condition": "base", "correct": bool(rng.random() < pa)}
        )
        out.append(
            {"item": item, "condition": "new", "correct": bool(rng.random() < pb)}
        )
    return out


@pytest.mark.parametrize("method", ["confidence_sequence", "obrien_fleming"])
def test_false_positive_rate_over_many_seeded_runs_is_at_most_alpha(
    method: str,
) -> None:
    """200 null runs of the stopping rule itself (no harness overhead): rejections ≤ α."""
    rng = np.random.default_rng(77)
    items = ITEMS[:200]
    fired = 0
    for seed in range(200):
        mon = SequentialMonitor(
            EarlyStopping(method=method, min_items=10),
            AnalysisConfig(),
            ["base", "new"],
            items,
            1,
            seed,
        )
        for r in _records(rng, mon.schedule(), 0.7, 0.7):
            if mon.observe(r):
                break
        fired += mon.fired
    assert fired / 200 <= 0.05


def test_obrien_fleming_stops_at_a_planned_look(tmp_path: Path) -> None:
    result = run(
        experiment(0.55, 0.9, method="obrien_fleming", looks=8),
        output_dir=tmp_path,
        formats=(),
    )
    seq = result.sequential
    assert seq.fired and seq.items_at_stop in seq.looks and seq.items_at_stop < 400
    assert seq.comparisons[0].decided and seq.comparisons[0].difference > 0.2
    assert "O'Brien–Fleming" in seq.rule


def test_futility_stops_when_no_difference_worth_having_is_left(tmp_path: Path) -> None:
    result = run(
        experiment(0.8, 0.8, stop="futile", futility_margin=0.2),
        output_dir=tmp_path,
        formats=(),
    )
    seq = result.sequential
    assert seq.fired and result.status == "stopped"
    (comp,) = seq.comparisons
    assert comp.futile and not comp.decided and comp.confidence_interval[0] > -0.2


def test_sequential_settings_are_checked() -> None:
    with pytest.raises(ExperimentDefinitionError, match="method"):
        EarlyStopping(method="pocock")  # type: ignore[arg-type]
    with pytest.raises(ExperimentDefinitionError, match="stop"):
        EarlyStopping(stop="early")  # type: ignore[arg-type]
    with pytest.raises(ExperimentDefinitionError, match="min_items"):
        EarlyStopping(min_items=0)
    with pytest.raises(ExperimentDefinitionError, match="futility_margin"):
        EarlyStopping(futility_margin=1.5)


def test_a_status_rewritten_in_place_over_a_longer_one_leaves_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk rewrites status.json in place: a shorter status must not keep the old tail."""
    import errno

    from crucible_harness import _store

    live = run(experiment(0.6, 0.9, min_items=30), output_dir=tmp_path, formats=())
    store = _store.RunStore.open(live.run_dir)
    store.write_status(
        {
            "status": "stopped",
            "sequential": live.sequential.to_dict(),
            "note": "x" * 6000,
        }
    )

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_store, "atomic_write", full)
    store.write_status({"status": "failed", "reason": "disk full"})
    assert store.read_status() == {"status": "failed", "reason": "disk full"}
    with pytest.raises(
        RunWriteError, match="No space left on device"
    ):  # it does not fit
        store.write_status({"status": "failed", "reason": "y" * 20_000})
