"""Quality gates for structured, cited outputs (the seeds' CNS-derived targets), computed for real."""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs

from crucible_core.render import RenderMixin, Table, View
from crucible_lora.exceptions import LoraConfigError, LoraDataError

__all__ = ("QualityReport", "QualityTargets", "QualityValidator")

Judge = Callable[[str, Any], float | Awaitable[float]]
"""A function scoring how well an output is entailed by its evidence, in [0, 1]."""

_METRICS = (
    "schema_compliance",
    "citation_accuracy",
    "mean_entailment",
    "overall_pass_rate",
)


def _target(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise LoraConfigError(
            f"quality target `{attribute.name}` must be in [0, 1] or None, got {value!r}",
            field=attribute.name,
            value=value,
        )


@attrs.define(frozen=True, kw_only=True)
class QualityTargets:
    """Thresholds a model's outputs must reach; `None` means the metric is not required."""

    schema_compliance: float | None = attrs.field(default=0.95, validator=_target)
    """Share of outputs that parse as the required structure."""
    citation_accuracy: float | None = attrs.field(default=0.95, validator=_target)
    """Share of well-formed outputs whose cited evidence ids all exist."""
    mean_entailment: float | None = attrs.field(default=0.50, validator=_target)
    """Mean judge score that the output is entailed by its evidence."""
    overall_pass_rate: float | None = attrs.field(default=0.45, validator=_target)
    """Share of outputs passing every computed check."""

    @classmethod
    def from_mapping(cls, targets: Mapping[str, float | None]) -> QualityTargets:
        """Targets from a mapping; metrics not named are not required.

        Raises:
            LoraConfigError: on an unknown metric name.
        """
        unknown = sorted(set(targets) - set(_METRICS))
        if unknown:
            raise LoraConfigError(
                f"unknown quality target(s) {', '.join(map(repr, unknown))}; "
                f"use {', '.join(_METRICS)}",
                field=unknown[0],
                value=targets[unknown[0]],
            )
        values: dict[str, float | None] = dict.fromkeys(_METRICS)
        values.update(targets)
        return cls(**values)


@attrs.define(frozen=True, kw_only=True)
class QualityReport(RenderMixin):
    """Quality metrics of a set of outputs against their targets."""

    n: int
    """How many outputs were checked."""
    schema_compliance: float
    """Share of outputs that parse as the required structure."""
    citation_accuracy: float
    """Share of well-formed outputs whose cited evidence ids all exist (and that cite any)."""
    mean_entailment: float | None
    """Mean judge score, or `None` when no judge was given (not computed)."""
    overall_pass_rate: float
    """Share of outputs passing schema, citation and (when judged) entailment ≥ 0.5."""
    targets: QualityTargets
    """The thresholds compared against."""
    per_item: tuple[dict[str, Any], ...] = attrs.field(default=(), repr=False)
    """One record per output: `schema_ok`, `citations_ok`, `entailment`, `passed`, `errors`."""

    @property
    def not_computed(self) -> tuple[str, ...]:
        """Metrics that could not be computed (entailment without a judge)."""
        return () if self.mean_entailment is not None else ("mean_entailment",)

    @property
    def met(self) -> bool:
        """Whether every required target was computed and reached."""
        for name in _METRICS:
            target = getattr(self.targets, name)
            value = getattr(self, name)
            if target is not None and (value is None or value < target):
                return False
        return True

    def _view(self) -> View:
        rows = []
        for name in _METRICS:
            target = getattr(self.targets, name)
            value = getattr(self, name)
            status = (
                "not required"
                if target is None
                else "not computed"
                if value is None
                else "met"
                if value >= target
                else "missed"
            )
            rows.append((name, value, target, status))
        return View(
            title="LoRA quality report",
            facts=(("outputs", self.n), ("all targets met", self.met)),
            tables=(Table(headers=("metric", "value", "target", "status"), rows=rows),),
            notes=(
                ("entailment not computed: pass a `judge` to QualityValidator",)
                if self.mean_entailment is None
                else ()
            ),
        )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_structured(text: str) -> Any:
    """The JSON object in `text`: the whole text, a fenced block, or the first `{...}` span.

    Returns `None` when nothing parses.
    """
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def _labels(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _ids(value: Iterable[Any] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(map(str, value))


@attrs.define(frozen=True, kw_only=True)
class QualityValidator:
    """Checks structured, cited outputs: schema compliance, citation accuracy, entailment.

    An output is schema-compliant when it parses as a JSON object holding every `required_keys`
    entry (and, with `labels`, a `label_key` value among them). Its citations are accurate when its
    `evidence_key` lists at least one id and every id exists among the valid ids: `corpus_ids` (all
    documents, e.g. SciFact's corpus) or, per item, `item_ids(item)`. Entailment is scored by
    `judge`: a function `(output, item) -> float in [0, 1]` (sync or async) or a crucible-core
    `Model` asked to answer with a probability; without one it is reported as not computed.

    Examples:
        >>> v = QualityValidator(corpus_ids={"d1", "d2"})
        >>> v.validate(['{"label": "SUPPORT", "evidence": ["d1"]}']).citation_accuracy
        1.0
    """

    required_keys: tuple[str, ...] = attrs.field(
        default=("label", "evidence"), converter=tuple
    )
    """Keys every output object must have."""
    label_key: str = "label"
    """The key holding the output's label."""
    labels: tuple[str, ...] | None = attrs.field(default=None, converter=_labels)
    """Allowed labels (`None`: any)."""
    evidence_key: str = "evidence"
    """The key holding the list of cited evidence ids."""
    corpus_ids: frozenset[str] | None = attrs.field(default=None, converter=_ids)
    """Every id a citation may name."""
    item_ids: Callable[[Any], Collection[str]] | None = None
    """Per-item valid ids (used instead of `corpus_ids` when given)."""
    judge: Any = None
    """A function `(output, item) -> float` or a crucible-core `Model`; `None`: not computed."""
    targets: QualityTargets = attrs.field(factory=QualityTargets)
    """The thresholds the report compares against."""

    def _valid_ids(self, item: Any) -> Collection[str] | None:
        if self.item_ids is not None:
            return {str(i) for i in self.item_ids(item)}
        return self.corpus_ids

    def _check(self, text: str, item: Any) -> dict[str, Any]:
        errors: list[str] = []
        obj = parse_structured(text)
        schema_ok = isinstance(obj, dict)
        if not schema_ok:
            errors.append("output is not a JSON object")
        else:
            missing = [k for k in self.required_keys if k not in obj]
            if missing:
                schema_ok = False
                errors.append(f"missing keys {missing}")
            if self.labels is not None and obj.get(self.label_key) not in self.labels:
                schema_ok = False
                errors.append(
                    f"label {obj.get(self.label_key)!r} not in {list(self.labels)}"
                )
        citations_ok = False
        if schema_ok:
            cited = obj.get(self.evidence_key)
            valid = self._valid_ids(item)
            if not isinstance(cited, list) or not cited:
                errors.append("no evidence cited")
            elif valid is None:
                raise LoraConfigError(
                    "citation accuracy needs the valid evidence ids: pass `corpus_ids` or "
                    "`item_ids` to QualityValidator",
                    field="corpus_ids",
                    value=None,
                )
            else:
                unknown = [c for c in cited if str(c) not in valid]
                citations_ok = not unknown
                if unknown:
                    errors.append(f"cited ids that do not exist: {unknown}")
        return {"schema_ok": schema_ok, "citations_ok": citations_ok, "errors": errors}

    async def _judge(self, text: str, item: Any) -> float:
        judge = self.judge
        if hasattr(judge, "complete"):
            from crucible_core.models import Request

            evidence = getattr(item, "metadata", {}) or {}
            prompt = (
                "Rate how strongly the evidence entails the answer, as a probability "
                "between 0 and 1. Reply with the number only.\n"
                f"Evidence: {json.dumps(evidence, default=str, sort_keys=True)}\n"
                f"Item: {getattr(item, 'prompt', item)!s}\nAnswer: {text}"
            )
            completion = await judge.complete(Request(prompt=prompt, max_tokens=8))
            match = re.search(r"\d*\.?\d+", completion.text)
            score = float(match.group()) if match else math.nan
        else:
            value = judge(text, item)
            score = float(await value if inspect.isawaitable(value) else value)
        if not 0.0 <= score <= 1.0:
            raise LoraDataError(
                f"the entailment judge returned {score!r}; it must return a number in [0, 1]",
                index=None,
            )
        return score

    async def validate_async(
        self, outputs: Sequence[str], items: Sequence[Any] | None = None
    ) -> QualityReport:
        """Check `outputs` (with the items they answer, for per-item ids and the judge).

        Raises:
            LoraDataError: when there are no outputs, or `items` has a different length.
        """
        if not outputs:
            raise LoraDataError("no outputs to validate", index=None)
        if items is None:
            items = [None] * len(outputs)
        if len(items) != len(outputs):
            raise LoraDataError(
                f"{len(outputs)} outputs but {len(items)} items: give one item per output",
                index=None,
            )
        rows = [self._check(t, it) for t, it in zip(outputs, items, strict=True)]
        scores: list[float] | None = None
        if self.judge is not None:
            scores = [
                await self._judge(t, it) for t, it in zip(outputs, items, strict=True)
            ]
        for i, row in enumerate(rows):
            row["entailment"] = None if scores is None else scores[i]
            row["passed"] = bool(
                row["schema_ok"]
                and row["citations_ok"]
                and (scores is None or scores[i] >= 0.5)
            )
        n = len(rows)
        well_formed = [r for r in rows if r["schema_ok"]]
        return QualityReport(
            n=n,
            schema_compliance=len(well_formed) / n,
            citation_accuracy=(
                sum(r["citations_ok"] for r in well_formed) / len(well_formed)
                if well_formed
                else 0.0
            ),
            mean_entailment=None if scores is None else sum(scores) / n,
            overall_pass_rate=sum(r["passed"] for r in rows) / n,
            targets=self.targets,
            per_item=tuple(rows),
        )

    def validate(
        self, outputs: Sequence[str], items: Sequence[Any] | None = None
    ) -> QualityReport:
        """Sync twin of [`validate_async`][crucible_lora.QualityValidator.validate_async]."""
        from crucible_core._async import run_sync

        return run_sync(self.validate_async(outputs, items))
