"""The harness on Ray with the other packages' models: ensembles and hedged models travel to the
workers, their records match a local run, their telemetry reaches the driver; `crucible run --ray`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import crucible_telemetry as ct
from crucible_core.models import SimulatedModel
from crucible_ensemble import Ensemble
from crucible_harness import (
    Condition,
    Experiment,
    HarnessItem,
    RayExecutor,
    RunConfig,
    run,
)
from crucible_hedging import Fixed, HedgedModel

ray = pytest.importorskip(
    "ray", reason="ray is not installed (the crucible-harness[ray] extra)"
)

pytestmark = pytest.mark.timeout(600)
ITEMS = [
    HarnessItem(id=f"q{i}", input=f"What is {i} + {i}?", expected=str(2 * i))
    for i in range(30)
]
TIMING = {"latency", "wall_time", "started_at", "finished_at"}


@pytest.fixture(scope="module")
def ray_here() -> Iterator[None]:
    """A one-node Ray instance of this process (the two-node cluster is in crucible-harness's tests)."""
    mp = pytest.MonkeyPatch()
    mp.setenv(
        "RAY_AUTH_MODE", "disabled"
    )  # no token auth, no token written into ~/.ray
    ray.init(num_cpus=2, object_store_memory=80_000_000, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _node_ip_address="127.0.0.1")  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()
        mp.undo()


def comparable(records: Any) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING} for r in records),
        key=lambda r: r["key"],
    )


def test_ensembles_and_hedged_models_run_on_workers_like_locally(
    ray_here: None, tmp_path: Path
) -> None:
    def experiment(executor: Any) -> Experiment:
        members = [
            SimulatedModel(n, seed=2, virtual_time=True)
            for n in ("gpt-4", "claude-3", "gemini-pro")
        ]
        return Experiment(
            name="models", dataset=ITEMS,
            conditions=[Condition(name="vote", target=Ensemble(members, strategy="majority")),
                        Condition(name="hedged", target=HedgedModel(SimulatedModel("gpt-4", seed=4, virtual_time=True),
                                                                    policy=Fixed(delay=0.3)))],
            run=RunConfig(max_concurrency=8, executor=executor),
        )  # fmt: skip

    local = run(experiment("local"), output_dir=tmp_path / "local", formats=())
    with ct.experiment("on-ray", capture="all") as captured:
        remote = run(
            experiment(RayExecutor(num_workers=2, resources={"CPU": 0.5})),
            output_dir=tmp_path,
            formats=(),
        )
    assert remote.status == local.status == "complete"
    assert comparable(remote.records) == comparable(local.records)
    names = [
        e.name for e in ct.get_events(captured.id)
    ]  # the workers' events, in the driver's experiment
    assert names.count("crucible.harness.task.stop") == 60
    assert names.count("crucible.ensemble.vote.stop") == 30
    lines = (remote.run_dir / "events.jsonl").read_text().splitlines()
    assert (
        sum(json.loads(x)["name"] == "crucible.harness.task.stop" for x in lines) == 60
    )


EXPERIMENT = """
from crucible_core.models import SimulatedModel
from crucible_harness import Condition, Experiment, HarnessItem

items = [HarnessItem(id=f"q{i}", input=f"What is {i} + {i}?", expected=str(2 * i)) for i in range(12)]
experiment = Experiment(name="cli-ray", dataset=items, repeats=2,
                        conditions=[Condition(name="a", target=SimulatedModel("gpt-4", virtual_time=True)),
                                    Condition(name="b", target="sim:llama-3-70b?virtual_time=true")])
"""


def test_crucible_run_with_ray(
    ray_here: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crucible._cli import main

    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    args = [
        "run",
        str(script),
        "--output",
        str(tmp_path / "runs"),
        "--yes",
        "--quiet",
        "--format",
        "json",
    ]
    assert main([*args, "--ray"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["experiment"]["run"]["executor"] == {
        "kind": "ray", "address": "auto", "num_workers": None, "resources": {"CPU": 1.0},
        "concurrency": None, "batch_size": 16,
    }  # fmt: skip
    assert len((run_dir / "tasks.jsonl").read_text().splitlines()) == 48
    assert "complete" in capsys.readouterr().out
