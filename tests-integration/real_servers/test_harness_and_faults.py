"""The harness and the models' configuration against real servers: secrets a server echoes, 429
storms, Retry-After on 503, a budget with a real price under concurrency, and the SDKs' environment
variables and keyed model strings against LiteLLM.

What reached the server, and what LiteLLM charged for it, is read from nginx's access log.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import crucible_telemetry as tel
from crucible_core import ConfigurationError
from crucible_core.exceptions import RateLimitError
from crucible_core.models import DEFAULT_MAX_TOKENS, HTTPModel, Request, build_model
from crucible_core.retry import retry
from crucible_harness import (
    Budget,
    Condition,
    Experiment,
    HarnessItem,
    RunConfig,
    run_async,
)

pytestmark = pytest.mark.network

CLOCK = 0.002
"""nginx logs times to the millisecond: comparisons of two of them allow this much."""
KEY_HEADER = {
    "openai": "authorization",
    "anthropic": "x_api_key",
    "gemini": "x_goog_api_key",
}
"""The access log field holding the key each protocol sends."""

MakeModel = Callable[..., HTTPModel]


def _files_under(*roots: Path) -> dict[Path, bytes]:
    return {
        p: p.read_bytes()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- secrets ---------------------------------------------------------------------------------------


async def test_a_key_echoed_by_the_server_is_stored_nowhere(
    tmp_path: Path, ask: Any, nginx: Any, litellm: Any, make_model: MakeModel
) -> None:
    # /echo-key/ answers 401 with the key it was sent inside its error message, as some servers
    # do. A harness run over it, inside a telemetry experiment stored in SQLite and exported in
    # every format, must keep the server's message but never the key.
    mark = nginx.mark()
    models = {
        p: make_model(p, f"{nginx.url}/echo-key")
        for p in ("openai", "anthropic", "gemini")
    }
    items = [
        HarnessItem(id=f"q{i}", input=ask()[1].prompt, expected="Paris")
        for i in range(3)
    ]
    experiment = Experiment(
        name="echo-key",
        dataset=items,
        conditions=[Condition(name=p, target=m) for p, m in models.items()],
        run=RunConfig(max_concurrency=4, retries=1),
    )
    store = tel.SQLiteStore(tmp_path / "telemetry.db")
    with tel.experiment("echo-key", store=store) as exp:
        result = await run_async(
            experiment,
            output_dir=tmp_path / "runs",
            formats=("markdown", "html", "json", "latex", "notebook"),
        )
    store.flush()
    exports = tmp_path / "exports"
    for suffix in ("jsonl", "csv", "parquet"):
        tel.export(exp.id, exports / f"events.{suffix}", store=store)
    try:
        # the server did echo the key it was sent
        entries = nginx.entries(mark, "/echo-key/", at_least=len(items) * 3)
        assert (
            len(entries) == len(items) * 3
        )  # a 401 is not retried, by the model or the harness
        for protocol in models:
            sent = {
                e.headers[KEY_HEADER[protocol]]
                for e in entries
                if KEY_HEADER[protocol] in e.headers
            }
            assert sent and all(litellm.key in s for s in sent)
        assert {r["status"] for r in result.records} == {"error"}
        assert all("Incorrect API key provided" in r["error"] for r in result.records)
        assert all("***" in r["error"] for r in result.records)
        files = _files_under(result.run_dir, exports, tmp_path / "telemetry.db").items()
        assert any(p.name == "tasks.jsonl" for p, _ in files)
        assert any(p.name == "events.jsonl" for p, _ in files)
        leaked = [str(p) for p, data in files if litellm.key.encode() in data]
        assert not leaked, f"the key is stored in {leaked}"
        assert any(
            b"Incorrect API key provided" in data
            for p, data in files
            if p.suffix == ".jsonl"
        )
    finally:
        store.close()


# --- 429 storms and Retry-After ----------------------------------------------------------------------


async def test_a_429_storm_is_waited_out_request_by_request(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    # 60 requests at once against a real limit of 10 a second (a bucket of 10): most are refused
    # with Retry-After: 1. Every request is answered in the end; each retry of a request reaches
    # the server at least a second after its own refusal; nothing is sent that is not a recorded
    # attempt; and the model's adaptive limit backs off.
    await asyncio.sleep(1.5)  # let nginx's bucket refill after earlier tests
    mark = nginx.mark()
    asks = [ask() for _ in range(60)]
    policy = retry(
        on=RateLimitError,
        attempts=12,
        timeout=None,
        wait_initial=0.2,
        wait_max=2.0,
        full_jitter=True,
    )
    async with make_model(
        "openai", f"{nginx.url}/storm", retry=policy, max_concurrency=60
    ) as model:
        completions = await asyncio.gather(*(model.complete(r) for _, r in asks))
        limit_after = model.limiter.limit
        overloads = model.limiter.overloads
    assert all(c.text == "Paris is the capital of France." for c in completions)
    entries = nginx.entries(
        mark, "/storm/", at_least=sum(c.attempts for c in completions)
    )
    by_tag: dict[str | None, list[Any]] = defaultdict(list)
    for e in entries:
        by_tag[e.tag].append(e)
    assert set(by_tag) == {tag for tag, _ in asks}
    refused = [e for e in entries if e.status == 429]
    assert len(refused) >= 30, "the limit did not bite: not a storm"
    assert all(e.headers["retry_after"] == "1" for e in refused)
    for (tag, _), completion in zip(asks, completions, strict=True):
        sent = by_tag[tag]  # oldest first
        assert len(sent) == completion.attempts
        assert [e.status for e in sent] == [429] * (len(sent) - 1) + [200]
        for before, after in itertools.pairwise(sent):
            assert after.start >= before.end + 1.0 - CLOCK, (
                f"a retry came {before.end + 1.0 - after.start:.3f} s before Retry-After allowed"
            )
    assert overloads == len(refused)
    assert limit_after < 60


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_a_503_with_retry_after_is_retried_no_sooner(
    protocol: str, ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    tag, request = ask()
    async with make_model(protocol, f"{nginx.url}/r503-retry-after") as model:
        completion = await model.complete(request)
    assert completion.attempts == 2
    refused, answered = nginx.entries(mark, "/r503-retry-after/")
    assert (refused.status, answered.status) == (503, 200)
    assert refused.headers["retry_after"] == "2"
    assert tag in refused.body and tag in answered.body
    assert answered.start >= refused.end + 2.0 - CLOCK


# --- budget with a real price --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "concurrency"), [(0.01, 64), (0.004, 256), (0.02, 16), (0.002, 1)]
)
async def test_a_harness_budget_is_never_overspent_with_http_models(
    limit: float,
    concurrency: int,
    tmp_path: Path,
    ask: Any,
    nginx: Any,
    litellm: Any,
    make_model: MakeModel,
) -> None:
    # Two conditions on LiteLLM mocks named as real models, answering 1500 and 200 output tokens
    # (the second behind nginx's real rate limit, so it also meets 429s), priced by LiteLLM from
    # its own cost map. The server-side bill (LiteLLM's `x-litellm-response-cost` for each
    # request, from nginx's log) must stay within the harness budget however many tasks run at
    # once, and be what the harness recorded, task by task.
    long, short = sorted(litellm.priced, key=litellm.priced.get, reverse=True)
    models = {
        long: make_model("openai", f"{nginx.url}/ok", model=long, max_tokens=2048),
        short: make_model("openai", f"{nginx.url}/storm", model=short, max_tokens=2048),
    }
    items = [HarnessItem(id=f"q{i}", input=ask()[1].prompt) for i in range(150)]
    experiment = Experiment(
        name="budget",
        dataset=items,
        conditions=[Condition(name=n, target=m) for n, m in models.items()],
        run=RunConfig(max_concurrency=concurrency, retries=0),
        budget=Budget(max_total=limit),
        scorer=lambda item, prediction: True,
    )
    mark = nginx.mark()
    result = await run_async(experiment, output_dir=tmp_path, formats=())
    for model in models.values():
        await model.aclose()
    assert result.status == "budget"
    ok = [r for r in result.records if r["status"] == "ok"]
    entries = [
        e
        for e in nginx.entries(mark, at_least=len(ok))
        if e.uri.startswith(("/ok/", "/storm/"))
    ]
    answered = [e for e in entries if e.status == 200]
    assert all(e.cost is not None and e.cost > 0 for e in answered)
    billed = math.fsum(e.cost for e in answered)  # type: ignore[misc]
    assert billed <= limit, f"the server billed ${billed:.6f} against a ${limit} budget"
    # every answer the server billed is a recorded task, at the price LiteLLM charged for it
    assert len(answered) == len(ok) > 0
    assert result.spent == pytest.approx(billed, rel=1e-6)
    charged = {(e.tag, e.json()["model"]): e.cost for e in answered}
    tag_of = {i.id: i.input[1:13] for i in items}
    for r in ok:
        bill = charged[tag_of[r["item"]], r["condition"]]
        assert r["cost"] == pytest.approx(bill, rel=1e-6)


# --- configuration like the SDKs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "env", "root"),
    [
        (
            "openai:mock-gpt",
            {"OPENAI_BASE_URL": "{nginx}/ok/v1", "OPENAI_API_KEY": "{key}"},
            "/ok/v1/",
        ),
        (
            "anthropic:claude-mock",
            {"ANTHROPIC_BASE_URL": "{nginx}/ok", "ANTHROPIC_API_KEY": "{key}"},
            "/ok/v1/messages",
        ),
        (
            "gemini:gemini-mock",
            {"GOOGLE_GEMINI_BASE_URL": "{nginx}/ok", "GEMINI_API_KEY": "{key}"},
            "/ok/v1beta/",
        ),
        (
            "openai-compatible:{nginx}/ok/v1#mock-gpt",
            {"CRUCIBLE_OPENAI_COMPATIBLE_API_KEY": "{key}"},
            "/ok/v1/",
        ),
        (
            "openai-compatible:{nginx}/ok/v1#mock-gpt?api_key_env=LITELLM_KEY&max_tokens=256&stream=false",
            {"LITELLM_KEY": "{key}"},
            "/ok/v1/",
        ),
    ],
)
async def test_base_urls_and_keys_from_the_environment_and_the_model_string(
    spec: str,
    env: dict[str, str],
    root: str,
    monkeypatch: pytest.MonkeyPatch,
    ask: Any,
    nginx: Any,
    litellm: Any,
) -> None:
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(nginx=nginx.url, key=litellm.key))
    spec = spec.format(nginx=nginx.url)
    mark = nginx.mark()
    tag, _ = ask()
    request = Request(
        prompt=f"[{tag}] What is the capital of France?"
    )  # no max_tokens of its own
    options = {} if "stream=" in spec else {"stream": False}
    async with build_model(spec, **options) as model:  # type: ignore[attr-defined]
        completion = await model.complete(request)
    assert completion.text == litellm.mock_text
    (entry,) = nginx.entries(mark, "/ok/")
    assert entry.uri.startswith(root) and entry.tag == tag
    protocol = spec.split(":", 1)[0].removesuffix("-compatible")
    assert litellm.key in entry.headers[KEY_HEADER[protocol]]
    # every request carries a bound: the string's max_tokens, else the model's default
    body = entry.json()
    sent = {
        "openai": lambda: body.get("max_tokens", body.get("max_completion_tokens")),
        "anthropic": lambda: body["max_tokens"],
        "gemini": lambda: body["generationConfig"]["maxOutputTokens"],
    }[protocol]()
    assert sent == (256 if "max_tokens=256" in spec else DEFAULT_MAX_TOKENS)
    assert litellm.key not in repr(model)


async def test_a_keyed_model_string_runs_in_the_harness_and_no_key_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ask: Any, nginx: Any, litellm: Any
) -> None:
    # An experiment names its model by a string (as experiment files and the CLI do), its key by
    # an environment variable, and sets max_tokens in the string.
    monkeypatch.setenv("LITELLM_KEY", litellm.key)
    spec = f"openai-compatible:{nginx.url}/ok/v1#mock-gpt?api_key_env=LITELLM_KEY&max_tokens=256&stream=false"
    mark = nginx.mark()
    items = [
        HarnessItem(id=f"q{i}", input=f"[{ask()[0]}] What is the capital of France?")
        for i in range(4)
    ]
    experiment = Experiment(
        name="keyed",
        dataset=items,
        conditions=[Condition(name="litellm", target=spec)],
        scorer=lambda item, prediction: prediction == litellm.mock_text,
    )
    result = await run_async(experiment, output_dir=tmp_path, formats=("json",))
    assert [r["status"] for r in result.records] == ["ok"] * 4
    assert all(r["correct"] for r in result.records)
    entries = nginx.entries(mark, "/ok/")
    assert len(entries) == 4
    assert all(e.json()["max_tokens"] == 256 for e in entries)
    assert all(litellm.key in e.headers["authorization"] for e in entries)
    leaked = [
        str(p)
        for p, data in _files_under(result.run_dir).items()
        if litellm.key.encode() in data
    ]
    assert not leaked


def test_a_key_in_a_model_string_is_refused(nginx: Any, litellm: Any) -> None:
    with pytest.raises(ConfigurationError, match="api_key_env") as caught:
        build_model(
            f"openai-compatible:{nginx.url}/ok/v1#mock-gpt?api_key={litellm.key}"
        )
    assert litellm.key not in str(caught.value)
