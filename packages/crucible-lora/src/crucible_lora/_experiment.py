"""The workflow: create an experiment, train it (checkpoints, evals, quality targets), evaluate it."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from crucible_core._async import run_sync
from crucible_core.events import (
    LORA_EVAL_STOP,
    LORA_STEP_STOP,
    LORA_TRAIN_START,
    emit,
    span,
)
from crucible_core.ids import new_id
from crucible_lora._adapter import LoraAdapter, SamplingParams
from crucible_lora._batching import batches, steps_per_epoch
from crucible_lora._config import ExperimentConfig, to_config
from crucible_lora._data import Example, format_examples, to_examples
from crucible_lora._generate import generate
from crucible_lora._quality import QualityTargets, QualityValidator
from crucible_lora._results import (
    AdapterEvaluation,
    Checkpoint,
    ItemPrediction,
    StepRecord,
    TrainingResult,
)
from crucible_lora._schedule import Schedule, learning_rate_at
from crucible_lora.exceptions import (
    AdapterError,
    CheckpointNotFoundError,
    LoraConfigError,
    LoraError,
)

__all__ = (
    "LoraExperiment",
    "Metric",
    "SweepRun",
    "create_experiment",
    "evaluate",
    "evaluate_async",
    "sweep",
    "train",
    "train_async",
)

_TRAIN_PREFIX = LORA_TRAIN_START[:-1]

Metric = Callable[[str, Example], float]
"""A per-item metric: `(prediction, example) -> score`."""


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split())


def _exact_match(prediction: str, example: Example) -> float:
    expected = example.completion if example.expected is None else example.expected
    return float(_normalize(prediction) == _normalize(str(expected)))


def _contains(prediction: str, example: Example) -> float:
    expected = example.completion if example.expected is None else example.expected
    return float(_normalize(str(expected)) in _normalize(prediction))


_BUILTIN_METRICS: dict[str, Metric] = {
    "exact_match": _exact_match,
    "contains": _contains,
}


@attrs.define(kw_only=True)
class LoraExperiment:
    """A named LoRA fine-tuning experiment: its config, adapter, progress and checkpoints.

    Build it with [`create_experiment`][crucible_lora.create_experiment]. It is stateful: `train`
    advances `step` and appends to `checkpoints`, so a later `train(..., resume=True)` continues
    from the last checkpoint.
    """

    name: str
    """A human-readable name."""
    config: ExperimentConfig
    """The configuration."""
    adapter: LoraAdapter | None = None
    """The training backend; built from `config.backend` on first use when `None`."""
    id: str = attrs.field(factory=lambda: new_id("lora"))
    """A unique, time-ordered id."""
    created: dt.datetime = attrs.field(factory=lambda: dt.datetime.now(dt.UTC))
    """When the experiment was created (UTC)."""
    step: int = 0
    """Optimisation steps applied to the current weights."""
    checkpoints: list[Checkpoint] = attrs.field(factory=list)
    """Every checkpoint saved, oldest first."""
    started: bool = False
    """Whether the adapter's training session exists."""

    async def _adapter(self) -> LoraAdapter:
        if self.adapter is None:
            if self.config.backend == "local":
                from crucible_lora._local import LocalAdapter

                self.adapter = LocalAdapter()
            else:
                from crucible_lora._tinker import TinkerAdapter

                self.adapter = TinkerAdapter()
        if not self.started:
            await self.adapter.start_async(self.config)
            self.started = True
        return self.adapter


_ADAPTER_METHODS = (
    "start_async",
    "train_step_async",
    "save_state_async",
    "load_state_async",
    "sample_async",
    "close_async",
)


def _is_adapter(obj: object) -> bool:
    # Checked on the class: `isinstance(obj, LoraAdapter)` would read the `tokenizer` property,
    # which adapters refuse before their session starts.
    return all(callable(getattr(type(obj), m, None)) for m in _ADAPTER_METHODS)


