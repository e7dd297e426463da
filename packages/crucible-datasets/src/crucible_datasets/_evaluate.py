"""`evaluate`: score predictions against a dataset, with per-item results and confidence intervals."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crucible_core._optional import import_optional
from crucible_core.events import DATASET_EVALUATE_STOP, emit
from crucible_core.exceptions import ValidationError
from crucible_core.render import RenderMixin, Table, View
from crucible_core.stats import ConfidenceInterval, mean_ci, proportion_ci
from crucible_datasets._metrics import (
    bleu,
    chrf,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    extract_choice,
    extract_number,
    normalize_label,
    pass_at_k,
    rouge_l,
    token_f1,
)
from crucible_datasets._sandbox import CodeCheck, SandboxConfig, execute_many
from crucible_datasets._types import Dataset, Item
from crucible_datasets.exceptions import PredictionError

if TYPE_CHECKING:
    import polars

__all__ = (
    "BatchEvaluationResult",
    "EvaluationResult",
    "ItemResult",
    "Prediction",
    "evaluate",
    "evaluate_batch",
)


@attrs.define(frozen=True, kw_only=True)
class Prediction:
    """A model's answer to one item."""

    id: str
    """The item's id."""
    predicted: Any
    """The answer: text, a number, or for HumanEval a completion or a list of completions."""
    metadata: dict[str, Any] = attrs.field(factory=dict)
    """Anything else worth keeping (latency, tokens, confidence)."""


@attrs.define(frozen=True, kw_only=True)
class ItemResult:
    """How one item scored."""

    id: str
    """The item's id."""
    predicted: Any
    """The raw prediction (`None` if the item had none)."""
    extracted: Any
    """The answer read out of the prediction (a letter, a number, a label), or the prediction."""
    expected: Any
    """The reference answer."""
    scores: dict[str, float]
    """Each metric's score for this item, in [0, 1]."""


_BINARY = {"exact_match", "accuracy"}
_PASS = re.compile(r"\Apass@(\d+)\Z")

_DEFAULTS: dict[str, tuple[str, ...]] = {
    "mmlu": ("exact_match",),
    "gsm8k": ("exact_match",),
    "humaneval": ("pass@1",),
    "scifact": ("exact_match",),
    "fever": ("exact_match",),
}

_EXTRACTORS: dict[str, Callable[[Any], Any]] = {
    "mmlu": extract_choice,
    "gsm8k": extract_number,
    "scifact": normalize_label,
    "fever": normalize_label,
}

_TEXT_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "exact_match": exact_match,
    "accuracy": exact_match,
    "f1": token_f1,
    "bleu": bleu,
    "chrf": chrf,
    "sentence_bleu": bleu,
    "sentence_chrf": chrf,
    "rouge_l": rouge_l,
}

# Dataset-level BLEU and chrF pool n-gram statistics over the corpus (sacrebleu's corpus_*);
# each item still shows its sentence-level score.
_CORPUS: dict[str, Callable[[Sequence[Any], Sequence[Any]], float]] = {
    "bleu": corpus_bleu,
    "chrf": corpus_chrf,
}
_BOOTSTRAP = 1000


