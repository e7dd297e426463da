"""Operations on chains: merge, statistics, queries and diff."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from inline_snapshot import snapshot

import crucible_trace as ct

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def at(seconds: float, decision: str, **kwargs: object) -> ct.TraceEvent:
    return ct.create_event(
        "decision_made",
        decision,
        timestamp=T0 + dt.timedelta(seconds=seconds),
        **kwargs,  # type: ignore[arg-type]
    )


def test_statistics(sample_chain: ct.Chain) -> None:
    s = ct.statistics(sample_chain)
    assert s.event_count == 4
    assert s.counts_by_type == {
        "task_decomposed": 1,
        "decision_made": 1,
        "uncertainty_flagged": 1,
        "ambiguity_flagged": 1,
    }
    assert s.mean_confidence == pytest.approx(0.7)
    assert (s.min_confidence, s.max_confidence, s.unknown_confidence) == (0.4, 0.9, 1)
    assert s.decision_points == 1
    assert s.duration == 6.0
    assert (s.first_event_at, s.last_event_at) == (T0, T0 + dt.timedelta(seconds=6))
    assert s.render() == snapshot("""\
Chain statistics
════════════════
chain               chain_01JBZ0000000000000000000AA
events              4
mean confidence     0.7
min confidence      0.4
max confidence      0.9
unknown confidence  1
decision points     1
duration (s)        6.000

type                 count
───────────────────  ─────
task_decomposed          1
decision_made            1
uncertainty_flagged      1
ambiguity_flagged        1\
""")


def test_statistics_of_an_empty_chain() -> None:
    s = ct.statistics(ct.Chain(name="empty"))
    assert (s.event_count, s.mean_confidence, s.duration, s.first_event_at) == (
        0,
        None,
        0.0,
        None,
    )


def test_queries(sample_chain: ct.Chain) -> None:
    assert [e.decision for e in ct.find_decision_points(sample_chain)] == [
        "Use an LRU cache"
    ]
    assert [e.confidence for e in ct.find_low_confidence(sample_chain)] == [0.4]
    assert [e.confidence for e in ct.find_low_confidence(sample_chain, 0.85)] == [
        0.8,
        0.4,
    ]
    assert ct.find_low_confidence(sample_chain, 0.0) == ()
    assert [e.id for e in ct.events_by_type(sample_chain, "decision_made")] == [
        "evt_01JBZ0000000000000000000B2"
    ]
    with pytest.raises(ct.InvalidEventError, match="unknown event type"):
        ct.events_by_type(sample_chain, "decison_made")
    with pytest.raises(ct.InvalidEventError, match=r"in \[0, 1\]"):
        ct.find_low_confidence(sample_chain, 70)


def test_merge_interleaves_by_time_and_keeps_each_order() -> None:
    a1, a2 = at(0, "a1"), at(10, "a2")
    a3 = at(5, "a3", parent_ids=[a2.id])  # out of time order, but after its parent
    b1, b2 = at(1, "b1"), at(7, "b2")
    first = ct.add_events(ct.Chain(name="A", metadata={"k": 1, "a": 1}), [a1, a2, a3])
    second = ct.add_events(ct.Chain(name="B", metadata={"k": 2}), [b1, b2, a1])
    merged = ct.merge_chains(first, second)
    assert [e.decision for e in merged.events] == ["a1", "b1", "b2", "a2", "a3"]
    assert merged.name == "A + B"
    assert merged.metadata == {"k": 2, "a": 1}
    assert merged.id not in (first.id, second.id)
    named = ct.merge_chains(first, second, name="both", metadata={})
    assert (named.name, named.metadata) == ("both", {})


def test_merge_rejects_conflicting_ids() -> None:
    e = at(0, "x")
    other = attrs.evolve(e, decision="y")
    with pytest.raises(ct.InvalidChainError, match="different content"):
        ct.merge_chains(
            ct.add_event(ct.Chain(name="a"), e), ct.add_event(ct.Chain(name="b"), other)
        )


def test_merge_emits_chain_created(captured: list) -> None:
    merged = ct.merge_chains(ct.Chain(name="a"), ct.Chain(name="b"))
    assert captured == [
        (
            ("crucible", "trace", "chain", "created"),
            {},
            {"chain_id": merged.id, "name": "a + b"},
        )
    ]


def test_diff_by_id_and_by_content(sample_chain: ct.Chain) -> None:
    events = list(sample_chain.events)
    reparsed = ct.parse_llm_output(ct.to_tags(sample_chain), "again").chain
    assert ct.diff(sample_chain, reparsed).identical

    fresh = [
        ct.create_event(
            e.type,
            "  " + e.decision.upper() + " ",
            e.reasoning,
            confidence=e.confidence,
        )
        for e in events[:2]
    ]
    changed = ct.diff(
        sample_chain,
        ct.add_events(ct.Chain(name="b"), [fresh[0], fresh[1], at(0, "new")]),
    )
    assert [e.decision for e in changed.removed] == [
        events[2].decision,
        events[3].decision,
    ]
    assert [e.decision for e in changed.added] == ["new"]
    assert [(c.before.id, c.fields) for c in changed.changed] == [
        (events[0].id, ("decision",)),
        (events[1].id, ("decision", "alternatives", "code_section", "spec_reference")),
    ]
    assert changed.unchanged == 0
    assert not changed.identical
    assert changed.render() == snapshot("""\
Chain diff
══════════
removed    2
added      1
changed    2
unchanged  0

   type                 decision                             fields
─  ───────────────────  ───────────────────────────────────  ────────────────────────────────────────────────────
-  uncertainty_flagged    Eviction under concurrent writers
-    ambiguity_flagged  Spec does not say what a miss costs
+        decision_made                                  new
~      task_decomposed     SPLIT INTO STORAGE AND EVICTION                                               decision
~        decision_made                    USE AN LRU CACHE   decision, alternatives, code_section, spec_reference\
""")
