"""Results of training and evaluation, with their views and record export."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from crucible_core.export import Format, save_records
from crucible_core.render import RenderMixin, Table, View
from crucible_lora._quality import QualityReport

__all__ = (
    "Checkpoint",
    "AdapterEvaluation",
    "ItemPrediction",
    "StepRecord",
    "TrainingResult",
    "save_history",
)


@attrs.define(frozen=True, kw_only=True)
class Checkpoint:
    """A saved training state that `train(..., resume=...)` and `load_state` can restore."""

    step: int
    """Optimisation steps completed when it was saved."""
    path: str
    """Where the backend saved it (a directory, or a `tinker://` path)."""
    epoch: int
    """The epoch the step belongs to (from 0)."""


@attrs.define(frozen=True, kw_only=True)
class StepRecord:
    """One optimisation step."""

    step: int
    """The step number, from 1."""
    epoch: int
    """The epoch, from 0."""
    loss: float
    """Mean loss per trained token before the step's update."""
    learning_rate: float
    """The learning rate applied."""
    n_tokens: int
    """Input tokens in the batch."""
    n_trained: int
    """Target tokens that carried loss."""
    duration: float
    """Seconds the step took."""


@attrs.define(frozen=True, kw_only=True)
class ItemPrediction:
    """One evaluated item: what the model wrote and how it scored."""

    id: str | None
    """The item's id."""
    prompt: str
    """The prompt given."""
    prediction: str
    """The model's completion."""
    expected: Any
    """The reference answer."""
    scores: dict[str, float]
    """Each metric's score for this item."""


@attrs.define(frozen=True, kw_only=True)
class AdapterEvaluation(RenderMixin):
    """Metrics of an adapter's generations on a dataset, per item and on average."""

    experiment: str
    """The experiment's name."""
    step: int
    """Optimisation steps the evaluated weights had seen (0: the base model)."""
    metrics: dict[str, float]
    """Mean score per metric."""
    predictions: tuple[ItemPrediction, ...] = attrs.field(repr=False)
    """Per-item predictions and scores, in dataset order."""
    quality: QualityReport | None = None
    """The quality validator's report, when one was given."""
    duration: float = 0.0
    """Seconds the evaluation took."""

    def scores(self, metric: str) -> list[float]:
        """Per-item scores of `metric` in dataset order (for paired tests against another run)."""
        return [p.scores[metric] for p in self.predictions]

    def to_records(self) -> list[dict[str, Any]]:
        """One record per item: id, prediction, expected and each metric."""
        return [
            {
                "experiment": self.experiment,
                "step": self.step,
                "id": p.id,
                "prediction": p.prediction,
                "expected": p.expected
                if isinstance(p.expected, str)
                else repr(p.expected),
                **p.scores,
            }
            for p in self.predictions
        ]

    def _view(self) -> View:
        facts: list[tuple[str, Any]] = [
            ("experiment", self.experiment),
            ("step", self.step),
            ("items", len(self.predictions)),
            *self.metrics.items(),
        ]
        if self.quality is not None:
            facts.append(("quality targets met", self.quality.met))
        rows = [
            (p.id, p.prediction, p.expected, *p.scores.values())
            for p in self.predictions
        ]
        return View(
            title="LoRA evaluation",
            facts=facts,
            tables=(
                Table(
                    headers=("id", "prediction", "expected", *self.metrics),
                    rows=rows,
                    title="items",
                ),
            ),
        )


@attrs.define(frozen=True, kw_only=True)
class TrainingResult(RenderMixin):
    """What `train` did: every step, evaluation and checkpoint, and why it stopped."""

    experiment: str
    """The experiment's name."""
    backend: str
    """The adapter's backend."""
    base_model: str
    """The model adapted."""
    steps: int
    """Optimisation steps completed in total (including those before a resume)."""
    history: tuple[StepRecord, ...] = attrs.field(repr=False)
    """Steps run by this call, in order."""
    evaluations: tuple[AdapterEvaluation, ...] = attrs.field(default=(), repr=False)
    """Evaluations run every `eval_every` steps."""
    checkpoints: tuple[Checkpoint, ...] = ()
    """Checkpoints saved by this call."""
    stop_reason: str = "completed"
    """`"completed"`, or why training stopped early (quality targets met)."""
    params: dict[str, Any] = attrs.field(factory=dict)
    """Labels for this run (a sweep's grid values and replication), copied to records."""
    duration: float = 0.0
    """Seconds training took."""

    @property
    def final_loss(self) -> float | None:
        """The last step's loss (`None` when no step ran)."""
        return self.history[-1].loss if self.history else None

    def to_records(self) -> list[dict[str, Any]]:
        """One record per step, with its eval metrics (when evaluated) and the run's `params`."""
        evals = {e.step: e.metrics for e in self.evaluations}
        names = sorted({k for e in self.evaluations for k in e.metrics})
        return [
            {
                "experiment": self.experiment,
                **self.params,
                **attrs.asdict(r),
                **{f"eval_{k}": evals.get(r.step, {}).get(k) for k in names},
            }
            for r in self.history
        ]

    def _view(self) -> View:
        facts: list[tuple[str, Any]] = [
            ("experiment", self.experiment),
            ("backend", self.backend),
            ("base model", self.base_model),
            ("steps", self.steps),
            ("final loss", self.final_loss),
            ("stopped", self.stop_reason),
            ("checkpoints", len(self.checkpoints)),
        ]
        rows = [
            (r.step, r.epoch, r.loss, r.learning_rate, r.n_trained)
            for r in self.history
        ]
        return View(
            title="LoRA training",
            facts=facts,
            tables=(
                Table(
                    headers=(
                        "step",
                        "epoch",
                        "loss",
                        "learning_rate",
                        "trained_tokens",
                    ),
                    rows=rows,
                    title="steps",
                ),
            ),
        )


def save_history(
    results: TrainingResult | Sequence[TrainingResult],
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
) -> Path:
    """Write the per-step records of one or many training runs to CSV, JSONL or Parquet.

    Returns:
        The path written.
    """
    runs = [results] if isinstance(results, TrainingResult) else list(results)
    rows = [row for r in runs for row in r.to_records()]
    return save_records(rows, path, format=format)
