"""Fixtures for crucible-ensemble's tests: scripted members, simulated profiles, events, a chat server."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from crucible_core import events
from crucible_core.exceptions import ResponseError
from crucible_core.models import Completion, Profile, Request, SimulatedModel, Usage
from crucible_core.retry import set_testing


@pytest.fixture(autouse=True)
def _retry_testing_mode() -> Iterator[None]:
    with set_testing(True):
        yield


class ScriptedModel:
    """A member that answers `text` after reporting `latency` (virtual) or sleeping `sleep` (real)."""

    def __init__(
        self,
        name: str,
        text: str = "A",
        *,
        latency: float = 0.1,
        sleep: float = 0.0,
        error: BaseException | None = None,
        cost: float | None = 0.001,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.text = text
        self.latency = latency
        self.sleep = sleep
        self.error = error
        self.cost = cost
        self.raw = dict(raw or {})
        self.calls = 0
        self.cancelled = 0
        self.closed = False

    @property
    def id(self) -> str:
        return f"fake:{self.name}"

    @property
    def provider(self) -> str:
        return "fake"

    async def complete(self, request: Request) -> Completion:
        self.calls += 1
        try:
            if self.sleep:
                await asyncio.sleep(self.sleep)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return Completion(
            text=self.text,
            usage=Usage(input_tokens=10, output_tokens=2),
            latency=self.latency,
            cost=self.cost,
            model=self.name,
            provider="fake",
            raw=self.raw,
        )

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def scripted() -> Callable[..., ScriptedModel]:
    return ScriptedModel


def failing(name: str) -> ScriptedModel:
    return ScriptedModel(
        name, error=ResponseError("boom: HTTP 500", status=500, provider="fake")
    )


@pytest.fixture
def failing_model() -> Callable[[str], ScriptedModel]:
    return failing


CONDORCET_ACCURACIES = (0.85, 0.88, 0.90, 0.92, 0.94)


def profile(accuracy: float, *, latency: str = "fast", price: float = 0.001) -> Profile:
    """A simulated profile that never fails, so accuracies are exactly as given."""
    return Profile(
        name=f"acc-{accuracy:.2f}",
        accuracy=accuracy,
        latency=latency,
        error_rate=0.0,
        price_per_query=price,
    )


@pytest.fixture
def simulated_members() -> Callable[..., list[SimulatedModel]]:
    def build(
        accuracies: Sequence[float] = CONDORCET_ACCURACIES, *, seed: int = 7
    ) -> list[SimulatedModel]:
        return [
            SimulatedModel(profile(a), seed=seed, virtual_time=True, retry=None)
            for a in accuracies
        ]

    return build


@pytest.fixture
def binary_items() -> Callable[[int], list[Request]]:
    """Two-option items: every wrong answer is the same, so votes are right-or-wrong."""

    def build(n: int, *, offset: int = 0) -> list[Request]:
        return [
            Request(
                prompt=f"item {i}",
                reference="A",
                kind="choice",
                choices=("A", "B"),
                metadata={"id": f"q{i}"},
            )
            for i in range(offset, offset + n)
        ]

    return build


def at_least_k_of(accuracies: Sequence[float], k: int) -> float:
    """P(at least k of the independent voters are right), by dynamic programming."""
    dist = [1.0]
    for p in accuracies:
        nxt = [0.0] * (len(dist) + 1)
        for right, prob in enumerate(dist):
            nxt[right] += prob * (1 - p)
            nxt[right + 1] += prob * p
        dist = nxt
    return sum(dist[k:])


@pytest.fixture
def condorcet() -> Callable[[Sequence[float], int], float]:
    return at_least_k_of


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


@pytest.fixture
def se() -> Callable[[float, int], float]:
    return binomial_se


class Captured:
    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]] = []

    def __call__(
        self,
        name: tuple[str, ...],
        measurements: Mapping[str, float],
        metadata: Mapping[str, Any],
    ) -> None:
        self.items.append((name, dict(measurements), dict(metadata)))

    def named(self, *name: str) -> list[tuple[dict[str, float], dict[str, Any]]]:
        return [(m, md) for n, m, md in self.items if n == name]


@pytest.fixture
def ensemble_events() -> Iterator[Captured]:
    captured = Captured()
    events.attach("test-ensemble-events", [("crucible", "ensemble")], captured)
    try:
        yield captured
    finally:
        events.detach("test-ensemble-events")


class ChatServer:
    """A local OpenAI-compatible chat server; each model name has its own scripted behaviour."""

    def __init__(self) -> None:
        self.url = ""
        self.behaviour: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self.served: list[str] = []

    def script(
        self, model: str, *, text: str = "A", status: int = 200, delay: float = 0.0
    ) -> None:
        self.behaviour[model] = {"text": text, "status": status, "delay": delay}

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        model = body["model"]
        step = self.behaviour[model]
        try:
            if step["delay"]:
                await asyncio.sleep(step["delay"])
        except asyncio.CancelledError:
            self.cancelled.append(model)
            raise
        self.served.append(model)
        if step["status"] != 200:
            return web.json_response(
                {"error": {"message": "scripted failure"}}, status=step["status"]
            )
        return web.json_response(
            {
                "id": f"chatcmpl-{model}",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step["text"]},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": 1,
                    "total_tokens": 13,
                },
            }
        )


@pytest.fixture
async def chat_server() -> AsyncIterator[ChatServer]:
    pytest.importorskip("aiohttp")
    from aiohttp import web

    server = ChatServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield server
    finally:
        await runner.cleanup()
