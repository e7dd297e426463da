"""`TinkerAdapter`: LoRA training and sampling on the Tinker API through the official `tinker` SDK."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from crucible_core._optional import import_optional
from crucible_lora._adapter import BaseAdapter, SamplingParams, StepResult
from crucible_lora._config import ExperimentConfig
from crucible_lora._data import Datum
from crucible_lora._tokenizer import Tokenizer, as_tokenizer
from crucible_lora.exceptions import AdapterError, LoraConfigError

__all__ = ("TinkerAdapter",)


def _tinker() -> Any:
    return import_optional("tinker", extra="tinker", distribution="crucible-lora")


class TinkerAdapter(BaseAdapter):
    """Trains LoRA adapters on the Tinker API (extra `crucible-lora[tinker]`).

    Uses the SDK's futures: each step submits `forward_backward` and `optim_step` back to back
    (so the server pipelines them) before awaiting either; checkpoints are `save_state` paths and
    resuming creates a training client from that state with its optimiser; sampling saves the
    current weights with `save_weights_for_sampler` and samples through a `SamplingClient`.

    Args:
        service_client: a `tinker.ServiceClient` (or an object with its interface); default: one
            built from `api_key`/`base_url`, or the `TINKER_API_KEY`/`TINKER_BASE_URL` variables.
        rest_client: a `tinker.RestClient` (or an object with its interface), asked at `start`
            which base models the server offers; default: one built like the service client.
        api_key: the Tinker API key.
        base_url: the Tinker API address.
        tokenizer: the base model's tokenizer (default: the training client's `get_tokenizer()`).

    Raises:
        LoraConfigError: at `start` when no service client or API key is available.
    """

    def __init__(
        self,
        *,
        service_client: Any = None,
        rest_client: Any = None,
        api_key: str | None = None,
        base_url: str | None = None,
        tokenizer: Any = None,
    ) -> None:
        self._service = service_client
        self._owns_service = service_client is None
        self._rest = rest_client
        self._api_key = api_key
        self._base_url = base_url
        self._tokenizer_arg = tokenizer
        self._tokenizer: Tokenizer | None = None
        self._training: Any = None
        self._sampler: Any = None
        self._sampler_step = -1
        self._steps = 0
        self._config: ExperimentConfig | None = None

    @property
    def backend(self) -> str:
        """`"tinker"`."""
        return "tinker"

    @property
    def tokenizer(self) -> Tokenizer:
        """The base model's tokenizer.

        Raises:
            LoraConfigError: before `start`.
        """
        if self._tokenizer is None:
            raise LoraConfigError(
                "the Tinker session has not started: call `start(config)` (or `train`) first",
                field="tokenizer",
                value=None,
            )
        return self._tokenizer

    def _client(self) -> Any:
        if self._training is None:
            raise LoraConfigError(
                "the Tinker session has not started: call `start(config)` (or `train`) first",
                field="session",
                value=None,
            )
        return self._training

    async def start_async(self, config: ExperimentConfig) -> None:
        """Create a LoRA training client for `config.base_model` with `config.lora_rank`.

        Raises:
            LoraConfigError: without credentials, or when the server does not offer the model.
            MissingDependencyError: when the `tinker` SDK is not installed.
        """
        tinker = _tinker()
        key = self._api_key or os.environ.get("TINKER_API_KEY")
        base_url = self._base_url or os.environ.get("TINKER_BASE_URL")
        if self._service is None:
            if not key:
                raise LoraConfigError(
                    "the Tinker adapter needs an API key: set `TINKER_API_KEY` or pass "
                    "`TinkerAdapter(api_key=...)` (or use `backend='local'`)",
                    field="api_key",
                    value=None,
                )
            self._service = tinker.ServiceClient(api_key=key, base_url=base_url)
        if self._rest is None:
            # The SDK lists models on a RestClient (the ServiceClient's own method is
            # deprecated); without a key it falls back to the SDK's stored credentials.
            self._rest = tinker.RestClient(api_key=key, base_url=base_url)
        capabilities = await self._rest.get_server_capabilities().result_async()
        names = [m.model_name for m in capabilities.supported_models if m.model_name]
        if config.base_model not in names:
            raise LoraConfigError(
                f"Tinker does not offer base model {config.base_model!r}; "
                f"available: {', '.join(sorted(names)) or 'none'}",
                field="base_model",
                value=config.base_model,
            )
        future = self._service.create_lora_training_client(
            config.base_model, rank=config.lora_rank, seed=config.seed
        )
        self._training = await future.result_async()
        self._config = config
        self._tokenizer = as_tokenizer(
            self._tokenizer_arg
            if self._tokenizer_arg is not None
            else self._training.get_tokenizer()
        )

    def _data(self, batch: Sequence[Datum]) -> list[Any]:
        tinker = _tinker()
        return [
            tinker.Datum(
                model_input=tinker.ModelInput.from_ints(list(d.input_tokens)),
                loss_fn_inputs={
                    "target_tokens": np.asarray(d.target_tokens, dtype=np.int64),
                    "weights": np.asarray(d.weights, dtype=np.float32),
                },
            )
            for d in batch
        ]

    def _adam(self, learning_rate: float) -> Any:
        config = self._config
        assert config is not None
        return _tinker().AdamParams(
            learning_rate=learning_rate,
            beta1=config.beta1,
            beta2=config.beta2,
            eps=config.eps,
            weight_decay=config.weight_decay,
            grad_clip_norm=config.grad_clip_norm,
        )

    @staticmethod
    def _result(batch: Sequence[Datum], output: Any) -> StepResult:
        weights = [np.asarray(d.weights, dtype=np.float64) for d in batch]
        total = float(sum(w.sum() for w in weights))
        metrics = {str(k): float(v) for k, v in output.metrics.items()}
        if output.loss_fn_outputs and all(
            "logprobs" in o for o in output.loss_fn_outputs
        ):
            nll = -sum(
                float(np.dot(np.asarray(o["logprobs"].data, dtype=np.float64), w))
                for o, w in zip(output.loss_fn_outputs, weights, strict=True)
            )
        elif "loss:sum" in metrics:
            nll = metrics["loss:sum"]
        else:
            raise AdapterError(
                "Tinker returned neither per-token logprobs nor `loss:sum`; cannot compute "
                "the loss (is the SDK version supported?)",
                backend="tinker",
                step=None,
                last_checkpoint=None,
            )
        return StepResult(
            loss=nll / total if total else 0.0,
            n_tokens=sum(len(d) for d in batch),
            n_trained=int(total),
            metrics=metrics,
        )

    def _check_loss(self, loss: str) -> None:
        allowed = ("cross_entropy", "importance_sampling", "ppo", "cispo", "dro")
        if loss not in allowed:
            raise LoraConfigError(
                f"unknown loss {loss!r} for Tinker; use one of {', '.join(allowed)}",
                field="loss",
                value=loss,
            )

    async def forward_backward_async(
        self, batch: Sequence[Datum], *, loss: str = "cross_entropy"
    ) -> StepResult:
        """Submit `forward_backward` on `batch` and return its mean loss per trained token."""
        self._check_loss(loss)
        future = self._client().forward_backward(self._data(batch), loss)
        return self._result(batch, await future.result_async())

    async def optim_step_async(self, *, learning_rate: float) -> None:
        """Submit `optim_step` with the config's Adam parameters at `learning_rate`."""
        await self._client().optim_step(self._adam(learning_rate)).result_async()
        self._steps += 1

    async def train_step_async(
        self,
        batch: Sequence[Datum],
        *,
        learning_rate: float,
        loss: str = "cross_entropy",
    ) -> StepResult:
        """Submit forward-backward and the optimiser step together, then await both."""
        self._check_loss(loss)
        client = self._client()
        fwd_bwd = client.forward_backward(self._data(batch), loss)
        optim = client.optim_step(self._adam(learning_rate))
        output = await fwd_bwd.result_async()
        await optim.result_async()
        self._steps += 1
        return self._result(batch, output)

    async def save_state_async(self, name: str) -> str:
        """`save_state` (weights and optimiser state); returns the `tinker://` path."""
        response = await self._client().save_state(name).result_async()
        return str(response.path)

    async def load_state_async(self, path: str) -> None:
        """Continue from a checkpoint: a new training client from its weights and optimiser."""
        self._client()
        future = self._service.create_training_client_from_state_with_optimizer(path)
        self._training = await future.result_async()
        self._sampler = None
        self._steps += 1  # the weights changed: the next sample saves them again

    async def save_weights_for_sampler_async(self, name: str) -> str:
        """`save_weights_for_sampler`; returns the sampler weights' path."""
        response = await self._client().save_weights_for_sampler(name).result_async()
        return str(response.path)

    async def sample_async(
        self, prompt: Sequence[int], *, n: int = 1, params: SamplingParams
    ) -> list[list[int]]:
        """Sample `n` continuations with the current weights (saved for sampling when changed)."""
        tinker = _tinker()
        if self._sampler is None or self._sampler_step != self._steps:
            path = await self.save_weights_for_sampler_async(
                f"sampler-{self._steps:06d}"
            )
            self._sampler = (
                await self._client().create_sampling_client(path).result_async()
            )
            self._sampler_step = self._steps
        response = await self._sampler.sample(
            prompt=tinker.ModelInput.from_ints(list(prompt)),
            num_samples=n,
            sampling_params=tinker.SamplingParams(
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
                stop=list(params.stop) or None,
            ),
        ).result_async()
        return [[int(t) for t in seq.tokens] for seq in response.sequences]

    async def close_async(self) -> None:
        """Finish the session (only when this adapter built the service client)."""
        if self._owns_service and self._service is not None:
            await self._service.close("success").result_async()
        self._training = None
        self._sampler = None
