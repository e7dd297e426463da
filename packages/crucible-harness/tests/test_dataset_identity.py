"""`Experiment` takes the datasets' own options, and a loaded `Dataset` keeps its identity (#18).

Real files: GSM8K and MMLU from the shared datasets directory, read with `source=`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import crucible_datasets
from crucible_core.retry import set_testing
from crucible_harness import (
    Experiment,
    ExperimentDefinitionError,
    ResumeMismatchError,
    RunConfig,
    resume,
    run,
)


def _shared() -> Path:
    env = os.environ.get("CRUCIBLE_SHARED_DIR")
    return (
        Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"
    ) / "datasets"


DATA = _shared()
GSM8K = DATA / "gsm8k" / "test.jsonl"
MMLU = DATA / "mmlu"


@pytest.fixture(autouse=True)
def _data() -> None:
    if not GSM8K.is_file():
        pytest.fail(
            f"the shared datasets are missing at {DATA}; set CRUCIBLE_SHARED_DIR"
        )


def _experiment(**kw: Any) -> Experiment:
    base: dict[str, Any] = {
        "name": "ident",
        "conditions": {"gpt4": "sim:gpt-4"},
        "sample_size": 6,
        "run": RunConfig(seed=2),
    }
    return Experiment(**{**base, **kw})


def _manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def test_a_loaded_dataset_keeps_its_name_revision_and_checksum(tmp_path: Path) -> None:
    ds = crucible_datasets.load("gsm8k", source=GSM8K)
    with set_testing(True):
        result = run(_experiment(dataset=ds), output_dir=tmp_path, formats=["markdown"])
    manifest = _manifest(result.run_dir)
    assert manifest["experiment"]["dataset"] == "gsm8k"
    src = manifest["dataset"]
    assert src["name"] == "gsm8k" and src["items"] == len(ds.items) == 1319
    assert src["checksum"] == ds.version.checksum and src["checksum"].startswith(
        "sha256:"
    )
    assert src["revision"] == ds.version.revision
    md = (result.run_dir / "report.md").read_text(encoding="utf-8")
    assert "| dataset | gsm8k |" in md and "inline" not in md
    assert f"| dataset checksum | {ds.version.checksum} |" in md


def test_by_name_with_source_gives_the_same_items_and_identity(tmp_path: Path) -> None:
    ds = crucible_datasets.load("gsm8k", source=GSM8K)
    with set_testing(True):
        by_object = run(_experiment(dataset=ds), output_dir=tmp_path / "a")
        by_name = run(
            _experiment(dataset="gsm8k", source=GSM8K), output_dir=tmp_path / "b"
        )
    a, b = _manifest(by_object.run_dir), _manifest(by_name.run_dir)
    assert a["items"] == b["items"] and a["references"] == b["references"]
    assert a["dataset"]["checksum"] == b["dataset"]["checksum"]
    assert b["dataset"]["source"] == str(GSM8K)
    assert b["experiment"]["source"] == str(GSM8K)
    prompts = {r["item"]: r["prediction"] for r in by_object.records}
    assert prompts == {r["item"]: r["prediction"] for r in by_name.records}


def test_subset_and_split_reach_the_loader(tmp_path: Path) -> None:
    with set_testing(True):
        result = run(
            _experiment(dataset="mmlu", subset="astronomy", split="test", source=MMLU),
            output_dir=tmp_path,
        )
    manifest = _manifest(result.run_dir)
    assert manifest["dataset"]["subset"] == "astronomy"
    assert manifest["dataset"]["items"] == 152  # MMLU astronomy test questions
    assert all(i.startswith("astronomy") or "astronomy" in i for i in manifest["items"])


def test_options_change_the_fingerprint_and_resume_checks_them(tmp_path: Path) -> None:
    plain = _experiment(dataset="mmlu", source=MMLU)
    astro = _experiment(dataset="mmlu", source=MMLU, subset="astronomy")
    assert plain.fingerprint() != astro.fingerprint()
    # the fingerprint without options is what it was before they existed
    assert "subset" not in plain.describe() and plain.describe()["source"] == str(MMLU)
    with set_testing(True):
        first = run(astro, output_dir=tmp_path)
        with pytest.raises(ResumeMismatchError):
            resume(
                first.run_dir,
                _experiment(dataset="mmlu", source=MMLU, subset="anatomy"),
            )


def test_options_with_a_loaded_dataset_or_items_are_refused() -> None:
    ds = crucible_datasets.load("gsm8k", source=GSM8K)
    with pytest.raises(
        ExperimentDefinitionError, match="subset apply to a dataset given by name"
    ):
        _experiment(dataset=ds, subset="main")
    with pytest.raises(ExperimentDefinitionError, match="revision apply"):
        _experiment(
            dataset=[{"id": "a", "input": "1+1", "expected": "2"}], revision="main"
        )


def test_a_missing_source_names_the_dataset() -> None:
    with (
        pytest.raises(ExperimentDefinitionError, match="cannot load dataset 'gsm8k'"),
        set_testing(True),
    ):
        run(_experiment(dataset="gsm8k", source=DATA / "nope.jsonl"), dry_run=True)
