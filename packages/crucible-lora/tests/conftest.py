"""Shared helpers: a stand-in for the Tinker service built on the SDK's own types and futures.

The stand-in trains a real model, a bigram table over token ids with Adam, so losses fall, targets
must be aligned for it to learn, and checkpoints hold real state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

import crucible_lora as cl


def _require_torch() -> bool:
    return os.environ.get("CRUCIBLE_REQUIRE_TORCH") == "1"


def try_import_local() -> None:
    """Skip (or, with CRUCIBLE_REQUIRE_TORCH=1, fail) when the local stack is missing."""
    missing = []
    for name in ("torch", "transformers", "peft"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return
    message = (
        f"{', '.join(missing)} not installed: the LocalAdapter tests need the torch stack; "
        "run them with `packages/crucible-lora/scripts/test-local.sh`"
    )
    if _require_torch():
        pytest.fail(f"CRUCIBLE_REQUIRE_TORCH=1 but {message}")
    pytest.skip(message)


@pytest.fixture
def tinker() -> Any:
    return pytest.importorskip("tinker", reason="the `tinker` extra is not installed")


def _done(value: Any) -> Any:
    from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture

    future: Future[Any] = Future()
    future.set_result(value)
    return AwaitableConcurrentFuture(future)


def _failed(err: BaseException) -> Any:
    from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture

    future: Future[Any] = Future()
    future.set_exception(err)
    return AwaitableConcurrentFuture(future)


class Bigram:
    """log p(next | current) = log_softmax(W[current]); trained with Adam."""

    def __init__(self, vocab: int) -> None:
        self.w = np.zeros((vocab, vocab))
        self.grad = np.zeros_like(self.w)
        self.m = np.zeros_like(self.w)
        self.v = np.zeros_like(self.w)
        self.t = 0

    def state(self) -> dict[str, Any]:
        return {k: np.copy(getattr(self, k)) if k != "t" else self.t for k in "wmvt"}

    def load(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, np.copy(v) if k != "t" else v)

    def logprobs(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        logits = self.w[inputs]
        lse = np.log(
            np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)
        ) + logits.max(-1)
        return logits[np.arange(len(inputs)), targets] - lse

    def backward(
        self, inputs: np.ndarray, targets: np.ndarray, weights: np.ndarray
    ) -> None:
        logits = self.w[inputs]
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        p[np.arange(len(inputs)), targets] -= 1.0
        np.add.at(self.grad, inputs, p * weights[:, None])

    def adam(self, params: Any) -> None:
        self.t += 1
        self.m = params.beta1 * self.m + (1 - params.beta1) * self.grad
        self.v = params.beta2 * self.v + (1 - params.beta2) * self.grad**2
        mhat = self.m / (1 - params.beta1**self.t)
        vhat = self.v / (1 - params.beta2**self.t)
        self.w -= params.learning_rate * mhat / (np.sqrt(vhat) + params.eps)
        self.grad[:] = 0.0


class FakeSamplingClient:
    def __init__(self, w: np.ndarray) -> None:
        self.w = w

    def sample(
        self, prompt: Any, num_samples: int, sampling_params: Any, **_: Any
    ) -> Any:
        from tinker import types as tt

        assert isinstance(prompt, tt.ModelInput)
        assert isinstance(sampling_params, tt.SamplingParams)
        sequences = []
        for i in range(num_samples):
            tokens: list[int] = []
            current = prompt.to_ints()[-1]
            for _ in range(sampling_params.max_tokens or 16):
                current = int(np.argmax(self.w[current]))
                tokens.append(current)
                if current == cl.ByteTokenizer().eos_token_id:
                    break
            sequences.append(
                tt.SampledSequence(
                    stop_reason="stop",
                    sequence_id=f"seq-{i}",
                    tokens_np=np.asarray(tokens, dtype=np.int32),
                )
            )
        return _done(tt.SampleResponse(sequences=sequences))


class FakeTrainingClient:
    def __init__(self, service: FakeServiceClient, model: Bigram) -> None:
        self.service = service
        self.model = model

    def get_tokenizer(self) -> Any:
        return cl.ByteTokenizer()

    def forward_backward(self, data: list[Any], loss_fn: str) -> Any:
        import tinker
        from tinker import types as tt

        self.service.calls.append("forward_backward")
        self.service.fwd_bwd += 1
        if self.service.fail_at == self.service.fwd_bwd:
            return _failed(
                tinker.RequestFailedError(
                    "backend lost the GPU",
                    request_id="req-1",
                    category=tt.RequestErrorCategory.Server,
                )
            )
        assert loss_fn == "cross_entropy"
        outputs = []
        total = 0.0
        for datum in data:
            assert isinstance(datum, tinker.Datum)
            inputs = np.asarray(datum.model_input.to_ints())
            targets = np.asarray(datum.loss_fn_inputs["target_tokens"].data)
            weights = np.asarray(datum.loss_fn_inputs["weights"].data)
            assert len(inputs) == len(targets) == len(weights)
            self.service.data.append((inputs, targets, weights))
            lp = self.model.logprobs(inputs, targets)
            self.model.backward(inputs, targets, weights)
            total += float(-(lp * weights).sum())
            outputs.append(
                {"logprobs": tt.TensorData.from_numpy(lp.astype(np.float32))}
            )
        return _done(
            tt.ForwardBackwardOutput(
                loss_fn_output_type="ArrayRecord",
                loss_fn_outputs=outputs,
                metrics={"loss:sum": total},
            )
        )

    def optim_step(self, optim_params: Any) -> Any:
        from tinker import types as tt

        assert isinstance(optim_params, tt.AdamParams)
        self.service.calls.append("optim_step")
        self.service.learning_rates.append(optim_params.learning_rate)
        self.model.adam(optim_params)
        return _done(tt.OptimStepResponse(metrics={}))

    def save_state(self, name: str, **_: Any) -> Any:
        from tinker import types as tt

        path = f"tinker://run-1/weights/{name}"
        self.service.states[path] = self.model.state()
        return _done(tt.SaveWeightsResponse(path=path))

    def save_weights_for_sampler(self, name: str, **_: Any) -> Any:
        from tinker import types as tt

        path = f"tinker://run-1/sampler_weights/{name}"
        self.service.sampler_weights[path] = np.copy(self.model.w)
        return _done(tt.SaveWeightsForSamplerResponse(path=path))

    def create_sampling_client(self, model_path: str, **_: Any) -> Any:
        return _done(FakeSamplingClient(self.service.sampler_weights[model_path]))


class FakeRestClient:
    """`tinker.RestClient.get_server_capabilities`, answering with the SDK's types and futures."""

    def __init__(self, models: tuple[str, ...]) -> None:
        self.models = models

    def get_server_capabilities(self) -> Any:
        from tinker.types.get_server_capabilities_response import (
            GetServerCapabilitiesResponse,
            SupportedModel,
        )

        return _done(
            GetServerCapabilitiesResponse(
                supported_models=[SupportedModel(model_name=m) for m in self.models]
            )
        )


