"""evaluate / evaluate_batch on real datasets: extraction, CIs, per-item results, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

import crucible_datasets as cd
from crucible_datasets import Dataset, Item, Prediction, PredictionError


@pytest.fixture(scope="module")
def mmlu_dev(data_dir: Path) -> Dataset:
    return cd.load("mmlu", split="dev", source=data_dir / "mmlu")


def test_mmlu_letters_are_extracted_from_free_text(mmlu_dev: Dataset) -> None:
    preds = {}
    for k, item in enumerate(mmlu_dev):
        wrong = "ABCD"[("ABCD".index(item.expected) + 1) % 4]
        preds[item.id] = (
            f"Let me think. The answer is ({item.expected})."
            if k % 5
            else f"**{wrong}**"
        )
    result = cd.evaluate(preds, dataset=mmlu_dev, model_name="m")
    assert result.accuracy == pytest.approx(228 / 285)
    ci = result.intervals["exact_match"]
    assert ci.method == "wilson" and ci.low < result.accuracy < ci.high
    assert result.item_results[1].extracted == mmlu_dev[1].expected
    assert result.n_missing == 0
    assert result.version == mmlu_dev.version.checksum


def test_gsm8k_numbers_are_compared_as_numbers(data_dir: Path) -> None:
    ds = cd.load("gsm8k", source=data_dir / "gsm8k")
    preds = [Prediction(id=i.id, predicted=i.metadata["solution"]) for i in ds]
    result = cd.evaluate(preds, dataset=ds)
    assert result.accuracy == 1.0
    worded = cd.evaluate(
        {ds[0].id: "So she makes $18.00 every day.", ds[1].id: "The answer is 4."},
        dataset=ds,
    )
    assert [r.scores["exact_match"] for r in worded.item_results[:2]] == [1.0, 0.0]
    assert worded.n_missing == 1317


def test_fever_labels_are_normalized(data_dir: Path) -> None:
    ds = cd.load("fever", source=data_dir / "fever")
    spelled = {"SUPPORTS": "Supported.", "REFUTES": "refutes", "NOT ENOUGH INFO": "NEI"}
    result = cd.evaluate({i.id: spelled[i.expected] for i in ds}, dataset=ds)
    assert result.accuracy == 1.0
    always = cd.evaluate({i.id: "SUPPORTS" for i in ds}, dataset=ds)
    assert always.accuracy == pytest.approx(1 / 3)


def test_text_metrics_and_views() -> None:
    ds = Dataset.from_items(
        "qa",
        [
            Item(id="a", input={"q": "capital of France"}, expected="Paris"),
            Item(id="b", input={"q": "largest planet"}, expected="the planet Jupiter"),
            Item(id="c", input={"q": "2+2"}, expected="4"),
        ],
    )
    result = cd.evaluate(
        [
            {"id": "a", "predicted": "paris"},
            ("b", "Jupiter"),
            {"id": "c", "prediction": "five"},
        ],
        dataset=ds,
        metrics=("exact_match", "f1", "rouge_l", "bleu", "chrf"),
        model_name="toy <model>",
    )
    assert result.metrics["exact_match"] == pytest.approx(1 / 3)
    assert result.metrics["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert result.intervals["f1"].method == "t"
    assert set(result.metrics) == {"exact_match", "f1", "rouge_l", "bleu", "chrf"}
    text = result.render()
    assert "exact_match" in text and "toy <model>" in text
    assert "toy &lt;model&gt;" in result._repr_html_()
    frame = result.to_polars()
    assert frame.columns == [
        "id",
        "expected",
        "extracted",
        "exact_match",
        "f1",
        "rouge_l",
        "bleu",
        "chrf",
    ]
    assert frame.height == 3
    assert result.to_dict()["model"] == "toy <model>"
    assert "EvaluationResult(" in repr(result)


def test_unknown_and_duplicate_ids_are_listed(mmlu_dev: Dataset) -> None:
    with pytest.raises(PredictionError, match="2 prediction id") as info:
        cd.evaluate(
            {"nope-1": "A", "nope-2": "B", mmlu_dev[0].id: "A"}, dataset=mmlu_dev
        )
    assert info.value.unknown_ids == ["nope-1", "nope-2"]
    assert isinstance(info.value, ValueError)
    with pytest.raises(PredictionError, match="repeated ids") as dup:
        cd.evaluate([(mmlu_dev[0].id, "A"), (mmlu_dev[0].id, "B")], dataset=mmlu_dev)
    assert dup.value.duplicate_ids == [mmlu_dev[0].id]


def test_bad_arguments(mmlu_dev: Dataset) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        cd.evaluate({}, dataset=mmlu_dev, metrics=("accuracyy",))
    with pytest.raises(ValueError, match="runs code"):
        cd.evaluate({}, dataset=mmlu_dev, metrics="pass@1")
    with pytest.raises(ValueError, match="empty"):
        cd.evaluate({}, dataset=mmlu_dev, metrics=())
    with pytest.raises(ValueError, match="mapping"):
        cd.evaluate("A", dataset=mmlu_dev)
    with pytest.raises(ValueError, match="no `predicted`"):
        cd.evaluate([{"id": mmlu_dev[0].id}], dataset=mmlu_dev)
    with pytest.raises(ValueError, match="cannot read"):
        cd.evaluate([42], dataset=mmlu_dev)
    with pytest.raises(ValueError, match="non-empty"):
        cd.evaluate_batch({}, dataset=mmlu_dev)


def test_missing_predictions_score_zero(mmlu_dev: Dataset) -> None:
    result = cd.evaluate({}, dataset=mmlu_dev)
    assert result.accuracy == 0.0
    assert result.n_missing == 285
    assert result.intervals["exact_match"].low == 0.0


def test_evaluate_batch(mmlu_dev: Dataset) -> None:
    perfect = {i.id: i.expected for i in mmlu_dev}
    always_a = {i.id: "A" for i in mmlu_dev}
    batch = cd.evaluate_batch(
        {"oracle": perfect, "always-A": always_a}, dataset=mmlu_dev
    )
    assert batch.results["oracle"].accuracy == 1.0
    share_a = sum(i.expected == "A" for i in mmlu_dev) / len(mmlu_dev)
    assert batch.results["always-A"].accuracy == pytest.approx(share_a)
    assert "always-A" in batch.render()
    assert batch.to_polars().height == 2


def test_evaluate_emits_an_event(mmlu_dev: Dataset) -> None:
    from crucible_core.events import attach, detach

    seen = []
    attach(
        "t-eval",
        [("crucible", "dataset", "evaluate")],
        lambda n, m, md: seen.append((m, md)),
    )
    try:
        cd.evaluate(
            {mmlu_dev[0].id: mmlu_dev[0].expected}, dataset=mmlu_dev, model_name="x"
        )
    finally:
        detach("t-eval")
    assert seen and seen[0][1]["model"] == "x" and seen[0][0]["items"] == 285
