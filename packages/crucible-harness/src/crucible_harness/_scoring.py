"""Scoring predictions: built-in matchers, and the dataset's own scorers when crucible-datasets has them."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

import attrs

from crucible_harness._experiment import HarnessItem
from crucible_harness.exceptions import ExperimentDefinitionError

__all__ = ("Scorer", "resolve_scorer")

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CHOICE = re.compile(r"\b([A-J])\b")
_PUNCT = str.maketrans("", "", string.punctuation)


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


def _normalise(text: Any) -> str:
    return " ".join(str(text).lower().translate(_PUNCT).split())


def _last_number(text: Any) -> float | None:
    found = _NUMBER.findall(str(text))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:  # pragma: no cover - the pattern only matches numbers
        return None


def exact(item: HarnessItem, prediction: Any) -> bool | None:
    """Normalised exact match (case, punctuation and whitespace ignored)."""
    if item.expected is None:
        return None
    return _normalise(prediction) == _normalise(item.expected)


def number(item: HarnessItem, prediction: Any) -> bool | None:
    """The last number in the prediction equals the reference's last number (to 1e-6 relative)."""
    if item.expected is None:
        return None
    want, got = _last_number(item.expected), _last_number(prediction)
    if want is None or got is None:
        return False
    return abs(want - got) <= 1e-6 * max(1.0, abs(want))


def choice(item: HarnessItem, prediction: Any) -> bool | None:
    """The first standalone choice letter in the prediction equals the reference letter."""
    if item.expected is None:
        return None
    found = _CHOICE.search(str(prediction).upper())
    return found is not None and found.group(1) == str(item.expected).strip().upper()


BUILTIN: dict[str, Callable[[HarnessItem, Any], bool | float | None]] = {
    "exact": exact,
    "number": number,
    "choice": choice,
}


def _auto_kind(items: tuple[HarnessItem, ...]) -> str:
    sample = [i for i in items[:50] if i.expected is not None]
    if sample and all(
        isinstance(i.expected, str)
        and i.expected.strip().upper() in "ABCDEFGHIJ"
        and len(i.expected.strip()) == 1
        for i in sample
    ):
        return "choice"
    if sample and all(
        _last_number(i.expected) is not None and len(str(i.expected)) < 32
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
