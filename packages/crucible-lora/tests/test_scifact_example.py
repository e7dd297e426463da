"""The SciFact workflow example (examples/scifact_lora.py) runs end to end, and the guide shows it.

The run needs the local stack and crucible-bench, which test-local.sh installs beside it; the
isolated run (no torch) skips it, and with CRUCIBLE_REQUIRE_TORCH=1 anything missing fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import crucible_datasets as cd
import crucible_lora as cl

PACKAGE = Path(__file__).resolve().parents[1]
EXAMPLE = PACKAGE / "examples" / "scifact_lora.py"
GUIDE = PACKAGE.parents[1] / "docs" / "guides" / "lora.md"


def scifact_dir() -> Path:
    """SciFact's files in the shared datasets beside the repository (or `CRUCIBLE_SHARED_DIR`)."""
    shared = os.environ.get("CRUCIBLE_SHARED_DIR") or PACKAGE.parents[2] / "shared"
    return Path(shared) / "datasets" / "scifact"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scifact_lora", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


@pytest.fixture
def example(require_local: None) -> ModuleType:
    try:
        import crucible_bench  # noqa: F401
    except ImportError:
        message = (
            "crucible-bench is not installed: the example's test runs in "
            "`packages/crucible-lora/scripts/test-local.sh`, which installs it"
        )
        if os.environ.get("CRUCIBLE_REQUIRE_TORCH") == "1":
            pytest.fail(f"CRUCIBLE_REQUIRE_TORCH=1 but {message}")
        pytest.skip(message)
    return load_example()


def test_tuned_model_beats_the_base_on_held_out_claims(
    example: ModuleType, tmp_path: Path
) -> None:
    source = scifact_dir()
    if not (source / "claims_dev.jsonl").is_file():
        pytest.fail(
            f"SciFact's claims are missing at {source}; set CRUCIBLE_SHARED_DIR"
        )
    result = example.run(source, workdir=tmp_path)

    # 300 validation claims, a quarter held out (stratified by label)
    assert len(result.base.predictions) == 75
    assert len(result.training.history) == 4 * -(-225 // 8)
    losses = [r.loss for r in result.training.history]
    assert losses[-1] < 0.2 * losses[0]

    before = result.base.scores("label_accuracy")
    after = result.tuned.scores("label_accuracy")
    assert sum(after) > sum(before)
    comparison = result.versus_base
    assert comparison.paired and comparison.method == "McNemar's exact test"
    assert comparison.difference == pytest.approx(
        result.tuned.metrics["label_accuracy"] - result.base.metrics["label_accuracy"]
    )
    assert comparison.pvalue < 0.01
    assert comparison.confidence_interval[0] > 0
    # the tuned model answers in the label vocabulary, which the base never does
    named = [cd.normalize_label(p.prediction) for p in result.tuned.predictions]
    assert sum(label is not None for label in named) >= 0.8 * len(named)
    assert not any(cd.normalize_label(p.prediction) for p in result.base.predictions)
    assert (tmp_path / "base" / "config.json").is_file()  # the pretrained base
    assert result.seconds < 120


def test_label_accuracy_reads_labels_as_crucible_datasets_does() -> None:
    if importlib.util.find_spec("crucible_bench") is None:
        pytest.skip("crucible-bench is not installed (see test-local.sh)")
    example = load_example()
    claim = cl.Example(prompt="c", completion=" true", expected="SUPPORTS")
    assert example.label_accuracy(" true", claim) == 1.0
    assert example.label_accuracy(" supports", claim) == 1.0
    assert example.label_accuracy(" nei", claim) == 0.0
    assert example.label_accuracy(" truei", claim) == 0.0
    assert set(example.ANSWERS) == {"SUPPORTS", "REFUTES", "NOT ENOUGH INFO"}
    assert {cd.normalize_label(word) for word in example.ANSWERS.values()} == set(
        example.ANSWERS
    )


def test_the_guide_shows_the_example_verbatim() -> None:
    if not GUIDE.is_file():
        pytest.skip("not running from the workspace checkout (no docs/)")
    blocks = re.findall(r"^```py\n(.*?)^```", GUIDE.read_text(), re.DOTALL | re.M)
    assert EXAMPLE.read_text() in blocks, (
        "docs/guides/lora.md must show examples/scifact_lora.py verbatim in a ```py block"
    )
