from __future__ import annotations

import pytest

from crucible_harness import ExperimentDefinitionError, HarnessItem
from crucible_harness._scoring import resolve_scorer


def item(expected: object) -> HarnessItem:
    return HarnessItem(id="i", input="q", expected=expected)


@pytest.mark.parametrize(
    ("expected", "prediction", "correct"),
    [
        ("18", "She makes $18.\n#### 18", True),
        ("1,234", "so the answer is 1234.0", True),
        ("18", "#### 19", False),
        ("4", "no number here", False),
    ],
)
def test_number_scorer(expected: str, prediction: str, correct: bool) -> None:
    scorer = resolve_scorer("number", dataset=None, items=())
    assert scorer(item(expected), prediction) == (correct, float(correct))


def test_choice_exact_auto_and_custom() -> None:
    choice = resolve_scorer("choice", dataset=None, items=())
    assert choice(item("B"), "The answer is (B).")[0] is True
    assert choice(item("B"), "**C**")[0] is False
    exact = resolve_scorer("exact", dataset=None, items=())
    assert exact(item("Paris"), "paris.")[0] is True
    assert exact(item(None), "anything") == (None, None)
    assert (
        resolve_scorer("auto", dataset=None, items=(item("C"), item("A"))).name
        == "choice"
    )
    assert (
        resolve_scorer("auto", dataset=None, items=(item("12"), item("3.5"))).name
        == "number"
    )
    assert resolve_scorer("auto", dataset=None, items=(item("a cat"),)).name == "exact"
    half = resolve_scorer(lambda it, p: 0.5, dataset=None, items=())
    assert half(item("x"), "y") == (False, 0.5)
    with pytest.raises(ExperimentDefinitionError, match="unknown scorer 'bleu'"):
        resolve_scorer("bleu", dataset=None, items=())
