"""The harness with HTTP models against a real OpenAI-wire server on 127.0.0.1.

The server (aiohttp, in its own thread so that synchronous `run()` calls can use it) counts every
request it receives, bills what it generates (prompt tokens = the prompt's UTF-8 bytes, output
tokens drawn up to the request's `max_tokens`), and can answer with 429s or fail chosen items.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp")

from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crucible_core.models import OpenAIModel, Price, SimulatedModel, build_model
from crucible_core.retry import is_transient, retry, set_testing
from crucible_harness import (
    Budget,
    Condition,
    Experiment,
    ExperimentDefinitionError,
    HarnessItem,
    RunConfig,
    run,
)

ITEMS = [
    HarnessItem(id=f"q{i:03d}", input=f"What is {i} + {i}?", expected=str(2 * i))
    for i in range(24)
]
PRICE = Price(input=2.0, output=8.0)  # USD per million tokens


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    with set_testing(True):
        yield


class Server:
    """An OpenAI `/v1/chat/completions` server in a background thread."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail: set[str] = set()  # prompts answered 500
        self.rate_limit_every = 0  # every n-th request is a 429 (0: never)
        self.output = "full"  # "full": max_tokens of output; "random": 1..max_tokens
        self.rng = random.Random(0)
        self.billed = 0.0  # what the answers cost at PRICE
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        self._ready.set()
        self._loop.run_forever()

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        with self._lock:
            self.requests.append(body)
            n = len(self.requests)
            if self.rate_limit_every and n % self.rate_limit_every == 0:
                return web.json_response(
                    {"error": {"message": "slow down"}},
                    status=429,
                    headers={"Retry-After": "0"},
                )
            if prompt in self.fail:
                return web.json_response({"error": {"message": "boom"}}, status=500)
            limit = int(body["max_tokens"])
            out = limit if self.output == "full" else self.rng.randint(1, limit)
            prompt_tokens = len(prompt.encode("utf-8"))
            self.billed += (prompt_tokens * PRICE.input + out * PRICE.output) / 1e6
        number = prompt.split()[2]
        return web.json_response({
            "id": f"c{n}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": str(2 * int(number))},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": out,
                      "total_tokens": prompt_tokens + out},
        })  # fmt: skip

    def sent_for(self, prompt: str) -> int:
        return sum(1 for r in self.requests if r["messages"][-1]["content"] == prompt)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.fail.clear()
            self.rate_limit_every, self.output, self.billed = 0, "full", 0.0

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    found = Server()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def srv(server: Server) -> Server:
    server.reset()
    return server


def experiment(*conditions: Condition, **more: Any) -> Experiment:
    base: dict[str, Any] = {
        "name": "http",
        "dataset": ITEMS,
        "conditions": list(conditions),
        "repeats": 1,
        "run": RunConfig(max_concurrency=8, seed=5),
    }
    base.update(more)
    return Experiment(**base)


def local(url: str, **options: Any) -> OpenAIModel:
    options.setdefault("retry", retry(on=is_transient, attempts=3, timeout=None))
    return OpenAIModel("my-local-model", provider="openai-compatible", base_url=url,
                       api_key="sk-local", stream=False, **options)  # fmt: skip


# -- budgets ------------------------------------------------------------------------------------


def test_an_unpriced_model_under_a_budget_refuses_to_start(
    srv: Server, tmp_path: Path
) -> None:
    target = f"openai-compatible:{srv.url}#my-local-model"
    exp = experiment(
        Condition(name="local", target=target), budget=Budget(max_total=0.01)
    )
    with pytest.raises(ExperimentDefinitionError) as caught:
        run(exp, output_dir=tmp_path)
    message = str(caught.value)
    assert "'local'" in message and "my-local-model" in message
    assert "price=" in message and "price_input=" in message
    assert 'budget_unpriced="allow"' in message
    assert caught.value.context["model"] == target  # type: ignore[attr-defined]
    assert (
        srv.requests == [] and list(tmp_path.iterdir()) == []
    )  # nothing sent, nothing made
    # a per-condition limit is a budget too
    with pytest.raises(ExperimentDefinitionError, match="my-local-model"):
        run(experiment(Condition(name="local", target=target),
                       budget=Budget(max_per_condition=1.0)), output_dir=tmp_path)  # fmt: skip
    # a price given on the model string (or to the model) lets it run
    priced = f"{target}?price_input=2&price_output=8&max_tokens=32"
    done = run(experiment(Condition(name="local", target=priced), budget=Budget(max_total=1.0)),
               output_dir=tmp_path)  # fmt: skip
    assert done.status == "complete" and done.spent > 0


