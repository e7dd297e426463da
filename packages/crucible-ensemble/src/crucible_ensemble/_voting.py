"""Voting strategies: how the members' normalized answers become one answer.

A strategy sees one [`Ballot`][crucible_ensemble.Ballot] per member that answered and returns a
[`Decision`][crucible_ensemble.Decision] (`answer=None` abstains). Strategies used with
`execution="sequential"` may also say when the outcome can no longer change (`settled`) and how
many more answers could settle it (`needed`); without those the ensemble simply calls everyone.

Tie rule (every built-in strategy): among answers with equal score, the one given by the member
listed first in the ensemble wins. Put your most trusted model first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol, TypeAlias, runtime_checkable

import attrs

from crucible_ensemble._checks import is_real
from crucible_ensemble.exceptions import EnsembleConfigurationError

__all__ = (
    "Ballot",
    "BestConfidence",
    "Custom",
    "Decision",
    "Majority",
    "StrategyName",
    "Unanimous",
    "VotingStrategy",
    "Weighted",
    "log_odds_weights",
    "resolve_strategy",
)

StrategyName: TypeAlias = Literal[
    "majority", "weighted", "best_confidence", "unanimous"
]
"""The built-in voting strategies by name."""


@attrs.define(frozen=True, kw_only=True)
class Ballot:
    """One member's vote: its normalized answer, its weight and (when known) its confidence."""

    member: str
    """The member's name in the ensemble (its model id, suffixed `#2`, `#3` when repeated)."""
    position: int
    """The member's index in the ensemble (0 = listed first); breaks ties."""
    answer: str
    """The normalized answer."""
    weight: float = 1.0
    """The member's weight (`weights=` of the ensemble; 1 by default)."""
    confidence: float | None = None
    """The member's own confidence in its answer, in [0, 1], when the model reports one."""


@attrs.define(frozen=True, kw_only=True)
class Decision:
    """What a strategy decided: an answer, or `None` to abstain, and its confidence."""

    answer: str | None
    """The chosen answer; `None` abstains."""
    confidence: float | None = None
    """How sure the strategy is, in [0, 1] (its meaning depends on the strategy)."""


@runtime_checkable
class VotingStrategy(Protocol):
    """What a voting strategy offers: a `name` and `decide`.

    Optionally, for early stopping under `execution="sequential"`, also
    `settled(ballots, pending) -> bool` (the outcome cannot change whatever the `pending` members,
    given as their weights in call order, answer) and `needed(ballots, pending) -> int` (how many
    more answers could settle it).
    """

    @property
    def name(self) -> str:
        """A short name shown in results and events."""
        ...

    def decide(self, ballots: Sequence[Ballot]) -> Decision:
        """The decision over `ballots` (never empty)."""
        ...


def _leaders(
    ballots: Sequence[Ballot], *, weighted: bool
) -> tuple[float, str | None, float]:
    """`(leader's score, leader, runner-up's score)`; ties go to the member listed first."""
    scores: dict[str, float] = {}
    first: dict[str, int] = {}
    for b in ballots:
        answer = b.answer
        if answer in scores:
            scores[answer] += b.weight if weighted else 1.0
            if b.position < first[answer]:
                first[answer] = b.position
        else:
            scores[answer] = b.weight if weighted else 1.0
            first[answer] = b.position
    lead: str | None = None
    top = second = 0.0
    for answer, score in scores.items():
        if (
            lead is None
            or score > top
            or (score == top and first[answer] < first[lead])
        ):
            if lead is not None:
                second = top
            lead, top = answer, score
        elif score > second:
            second = score
    return top, lead, second


def _settled(
    ballots: Sequence[Ballot], pending: Sequence[float], *, weighted: bool
) -> bool:
    if not pending:
        return True
    if not ballots:
        return False
    top, _, second = _leaders(ballots, weighted=weighted)
    rest = sum(pending) if weighted else float(len(pending))
    return top > second + rest


