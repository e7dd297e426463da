"""The numbers: Condorcet gain, sequential savings, unanimous abstentions, correlated errors.

Every check compares a simulated rate on many items with its exact value for independent voters,
within four binomial standard errors (a false alarm about once in 16,000 runs; the seeds are fixed,
so a run is reproducible). Items are two-way choices, so every wrong answer is the same one and a
vote is right exactly when most members are.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Sequence

import pytest

from crucible_core.models import Profile, Request
from crucible_ensemble import Ensemble, EnsembleResult, log_odds_weights
from crucible_ensemble.simulation import correlated

ACCURACIES = (0.85, 0.88, 0.90, 0.92, 0.94)


async def run_all(ensemble: Ensemble, items: Sequence[Request]) -> list[EnsembleResult]:
    results: list[EnsembleResult] = []
    for start in range(0, len(items), 500):
        batch = items[start : start + 500]
        results += await asyncio.gather(*(ensemble.predict_async(r) for r in batch))
    return results


def outcomes(accuracies: Sequence[float]):
    """Every right/wrong pattern of independent voters, with its probability."""
    for pattern in itertools.product((True, False), repeat=len(accuracies)):
        prob = math.prod(
            p if ok else 1 - p for p, ok in zip(accuracies, pattern, strict=True)
        )
        yield pattern, prob


def sequential_calls(pattern: Sequence[bool]) -> int:
    """Calls a majority-of-5 sequential vote makes: stop once the rest cannot overturn the lead."""
    n = len(pattern)
    for k in range(1, n + 1):
        right = sum(pattern[:k])
        lead, second = max(right, k - right), min(right, k - right)
        if lead > second + (n - k):
            return k
    return n  # pragma: no cover - k = n always settles an odd vote


def rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags)


async def test_majority_of_five_reaches_the_condorcet_value(
    simulated_members, binary_items, condorcet, se
) -> None:
    n = 10_000
    items = binary_items(n)
    members = simulated_members(ACCURACIES)
    results = await run_all(Ensemble(members), items)
    expected = condorcet(ACCURACIES, 3)
    assert expected == pytest.approx(0.9915, abs=5e-5)
    accuracy = rate([r.answer == "A" for r in results])
    assert abs(accuracy - expected) < 4 * se(expected, n)
    # the members themselves answer at their profile accuracy, so the gain is the vote's
    for member, p in zip(members, ACCURACIES, strict=True):
        right = rate([member.answer(item)[1] is True for item in items])
        assert abs(right - p) < 4 * se(p, n)
    assert all(sum(r.votes.values()) == 5 for r in results)


async def test_sequential_stops_early_with_the_same_answers(
    simulated_members, binary_items, se
) -> None:
    n = 3_000
    items = binary_items(n, offset=20_000)
    members = simulated_members(ACCURACIES, seed=11)
    parallel = await run_all(Ensemble(members), items)
    sequential = await run_all(Ensemble(members, execution="sequential"), items)
    # the outcome is settled before the rest answer, so it is exactly the parallel one
    assert [r.answer for r in sequential] == [r.answer for r in parallel]
    expected = sum(p * sequential_calls(pat) for pat, p in outcomes(ACCURACIES))
    assert expected == pytest.approx(3.4, abs=0.1)
    calls = [r.members_called for r in sequential]
    mean = sum(calls) / n
    sd = math.sqrt(sum((c - mean) ** 2 for c in calls) / (n - 1))
    assert abs(mean - expected) < 4 * sd / math.sqrt(n)
    # it stops after three calls exactly when the first three agree
    for r in sequential:
        first3 = [resp.answer for resp in r.responses[:3]]
        assert (r.members_called == 3) == (len(set(first3)) == 1)
    assert sum(r.cost or 0 for r in sequential) < 0.75 * sum(
        r.cost or 0 for r in parallel
    )


async def test_unanimous_abstains_as_often_as_members_disagree(
    simulated_members, binary_items, se
) -> None:
    n = 3_000
    items = binary_items(n, offset=40_000)
    results = await run_all(
        Ensemble(simulated_members(ACCURACIES, seed=5), strategy="unanimous"), items
    )
    expected = 1 - math.prod(ACCURACIES) - math.prod(1 - p for p in ACCURACIES)
    assert expected == pytest.approx(0.42, abs=0.005)
    abstained = rate([r.abstained for r in results])
    assert abs(abstained - expected) < 4 * se(expected, n)
    answered = [r for r in results if not r.abstained]
    assert rate([r.answer == "A" for r in answered]) > 0.999


async def test_log_odds_weights_reach_the_weighted_optimum(
    simulated_members, binary_items, se
) -> None:
    accuracies = (
        0.55,
        0.60,
        0.62,
        0.95,
        0.96,
    )  # two strong members should outvote three weak
    n = 3_000
    members = simulated_members(accuracies, seed=3)
    names = [m.id for m in members]
    weights = log_odds_weights(dict(zip(names, accuracies, strict=True)))
    ensemble = Ensemble(members, strategy="weighted", weights=weights)
    items = binary_items(n, offset=60_000)
    weighted = await run_all(ensemble, items)
    majority = await run_all(Ensemble(members), items)
    w = [weights[name] for name in names]
    expected = sum(
        p
        for pattern, p in outcomes(accuracies)
        if sum(wi for wi, ok in zip(w, pattern, strict=True) if ok) > sum(w) / 2
    )
    expected_majority = sum(
        p for pattern, p in outcomes(accuracies) if sum(pattern) >= 3
    )
    assert expected > expected_majority + 0.02
    assert abs(rate([r.answer == "A" for r in weighted]) - expected) < 4 * se(
        expected, n
    )
    got_majority = rate([r.answer == "A" for r in majority])
    assert abs(got_majority - expected_majority) < 4 * se(expected_majority, n)


async def test_correlated_errors_shrink_the_gain(binary_items, se) -> None:
    n = 3_000
    items = binary_items(n, offset=80_000)

    def members(rho: float):
        return correlated(
            [
                Profile(name=f"acc-{p:.2f}", accuracy=p, latency="fast", error_rate=0.0)
                for p in ACCURACIES
            ],
            rho=rho,
            seed=9,
        )

    gains = {}
    for rho in (0.0, 0.7):
        group = members(rho)
        results = await run_all(Ensemble(group), items)
        accuracy = rate([r.answer == "A" for r in results])
        # each member keeps its own accuracy whatever rho
        for member, p in zip(group, ACCURACIES, strict=True):
            right = rate([member.answer(item)[1] is True for item in items])
            assert abs(right - p) < 4 * se(p, n)
        gains[rho] = accuracy - max(ACCURACIES)
        if rho == 0.0:
            expected = 0.99150
            assert abs(accuracy - expected) < 4 * se(expected, n)
    # independent: about +5 points over the best member; correlated: far less
    assert gains[0.0] > 0.04
    assert gains[0.7] < gains[0.0] - 4 * math.sqrt(2) * se(0.97, n)
    # and the correlation is real: members are wrong together more often than by chance
    group = members(0.7)
    both_wrong = rate(
        [
            group[0].answer(i)[1] is False and group[1].answer(i)[1] is False
            for i in items
        ]
    )
    assert both_wrong > (1 - ACCURACIES[0]) * (1 - ACCURACIES[1]) + 4 * se(0.02, n)


def test_correlated_keeps_given_simulated_members_and_refuses_others() -> None:
    from crucible_core.models import SimulatedModel
    from crucible_ensemble import EnsembleConfigurationError

    given = SimulatedModel("gpt-4", seed=4, virtual_time=True, timeout=3.0)
    (member,) = correlated([given], rho=0.3, seed=2)
    assert (member.seed, member.timeout, member.virtual_time) == (4, 3.0, True)
    assert (member.correlation, member.difficulty_seed) == (0.3, 2)
    with pytest.raises(EnsembleConfigurationError, match="must be simulated"):
        correlated([object()], rho=0.3)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="correlation"):
        correlated(["gpt-4"], rho=1.5)
