"""What a prediction returns: the ensemble's answer and every member's response."""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

from crucible_core.render import RenderMixin, Table, View

__all__ = ("EnsembleResult", "MemberResponse", "MemberStatus")

MemberStatus: TypeAlias = Literal[
    "answered", "unparsed", "failed", "timed_out", "cancelled"
]
"""What became of one member's call: it `answered` (and voted); answered but no answer could be
read from its text (`unparsed`, no vote); `failed` with an error; ran past the ensemble's timeout
(`timed_out`); or was `cancelled` because the outcome was settled without it."""


@attrs.define(frozen=True, kw_only=True)
class MemberResponse:
    """One member's part in a prediction."""

    member: str
    """The member's name (its model id; `#2`, `#3` for repeats)."""
    status: MemberStatus
    """What became of the call."""
    answer: str | None = None
    """The normalized answer it voted for (`None` unless `status == "answered"`)."""
    text: str | None = None
    """The raw text it returned."""
    confidence: float | None = None
    """Its own confidence in its answer, when the model reports one."""
    latency: float | None = None
    """Seconds the call took (as the model reports it; simulated seconds in virtual time)."""
    input_tokens: int = 0
    """Prompt tokens billed."""
    output_tokens: int = 0
    """Generated tokens billed."""
    cost: float | None = None
    """USD billed for the call, or `None` when unknown. A call cancelled or timed out was still
    sent, so it is billed: its completion's cost when it returned (in virtual time), else the
    price of a typical call to the member (500 prompt, 200 completion tokens). A failed call is
    not billed (`None`)."""
    error: str | None = None
    """`"ErrorType: message"` when the call failed or timed out."""

    @property
    def voted(self) -> bool:
        """Whether this response counted in the vote."""
        return self.status == "answered"


@attrs.define(frozen=True, kw_only=True)
class EnsembleResult(RenderMixin):
    """The ensemble's answer to one prompt, with the vote and every member's response.

    Examples:
        >>> r = EnsembleResult(answer="B", consensus=0.8, votes={"B": 4, "C": 1}, members_called=5)
        >>> r.answer, r.responders
        ('B', 5)
    """

    answer: str | None
    """The chosen (normalized) answer; `None` when the ensemble abstained."""
    text: str | None = None
    """The raw text of the first member, in ensemble order, that gave the chosen answer."""
    consensus: float = 0.0
    """Share of the votes that went to the chosen answer (to the most common one when it
    abstained), in [0, 1]; 0 when nobody voted."""
    confidence: float | None = None
    """The voting strategy's confidence in the answer (for a majority: the vote share)."""
    votes: dict[str, int] = attrs.field(factory=dict)
    """Votes per normalized answer, most first; they sum to the number of responders."""
    abstained: bool = False
    """Whether the ensemble declined to answer (members disagreed under `"unanimous"`, or the
    consensus was below `min_consensus`)."""
    responses: tuple[MemberResponse, ...] = ()
    """Every member called, in ensemble order."""
    cost: float | None = 0.0
    """Total USD of every call sent, cancelled and timed-out ones included (see
    [`MemberResponse.cost`][crucible_ensemble.MemberResponse.cost]); `None` if any of them has no
    known price."""
    latency: float = 0.0
    """Seconds from the first call to the decision (in virtual time, simulated seconds)."""
    members_called: int = 0
    """How many members were called (cancelled calls included)."""
    strategy: str = "majority"
    """The voting strategy's name."""
    execution: str = "parallel"
    """The execution strategy's name."""

    @property
    def responders(self) -> int:
        """How many members voted (answered with a readable answer)."""
        return sum(self.votes.values())

    @property
    def input_tokens(self) -> int:
        """Prompt tokens over all members."""
        return sum(r.input_tokens for r in self.responses)

    @property
    def output_tokens(self) -> int:
        """Generated tokens over all members."""
        return sum(r.output_tokens for r in self.responses)

    @property
    def errors(self) -> dict[str, str]:
        """`"ErrorType: message"` of each member that failed or timed out, by member."""
        return {r.member: r.error for r in self.responses if r.error is not None}

    def _view(self) -> View:
        facts: list[tuple[str, object]] = [
            ("answer", "(abstained)" if self.abstained else self.answer),
            ("consensus", self.consensus),
            ("confidence", self.confidence),
            ("votes", ", ".join(f"{a!r}: {n}" for a, n in self.votes.items()) or "—"),
            ("members called", self.members_called),
            ("cost (USD)", self.cost),
            ("latency (s)", self.latency),
            ("strategy", f"{self.strategy} / {self.execution}"),
        ]
        rows = [
            (
                r.member,
                r.status,
                r.answer,
                r.confidence,
                r.latency,
                r.input_tokens + r.output_tokens,
                r.cost,
                r.error,
            )
            for r in self.responses
        ]
        table = Table(
            headers=(
                "member",
                "status",
                "answer",
                "confidence",
                "latency",
                "tokens",
                "cost",
                "error",
            ),
            rows=rows,
            title="Members",
        )
        return View(title="Ensemble prediction", facts=facts, tables=(table,))
