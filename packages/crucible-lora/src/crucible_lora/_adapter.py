"""The adapter interface every training backend implements, and its value types."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from crucible_core._async import run_sync
from crucible_lora._config import ExperimentConfig
from crucible_lora._data import Datum
from crucible_lora._tokenizer import Tokenizer
from crucible_lora.exceptions import LoraConfigError

__all__ = ("BaseAdapter", "LoraAdapter", "SamplingParams", "StepResult")


@attrs.define(frozen=True, kw_only=True)
class StepResult:
    """What one forward-backward pass reports."""

    loss: float
    """Mean loss per trained (weighted) target token."""
    n_tokens: int
    """Input tokens processed."""
    n_trained: int
    """Target tokens that carried loss."""
    metrics: dict[str, float] = attrs.field(factory=dict)
    """Backend-specific extras (e.g. Tinker's `loss:sum`)."""


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise LoraConfigError(
            f"`SamplingParams.{attribute.name}` must be ≥ 0, got {value!r}",
            field=attribute.name,
            value=value,
        )


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise LoraConfigError(
            f"`SamplingParams.{attribute.name}` must be ≥ 1, got {value!r}",
            field=attribute.name,
            value=value,
        )


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.define(frozen=True, kw_only=True)
class SamplingParams:
    """How to sample: length, temperature (0 is greedy), nucleus, stop strings, seed."""

    max_tokens: int = attrs.field(default=64, validator=_positive)
    """The most tokens to generate."""
    temperature: float = attrs.field(default=0.0, validator=_non_negative)
    """Softmax temperature; 0 picks the most likely token."""
    top_p: float = attrs.field(default=1.0, validator=_non_negative)
    """Nucleus sampling mass (1: off)."""
    stop: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    """Strings that end a completion (cut before them)."""
    seed: int | None = None
    """Seed for sampling, or `None`."""


@runtime_checkable
class LoraAdapter(Protocol):
    """A LoRA training backend: the seeds' `Crucible.Lora.Adapter` callbacks in Python form.

    One adapter holds one training session. Implement the `_async` methods; subclass
    [`BaseAdapter`][crucible_lora.BaseAdapter] to get the sync names.
    """

    @property
    def backend(self) -> str:
        """A short name, e.g. `"tinker"`, `"local"`."""
        ...

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer of the session's base model (available after `start`)."""
        ...

    async def start_async(self, config: ExperimentConfig) -> None:
        """Create the training session for `config`'s base model and LoRA shape."""
        ...

    async def forward_backward_async(
        self, batch: Sequence[Datum], *, loss: str = "cross_entropy"
    ) -> StepResult:
        """Accumulate gradients of `loss` on `batch`; return its mean loss."""
        ...

    async def optim_step_async(self, *, learning_rate: float) -> None:
        """Apply one Adam step with the config's Adam parameters at `learning_rate`."""
        ...

    async def train_step_async(
        self,
        batch: Sequence[Datum],
        *,
        learning_rate: float,
        loss: str = "cross_entropy",
    ) -> StepResult:
        """Forward-backward then optimiser step (pipelined where the backend allows)."""
        ...

    async def save_state_async(self, name: str) -> str:
        """Save weights and optimiser state as a checkpoint; return its path."""
        ...

    async def load_state_async(self, path: str) -> None:
        """Restore weights and optimiser state from a checkpoint path."""
        ...

    async def save_weights_for_sampler_async(self, name: str) -> str:
        """Save the current weights for sampling; return their path."""
        ...

    async def sample_async(
        self, prompt: Sequence[int], *, n: int = 1, params: SamplingParams
    ) -> list[list[int]]:
        """Generate `n` continuations of the token ids `prompt` with the current weights."""
        ...

    async def close_async(self) -> None:
        """Release the session."""
        ...


class BaseAdapter:
    """Sync twins for an adapter's `_async` methods, and a default `train_step_async`."""

    async def forward_backward_async(
        self, batch: Sequence[Datum], *, loss: str = "cross_entropy"
    ) -> StepResult:
        """See [`LoraAdapter`][crucible_lora.LoraAdapter]."""
        raise NotImplementedError  # pragma: no cover - every adapter defines it

    async def optim_step_async(self, *, learning_rate: float) -> None:
        """See [`LoraAdapter`][crucible_lora.LoraAdapter]."""
        raise NotImplementedError  # pragma: no cover - every adapter defines it

    async def train_step_async(
        self,
        batch: Sequence[Datum],
        *,
        learning_rate: float,
        loss: str = "cross_entropy",
    ) -> StepResult:
        """Forward-backward, then one optimiser step."""
        result = await self.forward_backward_async(batch, loss=loss)
        await self.optim_step_async(learning_rate=learning_rate)
        return result

    def start(self, config: ExperimentConfig) -> None:
        """Sync twin of `start_async`."""
        run_sync(self._call("start_async", config))

    def forward_backward(
        self, batch: Sequence[Datum], *, loss: str = "cross_entropy"
    ) -> StepResult:
        """Sync twin of `forward_backward_async`."""
        return run_sync(self.forward_backward_async(batch, loss=loss))

    def optim_step(self, *, learning_rate: float) -> None:
        """Sync twin of `optim_step_async`."""
        run_sync(self.optim_step_async(learning_rate=learning_rate))

    def train_step(
        self,
        batch: Sequence[Datum],
        *,
        learning_rate: float,
        loss: str = "cross_entropy",
    ) -> StepResult:
        """Sync twin of `train_step_async`."""
        return run_sync(
            self.train_step_async(batch, learning_rate=learning_rate, loss=loss)
        )

    def save_state(self, name: str) -> str:
        """Sync twin of `save_state_async`."""
        return str(run_sync(self._call("save_state_async", name)))

    def load_state(self, path: str) -> None:
        """Sync twin of `load_state_async`."""
        run_sync(self._call("load_state_async", path))

    def save_weights_for_sampler(self, name: str) -> str:
        """Sync twin of `save_weights_for_sampler_async`."""
        return str(run_sync(self._call("save_weights_for_sampler_async", name)))

    def sample(
        self, prompt: Sequence[int], *, n: int = 1, params: SamplingParams | None = None
    ) -> list[list[int]]:
        """Sync twin of `sample_async`."""
        out: list[list[int]] = run_sync(
            self._call("sample_async", prompt, n=n, params=params or SamplingParams())
        )
        return out

    def close(self) -> None:
        """Sync twin of `close_async`."""
        run_sync(self._call("close_async"))

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await getattr(self, name)(*args, **kwargs)
