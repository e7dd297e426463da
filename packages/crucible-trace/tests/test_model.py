"""Events, chains, validation and the registry of event types."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest
from inline_snapshot import snapshot

import crucible_trace as ct

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_builtin_types_are_the_eleven_of_report_and_readme() -> None:
    assert sorted(ct.BUILTIN_EVENT_TYPES) == sorted(
        [
            "hypothesis_formed",
            "alternative_rejected",
            "constraint_evaluated",
            "pattern_applied",
            "ambiguity_flagged",
            "confidence_updated",
            "task_decomposed",
            "alternative_considered",
            "constraint_identified",
            "decision_made",
            "uncertainty_flagged",
        ]
    )
    assert dict(ct.event_types()) == dict(ct.BUILTIN_EVENT_TYPES)


def test_register_and_unregister_a_type() -> None:
    assert not ct.is_event_type("test_written")
    ct.register_event_type("test_written", description="a test was written")
    try:
        ct.register_event_type(
            "test_written", description="a test was written"
        )  # idempotent
        assert ct.event_types()["test_written"] == "a test was written"
        assert ct.create_event("test_written", "d").type == "test_written"
        with pytest.raises(ct.InvalidEventError, match="already registered"):
            ct.register_event_type("test_written", description="other")
    finally:
        assert ct.unregister_event_type("test_written")
    assert not ct.unregister_event_type("test_written")
    with pytest.raises(ct.InvalidEventError, match="unknown event type 'test_written'"):
        ct.create_event("test_written", "d")


@pytest.mark.parametrize(
    ("name", "description", "match"),
    [
        ("Bad-Name", "x", "lowercase"),
        ("", "x", "lowercase"),
        ("ok_name", "  ", "non-empty"),
    ],
)
def test_register_rejects_bad_input(name: str, description: str, match: str) -> None:
    with pytest.raises(ct.InvalidEventError, match=match):
        ct.register_event_type(name, description=description)


def test_builtin_types_cannot_be_removed() -> None:
    with pytest.raises(ct.InvalidEventError, match="built-in"):
        ct.unregister_event_type("decision_made")


def test_create_event_defaults() -> None:
    e = ct.create_event("decision_made", "Use a dict")
    assert e.id.startswith("evt_")
    assert e.timestamp.tzinfo is not None
    assert (e.reasoning, e.alternatives, e.confidence, e.parent_ids, e.metadata) == (
        "",
        (),
        None,
        (),
        {},
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "nope"}, "type"),
        ({"decision": "  "}, "decision"),
        ({"decision": 3}, "decision"),
        ({"reasoning": None}, "reasoning"),
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"confidence": float("nan")}, "confidence"),
        ({"confidence": True}, "confidence"),
        ({"confidence": "0.5"}, "confidence"),
        ({"alternatives": "a, b"}, "alternatives"),
        ({"alternatives": ["ok", ""]}, "alternatives"),
        ({"parent_ids": "evt_01JBZ0000000000000000000B1"}, "parent_ids"),
        ({"parent_ids": ["../../etc"]}, "parent_ids"),
        ({"parent_ids": ["evt_01JBZ0000000000000000000B1"] * 2}, "parent_ids"),
        ({"id": "x"}, "id"),
        (
            {
                "id": "evt_01JBZ0000000000000000000B1",
                "parent_ids": ["evt_01JBZ0000000000000000000B1"],
            },
            "parent_ids",
        ),
        ({"timestamp": dt.datetime(2025, 1, 1)}, "timestamp"),  # noqa: DTZ001 - naive on purpose
        ({"code_section": 1}, "code_section"),
    ],
)
def test_event_rules(kwargs: dict, field: str) -> None:
    args = {"type": "decision_made", "decision": "d"} | kwargs
    with pytest.raises(ct.InvalidEventError) as info:
        ct.create_event(args.pop("type"), args.pop("decision"), **args)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_validate_event_accepts_events_and_mappings() -> None:
    e = ct.create_event("decision_made", "d", confidence=0.5)
    assert ct.validate_event(e) is e
    made = ct.validate_event(
        {"type": "decision_made", "decision": "d", "alternatives": ["a"]}
    )
    assert made.alternatives == ("a",)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"type": "decision_made"}, "needs 'decision'"),
        ({"decision": "d"}, "needs 'type'"),
        (
            {"type": "decision_made", "decision": "d", "colour": "red"},
            "unknown event fields",
        ),
        ({"type": "decision_made", "decision": "d", "confidence": 2}, r"in \[0, 1\]"),
        (
            {"type": "decision_made", "decision": "d", "timestamp": "not a time"},
            "cannot read",
        ),
        (["not", "a", "mapping"], "expected a TraceEvent"),
    ],
)
def test_validate_event_rejects(value: object, match: str) -> None:
    with pytest.raises(ct.InvalidEventError, match=match):
        ct.validate_event(value)  # type: ignore[arg-type]


def test_chain_rules() -> None:
    a = ct.create_event("decision_made", "a")
    b = ct.create_event("decision_made", "b", parent_ids=[a.id])
    with pytest.raises(ct.InvalidChainError, match="appears twice"):
        ct.Chain(name="x", events=[a, a])
    with pytest.raises(ct.InvalidChainError, match="not an earlier event") as info:
        ct.Chain(name="x", events=[b, a])
    assert info.value.event_id == b.id
    with pytest.raises(ct.InvalidChainError, match="not a crucible id"):
        ct.Chain(id="../x", name="x")
    with pytest.raises(ct.InvalidChainError, match="timezone-aware"):
        ct.Chain(name="x", created_at=dt.datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ct.InvalidChainError, match="holds `TraceEvent`s"):
        ct.Chain(name="x", events=[{"type": "decision_made"}])  # type: ignore[list-item]
    with pytest.raises(ct.InvalidChainError, match="name must be a string"):
        ct.Chain(name=3)  # type: ignore[arg-type]


def test_chain_access(sample_chain: ct.Chain) -> None:
    assert len(sample_chain) == 4
    assert [e.type for e in sample_chain][:2] == ["task_decomposed", "decision_made"]
    assert (
        sample_chain.event("evt_01JBZ0000000000000000000B2").decision
        == "Use an LRU cache"
    )
    with pytest.raises(KeyError):
        sample_chain.event("evt_01JBZ0000000000000000000ZZ")


def test_new_chain_emits_and_takes_options(captured: list) -> None:
    chain = ct.new_chain(
        "n", id="chain_01JBZ0000000000000000000AA", metadata={"k": 1}, created_at=T0
    )
    assert (chain.id, chain.metadata, chain.created_at) == (
        "chain_01JBZ0000000000000000000AA",
        {"k": 1},
        T0,
    )
    assert captured == [
        (
            ("crucible", "trace", "chain", "created"),
            {},
            {"chain_id": chain.id, "name": "n"},
        )
    ]


def test_add_event_emits_created(captured: list) -> None:
    chain = ct.Chain(name="x")
    e = ct.create_event("decision_made", "d", confidence=0.25)
    assert captured == []  # not in a chain yet
    out = ct.add_event(chain, e)
    assert out.events == (e,)
    assert chain.events == ()  # values: the old chain is unchanged
    assert captured == [
        (
            ("crucible", "trace", "event", "created"),
            {"confidence": 0.25},
            {"type": "decision_made", "chain_id": chain.id, "event_id": e.id},
        )
    ]


def test_rejected_add_emits_nothing(captured: list) -> None:
    e = ct.create_event("decision_made", "d")
    chain = ct.add_event(ct.Chain(name="x"), e)
    captured.clear()
    with pytest.raises(ct.InvalidChainError):
        ct.add_events(chain, [ct.create_event("decision_made", "d2"), e])
    assert captured == []


def test_unknown_confidence_is_not_a_measurement(captured: list) -> None:
    ct.add_event(ct.Chain(name="x"), ct.create_event("decision_made", "d"))
    assert captured[0][1] == {}


def test_errors_pickle_with_context() -> None:
    with pytest.raises(ct.InvalidEventError) as info:
        ct.create_event("decision_made", "d", confidence=3)
    back = pickle.loads(pickle.dumps(info.value))
    assert (type(back), back.field, back.value, str(back)) == (
        ct.InvalidEventError,
        "confidence",
        3,
        str(info.value),
    )
    err = ct.ChainNotFoundError("no chain", chain_id="c", directory="/d")
    assert isinstance(err, KeyError)
    assert str(err) == "no chain"


def test_views(sample_chain: ct.Chain) -> None:
    assert (
        repr(sample_chain)
        == "Chain(name='cache design', events=4, id='chain_01JBZ0000000000000000000AA')"
    )
    assert repr(sample_chain.events[1]) == snapshot(
        "TraceEvent(type='decision_made', decision='Use an LRU cache', confidence=0.8, id='evt_01JBZ0000000000000000000B2')"
    )
    assert sample_chain.render() == snapshot("""\
