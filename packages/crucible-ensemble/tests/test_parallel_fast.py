"""The parallel hot path: every member answered in its first step, read through the memo.

`Ensemble._tally_answered` makes the result when every call returned a completion in time;
anything else goes through `Ensemble._tally_parallel`, the general path. They must agree exactly
(differential tests below, over generated answers), and a prediction must look the same from
outside whichever path made it: the result, the errors, the events.
"""

from __future__ import annotations

import asyncio
import gc
import math
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible_core import events
from crucible_core.exceptions import ResponseError
from crucible_core.models import Completion, Request, Usage
from crucible_ensemble import Ensemble, InsufficientResponsesError, _normalize
from crucible_ensemble._normalize import (
    MEMO_TEXT,
    resolve_normalizer,
    resolve_reading,
)

CHOICE = Request(prompt="Pick one", kind="choice", choices=("A", "B", "C", "D"))
TEXTS = Request(prompt="Capital?", kind="choice", choices=("Paris", "London", "Rome"))
NUMBER = Request(prompt="2 + 2?", kind="number")
FREE = Request(prompt="Say something")
TIMING = {"duration", "monotonic_time", "system_time"}


class Shouting(str):
    """A hostile text: equal to every string, hashing like "B"."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("B")


ANSWERS = [
    "B",
    "b",
    " B ",
    "(C)",
    "Answer: A",
    "The answer is D.",
    "A or B",
    "",
    "no idea",
    "London",
    "b) London",
    "I'd say Paris.",
    "4",
    "4.0",
    "The total is 1,200.50",
    "yes",
    "B" * (MEMO_TEXT + 1),
    "The answer is (B)." + " really" * 100,
    Shouting("Q"),
]


class Fixed:
    """A member returning one prepared completion, in its first step."""

    def __init__(self, name: str, completion: Completion) -> None:
        self.name, self.completion = name, completion

    @property
    def id(self) -> str:
        return f"fixed:{self.name}"

    @property
    def provider(self) -> str:
        return "fixed"

    async def complete(self, request: Request) -> Completion:
        return self.completion

    async def aclose(self) -> None:
        """Nothing to close."""


def completion(
    text: str,
    *,
    latency: float = 0.25,
    cost: float | None = 0.001,
    confidence: float | None = None,
    raw: dict[str, Any] | None = None,
) -> Completion:
    return Completion(
        text=text,
        usage=Usage(input_tokens=7, output_tokens=3),
        latency=latency,
        cost=cost,
        confidence=confidence,
        raw=raw or {},
    )


def done(
    loop: asyncio.AbstractEventLoop, value: Completion | BaseException | None
) -> Any:
    """A finished call as `_tally_*` see it: its completion, its error, or cancelled (`None`)."""
    future: asyncio.Future[Completion] = loop.create_future()
    if value is None:
        future.cancel()
    elif isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)
    return future


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def upper_or_none(text: str) -> str | None:
    return text.strip().upper() or None


members_st = st.lists(
    st.builds(
        dict,
        text=st.sampled_from(ANSWERS),
        latency=st.floats(0.0, 4.0),
        cost=st.one_of(st.none(), st.floats(0.0, 0.01)),
        confidence=st.one_of(st.none(), st.floats(0.0, 1.0)),
        raw=st.sampled_from(
            [
                {},
                {"confidence": 0.9},
                {"confidence": 7},
                {"choices": [{"logprobs": {"content": [{"logprob": -0.1}]}}]},
                {"choices": []},
                {"id": "chatcmpl-1", "usage": {}},
            ]
        ),
    ),
    min_size=1,
    max_size=6,
)
options_st = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from(
            ["majority", "weighted", "best_confidence", "unanimous"]
        ),
        "normalize": st.sampled_from(
            ["auto", "choice", "text", "exact", upper_or_none]
        ),
        "timeout": st.one_of(st.none(), st.floats(0.5, 5.0)),
        "min_consensus": st.one_of(st.none(), st.floats(0.1, 1.0)),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    members=members_st,
    options=options_st,
    request_=st.sampled_from([CHOICE, TEXTS, NUMBER, FREE]),
    wall=st.floats(0.0, 1.0),
)
def test_the_hot_path_makes_what_the_general_path_makes(
    members: list[dict[str, Any]],
    options: dict[str, Any],
    request_: Request,
    wall: float,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        models = [Fixed(str(i), completion(**m)) for i, m in enumerate(members)]
        weights = [1.0 + i / 3 for i in range(len(models))]
        ensemble = Ensemble(models, weights=weights, **options)
        tasks = [done(loop, m.completion) for m in models]
        general, errors, timed_out = ensemble._tally_parallel(
            tasks, [wall] * len(tasks), frozenset(), request_
        )
        fast = ensemble._tally_answered(tasks, wall, request_)
        timeout = options["timeout"]
        if timeout is not None and any(
            max(m["latency"], wall) > timeout for m in members
        ):
            assert fast is None and timed_out  # the general path marks who was too slow
            return
        assert fast is not None and not errors and not timed_out
        assert fast == general
        assert fast.to_dict() == general.to_dict()
        assert [type(r.text) for r in fast.responses] == [
            type(r.text) for r in general.responses
        ]
    finally:
        loop.close()


def test_a_failed_or_cancelled_call_goes_through_the_general_path(loop) -> None:
    ensemble = Ensemble([Fixed("a", completion("A")), Fixed("b", completion("B"))])
    ok = done(loop, completion("A"))
    failed = done(loop, ResponseError("boom", status=500, provider="fixed"))
    cancelled = done(loop, None)
    for tasks in ([ok, failed], [cancelled, ok]):
        assert ensemble._tally_answered(tasks, 0.0, CHOICE) is None
    interrupted = done(loop, KeyboardInterrupt())
    assert ensemble._tally_answered([ok, interrupted], 0.0, CHOICE) is None
    with pytest.raises(KeyboardInterrupt):  # the general path raises it
        ensemble._tally_parallel([ok, interrupted], [0.0, 0.0], frozenset(), CHOICE)


class Captured:
    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]] = []

    def __call__(self, name: Any, measurements: Any, metadata: Any) -> None:
        self.items.append((name, dict(measurements), dict(metadata)))

    def timeless(self) -> list[tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]]:
        return [
            (n, {k: v for k, v in m.items() if k not in TIMING}, md)
            for n, m, md in self.items
        ]


async def predicted(ensemble: Ensemble, request: Request) -> tuple[object, list[Any]]:
    """A prediction (its result, or its error and the result it holds) and its events."""
    captured = Captured()
    events.attach("test-parallel-fast", [("crucible", "ensemble")], captured)
    try:
        outcome: object = await ensemble.predict_async(request)
    except InsufficientResponsesError as err:
        outcome = (type(err).__name__, str(err), err.result, err.errors)
    finally:
        events.detach("test-parallel-fast")
    return outcome, captured.timeless()


@pytest.mark.parametrize(
    ("texts", "options"),
    [
        (["The answer is B.", "B", "(B)", "Answer: C", "B"], {}),
        (["A", "B"], {"strategy": "unanimous"}),
        (["A", "A", "B"], {"min_consensus": 0.9}),
        (["no idea", "nothing"], {}),  # nobody readable: the prediction fails
        (["no idea", "nothing"], {"min_responses": 2}),
        (["B", "b", "C"], {"strategy": "weighted", "weights": [1.0, 0.5, 2.0]}),
        (["B", "C"], {"normalize": upper_or_none}),
        (["B", "C", "C"], {"timeout": 1.0}),  # all in time
    ],
)
async def test_a_prediction_looks_the_same_from_either_path(
    texts, options, monkeypatch
) -> None:
    members = [Fixed(str(i), completion(t)) for i, t in enumerate(texts)]
    fast = await predicted(Ensemble(members, **options), CHOICE)
    monkeypatch.setattr(Ensemble, "_tally_answered", lambda *args: None)
    general = await predicted(Ensemble(members, **options), CHOICE)
    assert fast == general
    names = [n[-2:] for n, _, _ in fast[1]]
    assert names[0] == ("predict", "start")
    assert names[-1] in (("predict", "stop"), ("predict", "exception"))


async def test_members_past_the_timeout_are_timed_out_and_billed() -> None:
    members = [
        Fixed("quick", completion("A", latency=0.5, cost=0.002)),
        Fixed("slow", completion("B", latency=9.0, cost=0.003)),
    ]
    result = await Ensemble(members, timeout=2.0).predict_async(CHOICE)
    quick, slow = result.responses
    assert (quick.status, slow.status) == ("answered", "timed_out")
    assert slow.cost == 0.003 and result.cost == pytest.approx(0.005)
    assert result.latency == 2.0 and result.votes == {"A": 1}


async def test_a_member_that_raises_in_its_first_step_is_recorded() -> None:
    class Raising(Fixed):
        async def complete(self, request: Request) -> Completion:
            raise ResponseError("HTTP 500", status=500, provider="fixed")

    members = [Fixed("a", completion("B")), Raising("bad", completion("B"))]
    result = await Ensemble(members).predict_async(CHOICE)
    assert [r.status for r in result.responses] == ["answered", "failed"]
    assert result.errors["fixed:bad"].startswith("ResponseError")
    assert result.cost == pytest.approx(0.001)  # a failed call is not billed


async def test_cancelled_while_the_calls_take_their_first_step() -> None:
    """Cancelled before the ensemble saw any answer: every call is cancelled or done, nothing leaks."""
    started: list[asyncio.Task[Any]] = []

    class Slow(Fixed):
        async def complete(self, request: Request) -> Completion:
            started.append(asyncio.current_task())  # type: ignore[arg-type]
            await asyncio.sleep(30)
            return self.completion

    members = [Fixed("quick", completion("A")), Slow("slow", completion("A"))]
    prediction = asyncio.create_task(Ensemble(members).predict_async(CHOICE))
    await asyncio.sleep(0)  # the prediction starts its calls
    prediction.cancel()
    with pytest.raises(asyncio.CancelledError):
        await prediction
    assert started and all(t.done() for t in started)
    assert started[0].cancelled()


async def test_a_huge_answer_is_read_but_not_remembered() -> None:
    huge = "x" * 5_000_000 + " B"
    members = [Fixed("a", completion(huge)), Fixed("b", completion("B"))]
    result = await Ensemble(members).predict_async(CHOICE)
    assert result.answer == "B" and result.votes == {"B": 2}
    memo = resolve_reading("auto", CHOICE).memo
    assert memo is not None and huge not in memo and "B" in memo


def test_the_memo_never_changes_an_answer() -> None:
    for request in (CHOICE, TEXTS, NUMBER, FREE):
        reading = resolve_reading("auto", request)
        read, memo = reading.read, reading.memo
        memoized = resolve_normalizer("auto", request)
        assert memo is not None
        for text in ANSWERS:
            expected = read(text)
            assert memoized(text) == expected and memoized(text) == expected
        assert all(type(k) is str and len(k) <= MEMO_TEXT for k in memo)


def test_a_callers_normalizer_is_never_memoized() -> None:
    seen: list[str] = []

    def counting(text: str) -> str | None:
        seen.append(text)
        return text or None

    reading = resolve_reading(counting, CHOICE)
    assert reading.read is counting and reading.memo is None
    assert resolve_normalizer(counting, CHOICE) is counting


def test_a_subclass_of_str_is_never_looked_up() -> None:
    memoized = resolve_normalizer("exact", FREE)
    assert memoized("B") == "B"
    assert (
        memoized(Shouting("Q")) == "Q"
    )  # not the "B" remembered, though it claims to equal it
    memo = resolve_reading("exact", FREE).memo
    assert memo is not None and all(type(k) is str for k in memo)


def test_memos_hold_a_bounded_number_of_answers(monkeypatch) -> None:
    for reading in list(_normalize._readings):  # from a known start: nothing remembered
        assert reading.memo is not None
        reading.memo.clear()
    monkeypatch.setattr(_normalize, "MEMO_ENTRIES", 50)
    monkeypatch.setattr(_normalize, "_remembered", 0)
    readers = [
        resolve_normalizer(
            "auto", Request(prompt="q", kind="choice", choices=(f"x{i}", f"y{i}"))
        )
        for i in range(5)
    ]
    for k in range(400):
        for read in readers:
            read(f"answer {k}")
        total = sum(len(r.memo or ()) for r in _normalize._readings)
        assert total <= 50
    assert readers[0]("x0") == "x0"  # still right after the memos were emptied


def test_a_memo_goes_with_its_reader() -> None:
    request = Request(prompt="q", kind="choice", choices=("only", "here"))
    resolve_normalizer("auto", request)("only")
    _normalize._resolve.cache_clear()
    gc.collect()
    assert all(
        not any(k == "only" for k in r.memo or ()) for r in list(_normalize._readings)
    )


async def test_an_ensembles_memo_stays_bounded_when_the_cache_drops_it(
    monkeypatch,
) -> None:
    """The ensemble keeps its last reading: emptied with the others though no cache holds it."""
    request = Request(prompt="q", kind="choice", choices=("left", "right"))
    members = [Fixed("a", completion("left")), Fixed("b", completion("right"))]
    ensemble = Ensemble(members)
    await ensemble.predict_async(request)
    _normalize._resolve.cache_clear()
    gc.collect()
    held = ensemble._reading[2]
    assert held in set(_normalize._readings) and held.memo
    monkeypatch.setattr(_normalize, "_remembered", _normalize.MEMO_ENTRIES)
    _normalize.remember(resolve_reading("auto", FREE).memo or {}, "x", "x")
    assert not held.memo


def test_nan_latencies_agree(loop) -> None:
    members = [
        Fixed("a", completion("A", latency=math.nan)),
        Fixed("b", completion("A")),
    ]
    ensemble = Ensemble(members, timeout=3.0)
    tasks = [done(loop, m.completion) for m in members]
    fast = ensemble._tally_answered(tasks, 0.1, CHOICE)
    general, _, _ = ensemble._tally_parallel(tasks, [0.1, 0.1], frozenset(), CHOICE)
    assert fast is not None
    assert fast.to_dict().keys() == general.to_dict().keys()
    assert fast.latency == general.latency and fast.votes == general.votes
    assert [r.status for r in fast.responses] == [r.status for r in general.responses]


@pytest.mark.parametrize("execution", ["parallel", "sequential"])
async def test_each_call_runs_in_its_own_task_named_for_its_member(execution) -> None:
    seen: list[tuple[str, bool]] = []
    outer = asyncio.current_task()

    class Looking(Fixed):
        async def complete(self, request: Request) -> Completion:
            task = asyncio.current_task()
            assert task is not None
            seen.append((task.get_name(), task is not outer))
            return self.completion

    model = Looking("a", completion("A"))
    ensemble = Ensemble([model, model], execution=execution, min_responses=2)
    await ensemble.predict_async(CHOICE)
    assert sorted(seen) == [
        ("ensemble member fixed:a", True),
        ("ensemble member fixed:a#2", True),
    ]


def test_memos_are_emptied_safely_while_other_threads_read_and_add(monkeypatch) -> None:
    monkeypatch.setattr(_normalize, "MEMO_ENTRIES", 20)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(
        1e-6
    )  # threads switch often: a walk of the memos gets interleaved
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(300):
                choices = (f"t{k}-{i % 40}", "other")
                read = resolve_normalizer("auto", Request(prompt="q", choices=choices))
                assert read(choices[0]) == choices[0] and read("neither") is None
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    assert sum(len(r.memo or ()) for r in list(_normalize._readings)) <= 20 + 8
