"""`hedged()` and `Hedger` in virtual time: winners, losers, failures, budget, throttle, events."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from crucible_core import events
from crucible_core.exceptions import RateLimitError, ResponseError, ValidationError
from crucible_hedging import (
    AllAttemptsFailedError,
    Fixed,
    HedgeBudget,
    HedgedResult,
    Hedger,
    HedgingError,
    HedgingTimeoutError,
    InvalidHedgingConfigError,
    Percentile,
    Throttle,
    default_fatal,
    hedged,
    run_virtual,
)


def test_slow_primary_is_beaten_by_backup_and_cancelled(script: Any) -> None:
    fn = script([(10.0, "primary"), (0.1, "backup")])
    result = run_virtual(hedged(fn, policy=Fixed(delay=0.5)))
    assert isinstance(result, HedgedResult)
    assert result.value == "backup"
    assert result.winner_index == 1
    assert result.latency_ms == pytest.approx(600.0)
    assert (result.attempts, result.hedges_fired, result.cancelled) == (2, 1, 1)
    assert fn.cancelled == [0]
    assert result.delay_ms == pytest.approx(500.0)
    assert "winner" in result.render()
    assert result.to_dict()["value"] == "backup"


def test_fast_primary_sends_no_backup(script: Any) -> None:
    fn = script([(0.2, "primary")])
    result = run_virtual(hedged(fn, policy=Fixed(delay=0.5)))
    assert (result.value, result.attempts, result.winner_index) == ("primary", 1, 0)
    assert result.latency_ms == pytest.approx(200.0)
    assert fn.calls == 1


def test_primary_that_answers_before_backup_wins_and_backup_is_cancelled(
    script: Any,
) -> None:
    fn = script([(0.7, "primary"), (1.0, "backup")])
    result = run_virtual(hedged(fn, policy=Fixed(delay=0.5)))
    assert (result.value, result.winner_index, result.cancelled) == ("primary", 0, 1)
    assert fn.cancelled == [1]
    assert result.latency_ms == pytest.approx(700.0)


def test_losers_keep_running_when_not_cancelled(script: Any) -> None:
    fn = script([(1.0, "primary"), (0.1, "backup")])

    async def main() -> HedgedResult[Any]:
        result = await hedged(fn, policy=Fixed(delay=0.5), cancel_losers=False)
        assert fn.finished == [1]
        await asyncio.sleep(1.0)
        return result

    result = run_virtual(main())
    assert result.cancelled == 0
    assert fn.finished == [1, 0]
    assert fn.cancelled == []


def test_max_hedges_spaces_backups_by_the_delay(script: Any) -> None:
    fn = script([(10.0, "a"), (10.0, "b"), (0.25, "c")])
    result = run_virtual(hedged(fn, policy=Fixed(delay=1.0), max_hedges=2))
    assert (result.value, result.winner_index, result.hedges_fired) == ("c", 2, 2)
    assert result.latency_ms == pytest.approx(2250.0)
    assert sorted(fn.cancelled) == [0, 1]


def test_failed_attempt_starts_backup_at_once(script: Any) -> None:
    fn = script([(0.1, ResponseError("boom", status=500)), (0.3, "backup")])
    result = run_virtual(hedged(fn, policy=Fixed(delay=5.0)))
    assert (result.value, result.winner_index) == ("backup", 1)
    assert result.latency_ms == pytest.approx(400.0)


def test_failure_hedge_works_without_a_delay(script: Any) -> None:
    class Never:
        def delay(self, key: Any = None) -> float | None:
            return None

        def observe(self, outcome: Any) -> None:
            pass

    fn = script([(0.1, RateLimitError("429", status=429)), (0.3, "backup")])
    result = run_virtual(hedged(fn, policy=Never()))
    assert result.value == "backup"


def test_fatal_error_fails_fast_and_cancels_others(script: Any) -> None:
    fn = script([(10.0, "primary"), (0.1, TypeError("bad argument"))])
    with pytest.raises(TypeError, match="bad argument"):
        run_virtual(hedged(fn, policy=Fixed(delay=0.5)))
    assert fn.cancelled == [0]


def test_fatal_is_configurable(script: Any) -> None:
    fn = script([(0.1, KeyError("x")), (0.1, "never")])
    with pytest.raises(KeyError):
        run_virtual(hedged(fn, policy=Fixed(delay=0.5), fatal=(KeyError,)))
    fn = script([(0.1, TypeError("x")), (0.1, "second")])
    result = run_virtual(hedged(fn, policy=Fixed(delay=0.5), fatal=lambda e: False))
    assert result.value == "second"


def test_default_fatal_rule() -> None:
    assert default_fatal(ValidationError("bad"))
    assert default_fatal(ResponseError("bad request", status=400))
    assert not default_fatal(ResponseError("server", status=503))
    assert not default_fatal(RateLimitError("slow down", status=429))
    assert not default_fatal(TimeoutError())


def test_all_attempts_failing_raise_an_exception_group(script: Any) -> None:
    first = ResponseError("first", status=500)
    second = RateLimitError("second", status=429)
    fn = script([(0.1, first), (0.2, second)])
    with pytest.raises(AllAttemptsFailedError) as info:
        run_virtual(hedged(fn, policy=Fixed(delay=5.0), key="k"))
    err = info.value
    assert isinstance(err, ExceptionGroup)
    assert isinstance(err, HedgingError)
    assert list(err.exceptions) == [first, second]
    assert (err.attempts, err.key) == (2, "k")
    matched, rest = err.split(RateLimitError)
    assert isinstance(matched, AllAttemptsFailedError)
    assert matched.exceptions == (second,)
    assert rest is not None and rest.exceptions == (first,)
    again = pickle.loads(pickle.dumps(err))
    assert again.attempts == 2
    assert [str(e) for e in again.exceptions] == ["first", "second"]


def test_overall_timeout_cancels_everything(script: Any) -> None:
    fn = script([(10.0, "a"), (10.0, "b")])
    with pytest.raises(HedgingTimeoutError) as info:
        run_virtual(hedged(fn, policy=Fixed(delay=0.5), timeout=2.0))
    assert isinstance(info.value, TimeoutError)
    assert (info.value.timeout, info.value.attempts) == (2.0, 2)
    assert sorted(fn.cancelled) == [0, 1]


def test_cancelling_the_caller_cancels_every_attempt(script: Any) -> None:
    fn = script([(10.0, "a"), (10.0, "b")])

    async def main() -> None:
        task = asyncio.create_task(hedged(fn, policy=Fixed(delay=0.5)))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_virtual(main())
    assert sorted(fn.cancelled) == [0, 1]


def test_budget_denies_backups_beyond_its_share(
    script: Any, captured: list[Any]
) -> None:
    budget = HedgeBudget(ratio=0.1, burst=1)

    async def main() -> list[int]:
        fired = []
        for _ in range(3):
            fn = script([(1.0, "a"), (0.1, "b")])
            result = await hedged(fn, policy=Fixed(delay=0.5), budget=budget)
            fired.append(result.hedges_fired)
        return fired

    assert run_virtual(main()) == [1, 0, 0]
    assert (budget.requests, budget.spent, budget.denied) == (3, 1, 2)
    exhausted = [e for e in captured if e[0] == events.HEDGING_BUDGET_EXHAUSTED]
    assert len(exhausted) == 2
    assert exhausted[0][2]["reason"] == "budget"


def test_throttle_stops_hedging_while_failures_mount(script: Any) -> None:
    throttle = Throttle(max_tokens=4, token_ratio=1.0)
    hedger = Hedger(policy=Fixed(delay=0.5), throttle=throttle)
    overloaded = RateLimitError("429", status=429)

    async def main() -> list[int]:
        fired = []
        for _ in range(3):
            fn = script([(0.1, overloaded), (0.1, overloaded)])
            with pytest.raises(AllAttemptsFailedError) as info:
                await hedger.request(fn)
            fired.append(info.value.attempts - 1)
        return fired

    # two failures close the throttle (4 tokens, hedging needs more than 2)
    assert run_virtual(main()) == [1, 0, 0]
    assert hedger.report().throttled == 2
    assert hedger.report().failed == 3


def test_events_follow_the_request(script: Any, captured: list[Any]) -> None:
    fn = script([(10.0, "a"), (0.1, "b")])
    run_virtual(hedged(fn, policy=Fixed(delay=0.5), key="short"))
    names = [e[0] for e in captured]
    assert names == [
        events.HEDGING_REQUEST_START,
        events.HEDGING_HEDGE_FIRED,
        events.HEDGING_HEDGE_CANCELLED,
        events.HEDGING_HEDGE_WON,
        events.HEDGING_REQUEST_STOP,
    ]
    start, fired, cancelled, won, stop = captured
    assert start[1]["delay"] == pytest.approx(0.5)
    assert start[2]["key"] == "short"
    assert fired[1]["delay"] == pytest.approx(0.5)
    assert cancelled[2]["attempt"] == 0
    assert won[2]["winner_index"] == 1
    assert stop[1]["duration"] == pytest.approx(0.6)
    assert stop[1]["hedges_fired"] == 1


def test_failed_request_emits_exception_event(script: Any, captured: list[Any]) -> None:
    fn = script([(0.1, TypeError("bad"))])
    with pytest.raises(TypeError):
        run_virtual(hedged(fn, policy=Fixed(delay=0.5)))
    assert captured[-1][0] == events.HEDGING_REQUEST_EXCEPTION
    assert captured[-1][2]["error_type"] == "TypeError"


def test_hedger_learns_and_reports(script: Any) -> None:
    hedger = Hedger(policy=Percentile(p=50, window=10, min_samples=4), budget=1.0)

    async def main() -> None:
        for latency in (0.1, 0.2, 0.3, 0.4):
            await hedger.request(script([(latency, "x")]))
        assert hedger.policy.delay() == pytest.approx(0.25)
        result = await hedger.request(script([(10.0, "slow"), (0.05, "fast")]))
        assert result.winner_index == 1
        assert result.latency_ms == pytest.approx(300.0)

    run_virtual(main())
    report = hedger.report()
    assert (report.requests, report.hedges_fired, report.hedge_wins) == (5, 1, 1)
    assert report.hedge_rate == pytest.approx(0.2)
    assert report.latency(50) == pytest.approx(300.0)  # of 100, 200, 300, 400, 300 ms
    assert "Hedged requests" in report.render()
    assert "<table" in report._repr_html_()
    assert "Hedger(policy=Percentile" in repr(hedger)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"max_hedges": -1}, "max_hedges"),
        ({"max_hedges": 1.5}, "max_hedges"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"fatal": "TypeError"}, "fatal"),
        ({"budget": "5%"}, "budget"),
        ({"throttle": 3}, "throttle"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidHedgingConfigError) as info:
        Hedger(policy=Fixed(delay=0.1), **options)
    assert isinstance(info.value, ValueError)
    assert name in info.value.context


def test_bad_policy_fails_at_construction() -> None:
    with pytest.raises(InvalidHedgingConfigError, match="must be a policy"):
        Hedger(policy=0.5)  # type: ignore[arg-type]


def test_a_policy_returning_a_bad_delay_is_reported(script: Any) -> None:
    class Broken:
        def delay(self, key: Any = None) -> float | None:
            return -1.0

        def observe(self, outcome: Any) -> None:
            pass

    with pytest.raises(InvalidHedgingConfigError, match=r"returned the delay -1\.0"):
        run_virtual(hedged(script([(0.1, "x")]), policy=Broken()))
