"""Voting invariants (hypothesis) and the strategies' stopping rules."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible_core.exceptions import ResponseError
from crucible_core.models import Completion, Request
from crucible_ensemble import (
    Ballot,
    BestConfidence,
    Ensemble,
    EnsembleConfigurationError,
    Majority,
    Unanimous,
    Weighted,
    log_odds_weights,
)
from crucible_ensemble._voting import resolve_strategy

REQUEST = Request(prompt="pick", kind="choice", choices=("A", "B", "C"))


class Fixed:
    """A member answering `text`, or failing when `text` is None."""

    def __init__(self, name: str, text: str | None) -> None:
        self.name, self.text = name, text

    @property
    def id(self) -> str:
        return self.name

    @property
    def provider(self) -> str:
        return "fixed"

    async def complete(self, request: Request) -> Completion:
        if self.text is None:
            raise ResponseError("scripted failure", status=500)
        return Completion(text=self.text, latency=0.1, cost=0.0)

    async def aclose(self) -> None:
        pass


answers = st.lists(st.sampled_from(["A", "B", "C", None]), min_size=1, max_size=7)


def run(texts, **options):
    members = [Fixed(f"m{i}", t) for i, t in enumerate(texts)]
    return asyncio.run(Ensemble(members, **options).predict_async(REQUEST))


@settings(max_examples=60, deadline=None)
@given(
    answers, st.sampled_from(["majority", "weighted", "unanimous", "best_confidence"])
)
def test_votes_sum_to_responders_and_consensus_is_a_share(texts, strategy) -> None:
    if all(t is None for t in texts):
        texts = [*texts, "A"]
    result = run(texts, strategy=strategy)
    responders = sum(t is not None for t in texts)
    assert sum(result.votes.values()) == responders == result.responders
    assert 0.0 <= result.consensus <= 1.0
    assert result.members_called == len(texts)
    if not result.abstained:
        assert (
            result.votes[result.answer] == max(result.votes.values())
            or strategy != "majority"
        )


@settings(max_examples=60, deadline=None)
@given(answers.filter(lambda t: any(x is not None for x in t)), st.randoms())
def test_member_order_changes_a_majority_only_through_the_tie_rule(texts, rnd) -> None:
    order = list(range(len(texts)))
    rnd.shuffle(order)
    shuffled = [texts[i] for i in order]
    a, b = run(texts), run(shuffled)
    assert a.votes == b.votes
    top = max(a.votes.values())
    leaders = {x for x, n in a.votes.items() if n == top}
    if len(leaders) == 1:
        assert a.answer == b.answer
    else:  # tie: the leader given by the member listed first wins
        assert a.answer == next(t for t in texts if t in leaders)
        assert b.answer == next(t for t in shuffled if t in leaders)


class _SameAsMajority(Majority):
    """Majority under another type: the ensemble decides through `decide`, not its shortcut."""


@settings(max_examples=80, deadline=None)
@given(answers.filter(lambda t: any(x is not None for x in t)))
def test_the_majority_shortcut_decides_as_majority_decide(texts) -> None:
    fast, slow = run(texts), run(texts, strategy=_SameAsMajority())
    assert (fast.answer, fast.confidence, fast.consensus) == (
        slow.answer,
        slow.confidence,
        slow.consensus,
    )
    assert list(fast.votes.items()) == list(slow.votes.items())  # same order too
    assert list(fast.votes.values()) == sorted(fast.votes.values(), reverse=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("AB"), min_size=1, max_size=9))
def test_sequential_always_agrees_with_parallel(texts) -> None:
    parallel = run(texts)
    sequential = run(texts, execution="sequential")
    assert sequential.answer == parallel.answer
    assert sequential.members_called <= parallel.members_called


def ballots(*answers: str, weights=None, confidences=None) -> list[Ballot]:
    return [
        Ballot(
            member=f"m{i}",
            position=i,
            answer=a,
            weight=weights[i] if weights else 1.0,
            confidence=confidences[i] if confidences else None,
        )
        for i, a in enumerate(answers)
    ]


def test_majority_settles_and_needs() -> None:
    m = Majority()
    assert m.needed([], [1.0] * 5) == 3
    assert not m.settled(ballots("A", "A"), [1.0] * 3)
    assert m.settled(ballots("A", "A", "A"), [1.0] * 2)
    assert m.needed(ballots("A", "A", "B"), [1.0] * 2) == 1
    assert m.settled(ballots("A"), [])


def test_weighted_settles_on_weight() -> None:
    w = Weighted()
    assert w.settled(ballots("A", weights=[5.0]), [1.0, 1.0, 1.0])
    assert not w.settled(ballots("A", weights=[2.0]), [1.0, 1.0, 1.0])
    assert w.needed([], [5.0, 1.0, 1.0]) == 1
    zero = w.decide(ballots("A", "B", "B", weights=[0.0, 0.0, 0.0]))
    assert zero.answer == "B"


def test_best_confidence_and_unanimous_rules() -> None:
    best = BestConfidence().decide(ballots("A", "B", confidences=[0.4, 0.8]))
    assert (best.answer, best.confidence) == ("B", 0.8)
    none = BestConfidence().decide(ballots("A", "B", "B"))
    assert none.answer == "B"  # nobody reports: the most votes
    assert BestConfidence().settled(ballots("A", confidences=[1.0]), [1.0])
    assert BestConfidence().needed([], [1.0, 1.0]) == 2
    u = Unanimous()
    assert u.settled(ballots("A", "B"), [1.0])
    assert not u.settled(ballots("A", "A"), [1.0])
    assert u.needed([], [1.0] * 4) == 2 and u.needed(ballots("A"), [1.0] * 3) == 1


def test_log_odds_weights() -> None:
    w = log_odds_weights({"a": 0.5, "b": 0.75, "c": 1.0, "d": 0.2}, floor=0.01)
    assert w["a"] == w["d"] == 0.01
    assert w["b"] == pytest.approx(1.0986, abs=1e-4)
    assert w["c"] == pytest.approx(13.8155, abs=1e-3)
    with pytest.raises(EnsembleConfigurationError, match="in \\[0, 1\\]"):
        log_odds_weights({"a": 1.2})


def test_resolve_strategy_accepts_objects() -> None:
    assert resolve_strategy(Majority()).name == "majority"


def test_best_confidence_differs_from_majority_with_simulated_members() -> None:
    """Simulated members report a calibrated confidence, so best_confidence is its own strategy."""
    from crucible_core.models import Request, SimulatedModel
    from crucible_ensemble import Ensemble, evaluate_ensemble

    names = ("gpt-4", "claude-3", "gemini-pro", "llama-3-70b", "mixtral-8x7b")
    members = [SimulatedModel(p, seed=9, virtual_time=True) for p in names]
    letters = ("A", "B", "C", "D")
    items = [Request(prompt=f"q{i}", reference=letters[i % 4], kind="choice", choices=letters)
             for i in range(300)]  # fmt: skip
    results = {
        strategy: evaluate_ensemble(Ensemble(members, strategy=strategy), items)
        for strategy in ("majority", "best_confidence")
    }
    majority = results["majority"].correct("ensemble")
    best = results["best_confidence"].correct("ensemble")
    assert majority != best  # some items decided differently
    single = Ensemble(members, strategy="best_confidence").predict(items[0])
    assert single.confidence is not None and 0 < single.confidence < 1
