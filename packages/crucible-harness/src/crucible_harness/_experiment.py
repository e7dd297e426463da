"""Declaring an experiment: conditions, dataset, repeats, run settings, budget and analysis."""

from __future__ import annotations

import hashlib
import inspect
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from crucible_core.serde import dumps
from crucible_harness.exceptions import ExperimentDefinitionError

__all__ = (
    "AnalysisConfig",
    "EarlyStopping",
    "Budget",
    "Condition",
    "ConditionOutput",
    "Experiment",
    "HarnessItem",
    "RunConfig",
    "TaskContext",
    "condition",
)

Correction: TypeAlias = Literal[
    "bonferroni", "holm", "hochberg", "bh", "by", "hommel", "sidak", "none"
]
# \A…\Z, not ^…$: `$` also matches before a final newline, and names become paths
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")


def _repeated(names: Iterable[str]) -> list[str]:
    """The names that occur more than once, sorted (one pass: a dataset may have 100k ids)."""
    return sorted(n for n, k in Counter(names).items() if k > 1)


def _fail(field: str, message: str, **context: Any) -> ExperimentDefinitionError:
    return ExperimentDefinitionError(message, field=field, **context)


def _whole(value: object, minimum: int) -> bool:
    """Whether `value` (as given, untyped) is an int (not a bool) of at least `minimum`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@attrs.define(frozen=True, kw_only=True)
class HarnessItem:
    """One dataset item as the harness sees it."""

    id: str
    """Stable id, unique within the dataset."""
    input: Any
    """What the condition receives (a prompt string, or a structured input)."""
    expected: Any = None
    """The reference answer, when known."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """Anything else (subject, difficulty, the test code of a HumanEval problem, …)."""


@attrs.define(frozen=True, kw_only=True)
class TaskContext:
    """What a condition callable receives besides the item."""

    experiment: str
    """The experiment's name."""
    run_id: str
    """The run's id."""
    condition: str
    """The condition being run."""
    repeat: int
    """Which repeat, from 0."""
    seed: int
    """A seed for this task, derived from the experiment seed, condition, item and repeat."""
    timeout: float | None
    """Seconds the task may take."""


@attrs.define(frozen=True, kw_only=True)
class ConditionOutput:
    """What a condition callable may return (a plain string is taken as `prediction`)."""

    prediction: Any
    """The answer to score."""
    cost: float | None = 0.0
    """Dollars spent producing it (`None`: unknown, kept as unknown in records and reports)."""
    latency: float | None = None
    """Seconds it took, when the callable knows better than the wall clock (e.g. virtual time)."""
    input_tokens: int = 0
    """Prompt tokens used."""
    output_tokens: int = 0
    """Completion tokens used."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """Anything to keep with the task record (must be JSON-serializable)."""


ConditionTarget: TypeAlias = Any
"""A callable `(item, ctx) -> str | ConditionOutput | Completion` (sync or async), a model string such
as `"sim:gpt-4"`, or any object with `async complete(request)` (a crucible `Model`, an ensemble, a
hedged model)."""


def _is_model_like(target: object) -> bool:
    return callable(getattr(target, "complete", None))


@attrs.define(frozen=True, kw_only=True)
class Condition:
    """One arm of the experiment."""

    name: str
    """Unique name, used in reports and run records."""
    target: ConditionTarget = attrs.field(eq=False)
    """What runs: a callable, a model string, or a model-like object."""
    description: str = ""
    """One line for the report."""
    cost_per_task: float | None = None
    """An upper bound on one task's cost, reserved against the budget before the task starts.
    Defaults to the model's price when known, else the largest cost seen so far in the condition."""
    resources: Mapping[str, float] = attrs.field(factory=dict)
    """Ray resources each worker hosting this condition needs (e.g. `{"GPU": 1}` for a local model).
    Under a [`RayExecutor`][crucible_harness.RayExecutor] such conditions run on their own pool of
    workers, each building the target once; the local executor ignores it."""

    def __attrs_post_init__(self) -> None:
        amounts: Iterable[tuple[object, object]] = (
            self.resources.items()
        )  # as given, untyped
        for key, value in amounts:
            if (
                not isinstance(key, str)
                or isinstance(value, bool)
                or not isinstance(value, int | float)
                or not value > 0
            ):
                raise _fail(
                    "condition.resources",
                    f"resources must map resource names to positive amounts, got {key!r}: {value!r}",
                    condition=self.name,
                )  # fmt: skip

    @property
    def kind(self) -> Literal["callable", "model", "model-string"]:
        """How the harness calls the target."""
        if isinstance(self.target, str):
            return "model-string"
        if _is_model_like(self.target):
            return "model"
        return "callable"

    @property
    def simulated(self) -> bool:
        """Whether the target is (or calls) a simulated model, whose numbers are not measurements.

        Model strings and models answer through
        [`is_simulated`][crucible_core.models.is_simulated]; a plain callable counts as real.
        """
        if self.kind == "callable":
            return False
        from crucible_core.models import is_simulated

        return is_simulated(self.target)

    def fingerprint(self) -> str:
        """What identifies this condition across resumes (name, kind, and the model string or callable name)."""
        if isinstance(self.target, str):
            what = self.target
        elif _is_model_like(self.target):
            what = str(getattr(self.target, "id", type(self.target).__name__))
        else:
            what = getattr(self.target, "__qualname__", type(self.target).__name__)
        return f"{self.name}:{self.kind}:{what}"


