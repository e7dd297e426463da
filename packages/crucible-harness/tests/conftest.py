"""Fixtures for crucible-harness's tests: realistic analyses built from synthetic task records."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from crucible_core.serde import dumps
from crucible_harness._analysis import Analysis, analyse
from crucible_harness._experiment import AnalysisConfig

# Strings that must stay inert in every report format.
PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    r"\input{/etc/passwd}",
    "$x$ % # _ & ~ ^",
    "| --- |",
)
HOSTILE_CONDITIONS = (
    "<script>alert('c')</script>",
    '"><img src=x onerror=alert(1)>',
    r"\input{/etc/passwd} $x$ % # _ & ~ ^ | --- |",
)


def make_records(
    profiles: Mapping[str, tuple[float, float, float]],
    *,
    n_items: int,
    repeats: int,
    seed: int = 7,
    error_rate: float = 0.05,
    predictions: Sequence[str] = ("A", "B", "C", "D"),
    item_prefix: str = "HumanEval/",
    error_message: str = "task took longer than 30 s",
) -> list[dict[str, Any]]:
    """Task records shaped like the runner's: `profiles` maps condition → (accuracy, median s, USD)."""
    rng = random.Random(seed)
    difficulty = [rng.uniform(-0.25, 0.25) for _ in range(n_items)]
    records = []
    for repeat in range(repeats):
        for i in range(n_items):
            item = f"{item_prefix}{i}"
            for condition, (accuracy, median, price) in profiles.items():
                base = {
                    "key": f"{condition}\x1f{item}\x1f{repeat}",
                    "condition": condition,
                    "item": item,
                    "repeat": repeat,
                    "seed": rng.getrandbits(63),
                }
                if rng.random() < error_rate:
                    base.update(
                        status="error",
                        prediction=None,
                        correct=False,
                        score=None,
                        latency=rng.uniform(0.5, 2.0),
                        cost=0.0,
                        input_tokens=0,
                        output_tokens=0,
                        metadata={},
                        error_type=rng.choice(
                            ["ProviderTimeoutError", "RateLimitError"]
                        ),
                        error=error_message,
                        attempts=3,
                    )
                else:
                    correct = rng.random() < min(
                        max(accuracy + difficulty[i], 0.0), 1.0
                    )
                    inp, out = rng.randint(80, 200), rng.randint(10, 120)
                    base.update(
                        status="ok",
                        prediction=predictions[rng.randrange(len(predictions))]
                        if not correct
                        else "ok",
                        correct=correct,
                        score=1.0 if correct else 0.0,
                        latency=median * math.exp(rng.gauss(0.0, 0.6)),
                        cost=price * (inp + 4 * out) / 1000,
                        input_tokens=inp,
                        output_tokens=out,
                        metadata={"finish_reason": "stop"},
                        error_type=None,
                        error=None,
                        attempts=1,
                    )
                base.update(
                    wall_time=base["latency"],
                    started_at="2025-01-01T00:00:00+00:00",
                    finished_at="2025-01-01T00:00:01+00:00",
                )
                records.append(base)
    return records


def make_manifest(
    conditions: Sequence[str],
    *,
    n_items: int,
    repeats: int,
    name: str = "humaneval-reliability",
    description: str = "Single model against a majority ensemble and a hedged model on HumanEval.",
    hypothesis: str = "The ensemble is more accurate than the single model.",
    config: AnalysisConfig | None = None,
    item_prefix: str = "HumanEval/",
) -> dict[str, Any]:
    """A run manifest shaped like the runner's."""
    config = config or AnalysisConfig()
    return {
        "format": 1,
        "run_id": "run_01JCRUCIBLETEST",
        "fingerprint": "sha256:0123456789abcdef",
        "experiment": {
            "name": name,
            "description": description,
            "hypothesis": hypothesis,
            "author": "A. Researcher",
            "version": "1.0",
            "tags": ["reliability", "code"],
            "dataset": "humaneval",
            "split": "test",
            "sample_size": n_items,
            "stratify_by": None,
            "repeats": repeats,
            "conditions": [
                {"name": c, "kind": "model", "target": "sim:gpt-4", "description": ""}
                for c in conditions
            ],
            "run": {
                "seed": 42,
                "timeout": 30.0,
                "max_concurrency": 8,
                "retries": 2,
                "rate_limit": None,
            },
            "budget": {"max_total": 5.0, "max_per_condition": None},
            "analysis": {
                "alpha": config.alpha,
                "correction": config.correction,
                "confidence_level": config.confidence_level,
                "primary": config.primary,
                "n_resamples": config.n_resamples,
            },
        },
        "items": [f"{item_prefix}{i}" for i in range(n_items)],
        "dataset": {
            "name": "openai_humaneval",
            "revision": "7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544",
            "checksum": "sha256:9f3b1a2c",
        },
        "scorer": "humaneval-exec",
        "created_at": "2025-01-01T00:00:00+00:00",
        "versions": {
            "python": "3.12.0",
            "crucible-core": "0.1.0",
            "crucible-harness": "0.1.0",
            "crucible-bench": "0.1.0",
            "numpy": "2.1.0",
        },
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
    }


