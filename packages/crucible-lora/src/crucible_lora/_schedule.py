"""Learning-rate schedules."""

from __future__ import annotations

import math
from typing import Literal

from crucible_lora.exceptions import LoraConfigError

__all__ = ("Schedule", "learning_rate_at")

Schedule = Literal["constant", "linear", "cosine"]
"""A learning-rate schedule: constant, linear decay to zero, or cosine decay to zero."""

_SCHEDULES = ("constant", "linear", "cosine")


def learning_rate_at(
    step: int,
    *,
    base: float,
    total_steps: int,
    schedule: Schedule = "linear",
    warmup_steps: int = 0,
) -> float:
    """The learning rate for optimisation step `step` (counted from 0).

    Warm-up rises linearly from `base / warmup_steps` to `base` over the first `warmup_steps`
    steps; then `linear` and `cosine` decay towards 0, reached one step after the last, and
    `constant` stays at `base`.

    Raises:
        LoraConfigError: on an unknown schedule, a step outside `range(total_steps)`, or
            a non-positive `base`.
    """
    if schedule not in _SCHEDULES:
        raise LoraConfigError(
            f"unknown lr_schedule {schedule!r}; use one of {', '.join(_SCHEDULES)}",
            field="lr_schedule",
            value=schedule,
        )
    if not (base > 0 and math.isfinite(base)):
        raise LoraConfigError(
            f"learning_rate must be a positive number, got {base!r}",
            field="learning_rate",
            value=base,
        )
    if not 0 <= step < total_steps:
        raise LoraConfigError(
            f"step {step} is outside the {total_steps} steps of this schedule",
            field="step",
            value=step,
        )
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if schedule == "constant":
        return base
    decay_steps = total_steps - warmup_steps
    progress = (step - warmup_steps) / decay_steps
    if schedule == "linear":
        return base * (1.0 - progress)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))
