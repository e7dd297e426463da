"""A crucible-core `Model` over a LoRA adapter's sampler, so adapters can be ensemble members."""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING

from crucible_core.models import Completion, Request, Usage
from crucible_lora._adapter import LoraAdapter, SamplingParams
from crucible_lora._generate import generate
from crucible_lora.exceptions import LoraConfigError

if TYPE_CHECKING:
    from crucible_lora._experiment import LoraExperiment

__all__ = ("AdapterModel",)

_LOCKS: dict[
    int,
    tuple[asyncio.AbstractEventLoop, weakref.ReferenceType[object], asyncio.Lock],
] = {}


def _prompt_of(request: Request) -> str:
    if request.prompt is not None and not request.messages:
        return request.prompt
    parts = [m.content for m in request.conversation()]
    return "\n".join(parts)


class AdapterModel:
    """A [`Model`][crucible_core.models.Model] that answers with a LoRA adapter's current weights.

    It wraps a started [`LoraAdapter`][crucible_lora.LoraAdapter] (`LocalAdapter`,
    `TinkerAdapter`, or your own) or a [`LoraExperiment`][crucible_lora.LoraExperiment] (its adapter is
    started on first use), so fine-tuned adapters can be members of a crucible-ensemble
    `Ensemble` (`Ensemble([AdapterModel(a), AdapterModel(b), ...], strategy="weighted")`, the
    original `Ensemble.create(adapters: …)`), conditions of a harness experiment, or hedged.

    The prompt is the request's `prompt`, or its messages' contents joined by new lines (a LoRA
    model has no chat template of its own). `max_tokens`, `temperature` and `stop` of the request
    override `sampling`; a request's `metadata["seed"]` seeds sampling. Calls on one adapter are
    serialised (a training session samples one sequence at a time). Usage is counted by the
    adapter's tokenizer; `latency` is the wall time of the sampling call. A local model has no
    price: `cost` is `None` unless `price_per_token` is given (for example a GPU's hourly price
    spread over its measured tokens per hour), so a budget never takes a local model for free
    by accident.

    Args:
        source: a started adapter, or an experiment whose adapter to use.
        name: the model id's name part (`lora:<name>`); default the experiment's name, or the
            adapter's backend.
        sampling: default sampling parameters (greedy, 64 tokens).
        price_per_token: dollars per prompt or output token, when known.
    """

    def __init__(
        self,
        source: LoraAdapter | LoraExperiment,
        *,
        name: str | None = None,
        sampling: SamplingParams | None = None,
        price_per_token: float | None = None,
    ) -> None:
        from crucible_lora._experiment import LoraExperiment

        if isinstance(source, LoraExperiment):
            self._experiment: LoraExperiment | None = source
            self._adapter: LoraAdapter | None = source.adapter
            default_name = source.name
        elif isinstance(source, LoraAdapter):
            self._experiment = None
            self._adapter = source
            default_name = source.backend
        else:
            raise LoraConfigError(
                f"AdapterModel needs a LoraAdapter or a LoraExperiment, got {type(source).__name__}",
                value=type(source).__name__,
            )
        if price_per_token is not None and not price_per_token >= 0:
            raise LoraConfigError(
                f"price_per_token must be ≥ 0 dollars per token, got {price_per_token!r}",
                field="price_per_token",
                value=price_per_token,
            )
        self._name = name or default_name
        self._sampling = sampling or SamplingParams()
        self._price = price_per_token

    @property
    def id(self) -> str:
        """`lora:<name>`."""
        return f"lora:{self._name}"

    @property
    def provider(self) -> str:
        """`"lora"`."""
        return "lora"

    def __repr__(self) -> str:
        return f"AdapterModel({self.id!r})"

    def _serial(self, adapter: object) -> asyncio.Lock:
        """One lock per adapter and event loop, shared by every model over that adapter."""
        loop = asyncio.get_running_loop()
        key = id(adapter)
        held = _LOCKS.get(key)
        if held is None or held[0] is not loop or held[1]() is not adapter:
            held = (loop, weakref.ref(adapter), asyncio.Lock())
            _LOCKS[key] = held
        return held[2]

    def _params(self, request: Request) -> SamplingParams:
        base = self._sampling
        seed = request.metadata.get("seed", base.seed)
        stop: tuple[str, ...] = request.stop or base.stop
        return SamplingParams(
            max_tokens=base.max_tokens
            if request.max_tokens is None
            else request.max_tokens,
            temperature=base.temperature
            if request.temperature is None
            else request.temperature,
            top_p=base.top_p,
            stop=stop,
            seed=seed
            if isinstance(seed, int) and not isinstance(seed, bool)
            else base.seed,
        )

    async def _started(self) -> LoraAdapter:
        if self._experiment is not None:
            async with self._serial(
                self._experiment
            ):  # one start, however many callers
                self._adapter = await self._experiment._adapter()
        assert self._adapter is not None
        return self._adapter

    async def complete(self, request: Request) -> Completion:
        """Sample one completion of the request's prompt with the adapter's current weights."""
        params = self._params(request)
        adapter = await self._started()
        async with self._serial(adapter):
            started = time.perf_counter()
            out = await generate(adapter, _prompt_of(request), params)
            latency = time.perf_counter() - started
        cost = (
            None
            if self._price is None
            else self._price * (out.prompt_tokens + out.output_tokens)
        )
        step = None if self._experiment is None else self._experiment.step
        return Completion(
            text=out.text,
            usage=Usage(
                input_tokens=out.prompt_tokens, output_tokens=out.output_tokens
            ),
            latency=latency,
            cost=cost,
            model=self.id,
            provider="lora",
            finish_reason="stop" if out.finish_reason == "stop" else "length",
            raw={"backend": adapter.backend, "step": step},
        )

    async def aclose(self) -> None:
        """Nothing to release: the adapter (and its session) belongs to the caller."""
