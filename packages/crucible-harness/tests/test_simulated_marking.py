"""Reports and summaries say which conditions are simulated, in every format (issue #18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crucible_core.models import SimulatedModel, build_model, is_simulated
from crucible_core.retry import set_testing
from crucible_harness import (
    Condition,
    ConditionOutput,
    Experiment,
    HarnessItem,
    RunConfig,
    TaskContext,
    run,
)
from crucible_harness._analysis import simulated_in_manifest

ITEMS = [
    HarnessItem(id=f"q{i:02d}", input=f"What is {i} + {i}?", expected=str(2 * i))
    for i in range(12)
]


def honest(item: HarnessItem, ctx: TaskContext) -> ConditionOutput:
    """A real (non-simulated) condition: user code that computes the answer."""
    a = int(str(item.input).split()[2])
    return ConditionOutput(prediction=str(2 * a), cost=0.0)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with set_testing(True):
        return run(
            Experiment(
                name="mixed",
                dataset=ITEMS,
                conditions=[
                    Condition(name="code", target=honest),
                    Condition(name="sim-gpt4", target="sim:gpt-4"),
                ],
                run=RunConfig(seed=1),
            ),
            output_dir=tmp_path_factory.mktemp("mixed"),
            formats=["markdown", "html", "latex", "notebook", "json"],
        )


def test_what_counts_as_simulated() -> None:
    sim = SimulatedModel("gpt-4", virtual_time=True)
    assert is_simulated("sim:gpt-4") and is_simulated(" SIM:claude-3")
    assert not is_simulated("openai:gpt-4o-mini")
    assert not is_simulated("anthropic:claude-3-5-haiku") and not is_simulated("gpt-4")
    assert is_simulated(sim) and is_simulated(build_model("sim:claude-3"))
    assert not is_simulated(honest)
    assert Condition(name="c", target=honest).simulated is False
    assert Condition(name="c", target="openai:gpt-4o-mini").simulated is False
    assert Condition(name="c", target=sim).simulated is True


def test_manifest_records_the_flag_and_old_manifests_are_inferred(
    mixed_run: Any,
) -> None:
    manifest = json.loads((mixed_run.run_dir / "manifest.json").read_text())
    flags = {c["name"]: c["simulated"] for c in manifest["experiment"]["conditions"]}
    assert flags == {"code": False, "sim-gpt4": True}
    for c in manifest["experiment"]["conditions"]:
        del c["simulated"]  # a manifest written before the flag existed
    assert simulated_in_manifest(manifest) == {"sim-gpt4"}
    ensemble_id = "ensemble:majority/parallel(sim:gpt-4,openai:gpt-4o)"
    old = {"experiment": {"conditions": [{"name": "e", "target": ensemble_id},
                                         {"name": "r", "target": "openai:gpt-4o"}]}}  # fmt: skip
    assert simulated_in_manifest(old) == {"e"}


def test_every_report_format_marks_only_the_simulated_condition(mixed_run: Any) -> None:
    analysis = mixed_run.analysis
    assert analysis.simulated_conditions == ("sim-gpt4",)
    notice = analysis.simulated_notice
    assert notice.startswith("Simulated models: condition(s) sim-gpt4 used")
    assert "code" not in notice
    d = mixed_run.run_dir
    md = (d / "report.md").read_text(encoding="utf-8")
    assert "**Simulated models: condition(s) sim-gpt4 used" in md
    assert "| sim-gpt4 (simulated) |" in md and "| code |" in md
    assert "| simulated conditions | sim-gpt4 |" in md
    html = (d / "report.html").read_text(encoding="utf-8")
    assert 'id="simulated-notice"' in html and "sim-gpt4 (simulated)</td>" in html
    tex = (d / "report.tex").read_text(encoding="utf-8")
    assert r"\fbox{\parbox{0.9\linewidth}{\textbf{Simulated models:" in tex
    assert "sim-gpt4 (simulated) &" in tex
    notebook = json.loads((d / "report.ipynb").read_text(encoding="utf-8"))
    assert "Simulated models" in "".join(notebook["cells"][0]["source"])
    data = json.loads((d / "analysis.json").read_text(encoding="utf-8"))
    assert data["methods"].startswith("Simulated models: condition(s) sim-gpt4")
    # the printed summary (what `crucible run` and notebooks show)
    text = str(analysis)
    assert text.index("Simulated models") < text.index(
        "Conditions"
    )  # leads, before the tables
    assert "sim-gpt4 (simulated)" in text


def test_a_run_without_simulated_models_carries_no_notice(tmp_path: Path) -> None:
    with set_testing(True):
        result = run(
            Experiment(
                name="real",
                dataset=ITEMS,
                conditions=[Condition(name="code", target=honest)],
            ),
            output_dir=tmp_path,
            formats=["markdown"],
        )
    assert result.analysis.simulated_conditions == ()
    assert result.analysis.simulated_notice == ""
    md = (result.run_dir / "report.md").read_text(encoding="utf-8")
    assert "imulated" not in md
