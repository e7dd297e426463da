"""crucible's HTTP providers against real servers: LiteLLM, nginx injecting faults, transformers serve.

What reached the server, and when, is read from nginx's access log (the request body, nginx's own
start and end times, the Retry-After it sent), never from crucible's own account.
"""

from __future__ import annotations

import asyncio
import email.utils
import statistics
from collections.abc import Callable
from typing import Any

import pytest

from crucible_core import NetworkError, ProviderTimeoutError, ResponseError
from crucible_core.models import DEFAULT_RETRY, HTTPModel, Request

pytestmark = pytest.mark.network

MOCK_TEXT = "Paris is the capital of France."
CLOCK = 0.002
"""nginx logs times to the millisecond: comparisons of two of them allow this much."""

MakeModel = Callable[..., HTTPModel]


def _sent_text(protocol: str, body: dict[str, Any]) -> str:
    """The user turn of a request body, as the protocol carries it."""
    if protocol == "gemini":
        return str(body["contents"][-1]["parts"][0]["text"])
    return str(body["messages"][-1]["content"])


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_each_protocol_answers_through_litellm(
    ask: Any, protocol: str, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    tag, request = ask()
    async with make_model(protocol, f"{nginx.url}/ok") as model:
        completion = await model.complete(request)
    assert completion.text == MOCK_TEXT
    assert completion.finish_reason == "stop"
    assert completion.provider == (
        "openai-compatible" if protocol == "openai" else protocol
    )
    assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0
    assert completion.cost is None  # a mock model has no price: unknown, never $0
    assert completion.attempts == 1
    (entry,) = nginx.entries(mark, "/ok/")
    assert entry.status == 200
    body = entry.json()
    assert tag in _sent_text(protocol, body)
    key_header = {
        "openai": "authorization",
        "anthropic": "x_api_key",
        "gemini": "x_goog_api_key",
    }
    sent_key = entry.headers[key_header[protocol]]
    assert sent_key.removeprefix("Bearer ") == model._key.reveal()  # type: ignore[attr-defined]
    if protocol == "gemini":
        assert entry.uri == "/ok/v1beta/models/gemini-mock:generateContent"
        assert body["generationConfig"]["maxOutputTokens"] == 32
    else:
        assert body["model"] == ("mock-gpt" if protocol == "openai" else "claude-mock")
        assert body["max_tokens"] == 32


@pytest.mark.parametrize(
    ("protocol", "location", "form"),
    [
        ("openai", "r429-seconds", "seconds"),
        ("anthropic", "r429-seconds", "seconds"),
        ("gemini", "r429-seconds", "seconds"),
        ("openai", "r429-ms", "retry-after-ms"),
        ("anthropic", "r429-ms", "retry-after-ms"),
        ("openai", "r429-date", "http-date"),
        ("gemini", "r429-gemini", "gemini-retryinfo"),
    ],
)
async def test_429_waits_at_least_what_the_server_asks(
    ask: Any, protocol: str, location: str, form: str, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    tag, request = ask()
    async with make_model(protocol, f"{nginx.url}/{location}") as model:
        completion = await model.complete(request)
    assert completion.text == MOCK_TEXT
    assert completion.attempts == 2
    refused, answered = nginx.entries(mark, f"/{location}/")
    assert (refused.status, answered.status) == (429, 200)
    assert tag in refused.body and tag in answered.body
    if form == "seconds":
        assert refused.headers["retry_after"] == "2"
        earliest = refused.end + 2.0
    elif form == "retry-after-ms":
        assert refused.headers["retry_after_ms"] == "1500"
        earliest = refused.end + 1.5
    elif form == "http-date":
        date = email.utils.parsedate_to_datetime(refused.headers["retry_after"])
        earliest = date.timestamp()
        assert (
            1.0 <= earliest - refused.end <= 2.0 + CLOCK
        )  # `expires 2s`, in whole seconds
    else:  # Gemini's RetryInfo in the body: retryDelay "2s"
        earliest = refused.end + 2.0
    assert answered.start >= earliest - CLOCK, (
        f"the retry reached the server {earliest - answered.start:.3f} s before the {form} wait ended"
    )


@pytest.mark.parametrize(
    ("protocol", "status"),
    [
        ("openai", 500),
        ("openai", 502),
        ("openai", 503),
        ("anthropic", 503),
        ("gemini", 500),
    ],
)
async def test_5xx_is_retried(
    ask: Any, protocol: str, status: int, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    _, request = ask()
    async with make_model(protocol, f"{nginx.url}/r{status}") as model:
        completion = await model.complete(request)
    assert completion.text == MOCK_TEXT
    assert completion.attempts == 2
    assert [e.status for e in nginx.entries(mark, f"/r{status}/")] == [status, 200]


async def test_a_closed_connection_is_retried(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    _, request = ask()
    async with make_model("openai", f"{nginx.url}/close-then") as model:
        completion = await model.complete(request)
    assert completion.text == MOCK_TEXT
    assert completion.attempts == 2
    assert [e.status for e in nginx.entries(mark, "/close-then/")] == [444, 200]


async def test_a_connection_always_closed_is_a_clear_network_error(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    _, request = ask()
    async with make_model("openai", f"{nginx.url}/close") as model:
        with pytest.raises(NetworkError) as caught:
            await model.complete(request)
    message = str(caught.value)
    assert f"{nginx.url}/close/v1" in message
    assert "ServerDisconnected" in message or "closed" in message.lower()
    entries = nginx.entries(mark, "/close/")
    assert [e.status for e in entries] == [444] * (DEFAULT_RETRY.max_attempts() or 0)


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("malformed", "not a JSON object"),
        ("html", "not a JSON object"),
        ("wrong-shape", "unexpected shape"),
    ],
)
async def test_a_200_with_a_bad_body_is_a_clear_error_and_not_retried(
    ask: Any, location: str, says: str, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    _, request = ask()
    async with make_model("openai", f"{nginx.url}/{location}") as model:
        with pytest.raises(ResponseError) as caught:
            await model.complete(request)
    assert says in str(caught.value)
    assert caught.value.context["status"] == 200
    assert len(nginx.entries(mark, f"/{location}/")) == 1


async def test_a_slow_body_is_read_whole_and_timed_at_the_server(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    _, request = ask()
    async with make_model("openai", f"{nginx.url}/slow-body", timeout=10) as model:
        completion = await model.complete(request)
    assert completion.text == "slow but whole"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (5, 3)
    (entry,) = nginx.entries(mark, "/slow-body/")
    assert entry.request_time >= 1.5
    assert completion.latency >= entry.request_time - CLOCK


async def test_a_body_slower_than_the_timeout_is_a_timeout(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    mark = nginx.mark()
    _, request = ask()
    async with make_model(
        "openai", f"{nginx.url}/slow-body", timeout=0.5, retry=None
    ) as model:
        with pytest.raises(ProviderTimeoutError) as caught:
            await model.complete(request)
    assert "0.5 s" in str(caught.value)
    # One request (no retry), which nginx finished sending after crucible had given up on it.
    (entry,) = nginx.entries(mark, "/slow-body/", at_least=1)
    assert entry.request_time >= 1.5


async def test_a_per_second_limit_set_on_the_model_keeps_under_the_servers(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    # nginx: 5 a second with a bucket of 6; the model: 5 a second. No request may be refused.
    await asyncio.sleep(1.5)  # let nginx's bucket empty after earlier tests
    mark = nginx.mark()
    asks = [ask() for _ in range(16)]
    async with make_model(
        "openai", f"{nginx.url}/limited", requests_per_second=5
    ) as model:
        completions = await asyncio.gather(*(model.complete(r) for _, r in asks))
    assert all(c.text == MOCK_TEXT and c.attempts == 1 for c in completions)
    entries = nginx.entries(mark, "/limited/")
    assert [e.status for e in entries] == [200] * 16
    assert entries[-1].start - entries[0].start >= (16 - 6) / 5 - 0.1


async def test_latency_is_the_servers_time_one_request_at_a_time(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    # nginx answers /fixed/ after 0.3 s; crucible's latency of each request, paired with nginx's
    # `$request_time` for it through the request body, differs by under 5% at the median.
    mark = nginx.mark()
    measured: dict[str, float] = {}
    async with make_model("openai", f"{nginx.url}/fixed") as model:
        for _ in range(12):
            tag, request = ask()
            measured[tag] = (await model.complete(request)).latency
    entries = nginx.entries(mark, "/fixed/")
    assert len(entries) == 12
    server = {tag: e.request_time for e in entries for tag in measured if tag in e.body}
    assert set(server) == set(measured)
    assert all(measured[t] >= server[t] - CLOCK for t in measured)
    gaps = [abs(measured[t] - server[t]) / server[t] for t in measured]
    assert statistics.median(gaps) < 0.05, (measured, server)


@pytest.mark.parametrize(
    "prompt", ["what is the capital of france?", "what is two plus two?"]
)
async def test_transformers_serve_answers_with_the_tiny_model(
    prompt: str, transformers_serve: Any, make_serve_model: MakeModel
) -> None:
    async with make_serve_model() as model:
        completion = await model.complete(Request(prompt=prompt, max_tokens=8))
    local = transformers_serve.generate_locally(prompt, 8)
    assert completion.text == local["text"]
    assert completion.text in {
        "paris",
        "four",
    }  # the tiny model learned its four answers
    assert completion.usage.input_tokens == local["prompt_tokens"]
    assert completion.usage.output_tokens == local["completion_tokens"]
    raw_usage = completion.raw.get("usage") or {}
    if raw_usage:  # a whole (not streamed) answer carries the server's own count
        assert raw_usage["prompt_tokens"] == local["prompt_tokens"]
        assert raw_usage["completion_tokens"] == local["completion_tokens"]
    assert completion.finish_reason == "stop"


async def test_transformers_serve_stops_at_max_tokens(
    make_serve_model: MakeModel,
) -> None:
    # Without max_tokens the server writes at least 1024 tokens; crucible sends the request's.
    async with make_serve_model() as model:
        completion = await model.complete(
            Request(prompt="what is the capital of france?", max_tokens=2)
        )
    assert completion.usage.output_tokens == 2
    assert completion.finish_reason == "length"
