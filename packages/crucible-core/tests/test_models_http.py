from __future__ import annotations

import asyncio
import datetime as dt
import json
import pickle
import socket
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

import pytest

pytest.importorskip("aiohttp")

from crucible_core.exceptions import (
    ConfigurationError,
    NetworkError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
)
from crucible_core.models import (
    AnthropicModel,
    GeminiModel,
    HTTPModel,
    OpenAIModel,
    Request,
    build_model,
)
from crucible_core.models._anthropic import ANTHROPIC_VERSION
from crucible_core.models._http import DEFAULT_MAX_TOKENS, parse_retry_after
from crucible_core.retry import is_transient, retry
from crucible_core.serde import to_json

KEY = "sk-test-SECRET-0123456789"
FAST_RETRY = retry(on=is_transient, attempts=3, timeout=None)

OPENAI_OK = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
}
ANTHROPIC_OK = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "Par"}, {"type": "text", "text": "is"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 20, "output_tokens": 2},
}
GEMINI_OK = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"text": "thinking...", "thought": True}, {"text": "Paris"}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 20,
        "candidatesTokenCount": 1,
        "thoughtsTokenCount": 1,
    },
    "responseId": "resp-9",
    "modelVersion": "gemini-2.0-flash",
}


def _openai(url: str, **options: Any) -> HTTPModel:
    return OpenAIModel("gpt-4o-mini", base_url=f"{url}/v1", api_key=KEY, **options)


def _anthropic(url: str, **options: Any) -> HTTPModel:
    return AnthropicModel("claude-3-5-haiku", base_url=url, api_key=KEY, **options)


def _gemini(url: str, **options: Any) -> HTTPModel:
    return GeminiModel("gemini-2.0-flash", base_url=url, api_key=KEY, **options)


PROVIDERS: dict[str, tuple[Callable[..., HTTPModel], dict[str, Any]]] = {
    "openai": (_openai, OPENAI_OK),
    "anthropic": (_anthropic, ANTHROPIC_OK),
    "gemini": (_gemini, GEMINI_OK),
}
REQUEST = Request(
    messages=[{"role": "user", "content": "Capital of France?"}],
    system="Answer in one word.",
    max_tokens=10,
    stop=["\n"],
)


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(provider: str, url: str, **options: Any) -> HTTPModel:
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("stream", False)
    return PROVIDERS[provider][0](url, **options)


# --- the wire protocols --------------------------------------------------------------------------


async def test_each_provider_speaks_its_protocol(
    provider: str, scripted_server: Any, llm_events: Any
) -> None:
    scripted_server.reply(json=PROVIDERS[provider][1])
    async with make(provider, scripted_server.url) as model:
        completion = await model.complete(REQUEST)
    assert completion.text == "Paris"
    assert completion.usage.input_tokens == 20
    assert completion.usage.output_tokens == 2
    assert completion.finish_reason == "stop"
    assert completion.provider == provider
    assert completion.cost is not None and completion.cost > 0
    assert completion.attempts == 1
    assert completion.raw == PROVIDERS[provider][1]

    (sent,) = scripted_server.requests
    body = json.loads(sent["body"])
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert sent["method"] == "POST"
    if provider == "openai":
        assert sent["path"] == "/v1/chat/completions"
        assert headers["authorization"] == f"Bearer {KEY}"
        assert body == {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "Capital of France?"},
            ],
            "max_completion_tokens": 10,
            "stop": ["\n"],
            "stream": False,
        }
        assert completion.request_id == "chatcmpl-123"
    elif provider == "anthropic":
        assert sent["path"] == "/v1/messages"
        assert headers["x-api-key"] == KEY
        assert headers["anthropic-version"] == ANTHROPIC_VERSION
        assert body == {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "system": "Answer in one word.",
            "stop_sequences": ["\n"],
        }
        assert completion.request_id == "msg_01"
    else:
        assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
        assert headers["x-goog-api-key"] == KEY
        assert (
            KEY not in sent["path"] and not sent["query"]
        )  # the key is never in the URL
        assert body == {
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "systemInstruction": {
                "role": "user",
                "parts": [{"text": "Answer in one word."}],
            },
            "generationConfig": {
                "maxOutputTokens": 10,
                "stopSequences": ["\n"],
            },
        }
        assert completion.request_id == "resp-9"

    assert llm_events.kinds == ["start", "stop"]
    (_, start), (measurements, stop) = (
        llm_events.named("start")[0],
        llm_events.named("stop")[0],
    )
    assert start["provider"] == provider
    assert start["attempt"] == 1
    assert stop["request_id"] == start["request_id"]
    assert measurements["input_tokens"] == 20
    assert measurements["cost"] == completion.cost
    assert measurements["duration"] == completion.latency > 0