def _needed(
    ballots: Sequence[Ballot], pending: Sequence[float], *, weighted: bool
) -> int:
    """The fewest next answers that, all agreeing with the leader, would settle the vote."""
    lead, _, second = (
        _leaders(ballots, weighted=weighted) if ballots else (0.0, None, 0.0)
    )
    values = list(pending) if weighted else [1.0] * len(pending)
    rest = sum(values)
    for m, value in enumerate(values, start=1):
        lead += value
        rest -= value
        if lead > second + rest:
            return m
    return len(values)


@attrs.define(frozen=True)
class Majority:
    """The most common answer wins; ties go to the answer of the member listed first.

    Confidence is the winner's share of the votes. Member weights are ignored (see
    [`Weighted`][crucible_ensemble.Weighted]).
    """

    @property
    def name(self) -> str:
        """`"majority"`."""
        return "majority"

    def decide(self, ballots: Sequence[Ballot]) -> Decision:
        """The plurality answer over `ballots`."""
        score, answer, _ = _leaders(ballots, weighted=False)
        return Decision(answer=answer, confidence=score / len(ballots))

    def settled(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> bool:
        """True when the leader has more votes than the runner-up could still reach."""
        return _settled(ballots, pending, weighted=False)

    def needed(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> int:
        """The fewest further agreeing votes that would settle it (3 of 5 at the start)."""
        return _needed(ballots, pending, weighted=False)


@attrs.define(frozen=True)
class Weighted:
    """The answer with the largest total member weight wins; ties go to the member listed first.

    Weights come from the ensemble's `weights=` (all 1 when not given, which makes this
    [`Majority`][crucible_ensemble.Majority]). Log-odds weights `log(p / (1 - p))` from each
    member's accuracy `p` ([`log_odds_weights`][crucible_ensemble.log_odds_weights]) make the vote
    the most likely answer for independent members. Confidence is the winner's share of the total
    weight.
    """

    @property
    def name(self) -> str:
        """`"weighted"`."""
        return "weighted"

    def decide(self, ballots: Sequence[Ballot]) -> Decision:
        """The heaviest answer over `ballots`."""
        score, answer, _ = _leaders(ballots, weighted=True)
        total = sum(b.weight for b in ballots)
        if total <= 0:
            return Majority().decide(ballots)
        return Decision(answer=answer, confidence=score / total)

    def settled(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> bool:
        """True when the leader outweighs the runner-up plus every pending member."""
        return _settled(ballots, pending, weighted=True)

    def needed(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> int:
        """The fewest next members whose agreeing weight would settle it."""
        return _needed(ballots, pending, weighted=True)


@attrs.define(frozen=True)
class BestConfidence:
    """The answer of the most confident member wins.

    Members that report no confidence count as 0. Ties (including nobody reporting one) go to the
    answer with more votes, then to the member listed first. Confidence is the winner's own.
    """

    @property
    def name(self) -> str:
        """`"best_confidence"`."""
        return "best_confidence"

    def decide(self, ballots: Sequence[Ballot]) -> Decision:
        """The most confident member's answer."""
        counts: dict[str, int] = {}
        for b in ballots:
            counts[b.answer] = counts.get(b.answer, 0) + 1
        best = max(
            ballots,
            key=lambda b: (
                b.confidence if b.confidence is not None else 0.0,
                counts[b.answer],
                -b.position,
            ),
        )
        return Decision(answer=best.answer, confidence=best.confidence)

    def settled(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> bool:
        """True when everyone has answered or someone is certain (confidence 1)."""
        return not pending or any(b.confidence == 1.0 for b in ballots)

    def needed(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> int:
        """Everyone pending: any of them could be more confident."""
        return len(pending)


@attrs.define(frozen=True)
class Unanimous:
    """Answers only when every member that answered agrees; otherwise abstains.

    Confidence is 1 when it answers. With `execution="sequential"` it stops at the first
    disagreement.
    """

    @property
    def name(self) -> str:
        """`"unanimous"`."""
        return "unanimous"

    def decide(self, ballots: Sequence[Ballot]) -> Decision:
        """The common answer, or an abstention."""
        first = ballots[0].answer
        if all(b.answer == first for b in ballots):
            return Decision(answer=first, confidence=1.0)
        return Decision(answer=None)

    def settled(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> bool:
        """True once two members disagree, or everyone has answered."""
        return not pending or len({b.answer for b in ballots}) > 1

    def needed(self, ballots: Sequence[Ballot], pending: Sequence[float]) -> int:
        """Two answers first (the least that can disagree), then one at a time."""
        return min(len(pending), 1 if ballots else 2)


@attrs.define(frozen=True)
class Custom:
    """A user-supplied strategy from a function `ballots -> answer | None | Decision`.

    The function sees every ballot and returns the answer (a string), `None` to abstain, or a full
    [`Decision`][crucible_ensemble.Decision]. Sequential execution calls every member, since a
    plain function cannot say when its outcome is settled.

    Examples:
        >>> def longest(ballots):
        ...     return max(ballots, key=lambda b: len(b.answer)).answer
        >>> Custom(longest).decide([Ballot(member="m", position=0, answer="42")])
        Decision(answer='42', confidence=None)
    """

    function: Callable[[Sequence[Ballot]], str | Decision | None]
    """The function deciding."""
    label: str | None = attrs.field(default=None, kw_only=True)
    """The name shown in results (default: the function's name)."""

    @property
    def name(self) -> str:
        """`label`, or the function's `__name__`."""
        return self.label or str(getattr(self.function, "__name__", "custom"))

    def decide(self, ballots: Sequence[Ballot]) -> Decision:
        """Whatever the function returns, as a `Decision`."""
        out = self.function(ballots)
        if out is None or isinstance(out, str):
            return Decision(answer=out)
        if isinstance(out, Decision):
            return out
        raise EnsembleConfigurationError(
            f"the voting function {self.name!r} returned {out!r}; it must return an answer "
            "(a string), None to abstain, or a `Decision`",
            strategy=self.name,
        )


_BUILTIN: dict[str, VotingStrategy] = {
    "majority": Majority(),
    "weighted": Weighted(),
    "best_confidence": BestConfidence(),
    "unanimous": Unanimous(),
}


def resolve_strategy(
    strategy: StrategyName | VotingStrategy | Callable[[Sequence[Ballot]], object],
) -> VotingStrategy:
    """The strategy object for a name, a strategy, or a plain voting function.

    Raises:
        EnsembleConfigurationError: for an unknown name or an object that is neither.
    """
    if isinstance(strategy, str):
        try:
            return _BUILTIN[strategy]
        except KeyError:
            raise EnsembleConfigurationError(
                f"unknown voting strategy {strategy!r}; use one of {tuple(_BUILTIN)}, a "
                "`VotingStrategy`, or a function `ballots -> answer | None`",
                strategy=strategy,
            ) from None
    if isinstance(strategy, VotingStrategy):
        return strategy
    if callable(strategy):
        return Custom(strategy)  # type: ignore[arg-type]
    raise EnsembleConfigurationError(
        f"`strategy` must be a name, a `VotingStrategy` or a function, got {strategy!r}",
        strategy=strategy,
    )


def log_odds_weights(
    accuracies: Mapping[str, float], *, floor: float = 0.0
) -> dict[str, float]:
    """Log-odds weights `log(p / (1 - p))` from each member's accuracy `p`.

    For independent members answering a two-way question these make a weighted vote the most
    likely answer (Nitzan & Paroush, 1982). Accuracies at or below 1/2 get `floor` (a member no
    better than a coin adds nothing); an accuracy of 1 is capped at 1 - 1e-6.

    Args:
        accuracies: accuracy in [0, 1] by member name.
        floor: the weight of members with accuracy ≤ 0.5.

    Raises:
        EnsembleConfigurationError: if an accuracy is outside [0, 1].

    Examples:
        >>> w = log_odds_weights({"sim:gpt-4": 0.94, "sim:llama-3-70b": 0.87})
        >>> round(w["sim:gpt-4"], 3), round(w["sim:llama-3-70b"], 3)
        (2.752, 1.901)
    """
    out: dict[str, float] = {}
    for name, p in accuracies.items():
        if not is_real(p) or not 0.0 <= p <= 1.0:
            raise EnsembleConfigurationError(
                f"accuracy of {name!r} must be in [0, 1], got {p!r}",
                member=name,
                accuracy=p,
            )
        q = min(float(p), 1.0 - 1e-6)
        out[name] = math.log(q / (1.0 - q)) if q > 0.5 else floor
    return out