@attrs.define(frozen=True, kw_only=True)
class EvaluationResult(RenderMixin):
    """Scores of one model's predictions on one dataset."""

    dataset: str
    """The dataset's name."""
    version: str
    """The dataset's checksum (`"sha256:…"`)."""
    model: str
    """The model's name, as given."""
    accuracy: float
    """The mean of the first metric."""
    metrics: dict[str, float]
    """Each metric's mean over the items."""
    intervals: dict[str, ConfidenceInterval]
    """Each metric's 95% confidence interval (Wilson for 0/1 scores, else t clipped to [0, 1])."""
    item_results: tuple[ItemResult, ...]
    """Every item's scores, in the dataset's order."""
    n_missing: int
    """Items without a prediction (scored 0)."""
    duration: float
    """Seconds the evaluation took."""
    sandbox: str | None = None
    """The sandbox backend that ran the code (HumanEval), e.g. `"bwrap"`; `None` for text."""

    def _view(self) -> View:
        return View(
            title=f"Evaluation of {self.model!r} on {self.dataset}",
            facts=[
                ("items", len(self.item_results)),
                ("missing predictions", self.n_missing),
                ("accuracy", self.accuracy),
                ("duration (s)", self.duration),
            ],
            tables=[
                Table(
                    headers=("metric", "mean", "95% CI", "method"),
                    rows=[
                        (name, value, (ci.low, ci.high), ci.method)
                        for name, value in self.metrics.items()
                        for ci in [self.intervals[name]]
                    ],
                )
            ],
        )

    def to_polars(self) -> polars.DataFrame:
        """One row per item: `id`, `expected`, `extracted`, and a column per metric."""
        pl = import_optional("polars", extra="polars", distribution="crucible-datasets")
        return pl.DataFrame(  # type: ignore[no-any-return]
            {
                "id": [r.id for r in self.item_results],
                "expected": [_text(r.expected) for r in self.item_results],
                "extracted": [_text(r.extracted) for r in self.item_results],
                **{
                    name: [r.scores[name] for r in self.item_results]
                    for name in self.metrics
                },
            }
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@attrs.define(frozen=True, kw_only=True)
class BatchEvaluationResult(RenderMixin):
    """Several models' scores on the same dataset."""

    dataset: str
    """The dataset's name."""
    results: dict[str, EvaluationResult]
    """Each model's result, by model name."""

    def _view(self) -> View:
        names = list(next(iter(self.results.values())).metrics) if self.results else []
        return View(
            title=f"Evaluation on {self.dataset}: {len(self.results)} models",
            tables=[
                Table(
                    headers=("model", *names, "missing"),
                    rows=[
                        (model, *(r.metrics[n] for n in names), r.n_missing)
                        for model, r in self.results.items()
                    ],
                )
            ],
        )


def _predictions(predictions: Any, dataset: Dataset) -> dict[str, Any]:
    """Predictions as {id: predicted}; unknown or repeated ids raise `PredictionError`."""
    out: dict[str, Any] = {}
    duplicates: list[str] = []
    if isinstance(predictions, Mapping):
        pairs: Iterable[tuple[Any, Any]] = predictions.items()
    elif isinstance(predictions, str | bytes) or not isinstance(predictions, Iterable):
        raise ValidationError(
            "predictions must be a mapping {id: answer} or a sequence of `Prediction`s, "
            f"{{'id': ..., 'predicted': ...}} dicts or (id, answer) pairs; got "
            f"{type(predictions).__name__}",
        )
    else:
        pairs = (_pair(p) for p in predictions)
    for key, value in pairs:
        key = str(key)
        if key in out:
            duplicates.append(key)
        out[key] = value
    unknown = [k for k in out if k not in dataset]
    if unknown or duplicates:
        parts = []
        if unknown:
            parts.append(
                f"{len(unknown)} prediction id(s) not in {dataset.name!r}: {unknown[:10]}"
                + (" …" if len(unknown) > 10 else "")
                + (
                    f"; its ids look like {dataset.items[0].id!r}"
                    if dataset.items
                    else ""
                )
            )
        if duplicates:
            parts.append(f"repeated ids: {sorted(set(duplicates))[:10]}")
        raise PredictionError(
            "; ".join(parts) + ". Use the item ids of the dataset you evaluate against",
            dataset=dataset.name,
            unknown_ids=unknown,
            duplicate_ids=sorted(set(duplicates)),
        )
    return out


def _pair(p: Any) -> tuple[Any, Any]:
    if isinstance(p, Prediction):
        return p.id, p.predicted
    if isinstance(p, Mapping):
        if "id" not in p:
            raise ValidationError(
                f"a prediction dict needs an `id` key, got keys {sorted(p)}"
            )
        for key in ("predicted", "prediction", "answer", "completion"):
            if key in p:
                return p["id"], p[key]
        raise ValidationError(
            f"prediction {p['id']!r} has no `predicted` key (keys: {sorted(p)})",
        )
    if isinstance(p, tuple | list) and len(p) == 2:
        return p[0], p[1]
    raise ValidationError(
        f"cannot read {p!r:.60} as a prediction; use Prediction(id=..., predicted=...), "
        "a dict with `id` and `predicted`, or an (id, answer) pair"
    )


def _metric_names(
    metrics: Sequence[str] | str | None, dataset: Dataset
) -> tuple[str, ...]:
    if metrics is None:
        names = _DEFAULTS.get(dataset.name, ("exact_match", "f1"))
    elif isinstance(metrics, str):
        names = (metrics,)
    else:
        names = tuple(metrics)
    if not names:
        raise ValidationError("metrics= is empty; name at least one metric")
    for name in names:
        if name not in _TEXT_METRICS and not _PASS.match(name):
            raise ValidationError(
                f"unknown metric {name!r}; choose from {sorted(_TEXT_METRICS)} or 'pass@k'",
                metric=name,
            )
        if _PASS.match(name) and dataset.name != "humaneval":
            raise ValidationError(
                f"{name} runs code and needs HumanEval items; {dataset.name!r} is not code",
                metric=name,
            )
    return names


def _program(item: Item, completion: str) -> CodeCheck:
    entry = item.metadata.get("entry_point") or item.input.get("entry_point")
    return CodeCheck(
        prompt=str(item.input["prompt"]),
        completion=completion,
        test=str(item.metadata["test"]),
        entry_point=str(entry),
    )


def _completions(value: Any, item_id: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValidationError(
        f"the prediction for {item_id!r} must be a completion (str) or a list of them, "
        f"got {type(value).__name__}",
        item_id=item_id,
    )


def _score_code(
    dataset: Dataset,
    predicted: dict[str, Any],
    names: tuple[str, ...],
    sandbox: SandboxConfig | None,
) -> tuple[list[ItemResult], str | None]:
    ks = {name: int(m.group(1)) for name in names if (m := _PASS.match(name))}
    text_metrics = [n for n in names if n not in ks]
    if text_metrics:
        raise ValidationError(
            f"HumanEval is scored by running code (pass@k); drop {text_metrics}",
            metric=text_metrics[0],
        )
    jobs: list[tuple[int, CodeCheck]] = []
    per_item: list[list[str]] = []
    for i, item in enumerate(dataset.items):
        completions = _completions(predicted.get(item.id), item.id)
        per_item.append(completions)
        jobs += [(i, _program(item, c)) for c in completions]
    outcomes = execute_many([p for _, p in jobs], config=sandbox)
    backend = outcomes[0].backend if outcomes else None
    passed = [0] * len(dataset.items)
    for (i, _), outcome in zip(jobs, outcomes, strict=True):
        passed[i] += outcome.passed
    results = []
    for i, item in enumerate(dataset.items):
        n = len(per_item[i])
        scores = {}
        for name, k in ks.items():
            if n == 0:
                scores[name] = 0.0
            elif k > n:
                raise ValidationError(
                    f"{name} needs at least {k} completions per problem; {item.id!r} has {n}",
                    metric=name,
                    item_id=item.id,
                )
            else:
                scores[name] = pass_at_k(n, passed[i], k)
        results.append(
            ItemResult(
                id=item.id,
                predicted=predicted.get(item.id),
                extracted=f"{passed[i]}/{n} passed",
                expected=item.expected,
                scores=scores,
            )
        )
    return results, backend


def _score_text(
    dataset: Dataset,
    predicted: dict[str, Any],
    names: tuple[str, ...],
    tolerance: float,
) -> list[ItemResult]:
    extract = _EXTRACTORS.get(dataset.name)
    results = []
    for item in dataset.items:
        raw = predicted.get(item.id)
        answer = extract(raw) if extract is not None and raw is not None else raw
        scores = {}
        for name in names:
            if name in _BINARY:
                scores[name] = exact_match(
                    answer, item.expected, numeric_tolerance=tolerance
                )
            else:
                scores[name] = _TEXT_METRICS[name](answer, item.expected)
        results.append(
            ItemResult(
                id=item.id,
                predicted=raw,
                extracted=answer,
                expected=item.expected,
                scores=scores,
            )
        )
    return results


def _interval(name: str, values: list[float]) -> ConfidenceInterval:
    if not values:
        nan = float("nan")
        return ConfidenceInterval(
            estimate=nan, low=nan, high=nan, confidence_level=0.95, method="none"
        )
    if (name in _BINARY or _PASS.match(name)) and all(v in (0.0, 1.0) for v in values):
        return proportion_ci(int(sum(values)), len(values))
    ci = mean_ci(values)
    # every metric lies in [0, 1], so the t interval is clipped to it
    return attrs.evolve(ci, low=max(0.0, ci.low), high=min(1.0, ci.high))


def _corpus_interval(name: str, results: list[ItemResult]) -> ConfidenceInterval:
    """The corpus score and a 95% percentile bootstrap interval over items (seeded)."""
    import numpy as np

    score = _CORPUS[name]
    preds = [r.extracted for r in results]
    refs = [r.expected for r in results]
    estimate = score(preds, refs)
    if len(results) < 2:
        return ConfidenceInterval(
            estimate=estimate,
            low=estimate,
            high=estimate,
            confidence_level=0.95,
            method="none",
        )
    rng = np.random.default_rng(0)
    n = len(results)
    draws = [
        score([preds[i] for i in idx], [refs[i] for i in idx])
        for idx in rng.integers(0, n, size=(_BOOTSTRAP, n))
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return ConfidenceInterval(
        estimate=estimate,
        low=float(low),
        high=float(high),
        confidence_level=0.95,
        method="bootstrap-percentile",
    )


def evaluate(
    predictions: Mapping[str, Any] | Iterable[Any],
    *,
    dataset: Dataset,
    metrics: Sequence[str] | str | None = None,
    model_name: str = "model",
    numeric_tolerance: float = 0.0,
    sandbox: SandboxConfig | None = None,
) -> EvaluationResult:
    """Score predictions against a dataset's expected answers.

    The answer is first read out of each prediction where the dataset calls for it: the choice
    letter for MMLU ([`extract_choice`][crucible_datasets.extract_choice]), the final number for
    GSM8K ([`extract_number`][crucible_datasets.extract_number]), the label for SciFact and
    FEVER ([`normalize_label`][crucible_datasets.normalize_label]). HumanEval completions are
    run against the problem's tests in the sandbox, in parallel, and scored by pass@k.
    Items without a prediction score 0 and are counted in `n_missing`.

    Args:
        predictions: `{id: answer}`, or `Prediction`s, `{"id", "predicted"}` dicts or
            `(id, answer)` pairs. For HumanEval an answer is a completion (appended to the
            prompt) or a list of completions (for pass@k with k > 1).
        dataset: the dataset the ids belong to.
        metrics: names from `exact_match`, `f1`, `bleu`, `chrf` (corpus-level, as sacrebleu's
            `corpus_bleu`/`corpus_chrf`, with a bootstrap interval; items show sentence
            scores), `sentence_bleu`, `sentence_chrf` (the mean of sentence scores),
            `rouge_l`, `pass@k` (default:
            `pass@1` for HumanEval, `exact_match` for MMLU, GSM8K, SciFact and FEVER, and
            `exact_match` and `f1` otherwise).
        model_name: the name to report.
        numeric_tolerance: relative tolerance allowed on top of exact comparison of numbers
            (integers exactly, decimals at the reference's stated precision).
        sandbox: limits for running code (HumanEval).

    Returns:
        An [`EvaluationResult`][crucible_datasets.EvaluationResult].

    Raises:
        PredictionError: prediction ids that are not in the dataset (all listed) or repeated.
        ValidationError: an unknown metric, or too few completions for pass@k.

    Examples:
        >>> from crucible_datasets import Dataset, Item
        >>> ds = Dataset.from_items("toy", [Item(id="q1", input={}, expected="Paris")])
        >>> evaluate({"q1": "paris."}, dataset=ds).accuracy
        1.0
    """
    started = time.perf_counter()
    names = _metric_names(metrics, dataset)
    predicted = _predictions(predictions, dataset)
    if dataset.name == "humaneval":
        results, backend = _score_code(dataset, predicted, names, sandbox)
    else:
        results, backend = (
            _score_text(dataset, predicted, names, numeric_tolerance),
            None,
        )
    means: dict[str, float] = {}
    intervals: dict[str, ConfidenceInterval] = {}
    for name in names:
        values = [r.scores[name] for r in results]
        if name in _CORPUS and dataset.name != "humaneval":
            intervals[name] = _corpus_interval(name, results)
        else:
            intervals[name] = _interval(name, values)
        means[name] = intervals[name].estimate
    missing = sum(1 for item in dataset.items if item.id not in predicted)
    duration = time.perf_counter() - started
    result = EvaluationResult(
        dataset=dataset.name,
        version=dataset.version.checksum,
        model=model_name,
        accuracy=means[names[0]],
        metrics=means,
        intervals=intervals,
        item_results=tuple(results),
        n_missing=missing,
        duration=duration,
        sandbox=backend,
    )
    emit(
        DATASET_EVALUATE_STOP,
        {
            "duration": duration,
            "items": float(len(results)),
            "accuracy": result.accuracy,
        },
        {"dataset": dataset.name, "model": model_name, "metrics": list(names)},
    )
    return result


def evaluate_batch(
    predictions: Mapping[str, Mapping[str, Any] | Iterable[Any]],
    *,
    dataset: Dataset,
    metrics: Sequence[str] | str | None = None,
    numeric_tolerance: float = 0.0,
    sandbox: SandboxConfig | None = None,
) -> BatchEvaluationResult:
    """Score several models' predictions on the same dataset.

    Args:
        predictions: `{model_name: predictions}`, each as [`evaluate`][crucible_datasets.evaluate]
            takes them.
        dataset: the dataset.
        metrics: as for `evaluate`.
        numeric_tolerance: as for `evaluate`.
        sandbox: as for `evaluate`.
    """
    given: Any = predictions
    if not isinstance(given, Mapping) or not given:
        raise ValidationError(
            "evaluate_batch takes a non-empty mapping {model_name: predictions}"
        )
    return BatchEvaluationResult(
        dataset=dataset.name,
        results={
            str(model): evaluate(
                preds,
                dataset=dataset,
                metrics=metrics,
                model_name=str(model),
                numeric_tolerance=numeric_tolerance,
                sandbox=sandbox,
            )
            for model, preds in predictions.items()
        },
    )