def create_experiment(
    name: str,
    *,
    config: ExperimentConfig | Mapping[str, Any],
    adapter: LoraAdapter | None = None,
) -> LoraExperiment:
    """Create an experiment (nothing is sent to the backend until `train` or `evaluate`).

    Args:
        name: a human-readable name.
        config: an [`ExperimentConfig`][crucible_lora.ExperimentConfig] or a mapping of its fields.
        adapter: the backend to use (default: built from `config.backend`).

    Raises:
        LoraConfigError: on an empty name or an invalid config.
    """
    if not str(name).strip():
        raise LoraConfigError(
            f"an experiment needs a non-empty name, got {name!r}",
            field="name",
            value=name,
        )
    if adapter is not None and not _is_adapter(adapter):
        raise LoraConfigError(
            f"{type(adapter).__name__!r} does not implement the LoraAdapter interface",
            field="adapter",
            value=type(adapter).__name__,
        )
    return LoraExperiment(name=name, config=to_config(config), adapter=adapter)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_every(name: str, value: int | None) -> None:
    if value is not None and not _is_count(value):
        raise LoraConfigError(
            f"`{name}` must be a positive number of steps or None, got {value!r}",
            field=name,
            value=value,
        )


async def train_async(
    experiment: LoraExperiment,
    dataset: Iterable[Any],
    *,
    epochs: int = 1,
    batch_size: int = 8,
    lr_schedule: Schedule = "linear",
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
    eval_dataset: Iterable[Any] | None = None,
    metrics: Sequence[str | Metric] = ("exact_match",),
    validator: QualityValidator | None = None,
    quality_targets: QualityTargets | Mapping[str, float] | None = None,
    resume: bool | str = False,
    drop_last: bool = False,
    sampling: SamplingParams | None = None,
    params: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Fine-tune `experiment` on `dataset`; the coroutine twin of [`train`][crucible_lora.train].

    Args:
        experiment: from [`create_experiment`][crucible_lora.create_experiment].
        dataset: examples or items (see [`to_examples`][crucible_lora.to_examples]).
        epochs: passes over the data; each reshuffles with `(config.seed, epoch)`.
        batch_size: examples per step.
        lr_schedule: `"linear"`, `"cosine"` or `"constant"` over all steps (after warm-up).
        checkpoint_every: save a checkpoint every this many steps, and at the end.
        eval_every: evaluate on `eval_dataset` every this many steps.
        eval_dataset: held-out examples for `eval_every` and quality targets.
        metrics: metric names (`"exact_match"`, `"contains"`) or functions, for evaluations.
        validator: a [`QualityValidator`][crucible_lora.QualityValidator] run at each evaluation.
        quality_targets: stop early once an evaluation's quality report meets these (targets
            left unnamed in a mapping are not required); needs `validator` and `eval_every`.
        resume: `True` to continue from the experiment's last checkpoint, or a checkpoint path.
        drop_last: drop each epoch's last partial batch (otherwise no example is ever dropped).
        sampling: sampling parameters for evaluations.
        params: labels copied into the result's records (a sweep's grid values).

    Raises:
        LoraConfigError: on bad options (checked before anything is trained).
        LoraDataError: on an empty or malformed dataset.
        CheckpointNotFoundError: when `resume` names no checkpoint.
        AdapterError: when the backend fails; `last_checkpoint` names the state that survives.
    """
    if not _is_count(epochs):
        raise LoraConfigError(
            f"`epochs` must be a positive integer, got {epochs!r}",
            field="epochs",
            value=epochs,
        )
    _check_every("checkpoint_every", checkpoint_every)
    _check_every("eval_every", eval_every)
    if eval_every is not None and eval_dataset is None:
        raise LoraConfigError(
            "`eval_every` needs an `eval_dataset` to evaluate on",
            field="eval_dataset",
            value=None,
        )
    targets: QualityTargets | None = None
    if quality_targets is not None:
        targets = (
            quality_targets
            if isinstance(quality_targets, QualityTargets)
            else QualityTargets.from_mapping(quality_targets)
        )
        if validator is None or eval_every is None:
            raise LoraConfigError(
                "`quality_targets` are checked at evaluations: pass a `validator`, "
                "`eval_every` and an `eval_dataset`",
                field="quality_targets",
                value=quality_targets,
            )
        validator = attrs.evolve(validator, targets=targets)
    config = experiment.config
    examples = to_examples(dataset)
    eval_examples = None if eval_dataset is None else to_examples(eval_dataset)
    per_epoch = steps_per_epoch(
        len(examples), batch_size=batch_size, drop_last=drop_last
    )
    total = epochs * per_epoch
    learning_rate_at(
        0, base=config.learning_rate, total_steps=max(total, 1), schedule=lr_schedule
    )

    adapter = await experiment._adapter()
    backend = adapter.backend
    data = format_examples(examples, adapter.tokenizer, max_length=config.max_length)
    batches(data, batch_size=batch_size, seed=config.seed, epoch=0, drop_last=drop_last)

    if resume:
        if resume is True:
            if not experiment.checkpoints:
                raise CheckpointNotFoundError(
                    f"experiment {experiment.name!r} has no checkpoint to resume from: "
                    "train with `checkpoint_every` first, or pass a checkpoint path",
                    path=None,
                )
            checkpoint = experiment.checkpoints[-1]
        else:
            found = [c for c in experiment.checkpoints if c.path == resume]
            checkpoint = (
                found[-1]
                if found
                else Checkpoint(step=_step_of(resume), path=resume, epoch=0)
            )
        try:
            await adapter.load_state_async(checkpoint.path)
        except LoraError:
            raise
        except Exception as err:
            raise _failed(err, backend, checkpoint.step, experiment) from err
        experiment.step = checkpoint.step
    # Resuming replays this call's plan from the checkpoint's step; a fresh call trains `total`
    # further steps on the current weights.
    start_step = experiment.step if resume else 0
    offset = 0 if resume else experiment.step

    history: list[StepRecord] = []
    evaluations: list[AdapterEvaluation] = []
    saved: list[Checkpoint] = []
    stop_reason = "completed"
    started = time.perf_counter()
    meta = {
        "backend": backend,
        "base_model": config.base_model,
        "experiment": experiment.name,
    }
    with span(_TRAIN_PREFIX, meta) as handle:
        step = start_step
        for epoch in range(start_step // per_epoch if per_epoch else 0, epochs):
            plan = batches(
                data,
                batch_size=batch_size,
                seed=config.seed,
                epoch=epoch,
                drop_last=drop_last,
            )
            for k, batch in enumerate(plan):
                if epoch * per_epoch + k < step:
                    continue
                lr = learning_rate_at(
                    step,
                    base=config.learning_rate,
                    total_steps=total,
                    schedule=lr_schedule,
                    warmup_steps=min(config.warmup_steps, total - 1),
                )
                t0 = time.perf_counter()
                try:
                    result = await adapter.train_step_async(batch, learning_rate=lr)
                except LoraError as err:
                    if not isinstance(err, AdapterError):
                        raise
                    raise _failed(err, backend, offset + step + 1, experiment) from err
                except Exception as err:
                    raise _failed(err, backend, offset + step + 1, experiment) from err
                step += 1
                experiment.step = offset + step
                record = StepRecord(
                    step=experiment.step,
                    epoch=epoch,
                    loss=result.loss,
                    learning_rate=lr,
                    n_tokens=result.n_tokens,
                    n_trained=result.n_trained,
                    duration=time.perf_counter() - t0,
                )
                history.append(record)
                step_meta: dict[str, Any] = dict(meta)
                if checkpoint_every is not None and (
                    step % checkpoint_every == 0 or step == total
                ):
                    checkpoint = await _save(adapter, experiment, epoch)
                    saved.append(checkpoint)
                    step_meta["checkpoint"] = checkpoint.path
                emit(
                    LORA_STEP_STOP,
                    {
                        "loss": record.loss,
                        "step": record.step,
                        "learning_rate": lr,
                        "tokens": record.n_tokens,
                        "duration": record.duration,
                    },
                    step_meta,
                )
                if eval_every is not None and step % eval_every == 0:
                    assert eval_examples is not None
                    evaluation = await _evaluate(
                        experiment, adapter, eval_examples, metrics, validator, sampling
                    )
                    evaluations.append(evaluation)
                    if (
                        targets is not None
                        and evaluation.quality is not None
                        and evaluation.quality.met
                    ):
                        stop_reason = f"quality targets met at step {experiment.step}"
                        break
            if stop_reason != "completed":
                break
        handle.measurements["steps"] = float(len(history))
        if history:
            handle.measurements["final_loss"] = history[-1].loss
    return TrainingResult(
        experiment=experiment.name,
        backend=backend,
        base_model=config.base_model,
        steps=experiment.step,
        history=tuple(history),
        evaluations=tuple(evaluations),
        checkpoints=tuple(saved),
        stop_reason=stop_reason,
        params=dict(params or {}),
        duration=time.perf_counter() - started,
    )


def _step_of(path: str) -> int:
    match = re.search(r"step-(\d+)", path)
    if match is None:
        raise CheckpointNotFoundError(
            f"{path!r} is not a checkpoint of this experiment and does not name its step "
            "(`step-<n>`): pass `resume=True` or a path from `experiment.checkpoints`",
            path=path,
        )
    return int(match.group(1))


async def _save(
    adapter: LoraAdapter, experiment: LoraExperiment, epoch: int
) -> Checkpoint:
    name = f"{_slug(experiment.name)}-step-{experiment.step:06d}"
    path = await adapter.save_state_async(name)
    checkpoint = Checkpoint(step=experiment.step, path=path, epoch=epoch)
    experiment.checkpoints.append(checkpoint)
    return checkpoint


def _failed(
    err: Exception, backend: str, step: int, experiment: LoraExperiment
) -> AdapterError:
    last = experiment.checkpoints[-1].path if experiment.checkpoints else None
    hint = (
        f"the last checkpoint, {last!r}, is intact: continue with `train(..., resume=True)`"
        if last
        else "no checkpoint was saved; pass `checkpoint_every` to keep progress"
    )
    return AdapterError(
        f"the {backend} adapter failed at step {step}: {type(err).__name__}: {err}; {hint}",
        backend=backend,
        step=step,
        last_checkpoint=last,
    )


def train(
    experiment: LoraExperiment,
    dataset: Iterable[Any],
    *,
    epochs: int = 1,
    batch_size: int = 8,
    lr_schedule: Schedule = "linear",
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
    eval_dataset: Iterable[Any] | None = None,
    metrics: Sequence[str | Metric] = ("exact_match",),
    validator: QualityValidator | None = None,
    quality_targets: QualityTargets | Mapping[str, float] | None = None,
    resume: bool | str = False,
    drop_last: bool = False,
    sampling: SamplingParams | None = None,
    params: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Fine-tune `experiment` on `dataset` (see [`train_async`][crucible_lora.train_async]).

    Examples:
        ```python
        exp = create_experiment("scifact", config={"base_model": "Qwen/Qwen3-8B", "lora_rank": 16})
        result = train(exp, examples, epochs=3, batch_size=8, checkpoint_every=100)
        ```
    """
    return run_sync(
        train_async(
            experiment,
            dataset,
            epochs=epochs,
            batch_size=batch_size,
            lr_schedule=lr_schedule,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            eval_dataset=eval_dataset,
            metrics=metrics,
            validator=validator,
            quality_targets=quality_targets,
            resume=resume,
            drop_last=drop_last,
            sampling=sampling,
            params=params,
        )
    )