async def test_anthropic_requires_max_tokens_and_full_ids_pass_through(
    scripted_server: Any,
) -> None:
    scripted_server.reply(json=ANTHROPIC_OK)
    async with AnthropicModel(
        "claude-3-5-haiku-20241022", base_url=scripted_server.url, api_key=KEY
    ) as model:
        await model.complete(Request(prompt="hi"))
    body = json.loads(scripted_server.requests[0]["body"])
    assert body["model"] == "claude-3-5-haiku-20241022"
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "system" not in body


async def test_openai_compatible_server(
    scripted_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    payload = {
        "choices": [{"message": {"content": "4"}, "finish_reason": "length"}]
    }  # no usage, no id
    scripted_server.reply(json=payload)
    spec = f"openai-compatible:{scripted_server.url}/v1#qwen2.5:0.5b"
    async with build_model(spec, retry=None) as model:
        assert model.id == spec
        completion = await model.complete(Request(prompt="2+2?", max_tokens=5))
    sent = scripted_server.requests[0]
    assert "authorization" not in {
        k.lower() for k in sent["headers"]
    }  # OPENAI_API_KEY stays home
    body = json.loads(sent["body"])
    assert body["model"] == "qwen2.5:0.5b"
    assert body["max_tokens"] == 5  # the field local servers understand
    assert completion.text == "4"
    assert completion.finish_reason == "length"
    assert completion.usage.output_tokens == 1  # estimated when the server reports none
    assert (
        completion.usage.input_tokens == 5
    )  # the input too: "2+2?" and the turn overhead
    assert completion.usage.estimated
    assert completion.cost is None  # unknown model: not priced, not zero
    assert completion.request_id is not None and completion.request_id.startswith(
        "req-"
    )


async def test_openai_compatible_key_from_named_env(
    scripted_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    scripted_server.reply(json=OPENAI_OK)
    spec = f"openai-compatible:{scripted_server.url}/v1#openai/gpt-4o-mini"
    async with build_model(
        spec, api_key_env="OPENROUTER_API_KEY", headers={"X-Title": "crucible"}
    ) as model:
        completion = await model.complete(Request(prompt="hi"))
    headers = {k.lower(): v for k, v in scripted_server.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-title"] == "crucible"
    assert completion.cost == pytest.approx(
        (20 * 0.15 + 2 * 0.60) / 1e6
    )  # priced from the name


# --- failures ------------------------------------------------------------------------------------


async def test_429_with_retry_after_seconds_is_retried(
    provider: str, scripted_server: Any, llm_events: Any
) -> None:
    scripted_server.reply(
        status=429,
        json={"error": {"message": "slow down"}},
        headers={"Retry-After": "7"},
    )
    scripted_server.reply(json=PROVIDERS[provider][1])
    async with make(provider, scripted_server.url) as model:
        completion = await model.complete(REQUEST)
    assert completion.attempts == 2
    assert len(scripted_server.requests) == 2
    assert llm_events.kinds == ["start", "retry", "stop"]
    measurements, metadata = llm_events.named("retry")[0]
    assert measurements["wait"] >= 7.0  # honoured (not slept: testing mode)
    assert metadata["error_type"] == "RateLimitError"
    assert llm_events.named("stop")[0][1]["attempt"] == 2


async def test_429_with_http_date(scripted_server: Any, llm_events: Any) -> None:
    when = format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120), usegmt=True
    )
    scripted_server.reply(status=429, text="", headers={"Retry-After": when})
    scripted_server.reply(json=OPENAI_OK)
    async with make("openai", scripted_server.url) as model:
        await model.complete(REQUEST)
    wait = llm_events.named("retry")[0][0]["wait"]
    assert (
        100 < wait <= 120 + 1.0
    )  # the header, plus at most `wait_jitter` (1 s) on top


async def test_429_given_up_carries_context(
    provider: str, scripted_server: Any
) -> None:
    scripted_server.reply(
        status=429, json={"error": {"message": "quota"}}, headers={"Retry-After": "2"}
    )
    async with make(provider, scripted_server.url, retry=None) as model:
        with pytest.raises(RateLimitError) as info:
            await model.complete(REQUEST)
    err = info.value
    assert (err.status, err.retry_after, err.provider, err.attempt) == (
        429,
        2.0,
        provider,
        1,
    )
    assert "quota" in str(err)
    assert pickle.loads(pickle.dumps(err)).retry_after == 2.0


async def test_gemini_retry_delay_in_body(scripted_server: Any) -> None:
    body = {"error": {"code": 429, "message": "exhausted", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}}  # fmt: skip
    scripted_server.reply(status=429, json=body)
    async with make("gemini", scripted_server.url, retry=None) as model:
        with pytest.raises(RateLimitError) as info:
            await model.complete(REQUEST)
    assert info.value.retry_after == 13.0


async def test_500s_are_retried_then_raised(
    provider: str, scripted_server: Any, llm_events: Any
) -> None:
    scripted_server.reply(status=500, json={"error": {"message": "boom"}})
    async with make(provider, scripted_server.url) as model:
        with pytest.raises(ResponseError) as info:
            await model.complete(REQUEST)
    assert len(scripted_server.requests) == 3
    assert (info.value.status, info.value.attempt) == (500, 3)
    assert llm_events.kinds == ["start", "retry", "retry", "exception"]
    assert llm_events.named("exception")[0][1]["attempt"] == 3


async def test_500_then_success(scripted_server: Any) -> None:
    scripted_server.reply(status=503, text="unavailable")
    scripted_server.reply(json=ANTHROPIC_OK)
    async with make("anthropic", scripted_server.url) as model:
        assert (await model.complete(REQUEST)).attempts == 2


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_are_not_retried(status: int, scripted_server: Any) -> None:
    scripted_server.reply(
        status=status,
        json={"error": {"message": "nope", "type": "invalid_request_error"}},
    )
    async with make("openai", scripted_server.url) as model:
        with pytest.raises(ResponseError, match=f"HTTP {status}: nope") as info:
            await model.complete(REQUEST)
    assert info.value.status == status
    assert len(scripted_server.requests) == 1


@pytest.mark.parametrize("body", ["not json{", "[1, 2]", ""])
async def test_malformed_json(provider: str, body: str, scripted_server: Any) -> None:
    scripted_server.reply(text=body)
    async with make(provider, scripted_server.url) as model:
        with pytest.raises(ResponseError, match="not a JSON object") as info:
            await model.complete(REQUEST)
    assert info.value.status == 200
    assert len(scripted_server.requests) == 1  # a bad body is not transient


@pytest.mark.parametrize(
    "payload",
    [{"unexpected": True}, {"choices": []}, {"choices": [{"message": {"content": 5}}]},
     {"content": "text"}, {"candidates": []}, {"candidates": [{"content": {"parts": [{"text": 3}]}}]}],
)  # fmt: skip
async def test_wrong_schema(
    provider: str, payload: dict[str, Any], scripted_server: Any
) -> None:
    scripted_server.reply(json=payload)
    async with make(provider, scripted_server.url) as model:
        with pytest.raises(ResponseError, match="unexpected shape"):
            await model.complete(REQUEST)


async def test_slow_response_past_the_timeout(
    provider: str, scripted_server: Any, llm_events: Any
) -> None:
    scripted_server.reply(hang=True)
    async with make(provider, scripted_server.url, timeout=0.2, retry=None) as model:
        with pytest.raises(ProviderTimeoutError) as info:
            await model.complete(REQUEST)
    assert (info.value.timeout, info.value.attempt) == (0.2, 1)
    assert isinstance(info.value, TimeoutError)
    await asyncio.wait_for(
        scripted_server.disconnected.wait(), 10
    )  # the server saw the client go
    assert llm_events.named("exception")[0][1]["error_type"] == "ProviderTimeoutError"


async def test_timeouts_are_retried(scripted_server: Any) -> None:
    scripted_server.reply(hang=True)
    scripted_server.reply(json=OPENAI_OK)
    async with make("openai", scripted_server.url, timeout=0.2) as model:
        completion = await model.complete(REQUEST)
    assert completion.attempts == 2


async def test_cancellation_closes_the_connection(
    provider: str, scripted_server: Any, llm_events: Any
) -> None:
    scripted_server.reply(hang=True)
    async with make(provider, scripted_server.url) as model:
        task = asyncio.create_task(model.complete(REQUEST))
        for _ in range(1000):  # until the server holds the request
            if scripted_server.requests:
                break
            await asyncio.sleep(0.01)
        assert scripted_server.requests
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(scripted_server.disconnected.wait(), 10)
    assert scripted_server.handlers_cancelled == 1
    assert llm_events.named("exception")[0][1]["error_type"] == "CancelledError"


async def test_connection_refused_is_a_network_error(provider: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with make(provider, f"http://127.0.0.1:{port}", retry=None) as model:
        with pytest.raises(NetworkError) as info:
            await model.complete(REQUEST)
    assert isinstance(info.value, ConnectionError)
    assert info.value.provider == provider


async def test_rate_limited_model_still_answers(scripted_server: Any) -> None:
    scripted_server.reply(json=OPENAI_OK)
    async with make(
        "openai",
        scripted_server.url,
        requests_per_second=1000,
        tokens_per_minute=100_000,
    ) as model:
        results = await asyncio.gather(*(model.complete(REQUEST) for _ in range(5)))
    assert [r.text for r in results] == ["Paris"] * 5


# --- keys ----------------------------------------------------------------------------------------


async def test_keys_never_leak(
    provider: str, scripted_server: Any, llm_events: Any
) -> None:
    scripted_server.reply(status=401, json={"error": {"message": "invalid key"}})
    scripted_server.reply(json=PROVIDERS[provider][1])
    model = make(provider, scripted_server.url, retry=None)
    texts = [
        repr(model),
        str(model),
        repr(vars(model)) if hasattr(model, "__dict__") else "",
    ]
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(model)
    with pytest.raises(ResponseError) as info:
        await model.complete(REQUEST)
    texts += [
        str(info.value),
        repr(info.value.context),
        repr(pickle.loads(pickle.dumps(info.value)).context),
    ]
    completion = await model.complete(REQUEST)
    await model.aclose()
    texts += [repr(completion), to_json(completion), repr(llm_events.items)]
    assert all(KEY not in t for t in texts)
    assert all("SECRET" not in t for t in texts)


@pytest.mark.parametrize(
    ("cls", "env"),
    [(OpenAIModel, ["OPENAI_API_KEY"]), (AnthropicModel, ["ANTHROPIC_API_KEY"]),
     (GeminiModel, ["GOOGLE_API_KEY", "GEMINI_API_KEY"])],
)  # fmt: skip
async def test_keys_from_the_environment(
    cls: type[HTTPModel],
    env: list[str],
    monkeypatch: pytest.MonkeyPatch,
    scripted_server: Any,
) -> None:
    for name in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match=env[0]):
        cls("m", base_url=scripted_server.url)
    monkeypatch.setenv(env[-1], KEY)
    model = cls("m", base_url=scripted_server.url)
    assert model._key is not None and model._key.reveal() == KEY
    assert KEY not in repr(model._key)


def test_registry_builds_http_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    openai = build_model("openai:gpt-4o-mini")
    anthropic = build_model("anthropic:claude-3-5-haiku")
    gemini = build_model("gemini:gemini-2.0-flash", timeout=5)
    assert (openai.id, anthropic.id, gemini.id) == (
        "openai:gpt-4o-mini", "anthropic:claude-3-5-haiku", "gemini:gemini-2.0-flash")  # fmt: skip
    assert repr(openai) == "OpenAIModel('gpt-4o-mini')"
    assert (
        isinstance(anthropic, AnthropicModel)
        and anthropic.api_model == "claude-3-5-haiku-latest"
    )
    with pytest.raises(ConfigurationError, match="base_url"):
        build_model("openai-compatible:ftp://x#m")
    with pytest.raises(ConfigurationError, match="already in the model string"):
        build_model("openai-compatible:http://127.0.0.1:1/v1#m", base_url="http://x")


async def test_one_model_many_loops(scripted_server: Any) -> None:
    scripted_server.reply(json=OPENAI_OK)
    model = make("openai", scripted_server.url)
    await model.complete(REQUEST)

    def other_loop() -> str:
        return asyncio.run(
            model.complete(REQUEST)
        ).text  # a session of its own, closed at the end

    assert await asyncio.to_thread(other_loop) == "Paris"
    await model.aclose()
    await model.aclose()  # idempotent
    await model.complete(REQUEST)  # a closed model opens a new session
    await model.aclose()


# --- Retry-After parsing -------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None
    assert parse_retry_after(None) is None


async def test_cancellation_while_reading_the_body_closes_the_connection(
    provider: str, scripted_server: Any
) -> None:
    scripted_server.reply(partial=True)
    async with make(provider, scripted_server.url) as model:
        task = asyncio.create_task(model.complete(REQUEST))
        await asyncio.wait_for(scripted_server.body_started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(scripted_server.disconnected.wait(), 10)
    assert scripted_server.handlers_cancelled == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"retry": 3}, "RetryPolicy"),
        ({"price": 0.01}, "Price"),
        ({"timeout": 0}, "timeout"),
        ({"requests_per_second": -1}, "requests_per_second"),
        ({"api_key": "  "}, "api_key"),
        ({"base_url": "127.0.0.1:8000"}, "http"),
    ],
)
def test_http_construction_errors(options: dict[str, Any], error: str) -> None:
    options = {"api_key": KEY, "base_url": "http://127.0.0.1:1", **options}
    with pytest.raises((ConfigurationError, ValueError), match=error):
        OpenAIModel("gpt-4o-mini", **options)


