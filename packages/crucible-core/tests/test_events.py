from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from crucible_core import context, events
from crucible_core.exceptions import ValidationError


@pytest.fixture
def captured() -> Iterator[
    list[tuple[tuple[str, ...], dict[str, float], dict[str, object]]]
]:
    seen: list[tuple[tuple[str, ...], dict[str, float], dict[str, object]]] = []
    events.attach(
        "test-capture",
        [("crucible",)],
        lambda n, m, md: seen.append((n, dict(m), dict(md))),
    )
    yield seen
    events.detach("test-capture")


def test_emit_reaches_handlers_by_prefix(captured: list) -> None:
    events.emit(events.LLM_REQUEST_STOP, {"duration": 1.0}, {"model": "m"})
    events.emit(("other", "thing"), {"x": 1.0})
    assert captured == [(events.LLM_REQUEST_STOP, {"duration": 1.0}, {"model": "m"})]


def test_prefix_routing_is_exact_per_segment() -> None:
    seen: list[tuple[str, ...]] = []
    events.attach("llm-only", [("crucible", "llm")], lambda n, m, md: seen.append(n))
    try:
        events.emit(("crucible", "llmx", "stop"), {})
        events.emit(events.LLM_REQUEST_START, {})
        events.emit(events.ENSEMBLE_VOTE_STOP, {})
    finally:
        assert events.detach("llm-only")
    assert seen == [events.LLM_REQUEST_START]
    assert not events.detach("llm-only")


def test_attach_after_routes_cached_takes_effect() -> None:
    events.emit(events.TRACE_EVENT_CREATED, {})  # caches an empty route
    seen: list[tuple[str, ...]] = []
    events.attach("late", [()], lambda n, m, md: seen.append(n))
    events.emit(events.TRACE_EVENT_CREATED, {})
    events.detach("late")
    events.emit(events.TRACE_EVENT_CREATED, {})
    assert seen == [events.TRACE_EVENT_CREATED]


def test_listening_follows_attach_and_detach_by_prefix() -> None:
    stop = ("crucible", "ensemble", "predict", "stop")
    vote = ("crucible", "ensemble", "vote", "stop")
    assert not events.listening(stop)  # nothing attached for it
    events.attach("votes", [("crucible", "ensemble", "vote")], lambda n, m, md: None)
    try:
        assert events.listening(vote)
        assert not events.listening(stop)  # a sibling prefix, cached as empty
        events.attach("all", [()], lambda n, m, md: None)
        assert events.listening(stop)  # the cached empty route was dropped
        events.detach("all")
        assert not events.listening(stop)
    finally:
        events.detach("votes")
    assert not events.listening(vote)


def test_duplicate_handler_id_rejected() -> None:
    events.attach("dup", [("a",)], lambda n, m, md: None)
    try:
        with pytest.raises(ValidationError, match="already attached"):
            events.attach("dup", [("a",)], lambda n, m, md: None)
    finally:
        events.detach("dup")


@pytest.mark.parametrize("bad", [["crucible"], [("crucible", "")], [(1, 2)], []])
def test_bad_prefixes_rejected(bad: list) -> None:
    with pytest.raises(ValidationError):
        events.attach("bad", bad, lambda n, m, md: None)
    assert "bad" not in events.attached()


def test_failing_handler_is_detached_and_reported(
    caplog: pytest.LogCaptureFixture, captured: list
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("handler bug")

    events.attach("boom", [("crucible",)], boom)
    with caplog.at_level(logging.ERROR, logger="crucible"):
        events.emit(events.LLM_REQUEST_START, {})  # must not raise
        events.emit(events.LLM_REQUEST_START, {})
    assert "boom" not in events.attached()
    assert events.failed_handlers()["boom"] == "RuntimeError: handler bug"
    assert "detached" in caplog.text
    assert len(captured) == 2  # the healthy handler saw both


def test_span_stop_and_exception(captured: list) -> None:
    with events.span(("crucible", "harness", "task"), {"k": "v"}) as sp:
        sp.measurements["cost"] = 0.5
        sp.metadata["correct"] = True
    with (
        pytest.raises(KeyError),
        events.span(("crucible", "harness", "task"), {"k": "v"}),
    ):
        raise KeyError("x")
    names = [n[-1] for n, _, _ in captured]
    assert names == ["start", "stop", "start", "exception"]
    stop = captured[1]
    assert stop[1]["cost"] == 0.5
    assert stop[1]["duration"] >= 0
    assert stop[2] == {"k": "v", "correct": True}
    assert captured[3][2]["error_type"] == "KeyError"


def test_handlers_read_the_emitters_context_across_tasks_and_threads() -> None:
    seen: dict[str, set[str | None]] = {}
    lock = threading.Lock()

    def handler(n: tuple[str, ...], m: object, md: object) -> None:
        ctx = context.current()
        with lock:
            seen.setdefault(str(ctx.experiment_id), set()).add(ctx.condition)

    events.attach("ctx", [("crucible",)], handler)

    async def experiment(i: int) -> None:
        with context.use(experiment_id=f"e{i}", condition=f"c{i}"):
            for _ in range(20):
                events.emit(events.LLM_REQUEST_STOP, {})
                await asyncio.sleep(0)
            await asyncio.to_thread(events.emit, events.LLM_REQUEST_STOP, {})

    async def main() -> None:
        await asyncio.gather(*(experiment(i) for i in range(8)))

    try:
        asyncio.run(main())
    finally:
        events.detach("ctx")
    assert seen == {f"e{i}": {f"c{i}"} for i in range(8)}


def test_catalogue_names_are_well_formed() -> None:
    for name, meaning in events.CATALOGUE.items():
        assert name[0] == "crucible" and len(name) == 4
        assert meaning
    exported = {
        getattr(events, n) for n in events.__all__ if n.isupper() and n != "CATALOGUE"
    }
    assert exported == set(events.CATALOGUE)
