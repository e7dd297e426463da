"""Hundreds of requests in flight, and streamed answers, against real servers.

nginx is the witness: its access log says how many requests reached it (each found by the tag in
its body) and how long it took over each (`$request_time`, first byte read to last byte sent).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from crucible_core.models import Completion, HTTPModel, Request

pytestmark = pytest.mark.network

CLOCK = 0.002
"""nginx logs times to the millisecond: comparisons of two of them allow this much."""

MakeModel = Callable[..., HTTPModel]


async def _send_all(
    model: HTTPModel, asks: list[tuple[str, Request]]
) -> dict[str, Completion]:
    import asyncio

    completions = await asyncio.gather(*(model.complete(r) for _, r in asks))
    return {tag: c for (tag, _), c in zip(asks, completions, strict=True)}


def _once_each(entries: list[Any], tags: set[str]) -> dict[str, Any]:
    """The entry of each tag, checking that every tag reached the server exactly once."""
    counts = Counter(e.tag for e in entries)
    assert set(counts) == tags, "requests nginx never saw, or saw without a tag"
    twice = {tag: n for tag, n in counts.items() if n > 1}
    assert not twice, f"{len(twice)} requests reached the server more than once"
    return {e.tag: e for e in entries}


@pytest.mark.parametrize("in_flight", [200, 512])
async def test_hundreds_in_flight_reach_the_server_once_each_timed_as_the_server_timed_them(
    in_flight: int, ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    # /fixed-5s/ answers every request after exactly 5 s (a typical model call; the case
    # was a 6 s server and a 10 s timeout). All requests are sent at once by one model with its
    # default pool (sized to its concurrency limit): none may wait for a connection, time out, or
    # be sent twice, and the latency crucible reports for each is the time nginx spent on it.
    mark = nginx.mark()
    asks = [ask() for _ in range(in_flight)]
    async with make_model("openai", f"{nginx.url}/fixed-5s", timeout=10) as model:
        completions = await _send_all(model, asks)
    entries = nginx.entries(mark, "/fixed-5s/", at_least=in_flight)
    server = _once_each(entries, set(completions))
    assert all(e.status == 200 for e in entries)
    assert all(c.attempts == 1 and c.text == "fixed" for c in completions.values())
    # latency: from the first byte sent to the last byte received, so never shorter than
    # nginx's own time, and at the median within 5% of it
    for tag, c in completions.items():
        assert c.latency >= server[tag].request_time - CLOCK, (tag, c.latency)
    gaps = [
        (c.latency - server[t].request_time) / server[t].request_time
        for t, c in completions.items()
    ]
    assert statistics.median(gaps) < 0.05, (
        f"median latency {statistics.median(gaps):.1%} above the server's"
    )
    crucible_p50 = statistics.median(c.latency for c in completions.values())
    server_p50 = statistics.median(e.request_time for e in entries)
    assert abs(crucible_p50 - server_p50) / server_p50 < 0.05, (
        crucible_p50,
        server_p50,
    )
    # nothing queued inside crucible: the pool is as large as the load
    assert statistics.median(c.queue_time for c in completions.values()) < 0.05


async def test_a_pool_smaller_than_the_load_queues_without_timing_out_or_resending(
    ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    # 200 at once through 100 connections, each answered after 5 s, with an 8 s timeout: half
    # wait about 5 s for a connection. That wait is queue_time, not latency, and does not count
    # against the timeout (otherwise those 100 would time out after 8 s and be sent again). The
    # 3 s between the server's time and the timeout keep a busy CI machine from timing out.
    mark = nginx.mark()
    asks = [ask() for _ in range(200)]
    async with make_model(
        "openai", f"{nginx.url}/fixed-5s", timeout=8, max_connections=100
    ) as model:
        completions = await _send_all(model, asks)
    entries = nginx.entries(mark, "/fixed-5s/", at_least=200)
    server = _once_each(entries, set(completions))
    assert all(c.attempts == 1 for c in completions.values())
    queued = sorted(c.queue_time for c in completions.values())
    assert queued[99] < 0.5 and queued[100] > 4.5, (queued[99], queued[100])
    assert all(
        c.latency >= server[t].request_time - CLOCK for t, c in completions.items()
    )
    # had the wait for a connection been counted, the second wave's latency would be >= 9.5 s
    late = [c.latency for c in completions.values() if c.queue_time > 4.5]
    assert statistics.median(late) < 6.0, statistics.median(late)
    # the server saw two waves, 5 s apart
    starts = sorted(e.start for e in entries)
    assert starts[99] - starts[0] < 2.5 and starts[100] - starts[0] > 4.5


# --- streaming -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_time_to_first_token_from_a_stream(
    protocol: str, ask: Any, nginx: Any, make_model: MakeModel
) -> None:
    # /sse-<protocol>/ sends the first text event at once and the rest 0.8 s later, each in the
    # protocol's own event format: the first token is timed apart from the whole answer.
    mark = nginx.mark()
    _, request = ask()
    async with make_model(
        protocol, f"{nginx.url}/sse-{protocol}", stream=True
    ) as model:
        completion = await model.complete(request)
    assert completion.text == "Paris"
    assert completion.finish_reason == "stop"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (9, 2)
    assert not completion.usage.estimated
    (entry,) = nginx.entries(mark, f"/sse-{protocol}/")
    if protocol == "gemini":
        assert ":streamGenerateContent" in entry.uri and "alt=sse" in entry.uri
    else:
        assert entry.json()["stream"] is True
    assert entry.request_time >= 0.8
    assert completion.latency >= entry.request_time - CLOCK
    # the first token came at once, the answer was whole 0.8 s later
    ttft = completion.time_to_first_token
    assert ttft is not None
    assert 0 < ttft < 0.4, ttft
    assert completion.latency >= 0.8


async def test_a_litellm_stream_is_assembled_with_its_usage(
    ask: Any, nginx: Any, litellm: Any, make_model: MakeModel
) -> None:
    # LiteLLM's own OpenAI stream (chunks of three characters, then a usage chunk).
    mark = nginx.mark()
    _, request = ask()
    async with make_model("openai", f"{nginx.url}/ok", stream=True) as model:
        completion = await model.complete(request)
    assert completion.text == litellm.mock_text
    assert completion.usage.output_tokens > 0 and not completion.usage.estimated
    assert completion.time_to_first_token is not None
    assert 0 < completion.time_to_first_token <= completion.latency
    (entry,) = nginx.entries(mark, "/ok/")
    body = entry.json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_transformers_serve_streams_the_tiny_models_tokens(
    transformers_serve: Any, make_serve_model: MakeModel
) -> None:
    prompt = "what is the capital of france?"
    async with make_serve_model(stream=True) as model:
        completion = await model.complete(Request(prompt=prompt, max_tokens=8))
    local = transformers_serve.generate_locally(prompt, 8)
    assert completion.text == local["text"]
    assert completion.time_to_first_token is not None
    assert 0 < completion.time_to_first_token <= completion.latency