Chain 'cache design'
════════════════════
id               chain_01JBZ0000000000000000000AA
events           4
mean confidence  0.7

#  type                 decision                             confidence  alternatives
─  ───────────────────  ───────────────────────────────────  ──────────  ────────────
1      task_decomposed      Split into storage and eviction         0.9             0
2        decision_made                     Use an LRU cache         0.8             2
3  uncertainty_flagged    Eviction under concurrent writers         0.4             0
4    ambiguity_flagged  Spec does not say what a miss costs           —             0\
""")
    assert sample_chain.events[1].render() == snapshot("""\
Event decision_made
═══════════════════
decision        Use an LRU cache
alternatives    TTL cache, no cache
reasoning       Bounded memory with good hit rates
confidence      0.8
code_section    Cache_get
spec_reference  §2 latency
id              evt_01JBZ0000000000000000000B2\
""")
    assert sample_chain.to_dict()["events"][1]["alternatives"] == [
        "TTL cache",
        "no cache",
    ]


def test_html_view_escapes(hostile_chain: ct.Chain) -> None:
    html = hostile_chain._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_event_types_is_an_ordered_snapshot_that_slices() -> None:
    types = ct.event_types()
    names = list(ct.BUILTIN_EVENT_TYPES)
    assert list(types) == names and len(types) == len(names)
    assert types[0] == names[0] and types[-1] == names[-1]
    first = types[:3]
    assert isinstance(first, ct.EventTypes)
    assert list(first) == names[:3]
    assert first[names[1]] == ct.BUILTIN_EVENT_TYPES[names[1]]
    assert names[0] in types.render()
    with pytest.raises(KeyError):
        types["no_such_type"]
    ct.register_event_type("snapshot_probe", description="probe")
    try:
        assert "snapshot_probe" not in types  # a snapshot
        assert ct.event_types()[-1] == "snapshot_probe"
    finally:
        ct.unregister_event_type("snapshot_probe")
