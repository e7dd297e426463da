"""Experiment configuration: the base model, the LoRA shape and the optimiser."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from crucible_lora.exceptions import LoraConfigError

__all__ = ("Backend", "ExperimentConfig", "to_config")

Backend = Literal["tinker", "local"]
"""Where training runs: the Tinker API, or PyTorch + PEFT on this machine."""


def _fail(field: str, value: object, why: str) -> LoraConfigError:
    return LoraConfigError(f"`{field}` {why}, got {value!r}", field=field, value=value)


def _positive_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(attribute.name, value, "must be a positive integer")


def _optional_positive_int(
    _: object, attribute: attrs.Attribute[int], value: object
) -> None:
    if value is not None:
        _positive_int(_, attribute, value)


def _non_negative_int(
    _: object, attribute: attrs.Attribute[int], value: object
) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(attribute.name, value, "must be an integer ≥ 0")


def _positive_float(
    _: object, attribute: attrs.Attribute[float], value: object
) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _fail(attribute.name, value, "must be a positive finite number")


def _non_negative_float(
    _: object, attribute: attrs.Attribute[float], value: object
) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise _fail(attribute.name, value, "must be a finite number ≥ 0")


def _fraction(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value < 1
    ):
        raise _fail(attribute.name, value, "must be in [0, 1)")


def _base_model(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(
            "base_model",
            value,
            "must name a model (a Tinker model or a local model directory)",
        )


def _backend(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in ("tinker", "local"):
        raise _fail("backend", value, "must be 'tinker' or 'local'")


def _modules(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.define(frozen=True, kw_only=True)
class ExperimentConfig:
    """Everything that defines a LoRA fine-tuning run except the data.

    Examples:
        >>> ExperimentConfig(base_model="Qwen/Qwen3-8B", lora_rank=16).lora_alpha
        32.0
    """

    base_model: str = attrs.field(validator=_base_model)
    """The model to adapt: a Tinker model name, or for the local backend a built-in name or a
    directory holding a saved `transformers` model."""
    backend: Backend = attrs.field(default="tinker", validator=_backend)
    """Where training runs when no adapter is given."""
    lora_rank: int = attrs.field(default=16, validator=_positive_int)
    """The rank of the LoRA matrices."""
    lora_alpha: float = attrs.field(
        default=attrs.Factory(lambda self: 2.0 * self.lora_rank, takes_self=True),
        converter=float,
        validator=_positive_float,
    )
    """The LoRA scaling numerator (the update is scaled by `lora_alpha / lora_rank`); default 2 × rank."""
    lora_dropout: float = attrs.field(default=0.0, validator=_fraction)
    """Dropout on the LoRA input (local backend)."""
    target_modules: tuple[str, ...] | None = attrs.field(
        default=None, converter=_modules
    )
    """Module names to adapt (local backend); `None` uses the model family's attention projection."""
    learning_rate: float = attrs.field(default=1e-4, validator=_positive_float)
    """The peak learning rate (the schedule scales it per step)."""
    warmup_steps: int = attrs.field(default=0, validator=_non_negative_int)
    """Steps of linear warm-up before the schedule's decay."""
    beta1: float = attrs.field(default=0.9, validator=_fraction)
    """Adam's first-moment decay."""
    beta2: float = attrs.field(default=0.999, validator=_fraction)
    """Adam's second-moment decay."""
    eps: float = attrs.field(default=1e-8, validator=_positive_float)
    """Adam's epsilon."""
    weight_decay: float = attrs.field(default=0.0, validator=_non_negative_float)
    """Decoupled (AdamW) weight decay."""
    grad_clip_norm: float = attrs.field(default=0.0, validator=_non_negative_float)
    """Clip the global gradient norm to this (0: no clipping)."""
    max_length: int | None = attrs.field(default=None, validator=_optional_positive_int)
    """The longest training sequence in tokens (`None`: no limit)."""
    seed: int = attrs.field(default=0, validator=_non_negative_int)
    """Seeds LoRA initialisation, dropout and the per-epoch shuffles."""


def to_config(config: ExperimentConfig | Mapping[str, Any]) -> ExperimentConfig:
    """`config` as an [`ExperimentConfig`][crucible_lora.ExperimentConfig] (a mapping is converted).

    Raises:
        LoraConfigError: on unknown keys, a missing `base_model`, or an invalid value.
    """
    if isinstance(config, ExperimentConfig):
        return config
    if not isinstance(config, Mapping):
        raise LoraConfigError(
            f"config must be an ExperimentConfig or a mapping, got {type(config).__name__}",
            field="config",
            value=type(config).__name__,
        )
    known = {f.name for f in attrs.fields(ExperimentConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise LoraConfigError(
            f"unknown config key(s) {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(sorted(known))}",
            field=unknown[0],
            value=config[unknown[0]],
        )
    if "base_model" not in config:
        raise LoraConfigError(
            "config needs `base_model`: the model to fine-tune",
            field="base_model",
            value=None,
        )
    return ExperimentConfig(**config)