def build_analysis(
    profiles: Mapping[str, tuple[float, float, float]],
    *,
    n_items: int,
    repeats: int,
    config: AnalysisConfig | None = None,
    manifest_options: Mapping[str, Any] | None = None,
    record_options: Mapping[str, Any] | None = None,
) -> Analysis:
    """An analysis of synthetic records through the real `analyse`."""
    config = config or AnalysisConfig(n_resamples=500)
    records = make_records(
        profiles, n_items=n_items, repeats=repeats, **dict(record_options or {})
    )
    manifest = make_manifest(
        list(profiles),
        n_items=n_items,
        repeats=repeats,
        config=config,
        **dict(manifest_options or {}),
    )
    return analyse(records, conditions=list(profiles), config=config, manifest=manifest)


def write_run_dir(analysis: Analysis, path: Path) -> Path:
    """Lay out a run directory as the runner leaves it: manifest.json and tasks.jsonl."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_bytes(dumps(dict(analysis.manifest)))
    (path / "tasks.jsonl").write_bytes(
        b"".join(dumps(dict(r)) + b"\n" for r in analysis.records)
    )
    return path


PROFILES = {
    "single-gpt4": (0.62, 1.2, 0.030),
    "majority-5": (0.74, 2.9, 0.120),
    "hedged-gpt4": (0.63, 0.8, 0.045),
}


@pytest.fixture(scope="session")
def analysis() -> Analysis:
    """Three conditions, 40 items, 3 repeats, ~5% failed tasks."""
    return build_analysis(PROFILES, n_items=40, repeats=3)


@pytest.fixture(scope="session")
def hostile_analysis() -> Analysis:
    """Every user-controlled string carries markup, TeX commands or table syntax."""
    profiles = dict(zip(HOSTILE_CONDITIONS, PROFILES.values(), strict=True))
    payload = " ".join(PAYLOADS)
    return build_analysis(
        profiles,
        n_items=12,
        repeats=2,
        manifest_options={
            "name": f"exp {PAYLOADS[0]}",
            "description": f"desc {payload}",
            "hypothesis": f"hyp {payload}",
        },
        record_options={
            "predictions": PAYLOADS,
            "item_prefix": "<b>item</b>_#",
            "error_rate": 0.2,
            "error_message": f"boom {payload}",
        },
    )


@pytest.fixture(scope="session")
def small_analysis() -> Analysis:
    """A tiny fixed analysis (one repeat: Wilson intervals, McNemar) for snapshots."""
    records = []
    outcomes = {"baseline": [1, 0, 0, 1, 0, 1], "treatment": [1, 1, 1, 1, 0, 1]}
    for condition, values in outcomes.items():
        for i, v in enumerate(values):
            records.append(
                {
                    "key": f"{condition}\x1fq{i}\x1f0",
                    "condition": condition,
                    "item": f"q{i}",
                    "repeat": 0,
                    "status": "ok" if i != 4 else "error",
                    "prediction": "42" if v else "41",
                    "correct": bool(v),
                    "latency": 0.5 + 0.1 * i,
                    "cost": 0.001 * (i + 1),
                    "input_tokens": 100,
                    "output_tokens": 10 + i,
                    "error_type": None if i != 4 else "ProviderTimeoutError",
                    "error": None if i != 4 else "task took longer than 30 s",
                    "attempts": 1,
                }
            )
    config = AnalysisConfig()
    manifest = make_manifest(
        list(outcomes),
        n_items=6,
        repeats=1,
        config=config,
        name="tiny_test",
        description="A 50% & 100% check.",
        hypothesis="",
        item_prefix="q",
    )
    return analyse(records, conditions=list(outcomes), config=config, manifest=manifest)


class ReportKit:
    """The helpers above, for test modules (import-mode=importlib forbids importing conftest)."""

    payloads = PAYLOADS
    hostile_conditions = HOSTILE_CONDITIONS
    profiles = PROFILES
    build_analysis = staticmethod(build_analysis)
    write_run_dir = staticmethod(write_run_dir)


@pytest.fixture(scope="session")
def kit() -> type[ReportKit]:
    """Helpers for building analyses and run directories."""
    return ReportKit


# -- run directories for the viewer's tests (test_view*.py) ------------------------------------
def _flaky(item: Any, ctx: Any) -> Any:
    """A callable condition: fails on every 7th item, records a hedging timeline on every 5th."""
    from crucible_harness import ConditionOutput

    n = int(str(item.id)[1:])
    if n % 7 == 0:
        raise ValueError(f"flaky failure on item {item.id}")
    metadata: dict[str, Any] = {"source": "flaky"}
    if n % 5 == 0:
        metadata["timeline"] = [
            {"index": 0, "start_ms": 0.0, "end_ms": 900.0 + n, "outcome": "cancelled"},
            {"index": 1, "start_ms": 400.0, "end_ms": 650.0 + n, "outcome": "won"},
        ]
    if n % 6 == 0:  # a reasoning trace, as crucible-trace writes a chain
        import crucible_trace as ct

        chain = ct.add_events(ct.new_chain(f"flaky {item.id}"), [
            ct.create_event("hypothesis_formed", f"add {n} to itself", "the question is a doubling",
                            alternatives=[f"multiply {n} by 3"], confidence=0.9),
            ct.create_event("decision_made", f"answer {2 * n}", "the sum checks out", confidence=0.7),
        ])  # fmt: skip
        metadata["trace"] = json.loads(ct.to_json(chain))
    answer = str(2 * n) if (n + ctx.repeat) % 3 else f"{2 * n + 1} (off by one)"
    return ConditionOutput(prediction=answer, cost=0.0001, latency=0.05 + 0.01 * n,
                           input_tokens=10, output_tokens=3, metadata=metadata)  # fmt: skip


def _hostile(item: Any, ctx: Any) -> Any:
    from crucible_harness import ConditionOutput

    n = int(str(item.id).rsplit("#", 1)[1])
    if n % 4 == 3:
        raise RuntimeError(f"boom {' '.join(PAYLOADS)}")
    answer = PAYLOADS[(n + ctx.repeat) % len(PAYLOADS)]
    if n % 4 == 1:  # hostile reasoning tags: the trace viewer must show them as text
        answer = (f'<event type="decision_made"><decision>{PAYLOADS[0]}</decision><alternatives><alternative>'
                  f"{PAYLOADS[1]}</alternative></alternatives><reasoning>{PAYLOADS[2]}</reasoning>"
                  f"<confidence>0.4</confidence></event>\n{answer}")  # fmt: skip
    return ConditionOutput(prediction=answer, latency=0.1 + n / 100,
                           metadata={"note": PAYLOADS[1]})  # fmt: skip


@pytest.fixture(scope="session")
def view_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs root the viewer serves: three real harness runs and one hand-written hostile one.

    - `arith-*`: 30 inline items × 2 repeats, two simulated models and a callable that fails on
      every 7th item and records hedged attempts on every 5th;
    - `code/humaneval-*` (nested): 3 HumanEval problems, scored by running the code;
    - `hostile/inject-*`: markup, TeX and table syntax in every free-text field, item ids and answers;
    - `synthetic-hostile`: a run directory laid out by hand with hostile condition names.
    """
    from crucible_core.models import SimulatedModel
    from crucible_core.retry import set_testing
    from crucible_harness import Condition, Experiment, HarnessItem, RunConfig, run

    root = tmp_path_factory.mktemp("view-runs")
    sim = lambda name: SimulatedModel(name, seed=3, virtual_time=True)  # noqa: E731
    items = [HarnessItem(id=f"q{i:03d}", input=f"What is {i} + {i}?", expected=str(2 * i)) for i in range(30)]  # fmt: skip
    with set_testing(True):
        run(Experiment(name="arith", dataset=items, repeats=2, run=RunConfig(max_concurrency=8, seed=5, retries=0),
                       description="Two simulated models and a flaky callable.",
                       conditions=[Condition(name="gpt4", target=sim("gpt-4")), Condition(name="llama", target=sim("llama-3-70b")),
                                   Condition(name="flaky", target=_flaky)]),
            output_dir=root, formats=())  # fmt: skip
        run(Experiment(name="humaneval", dataset="humaneval", sample_size=3, repeats=1, run=RunConfig(seed=1),
                       conditions=[Condition(name="gpt4", target=sim("gpt-4")), Condition(name="llama", target=sim("llama-3-70b"))]),
            output_dir=root / "code", formats=())  # fmt: skip
        hostile_items = [HarnessItem(id=f"<b>item</b>_#{i}", input=f"{PAYLOADS[i % len(PAYLOADS)]} question {i}",
                                     expected=PAYLOADS[0]) for i in range(8)]  # fmt: skip
        payload = " ".join(PAYLOADS)
        run(Experiment(name="inject", dataset=hostile_items, repeats=2, run=RunConfig(seed=2, retries=0),
                       description=f"desc {payload}", hypothesis=f"hyp {payload}",
                       conditions=[Condition(name="a", target=_hostile), Condition(name="b", target=sim("gpt-4"))]),
            output_dir=root / "hostile", formats=())  # fmt: skip
    profiles = dict(zip(HOSTILE_CONDITIONS, PROFILES.values(), strict=True))
    synthetic = build_analysis(profiles, n_items=6, repeats=2,
                               manifest_options={"name": f"exp {PAYLOADS[0]}", "description": f"desc {payload}"},
                               record_options={"predictions": PAYLOADS, "item_prefix": "<b>item</b>_#", "error_rate": 0.2,
                                               "error_message": f"boom {payload}"})  # fmt: skip
    write_run_dir(synthetic, root / "synthetic-hostile")
    return root