def _metrics(metrics: Sequence[str | Metric]) -> dict[str, Metric]:
    if not metrics:
        raise LoraConfigError(
            "give at least one metric", field="metrics", value=metrics
        )
    out: dict[str, Metric] = {}
    for m in metrics:
        if isinstance(m, str):
            if m not in _BUILTIN_METRICS:
                raise LoraConfigError(
                    f"unknown metric {m!r}; use {', '.join(_BUILTIN_METRICS)} or pass a "
                    "function `(prediction, example) -> float`",
                    field="metrics",
                    value=m,
                )
            out[m] = _BUILTIN_METRICS[m]
        else:
            out[getattr(m, "__name__", repr(m))] = m
    return out


async def _evaluate(
    experiment: LoraExperiment,
    adapter: LoraAdapter,
    examples: Sequence[Example],
    metrics: Sequence[str | Metric],
    validator: QualityValidator | None,
    sampling: SamplingParams | None,
) -> AdapterEvaluation:
    scorers = _metrics(metrics)
    params = sampling or SamplingParams()
    started = time.perf_counter()
    predictions: list[ItemPrediction] = []
    for ex in examples:
        text = (await generate(adapter, ex.prompt, params)).text
        predictions.append(
            ItemPrediction(
                id=ex.id,
                prompt=ex.prompt,
                prediction=text,
                expected=ex.completion if ex.expected is None else ex.expected,
                scores={name: float(f(text, ex)) for name, f in scorers.items()},
            )
        )
    quality = None
    if validator is not None:
        quality = await validator.validate_async(
            [p.prediction for p in predictions], list(examples)
        )
    means = {
        name: float(np.mean([p.scores[name] for p in predictions])) for name in scorers
    }
    if quality is not None:
        means.update(
            {
                f"quality_{k}": v
                for k, v in (
                    ("schema_compliance", quality.schema_compliance),
                    ("citation_accuracy", quality.citation_accuracy),
                    ("overall_pass_rate", quality.overall_pass_rate),
                    ("mean_entailment", quality.mean_entailment),
                )
                if v is not None
            }
        )
    duration = time.perf_counter() - started
    emit(
        LORA_EVAL_STOP,
        {"duration": duration, **means},
        {
            "backend": adapter.backend,
            "experiment": experiment.name,
            "step": experiment.step,
        },
    )
    return AdapterEvaluation(
        experiment=experiment.name,
        step=experiment.step,
        metrics=means,
        predictions=tuple(predictions),
        quality=quality,
        duration=duration,
    )