class FakeServiceClient:
    """`tinker.ServiceClient`'s interface, answering with the SDK's types and futures."""

    def __init__(self, *, models: tuple[str, ...] = ("Qwen/Qwen3-8B",)) -> None:
        self.models = models
        self.rest = FakeRestClient(models)
        self.calls: list[str] = []
        self.data: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.learning_rates: list[float] = []
        self.states: dict[str, dict[str, Any]] = {}
        self.sampler_weights: dict[str, np.ndarray] = {}
        self.fwd_bwd = 0
        self.fail_at: int | None = None
        self.training: FakeTrainingClient | None = None
        self.closed: str | None = None

    def adapter(self) -> cl.TinkerAdapter:
        """A TinkerAdapter on this stand-in and its REST client."""
        return cl.TinkerAdapter(service_client=self, rest_client=self.rest)

    def create_lora_training_client(
        self, base_model: str, rank: int = 32, seed: int | None = None, **_: Any
    ) -> Any:
        assert base_model in self.models and rank > 0
        self.training = FakeTrainingClient(self, Bigram(cl.ByteTokenizer().vocab_size))
        return _done(self.training)

    def create_training_client_from_state_with_optimizer(
        self, path: str, **_: Any
    ) -> Any:
        import tinker

        if path not in self.states:
            return _failed(tinker.TinkerError(f"no checkpoint {path}"))
        model = Bigram(cl.ByteTokenizer().vocab_size)
        model.load(self.states[path])
        self.training = FakeTrainingClient(self, model)
        return _done(self.training)

    def close(self, status: str, detail: str | None = None) -> Any:
        self.closed = status
        return _done(None)


@pytest.fixture
def service(tinker: Any) -> FakeServiceClient:
    return FakeServiceClient()


def letters(n: int = 8) -> list[cl.Example]:
    """Upper-case letter → its lower case: learnable by a bigram, so losses must fall."""
    return [
        cl.Example(prompt=chr(65 + i), completion=chr(97 + i), id=f"L{i}")
        for i in range(n)
    ]


def make_experiment(
    service: FakeServiceClient, *, name: str = "letters", **config: Any
) -> cl.LoraExperiment:
    options: dict[str, Any] = {
        "base_model": "Qwen/Qwen3-8B",
        "learning_rate": 0.5,
        "seed": 3,
    }
    options.update(config)
    return cl.create_experiment(name, config=options, adapter=service.adapter())


@pytest.fixture
def captured() -> Any:
    from crucible_core import events

    seen: list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]] = []

    def handler(name: Any, measurements: Any, metadata: Any) -> None:
        seen.append((name, dict(measurements), dict(metadata)))

    events.attach("lora-test", [("crucible", "lora")], handler)
    yield seen
    events.detach("lora-test")


Factory = Callable[..., cl.LoraExperiment]


@pytest.fixture
def examples() -> list[cl.Example]:
    return letters()


@pytest.fixture
def new_experiment(service: FakeServiceClient) -> Factory:
    def factory(**config: Any) -> cl.LoraExperiment:
        return make_experiment(service, **config)

    return factory


@pytest.fixture(scope="session")
def require_local() -> None:
    try_import_local()