@pytest.fixture(scope="session")
def stopped_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs root holding one real run the sequential rule stopped early (`seq-*`).

    Two simulated models, 55% and 95% accurate, on 300 inline items: the betting confidence
    sequence decides the comparison after a few dozen items, and the run stops there.
    """
    from crucible_core.models import Profile, SimulatedModel
    from crucible_core.retry import set_testing
    from crucible_harness import (
        AnalysisConfig,
        Condition,
        EarlyStopping,
        Experiment,
        HarnessItem,
        RunConfig,
        run,
    )

    root = tmp_path_factory.mktemp("stopped-runs")
    sim = lambda name, accuracy: SimulatedModel(Profile(name=name, accuracy=accuracy, latency="fast", error_rate=0.0),  # noqa: E731
                                                seed=3, virtual_time=True)  # fmt: skip
    items = [HarnessItem(id=f"q{i:03d}", input=f"What is {i} + {i}?", expected=str(2 * i)) for i in range(300)]  # fmt: skip
    with set_testing(True):
        result = run(Experiment(name="seq", dataset=items, run=RunConfig(max_concurrency=8, seed=5),
                                conditions=[Condition(name="weak", target=sim("weak", 0.55)), Condition(name="strong", target=sim("strong", 0.95))],
                                analysis=AnalysisConfig(sequential=EarlyStopping(min_items=20))),
                     output_dir=root, formats=())  # fmt: skip
    assert result.status == "stopped" and result.pending > 0, result.reason
    return root


@pytest.fixture(scope="session")
def ray_cluster() -> Any:
    """A real two-node Ray cluster on 127.0.0.1 (head + a second raylet), started once per session.

    This process is connected to it as a driver. Skipped only when ray (the `crucible-harness[ray]`
    extra) is not installed; `scripts/test` installs every extra, so CI runs these tests.
    """
    pytest.importorskip(
        "ray", reason="ray is not installed (the crucible-harness[ray] extra)"
    )
    from crucible_harness._ray_local import LocalRayCluster

    cluster = LocalRayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def two_nodes(ray_cluster: Any) -> Any:
    """The session's cluster with its second node alive (started again if a test killed it)."""
    if ray_cluster.node is None:
        ray_cluster.start_node()
    return ray_cluster