def test_openai_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="provider"):
        OpenAIModel("m", provider="azure", api_key=KEY)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAIModel("m", provider="openai-compatible")
    with pytest.raises(ConfigurationError, match="max_tokens_field"):
        OpenAIModel("m", api_key=KEY, max_tokens_field="tokens")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="model name"):
        OpenAIModel(" ", api_key=KEY)
    model = OpenAIModel("o3", api_key=KEY, max_tokens_field="max_tokens", price=None)
    assert model.max_tokens_field == "max_tokens"


async def test_gemini_conversation_roles_and_blocked_prompts(
    scripted_server: Any,
) -> None:
    scripted_server.reply(
        json={
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 5},
        }
    )
    conversation = Request(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"},
        ]
    )
    async with GeminiModel(
        "models/gemini-2.5-pro", base_url=scripted_server.url, api_key=KEY
    ) as model:
        completion = await model.complete(conversation)
    assert (completion.text, completion.finish_reason) == ("", "content_filter")
    body = json.loads(scripted_server.requests[0]["body"])
    assert (
        scripted_server.requests[0]["path"]
        == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    )
    assert scripted_server.requests[0]["query"] == {"alt": "sse"}
    assert (
        completion.time_to_first_token is None
    )  # the server answered JSON, not a stream
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["systemInstruction"] == {
        "role": "user",
        "parts": [{"text": "be brief"}],
    }
    assert body["generationConfig"] == {"maxOutputTokens": DEFAULT_MAX_TOKENS}
    assert completion.refusal == "SAFETY"


async def test_price_option_and_retry_after_ms(
    scripted_server: Any, llm_events: Any
) -> None:
    from crucible_core.models import Price

    scripted_server.reply(status=429, text="busy", headers={"retry-after-ms": "1500"})
    scripted_server.reply(json=OPENAI_OK)
    async with make(
        "openai", scripted_server.url, price=Price(input=1.0, output=1.0)
    ) as model:
        completion = await model.complete(REQUEST)
    assert completion.cost == pytest.approx(22 / 1e6)
    assert llm_events.named("retry")[0][0]["wait"] >= 1.5


def test_confidence_from_logprobs_is_the_geometric_mean_token_probability() -> None:
    import math

    from crucible_core.models import TokenLogprob, confidence_from_logprobs

    tokens = [
        TokenLogprob(token="4", logprob=-0.1),
        TokenLogprob(token="2", logprob=-0.5),
    ]
    assert confidence_from_logprobs(tokens) == pytest.approx(math.exp(-0.3))
    assert (
        confidence_from_logprobs([]) is None and confidence_from_logprobs(None) is None
    )
    assert (
        confidence_from_logprobs([TokenLogprob(token="x", logprob=float("nan"))])
        is None
    )