def condition(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str = "",
    cost_per_task: float | None = None,
) -> Any:
    """Mark a function (sync or async) as a condition of a class-declared experiment.

    Examples:
        >>> class Demo:
        ...     name = "demo"
        ...     dataset = [HarnessItem(id="1", input="2+2", expected="4")]
        ...     @condition
        ...     def always_four(item, ctx):
        ...         return "4"
        >>> Experiment.from_class(Demo).conditions[0].name
        'always_four'
    """

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__crucible_condition__ = {  # type: ignore[attr-defined]
            "name": name or f.__name__,
            "description": description or (inspect.getdoc(f) or "").split("\n")[0],
            "cost_per_task": cost_per_task,
        }
        return f

    return mark(fn) if fn is not None else mark


@attrs.define(frozen=True, kw_only=True)
class RunConfig:
    """How tasks run."""

    max_concurrency: int = 16
    """Tasks in flight at once."""
    timeout: float | None = 60.0
    """Seconds one task may take (per attempt); `None` for no limit."""
    retries: int = 2
    """Extra attempts after a transient failure (429, 5xx, timeouts, broken connections)."""
    rate_limit: float | None = None
    """Requests per second per provider (`None`: unlimited)."""
    seed: int = 0
    """The experiment seed: item sampling and every task seed derive from it."""
    executor: Any = "local"
    """Where tasks run: `"local"` (asyncio in this process, the fastest on one machine) or a
    [`RayExecutor`][crucible_harness.RayExecutor] (workers on a Ray cluster; this process stays the
    driver that owns the run directory and the budget). Not part of the experiment's fingerprint:
    a run started locally can be resumed on a cluster and the other way round."""

    def __attrs_post_init__(self) -> None:
        from crucible_harness._ray_executor import RayExecutor

        if self.executor != "local" and not isinstance(self.executor, RayExecutor):
            raise _fail(
                "run.executor",
                f'executor must be "local" or a RayExecutor, got {self.executor!r}',
            )
        if not _whole(self.max_concurrency, 1):
            raise _fail(
                "run.max_concurrency",
                f"max_concurrency must be a positive integer, got {self.max_concurrency!r}",
            )
        if self.timeout is not None and not self.timeout > 0:
            raise _fail(
                "run.timeout",
                f"timeout must be positive seconds or None, got {self.timeout!r}",
            )
        if not _whole(self.retries, 0):
            raise _fail(
                "run.retries", f"retries must be an integer >= 0, got {self.retries!r}"
            )
        if self.rate_limit is not None and not self.rate_limit > 0:
            raise _fail(
                "run.rate_limit",
                f"rate_limit must be positive requests/s or None, got {self.rate_limit!r}",
            )


