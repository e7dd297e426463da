"""Members on a real (local) OpenAI-compatible HTTP server: slow ones cancelled, failing ones excluded."""

from __future__ import annotations

import asyncio

import pytest

from crucible_core.models import Price, Request, Usage, build_model
from crucible_ensemble import (
    Cascade,
    Ensemble,
    Hedged,
    InsufficientResponsesError,
    Sequential,
)

pytestmark = pytest.mark.network

CHOICE = Request(prompt="Pick one", kind="choice", choices=("A", "B", "C", "D"))


def members(server, *names):
    return [
        build_model(f"openai-compatible:{server.url}#{name}", retry=None)
        for name in names
    ]


async def close(models) -> None:
    for m in models:
        await m.aclose()


async def test_failing_member_is_excluded(chat_server) -> None:
    chat_server.script("good-1", text="The answer is B.")
    chat_server.script("good-2", text="B")
    chat_server.script("broken", status=500)
    models = members(chat_server, "good-1", "broken", "good-2")
    try:
        result = await Ensemble(models).predict_async(CHOICE)
    finally:
        await close(models)
    assert result.answer == "B" and result.votes == {"B": 2}
    broken = result.responses[1]
    assert broken.status == "failed" and "500" in (broken.error or "")
    assert result.input_tokens == 24  # the usage the server reported, twice


async def test_slow_member_is_cancelled_at_the_timeout(chat_server) -> None:
    chat_server.script("fast-1", text="C")
    chat_server.script("fast-2", text="C")
    chat_server.script("slow", text="D", delay=30)
    models = members(chat_server, "fast-1", "slow", "fast-2")
    try:
        result = await Ensemble(models, timeout=0.5).predict_async(CHOICE)
        for _ in range(100):  # the server sees the disconnect a moment later
            if chat_server.cancelled:
                break
            await asyncio.sleep(0.01)
    finally:
        await close(models)
    assert result.answer == "C"
    assert result.responses[1].status == "timed_out"
    assert chat_server.cancelled == ["slow"]


async def test_sequential_cancels_the_straggler(chat_server) -> None:
    for name in ("a", "b", "c", "d"):
        chat_server.script(name, text="A")
    chat_server.script("slow", text="B", delay=30)
    models = members(chat_server, "a", "slow", "b", "c", "d")
    try:
        result = await Ensemble(models, execution=Sequential(spare=1)).predict_async(
            CHOICE
        )
        for _ in range(100):
            if chat_server.cancelled:
                break
            await asyncio.sleep(0.01)
    finally:
        await close(models)
    assert result.answer == "A"
    assert result.responses[1].status == "cancelled"
    assert chat_server.cancelled == ["slow"]
    assert "d" not in chat_server.served


async def test_hedged_backup_beats_a_slow_primary(chat_server) -> None:
    chat_server.script("slow", text="A", delay=30)
    chat_server.script("backup", text="B")
    price = Price(input=2.0, output=8.0)  # USD per million tokens
    models = [
        build_model(
            f"openai-compatible:{chat_server.url}#{name}", retry=None, price=price
        )
        for name in ("slow", "backup")
    ]
    try:
        result = await Ensemble(models, execution=Hedged(delay=0.05)).predict_async(
            CHOICE
        )
        for _ in range(100):  # the server sees the disconnect a moment later
            if chat_server.cancelled:
                break
            await asyncio.sleep(0.01)
    finally:
        await close(models)
    assert result.answer == "B"
    assert [r.status for r in result.responses] == ["cancelled", "answered"]
    assert chat_server.cancelled == ["slow"] and chat_server.served == ["backup"]
    # the cancelled call was sent: billed as a typical call (500 + 200 tokens), as no usage came
    cancelled, answered = result.responses
    assert cancelled.cost == pytest.approx(
        price.cost(Usage(input_tokens=500, output_tokens=200))
    )
    assert answered.cost is not None
    assert result.cost == pytest.approx(cancelled.cost + answered.cost)


async def test_every_member_failing_raises(chat_server) -> None:
    chat_server.script("x", status=503)
    chat_server.script("y", status=500)
    models = members(chat_server, "x", "y")
    try:
        with pytest.raises(InsufficientResponsesError) as info:
            await Ensemble(models).predict_async(CHOICE)
    finally:
        await close(models)
    assert len(info.value.errors) == 2


async def test_cascade_stops_before_the_member_it_does_not_need(chat_server) -> None:
    chat_server.script("cheap-1", text="The answer is C.")
    chat_server.script("cheap-2", text="C")
    chat_server.script("slow", text="D", delay=30)
    models = members(chat_server, "cheap-1", "cheap-2", "slow")
    cascade = Cascade(order="given", min_agreeing=2, threshold=0.6)
    try:
        result = await Ensemble(models, execution=cascade).predict_async(CHOICE)
    finally:
        await close(models)
    assert result.answer == "C" and result.members_called == 2
    assert "slow" not in chat_server.served
