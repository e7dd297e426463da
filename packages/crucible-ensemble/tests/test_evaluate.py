"""evaluate_ensemble: the ensemble and every member on the same items."""

from __future__ import annotations

import pytest

from crucible_core.models import Request
from crucible_ensemble import (
    ENSEMBLE,
    Ensemble,
    EnsembleConfigurationError,
    evaluate_ensemble,
    evaluate_ensemble_async,
)


async def test_every_system_answers_every_item(simulated_members, binary_items) -> None:
    members = simulated_members((0.7, 0.8, 0.9), seed=4)
    items = binary_items(300)
    ensemble = Ensemble(members, execution="sequential")
    result = await evaluate_ensemble_async(ensemble, items)
    assert result.items == tuple(f"q{i}" for i in range(300))
    assert result.systems == (ENSEMBLE, *ensemble.names)
    for member, name in zip(members, ensemble.names, strict=True):
        assert result.correct(name) == [member.answer(i)[1] for i in items]
    majority = [sum(m.answer(i)[1] is True for m in members) >= 2 for i in items]
    assert result.correct() == majority
    acc = result.accuracy()
    assert acc[ENSEMBLE] == sum(majority) / 300
    assert result.best_member() == ensemble.names[2]
    weights = result.log_odds_weights()
    assert weights[ensemble.names[2]] > weights[ensemble.names[0]] > 0
    assert result.cost()[ENSEMBLE] == pytest.approx(
        sum(o.cost or 0 for o in result.outcomes if o.system == ENSEMBLE)
    )
    frame = result.to_polars()
    assert frame.height == 4 * 300 and "correct" in frame.columns
    assert "Ensemble evaluation" in result.render()
    with pytest.raises(EnsembleConfigurationError, match="unknown system"):
        result.correct("nobody")


def test_dict_items_custom_scorer_and_failures(scripted, failing_model) -> None:
    ensemble = Ensemble([scripted("a", "4"), failing_model("b")], normalize="number")
    items = [{"prompt": "2+2", "reference": "4.0", "id": "sum"}]
    result = evaluate_ensemble(ensemble, items)
    assert result.items == ("sum",)
    assert result.correct() == [True]
    assert result.correct("fake:b") == [False]
    failed = next(o for o in result.outcomes if o.system == "fake:b")
    assert failed.error is not None and failed.answer is None
    never = evaluate_ensemble(ensemble, items, score=lambda answer, request: False)
    assert never.accuracy()[ENSEMBLE] == 0.0


def test_ensemble_failure_is_a_wrong_answer(failing_model) -> None:
    ensemble = Ensemble([failing_model("x")])
    result = evaluate_ensemble(ensemble, [Request(prompt="q", reference="A")])
    (outcome,) = [o for o in result.outcomes if o.system == ENSEMBLE]
    assert not outcome.correct and "InsufficientResponsesError" in (outcome.error or "")


@pytest.mark.parametrize(
    ("items", "options", "match"),
    [
        ([Request(prompt="q")], {}, "no `reference`"),
        ([{"question": "q"}], {}, "does not take"),
        ([42], {}, "give `Request`s"),
        ([], {"max_concurrency": 0}, "positive integer"),
    ],
)
def test_bad_items(scripted, items, options, match) -> None:
    with pytest.raises(EnsembleConfigurationError, match=match):
        evaluate_ensemble(Ensemble([scripted("a")]), items, **options)


def test_the_old_name_evaluation_result_warns_and_resolves() -> None:
    import crucible_ensemble
    from crucible_core.exceptions import CrucibleDeprecationWarning

    with pytest.warns(CrucibleDeprecationWarning, match="renamed EnsembleEvaluation"):
        old = crucible_ensemble.EvaluationResult
    assert old is crucible_ensemble.EnsembleEvaluation
    assert "EvaluationResult" not in crucible_ensemble.__all__
