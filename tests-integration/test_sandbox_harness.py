"""A forged verdict through the harness end to end: `raise SystemExit(0)` scores 0, honest scores 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import crucible_datasets as cd
from crucible_harness import Condition, Experiment, HarnessItem, RunConfig, run


def test_systemexit_condition_scores_zero_through_the_harness(tmp_path: Path) -> None:
    ds = cd.load("humaneval")
    items = [
        HarnessItem(
            id=i.id,
            input=i.input["prompt"],
            expected=i.expected,
            metadata={
                "test": i.metadata["test"],
                "entry_point": i.metadata["entry_point"],
            },
        )
        for i in ds.items[:8]
    ]

    def honest(item: HarnessItem, ctx: Any) -> str:
        return str(item.expected)

    def forger(item: HarnessItem, ctx: Any) -> str:
        return "    raise SystemExit(0)\n"

    def exiter(item: HarnessItem, ctx: Any) -> str:
        return "    import os\n    os._exit(0)\n"

    exp = Experiment(
        name="forgery",
        dataset=items,
        conditions=[
            Condition(name="honest", target=honest),
            Condition(name="systemexit", target=forger),
            Condition(name="os_exit", target=exiter),
        ],
        scorer="pass@1",
        run=RunConfig(max_concurrency=2),
    )
    result = run(exp, output_dir=tmp_path, formats=())
    accuracy = {c.name: c.accuracy for c in result.analysis.conditions}
    assert accuracy == {"honest": 1.0, "systemexit": 0.0, "os_exit": 0.0}
