"""Scoring predictions: built-in matchers, and the dataset's own scorers when crucible-datasets has them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from crucible_datasets import exact_match, extract_choice, extract_number
from crucible_harness._experiment import HarnessItem
from crucible_harness.exceptions import ExperimentDefinitionError

__all__ = ("Scorer", "resolve_scorer")

_LETTERS = "ABCDEFGHIJ"


@attrs.define(frozen=True)
class Scorer:
    """Scores one prediction: `fn(item, prediction) -> bool | float | None`."""

    name: str
    fn: Callable[[HarnessItem, Any], bool | float | None]
    blocking: bool = False
    """Whether it does slow work (runs code); then it runs in a worker thread."""

    def __call__(
        self, item: HarnessItem, prediction: Any
    ) -> tuple[bool | None, float | None]:
        """`(correct, score)`; `correct` is `None` when the item has no reference."""
        value = self.fn(item, prediction)
        if value is None:
            return None, None
        if isinstance(value, bool):
            return value, float(value)
        score = float(value)
        return score >= 1.0, score


def exact(item: HarnessItem, prediction: Any) -> bool | None:
    """crucible-datasets' exact match: normalised text, numbers compared as numbers."""
    if item.expected is None:
        return None
    return exact_match(prediction, item.expected) == 1.0


def number(item: HarnessItem, prediction: Any) -> bool | None:
    """The prediction's final number (GSM8K `####`, "the answer is", last number) equals the reference's."""
    if item.expected is None:
        return None
    want = extract_number(item.expected)
    return want is not None and exact_match(extract_number(prediction), want) == 1.0


def choice(item: HarnessItem, prediction: Any) -> bool | None:
    """The choice letter extracted from the prediction ("(B)", "**C**", …) equals the reference letter."""
    if item.expected is None:
        return None
    return (
        extract_choice(prediction, choices=_LETTERS)
        == str(item.expected).strip().upper()
    )


BUILTIN: dict[str, Callable[[HarnessItem, Any], bool | float | None]] = {
    "exact": exact,
    "number": number,
    "choice": choice,
}


def _auto_kind(items: tuple[HarnessItem, ...]) -> str:
    sample = [i for i in items[:50] if i.expected is not None]
    if sample and all(
        isinstance(i.expected, str)
        and i.expected.strip().upper() in _LETTERS
        and len(i.expected.strip()) == 1
        for i in sample
    ):
        return "choice"
    if sample and all(
        extract_number(i.expected) is not None and len(str(i.expected)) < 32
        for i in sample
    ):
        return "number"
    return "exact"


def resolve_scorer(
    spec: Any, *, dataset: str | None, items: tuple[HarnessItem, ...]
) -> Scorer:
    """The scorer an experiment uses: a callable, a built-in name, or `"auto"` by dataset."""
    if callable(spec) and not isinstance(spec, str):
        return Scorer(getattr(spec, "__name__", "custom"), spec)
    if spec == "auto":
        if dataset == "humaneval" or (
            items and {"test", "entry_point"} <= set(items[0].metadata)
        ):
            from crucible_harness._code import humaneval_scorer

            return humaneval_scorer()
        spec = _auto_kind(items)
    if spec == "pass@1":
        from crucible_harness._code import humaneval_scorer

        return humaneval_scorer()
    if spec in BUILTIN:
        return Scorer(spec, BUILTIN[spec])
    raise ExperimentDefinitionError(
        f"unknown scorer {spec!r}; use 'auto', one of {sorted([*BUILTIN, 'pass@1'])}, or a callable "
        "(item, prediction) -> bool | float",
        field="scorer",
    )


def answer_kind(scorer: Scorer) -> str:
    """The `Request.kind` that fits the scorer (what kind of wrong answer a simulated model gives)."""
    return {
        "exact": "text",
        "number": "number",
        "choice": "choice",
        "pass@1": "code",
    }.get(scorer.name, "text")