async def evaluate_async(
    experiment: LoraExperiment,
    dataset: Iterable[Any],
    *,
    metrics: Sequence[str | Metric] = ("exact_match",),
    validator: QualityValidator | None = None,
    sampling: SamplingParams | None = None,
) -> AdapterEvaluation:
    """Generate with the experiment's current weights on `dataset` and score each item.

    Before any training this evaluates the base model, so evaluating before and after gives
    paired per-item scores ([`AdapterEvaluation.scores`][crucible_lora.AdapterEvaluation.scores]).

    Args:
        experiment: the experiment.
        dataset: examples or items; the completion (or the item's `expected`) is the reference.
        metrics: metric names (`"exact_match"`, `"contains"`) or functions
            `(prediction, example) -> float` (for instance crucible-datasets' scorers).
        validator: also run this [`QualityValidator`][crucible_lora.QualityValidator].
        sampling: how to generate (default: greedy, 64 tokens).

    Raises:
        LoraConfigError: on an unknown metric.
        LoraDataError: on an empty dataset.
    """
    examples = to_examples(dataset)
    _metrics(metrics)
    adapter = await experiment._adapter()
    return await _evaluate(experiment, adapter, examples, metrics, validator, sampling)


def evaluate(
    experiment: LoraExperiment,
    dataset: Iterable[Any],
    *,
    metrics: Sequence[str | Metric] = ("exact_match",),
    validator: QualityValidator | None = None,
    sampling: SamplingParams | None = None,
) -> AdapterEvaluation:
    """Sync twin of [`evaluate_async`][crucible_lora.evaluate_async]."""
    return run_sync(
        evaluate_async(
            experiment, dataset, metrics=metrics, validator=validator, sampling=sampling
        )
    )