def test_unknown_cost_stays_unknown_in_records_analysis_and_reports(
    srv: Server, tmp_path: Path
) -> None:
    exp = experiment(
        Condition(name="unpriced", target=local(srv.url, max_tokens=16)),
        Condition(name="priced", target=local(srv.url, max_tokens=16, price=PRICE)),
        Condition(
            name="sim", target=SimulatedModel("gpt-4", seed=1, virtual_time=True)
        ),
        budget=Budget(max_total=5.0),
    )
    srv.fail.add(ITEMS[0].input)
    result = run(
        exp, output_dir=tmp_path, budget_unpriced="allow", formats=("markdown", "json")
    )
    unpriced = [r for r in result.records if r["condition"] == "unpriced"]
    assert all(
        r["cost"] is None for r in unpriced
    )  # the failed task too: nothing is known
    assert all(
        r["cost"] is not None for r in result.records if r["condition"] != "unpriced"
    )
    summary = {c.name: c for c in result.analysis.conditions}
    s = summary["unpriced"]
    assert (
        s.cost_total is None and s.cost_per_query is None and s.cost_per_correct is None
    )
    assert s.cost_unknown == len(ITEMS)
    assert summary["priced"].cost_unknown == 0 and summary["priced"].cost_total > 0
    assert "unpriced" not in result.analysis.frontier
    assert "unpriced" not in result.analysis.frontier_latency
    markdown = result.reports["markdown"].read_text()
    row = next(
        line
        for line in markdown.splitlines()
        if line.startswith("| unpriced |") and "unknown" in line
    )
    assert "$0" not in row and "0.00" not in row.split("|")[6]
    assert (
        "Cost unknown (no price for the model) for unpriced (24 of 24 tasks)"
        in markdown
    )
    # the spend counts what is known; the unpriced condition was explicitly allowed
    assert result.spent == pytest.approx(
        sum(r["cost"] for r in result.records if r["cost"] is not None)
    )


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limit=st.floats(min_value=0.0, max_value=0.01),
    concurrency=st.integers(min_value=1, max_value=24),
    max_tokens=st.integers(min_value=1, max_value=400),
    storm=st.sampled_from([0, 2, 3]),
    output=st.sampled_from(["full", "random"]),
)
def test_the_budget_is_never_exceeded_with_http_models(
    srv: Server, tmp_path_factory: pytest.TempPathFactory, limit: float, concurrency: int,
    max_tokens: int, storm: int, output: str,
) -> None:  # fmt: skip
    srv.reset()
    srv.rate_limit_every, srv.output = storm, output
    model = local(srv.url, max_tokens=max_tokens, price=PRICE)
    exp = experiment(Condition(name="local", target=model), budget=Budget(max_total=limit),
                     run=RunConfig(max_concurrency=concurrency, retries=2))  # fmt: skip
    result = run(exp, output_dir=tmp_path_factory.mktemp("budget"))
    assert (
        srv.billed <= limit + 1e-12
    )  # what the server billed, not only what we recorded
    assert result.spent == pytest.approx(srv.billed, abs=1e-12)
    assert all(
        r["max_tokens"] == max_tokens for r in srv.requests
    )  # every request is bounded
    if result.pending:
        assert result.status == "budget"


# -- retries: one owner --------------------------------------------------------------------------


def test_the_harness_does_not_wrap_the_models_retries(
    srv: Server, tmp_path: Path
) -> None:
    srv.fail.add(ITEMS[0].input)
    model = local(srv.url, max_tokens=8)  # its own policy: 3 attempts
    exp = experiment(
        Condition(name="local", target=model),
        run=RunConfig(max_concurrency=4, retries=3),
    )
    result = run(exp, output_dir=tmp_path)
    failed = next(r for r in result.records if r["item"] == ITEMS[0].id)
    assert failed["status"] == "error" and failed["error_type"] == "ResponseError"
    assert srv.sent_for(ITEMS[0].input) == 3  # the model's 3, not (1 + 3 harness) x 3
    assert failed["attempts"] == 3  # requests sent, as the task record says
    assert all(r["attempts"] == 1 for r in result.records if r["item"] != ITEMS[0].id)


def test_attempts_count_the_models_retries_of_429s(srv: Server, tmp_path: Path) -> None:
    srv.rate_limit_every = 2  # every other request is a 429
    model = local(
        srv.url, max_tokens=8, retry=retry(on=is_transient, attempts=5, timeout=None)
    )
    exp = experiment(
        Condition(name="local", target=model),
        run=RunConfig(max_concurrency=1, retries=3),
    )
    result = run(exp, output_dir=tmp_path)
    assert result.status == "complete" and all(
        r["status"] == "ok" for r in result.records
    )
    assert sum(r["attempts"] for r in result.records) == len(srv.requests)
    assert any(r["attempts"] == 2 for r in result.records)


# -- lifecycle ------------------------------------------------------------------------------------


def test_a_model_reused_across_two_runs_works_and_stays_usable(
    srv: Server, tmp_path: Path
) -> None:
    model = build_model(f"openai-compatible:{srv.url}#my-local-model?max_tokens=8&stream=false",
                        api_key="sk-local")  # fmt: skip
    exp = experiment(Condition(name="local", target=model))
    first = run(exp, output_dir=tmp_path / "first")
    second = run(exp, output_dir=tmp_path / "second")
    for result in (first, second):
        assert result.status == "complete"
        assert all(r["status"] == "ok" for r in result.records), [
            r["error"] for r in result.records if r["status"] != "ok"
        ]
    assert len(srv.requests) == 2 * len(ITEMS)
    assert model._sessions == {}  # type: ignore[attr-defined]  # each run closed its loop's session
    from crucible_core.models import Request

    async def once() -> str:
        async with model:  # type: ignore[attr-defined]
            return str((await model.complete(Request(prompt="What is 2 + 2?"))).text)

    assert asyncio.run(once()) == "4"