@attrs.define(frozen=True, kw_only=True)
class Budget:
    """Spending limits in US dollars. A run stops starting tasks before it would cross one."""

    max_total: float | None = None
    """The most the whole run may spend."""
    max_per_condition: float | None = None
    """The most any one condition may spend."""

    def __attrs_post_init__(self) -> None:
        for field in ("max_total", "max_per_condition"):
            value = getattr(self, field)
            if value is not None and (
                not isinstance(value, int | float) or value < 0 or value != value
            ):
                raise _fail(
                    f"budget.{field}",
                    f"budget {field} must be a non-negative number of dollars, got {value!r}",
                )


SequentialMethod: TypeAlias = Literal["confidence_sequence", "obrien_fleming"]
StopRule: TypeAlias = Literal["decided", "futile", "both"]


@attrs.define(frozen=True, kw_only=True)
class EarlyStopping:
    """Stop a run early, as soon as every comparison is settled, without inflating errors.

    Items run in a seeded random order, all conditions (and repeats) of an item together so the
    comparisons stay paired; after each item the sequential statistics of every comparison are
    updated, and the runner stops sending tasks when the stopping rule holds.

    - `"confidence_sequence"`: an anytime-valid betting confidence sequence of the per-item
      accuracy difference (Waudby-Smith & Ramdas 2023, via `crucible_bench.ConfidenceSequence`),
      checked after every item; decisions use Holm on the anytime p-values of the family.
    - `"obrien_fleming"`: a group-sequential design with `looks` equally spaced analyses and
      Lan–DeMets O'Brien–Fleming spending at α/m per comparison (Bonferroni over m comparisons),
      with repeated confidence intervals for futility.
    """

    method: SequentialMethod = "confidence_sequence"
    """`"confidence_sequence"` (look after every item) or `"obrien_fleming"` (planned looks)."""
    looks: int = 5
    """Planned analyses for `"obrien_fleming"` (equally spaced in items)."""
    stop: StopRule = "decided"
    """Stop when every comparison is `"decided"` (significant), `"futile"` (its interval lies
    within ±`futility_margin`), or `"both"` (each one is one or the other)."""
    min_items: int = 20
    """Never stop before this many items are complete."""
    futility_margin: float = 0.02
    """An accuracy difference smaller than this is not worth detecting (for `"futile"`)."""

    def __attrs_post_init__(self) -> None:
        if self.method not in ("confidence_sequence", "obrien_fleming"):
            raise _fail(
                "analysis.sequential.method",
                f"method must be 'confidence_sequence' or 'obrien_fleming', got {self.method!r}",
            )
        if self.stop not in ("decided", "futile", "both"):
            raise _fail(
                "analysis.sequential.stop",
                f"stop must be 'decided', 'futile' or 'both', got {self.stop!r}",
            )
        for name in ("looks", "min_items"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _fail(
                    f"analysis.sequential.{name}",
                    f"{name} must be a positive integer, got {value!r}",
                )
        if not 0 < self.futility_margin < 1:
            raise _fail(
                "analysis.sequential.futility_margin",
                f"futility_margin must be in (0, 1), got {self.futility_margin!r}",
            )


@attrs.define(frozen=True, kw_only=True)
class AnalysisConfig:
    """How conditions are compared."""

    alpha: float = 0.05
    """Significance level."""
    correction: Correction = "holm"
    """Multiple-comparison correction across the family of comparisons."""
    confidence_level: float = 0.95
    """Coverage of every interval."""
    primary: tuple[str, str] | None = None
    """The comparison `(baseline, treatment)` of interest; `None` compares all pairs."""
    n_resamples: int = 2000
    """Bootstrap resamples for clustered intervals."""
    baseline: str | None = None
    """The condition every other one is compared with (`treatment − baseline`); `None` compares all
    pairs, the earlier-declared condition of each pair as its baseline. Ignored when `primary` is set."""
    target_effect: float | None = None
    """The accuracy difference (treatment − baseline, in (0, 1] in absolute value) the experiment should
    detect: the report then gives the a priori power of the run and the items × repeats needed for it.
    Without one it gives the minimum detectable difference."""
    target_power: float = 0.8
    """Power for the minimum detectable difference and the sample-size plan."""
    sequential: EarlyStopping | None = None
    """Stop early when the comparisons are settled (see [`EarlyStopping`][crucible_harness.EarlyStopping]);
    `None` runs every task."""

    def __attrs_post_init__(self) -> None:
        if self.target_effect is not None and not 0 < abs(self.target_effect) <= 1:
            raise _fail(
                "analysis.target_effect",
                f"target_effect is an accuracy difference in (0, 1] in absolute value, got {self.target_effect!r}",
            )
        if not 0 < self.target_power < 1:
            raise _fail(
                "analysis.target_power",
                f"target_power must be in (0, 1), got {self.target_power!r}",
            )
        if not 0 < self.alpha < 1:
            raise _fail(
                "analysis.alpha", f"alpha must be in (0, 1), got {self.alpha!r}"
            )
        if not 0 < self.confidence_level < 1:
            raise _fail(
                "analysis.confidence_level",
                f"confidence_level must be in (0, 1), got {self.confidence_level!r}",
            )


def analysis_config(settings: Mapping[str, Any]) -> AnalysisConfig:
    """The `AnalysisConfig` a manifest's `experiment.analysis` holds (as `attrs.asdict` wrote it).

    Raises:
        ExperimentDefinitionError: a setting is out of range.
        TypeError: an unknown or missing setting.
    """
    values = dict(settings)
    if values.get("primary"):
        values["primary"] = tuple(values["primary"])
    if isinstance(values.get("sequential"), Mapping):
        values["sequential"] = EarlyStopping(**values["sequential"])
    return AnalysisConfig(**values)


def _prompt(raw: Any) -> Any:
    if isinstance(raw, dict) and "prompt" in raw:
        return raw["prompt"]
    if isinstance(raw, dict) and "question" in raw and "choices" in raw:
        letters = "ABCDEFGHIJ"
        options = "\n".join(f"({letters[i]}) {c}" for i, c in enumerate(raw["choices"]))
        return f"{raw['question']}\n{options}\nAnswer with the letter."
    if isinstance(raw, dict) and "question" in raw:
        return raw["question"]
    if isinstance(raw, dict) and "claim" in raw:
        return raw["claim"]
    return raw


def _dataset_metadata(metadata: Any, raw: Any) -> dict[str, Any]:
    out = dict(metadata)
    if isinstance(raw, dict):
        out["raw_input"] = raw
    return out


def is_dataset(value: object) -> bool:
    """Whether `value` is a crucible-datasets `Dataset` (items plus a name and a version)."""
    return (
        hasattr(value, "items") and hasattr(value, "version") and hasattr(value, "name")
    )


def dataset_items(dataset: Any) -> tuple[HarnessItem, ...]:
    """A crucible-datasets `Dataset`'s items as the harness runs them.

    Prompts are built the same way whether the experiment names the dataset or is given it loaded.
    """
    return tuple(
        HarnessItem(
            id=str(i.id),
            input=_prompt(i.input),
            expected=i.expected,
            metadata=_dataset_metadata(i.metadata, i.input),
        )
        for i in dataset.items
    )


def dataset_source(
    dataset: Any, *, name: str | None = None, **options: Any
) -> dict[str, Any]:
    """Where a `Dataset`'s items came from, for the manifest: name, options, revision, checksum."""
    version = getattr(dataset, "version", None)
    metadata = getattr(dataset, "metadata", None)
    return {
        "name": name or str(getattr(dataset, "name", "dataset")),
        **{
            k: (str(v) if v is not None and k == "source" else v)
            for k, v in options.items()
        },
        "items": len(dataset.items),
        "origin": getattr(metadata, "source", None),
        "revision": getattr(version, "revision", None),
        "commit": getattr(version, "commit", None),
        "checksum": getattr(version, "checksum", None),
    }


def _items(dataset: Any) -> tuple[HarnessItem, ...]:
    if isinstance(dataset, str):
        return ()  # resolved through crucible-datasets at run time
    if is_dataset(dataset):
        return dataset_items(dataset)
    items = getattr(dataset, "items", dataset)
    return tuple(_item(raw) for raw in items)


def _item(raw: Any) -> HarnessItem:
    if isinstance(raw, HarnessItem):
        return raw
    if isinstance(raw, Mapping):
        return HarnessItem(
            id=str(raw["id"]),
            input=raw["input"],
            expected=raw.get("expected"),
            metadata=dict(raw.get("metadata") or {}),
        )
    return HarnessItem(
        id=str(raw.id),
        input=raw.input,
        expected=getattr(raw, "expected", None),
        metadata=dict(getattr(raw, "metadata", {}) or {}),
    )


def _conditions(
    value: Iterable[Condition | tuple[str, Any]] | Mapping[str, Any],
) -> tuple[Condition, ...]:
    if isinstance(value, Mapping):
        return tuple(Condition(name=k, target=v) for k, v in value.items())
    return tuple(
        c if isinstance(c, Condition) else Condition(name=c[0], target=c[1])
        for c in value
    )


@attrs.define(frozen=True, kw_only=True)
class Experiment:
    """An experiment: which conditions run on which items, how often, how, within what budget.

    Validated at construction: bad settings raise
    [`ExperimentDefinitionError`][crucible_harness.ExperimentDefinitionError] naming the field.

    Examples:
        >>> exp = Experiment(
        ...     name="arith",
        ...     dataset=[HarnessItem(id="q1", input="2 + 2 = ?", expected="4")],
        ...     conditions={"gpt4": "sim:gpt-4", "llama": "sim:llama-3-70b"},
        ...     repeats=3,
        ... )
        >>> [c.name for c in exp.conditions], exp.task_count()
        (['gpt4', 'llama'], 6)
    """

    name: str
    """Short name (letters, digits, `_.-`)."""
    conditions: tuple[Condition, ...] = attrs.field(converter=_conditions)
    """The arms: `Condition`s, `(name, target)` pairs or a `{name: target}` mapping."""
    dataset: Any = attrs.field(eq=False)
    """A crucible-datasets name (`"humaneval"`, `"gsm8k"`, …), a `Dataset`, or a list of items
    (`HarnessItem`s, or mappings/objects with `id`, `input`, `expected`)."""
    sample_size: int | None = None
    """Items to sample (seeded); `None` uses them all."""
    stratify_by: str | None = None
    """Item metadata key to stratify the sample by."""
    split: str | None = None
    """Dataset split when `dataset` is a name."""
    subset: str | None = None
    """Dataset subset when `dataset` is a name (an MMLU subject or group, SciFact's `"corpus"`)."""
    revision: str | None = None
    """Hub branch, tag or commit when `dataset` is a name (recorded with the commit it resolved to)."""
    source: str | os.PathLike[str] | None = attrs.field(default=None, eq=False)
    """A local file or directory in the dataset's own layout, read instead of the hub, when
    `dataset` is a name (as `crucible_datasets.load(source=...)`)."""
    repeats: int = 1
    """Times each condition runs each item."""
    scorer: Any = attrs.field(default="auto", eq=False)
    """`"auto"` (by dataset: code execution for HumanEval, number match for GSM8K, choice letter for
    MMLU, normalised exact match otherwise), a metric name, or a callable `(item, prediction) -> bool | float`."""
    description: str = ""
    """What the experiment tests."""
    hypothesis: str = ""
    """The hypothesis, stated before running."""
    author: str = ""
    """Who ran it."""
    version: str = "1"
    """Version of this experiment definition."""
    tags: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Labels for search."""
    run: RunConfig = attrs.field(factory=RunConfig)
    """How tasks run."""
    budget: Budget = attrs.field(factory=Budget)
    """Spending limits."""
    analysis: AnalysisConfig = attrs.field(factory=AnalysisConfig)
    """How conditions are compared."""
    _items: tuple[HarnessItem, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        name: object = self.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(
                "name",
                f"experiment name {self.name!r} must be 1-64 letters, digits or `_.-`, starting with a letter or digit",
            )
        if not self.conditions:
            raise _fail("conditions", "an experiment needs at least one condition")
        given = [
            k
            for k in ("split", "subset", "revision", "source")
            if getattr(self, k) is not None
        ]
        if given and not isinstance(self.dataset, str):
            raise _fail(
                "dataset",
                f'{", ".join(given)} apply to a dataset given by name (e.g. dataset="gsm8k"); '
                "a loaded Dataset or a list of items already fixes them: pass them to "
                "crucible_datasets.load() instead, or give the name",
                options=given,
            )
        names = [c.name for c in self.conditions]
        dupes = _repeated(names)
        if dupes:
            raise _fail(
                "conditions",
                f"condition names must be unique; repeated: {dupes}",
                duplicates=dupes,
            )
        for c in self.conditions:
            if not _NAME.match(c.name):
                raise _fail(
                    "conditions",
                    f"condition name {c.name!r} must be 1-64 letters, digits or `_.-`",
                )
            if not (
                isinstance(c.target, str)
                or _is_model_like(c.target)
                or callable(c.target)
            ):
                raise _fail(
                    "conditions",
                    f"condition {c.name!r}: target must be a callable, a model string or a model, got {type(c.target).__name__}",
                )
            if isinstance(c.target, str) and ":" not in c.target:
                raise _fail(
                    "conditions",
                    f"condition {c.name!r}: model string {c.target!r} needs a provider prefix, e.g. 'sim:gpt-4'",
                )
        if not _whole(self.repeats, 1):
            raise _fail(
                "repeats", f"repeats must be a positive integer, got {self.repeats!r}"
            )
        if self.sample_size is not None and not _whole(self.sample_size, 1):
            raise _fail(
                "sample_size",
                f"sample_size must be a positive integer or None, got {self.sample_size!r}",
            )
        if self.analysis.primary is not None:
            missing = [n for n in self.analysis.primary if n not in names]
            if missing or len(self.analysis.primary) != 2:
                raise _fail(
                    "analysis.primary",
                    f"primary comparison {self.analysis.primary!r} must name two conditions of {names}",
                )
        if self.analysis.baseline is not None and self.analysis.baseline not in names:
            raise _fail(
                "analysis.baseline",
                f"baseline {self.analysis.baseline!r} must name a condition of {names}",
            )
        if self.dataset is None:
            raise _fail(
                "dataset",
                "an experiment needs a dataset: a crucible-datasets name or a list of items",
            )
        try:
            items = _items(self.dataset)
        except (KeyError, AttributeError, TypeError) as err:
            raise _fail(
                "dataset",
                f"cannot read items from the dataset: {err}; items need `id`, `input` and `expected`",
            ) from err
        dup = _repeated(i.id for i in items)[:5]
        if dup:
            raise _fail("dataset", f"item ids must be unique; repeated: {dup}")
        if not isinstance(self.dataset, str) and not items:
            raise _fail("dataset", "the dataset has no items")
        object.__setattr__(self, "_items", items)

    @classmethod
    def from_class(cls, spec: type) -> Experiment:
        """Build an experiment from a class whose attributes read like the seeds' DSL.

        Class attributes name the fields (`name`, `dataset`, `repeats`, `run`, `budget`, …) and
        `@condition`-decorated methods (sync or async, taking `(item, ctx)`) are the conditions, in
        definition order. A `conditions` attribute may add model strings or models.
        """
        fields = {a.name for a in attrs.fields(cls) if a.init}
        kwargs = {
            k: v for k, v in vars(spec).items() if k in fields and k != "conditions"
        }
        conds: list[Condition] = list(_conditions(vars(spec).get("conditions", ())))
        for value in vars(spec).values():
            fn = value.__func__ if isinstance(value, staticmethod) else value
            meta = getattr(fn, "__crucible_condition__", None)
            if meta is not None:
                conds.append(
                    Condition(
                        name=meta["name"],
                        target=fn,
                        description=meta["description"],
                        cost_per_task=meta["cost_per_task"],
                    )
                )
        kwargs.setdefault("name", spec.__name__)
        kwargs.setdefault("description", inspect.getdoc(spec) or "")
        return cls(conditions=tuple(conds), **kwargs)

    def with_run(self, **changes: Any) -> Experiment:
        """A copy with some run settings changed, e.g. `experiment.with_run(executor=RayExecutor())`.

        Changing `executor`, `max_concurrency`, `timeout`, `retries` or `rate_limit` keeps the
        fingerprint, so the copy can resume the original's run directory; `seed` does not.
        """
        return attrs.evolve(self, run=attrs.evolve(self.run, **changes))

    @property
    def items(self) -> tuple[HarnessItem, ...]:
        """The items given inline (empty when `dataset` is a name, resolved at run time)."""
        return self._items

    def task_count(self, n_items: int | None = None) -> int:
        """Conditions × items × repeats."""
        n = (
            n_items
            if n_items is not None
            else (
                min(len(self._items), self.sample_size)
                if self.sample_size
                else len(self._items)
            )
        )
        return len(self.conditions) * n * self.repeats

    def fingerprint(self) -> str:
        """A hash of everything that decides which tasks exist and what they compute.

        A run directory remembers it; resuming with a different definition is refused.
        """
        data = {
            "name": self.name,
            "conditions": [c.fingerprint() for c in self.conditions],
            "dataset": self.dataset
            if isinstance(self.dataset, str)
            else [i.id for i in self._items],
            "split": self.split,
            "sample_size": self.sample_size,
            "stratify_by": self.stratify_by,
            "repeats": self.repeats,
            "seed": self.run.seed,
        }
        # only when given, so the fingerprints of runs made before these options existed still match
        data.update(
            {k: str(v) for k, v in self.dataset_options().items() if k != "split"}
        )
        return hashlib.sha256(dumps(data)).hexdigest()[:16]

    def dataset_options(self) -> dict[str, Any]:
        """The `split`, `subset`, `revision` and `source` given, for `crucible_datasets.load`."""
        return {
            k: getattr(self, k)
            for k in ("split", "subset", "revision", "source")
            if getattr(self, k) is not None
        }

    def describe(self) -> dict[str, Any]:
        """The definition as JSON-ready data, for the run manifest and reports."""
        return {
            "name": self.name,
            "description": self.description,
            "hypothesis": self.hypothesis,
            "author": self.author,
            "version": self.version,
            "tags": list(self.tags),
            "dataset": self.dataset
            if isinstance(self.dataset, str)
            else str(self.dataset.name)
            if is_dataset(self.dataset)
            else f"{len(self._items)} inline items",
            "split": self.split,
            **{k: str(v) for k, v in self.dataset_options().items() if k != "split"},
            "sample_size": self.sample_size,
            "stratify_by": self.stratify_by,
            "repeats": self.repeats,
            "conditions": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "target": c.fingerprint().split(":", 2)[2],
                    "description": c.description,
                    "simulated": c.simulated,
                }
                for c in self.conditions
            ],
            "run": {
                **attrs.asdict(self.run, filter=lambda a, _: a.name != "executor"),
                "executor": "local"
                if self.run.executor == "local"
                else self.run.executor.describe(),
            },
            "budget": attrs.asdict(self.budget),
            "analysis": attrs.asdict(self.analysis),
        }


_REFERENCE_CHARS = 4000


def references_of(items: Sequence[HarnessItem]) -> dict[str, str]:
    """Each item's expected answer as text, for the manifest (reports show it beside wrong answers).

    Strings stay as they are, other values become JSON; each is cut to 4,000 characters.
    """
    out = {}
    for item in items:
        if item.expected is None:
            continue
        text = (
            item.expected
            if isinstance(item.expected, str)
            else dumps(item.expected).decode()
        )
        out[item.id] = text[:_REFERENCE_CHARS]
    return out


def task_seed(seed: int, condition: str, item: str, repeat: int) -> int:
    """A 63-bit seed for one task, stable across runs and processes."""
    digest = hashlib.sha256(f"{seed}|{condition}|{item}|{repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def items_of(values: Sequence[Any]) -> tuple[HarnessItem, ...]:
    """Normalise dataset items (crucible-datasets `Item`s, mappings, objects) to `HarnessItem`s."""
    return _items(values)