@attrs.define(frozen=True, kw_only=True)
class SweepRun:
    """One run of a sweep: a config from the grid and a replication with its own seed."""

    name: str
    """A name naming the grid values and the replication."""
    config: ExperimentConfig
    """The base config with this run's grid values and seed."""
    params: dict[str, Any]
    """This run's grid values and `replication` (copied into training records)."""


def sweep(
    base_config: ExperimentConfig | Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    *,
    replications: int = 1,
    seed: int = 0,
) -> tuple[SweepRun, ...]:
    """Every combination of `grid` values, each replicated with independent seeds.

    Seeds come from `numpy.random.SeedSequence(seed)`, so the same call gives the same runs and
    no two runs share a seed.

    Args:
        base_config: the config the grid varies.
        grid: config field → values to try (e.g. `{"lora_rank": [8, 16], "learning_rate": [1e-4]}`).
        replications: runs per combination.
        seed: the sweep's root seed.

    Raises:
        LoraConfigError: on an unknown field, an empty value list, `replications < 1`, or a
            combination that makes an invalid config.
    """
    base = to_config(base_config)
    if not _is_count(replications):
        raise LoraConfigError(
            f"`replications` must be a positive integer, got {replications!r}",
            field="replications",
            value=replications,
        )
    known = {f.name for f in attrs.fields(ExperimentConfig)} - {"seed"}
    for key, options in grid.items():
        if key not in known:
            raise LoraConfigError(
                f"cannot sweep {key!r}: it is not an ExperimentConfig field "
                f"(seeds come from `replications` and `seed`)",
                field=key,
                value=options,
            )
        if isinstance(options, str) or not len(options):
            raise LoraConfigError(
                f"grid values for {key!r} must be a non-empty list, got {options!r}",
                field=key,
                value=options,
            )
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    children = np.random.SeedSequence(seed).spawn(len(combos) * replications)
    runs: list[SweepRun] = []
    for c, combo in enumerate(combos):
        values = dict(zip(keys, combo, strict=True))
        for r in range(replications):
            run_seed = int(children[c * replications + r].generate_state(1)[0] >> 1)
            config = attrs.evolve(base, **values, seed=run_seed)
            label = ",".join(f"{k}={v}" for k, v in values.items()) or "base"
            runs.append(
                SweepRun(
                    name=f"{label}#r{r}",
                    config=config,
                    params={**values, "replication": r},
                )
            )
    return tuple(runs)
