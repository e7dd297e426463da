"""QualityValidator: schema compliance, citation accuracy, entailment through a judge."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import crucible_lora as cl

GOOD = '{"label": "SUPPORT", "evidence": ["d1", "d2"]}'
BAD_CITE = '{"label": "SUPPORT", "evidence": ["d9"]}'
NO_CITE = '{"label": "CONTRADICT", "evidence": []}'
NOT_JSON = "SUPPORT because d1"
FENCED = 'Answer:\n```json\n{"label": "SUPPORT", "evidence": ["d2"]}\n```'


def test_metrics_are_computed_from_the_outputs() -> None:
    v = cl.QualityValidator(corpus_ids={"d1", "d2"}, labels=("SUPPORT", "CONTRADICT"))
    report = v.validate([GOOD, BAD_CITE, NO_CITE, NOT_JSON, FENCED])
    assert report.n == 5
    assert report.schema_compliance == 4 / 5
    assert report.citation_accuracy == 2 / 4  # GOOD and FENCED cite only existing ids
    assert report.mean_entailment is None and report.not_computed == (
        "mean_entailment",
    )
    assert report.overall_pass_rate == 2 / 5
    assert [r["passed"] for r in report.per_item] == [True, False, False, False, True]
    assert "cited ids that do not exist: ['d9']" in report.per_item[1]["errors"]
    assert not report.met  # schema 0.8 < 0.95, and entailment was not computed
    assert "not computed" in report.render()
    assert "<table" in report._repr_html_()


def test_labels_and_required_keys() -> None:
    v = cl.QualityValidator(
        corpus_ids={"d1"}, labels=("SUPPORT",), required_keys=("label",)
    )
    report = v.validate(
        ['{"label": "MAYBE", "evidence": ["d1"]}', '{"evidence": ["d1"]}']
    )
    assert report.schema_compliance == 0.0
    assert report.citation_accuracy == 0.0


def test_targets_met_only_for_required_metrics() -> None:
    targets = cl.QualityTargets.from_mapping(
        {"schema_compliance": 0.95, "citation_accuracy": 0.95}
    )
    v = cl.QualityValidator(corpus_ids={"d1", "d2"}, targets=targets)
    assert v.validate([GOOD, FENCED]).met
    assert not v.validate([GOOD, BAD_CITE]).met
    with pytest.raises(cl.LoraConfigError, match="unknown quality target"):
        cl.QualityTargets.from_mapping({"accuracy": 0.9})
    with pytest.raises(cl.LoraConfigError, match=r"\[0, 1\]"):
        cl.QualityTargets(schema_compliance=1.5)
    defaults = cl.QualityTargets()
    assert (defaults.schema_compliance, defaults.citation_accuracy) == (0.95, 0.95)
    assert (defaults.mean_entailment, defaults.overall_pass_rate) == (0.50, 0.45)


def test_per_item_ids_and_missing_ids() -> None:
    @attrs.define
    class Item:
        metadata: dict[str, Any]

    v = cl.QualityValidator(item_ids=lambda it: it.metadata["evidence"])
    items = [Item({"evidence": ["d1", "d2"]}), Item({"evidence": ["d3"]})]
    assert v.validate([GOOD, GOOD], items).citation_accuracy == 0.5
    with pytest.raises(cl.LoraConfigError, match="corpus_ids"):
        cl.QualityValidator().validate([GOOD])
    with pytest.raises(cl.LoraDataError, match="one item per output"):
        v.validate([GOOD], items)
    with pytest.raises(cl.LoraDataError, match="no outputs"):
        v.validate([])


def test_entailment_through_a_function_judge() -> None:
    scores = iter([0.9, 0.2])
    v = cl.QualityValidator(
        corpus_ids={"d1", "d2"}, judge=lambda text, item: next(scores)
    )
    report = v.validate([GOOD, GOOD])
    assert report.mean_entailment == pytest.approx(0.55)
    assert report.overall_pass_rate == 0.5  # the second is judged not entailed


async def test_entailment_through_an_async_judge_and_bad_scores() -> None:
    async def judge(text: str, item: Any) -> float:
        return 1.0 if "d1" in text else 0.0

    v = cl.QualityValidator(corpus_ids={"d1", "d2"}, judge=judge)
    report = await v.validate_async([GOOD, FENCED])
    assert report.mean_entailment == 0.5
    bad = cl.QualityValidator(corpus_ids={"d1"}, judge=lambda t, i: 3.0)
    with pytest.raises(cl.LoraDataError, match=r"\[0, 1\]"):
        await bad.validate_async([GOOD])


async def test_entailment_through_a_model_judge() -> None:
    from crucible_core.models import Completion, Request

    class Judge:
        id = "fake:judge"
        provider = "fake"

        def __init__(self) -> None:
            self.requests: list[Request] = []

        async def complete(self, request: Request) -> Completion:
            self.requests.append(request)
            return Completion(text="0.8")

        async def aclose(self) -> None:
            return None

    judge = Judge()
    v = cl.QualityValidator(corpus_ids={"d1", "d2"}, judge=judge)
    report = await v.validate_async([GOOD])
    assert report.mean_entailment == 0.8
    assert "entails" in (judge.requests[0].prompt or "")


def test_parse_structured() -> None:
    assert cl.parse_structured(FENCED) == {"label": "SUPPORT", "evidence": ["d2"]}
    assert cl.parse_structured('text {"a": 1} more') == {"a": 1}
    assert cl.parse_structured("nothing") is None
