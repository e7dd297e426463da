"""The directory store: save, load, delete, list, search, id safety and index repair."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import crucible_trace as ct
from crucible_core.exceptions import CrucibleWarning

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def chain(name: str, *events: tuple[str, str, float | None], days: int = 0) -> ct.Chain:
    return ct.add_events(
        ct.Chain(name=name, created_at=T0 + dt.timedelta(days=days)),
        [ct.create_event(t, d, "because " + d, confidence=c) for t, d, c in events],
    )


@pytest.fixture
def store(tmp_path: Path) -> ct.TraceStore:
    s = ct.TraceStore(tmp_path / "traces")
    s.save(
        chain(
            "cache design",
            ("decision_made", "Use LRU", 0.9),
            ("uncertainty_flagged", "Eviction", 0.3),
        )
    )
    s.save(chain("parser", ("decision_made", "Hand-written scanner", 0.6), days=1))
    s.save(
        chain(
            "retry policy", ("hypothesis_formed", "Exponential backoff", None), days=2
        )
    )
    return s


def test_save_load_delete(tmp_path: Path, sample_chain: ct.Chain) -> None:
    s = ct.TraceStore(tmp_path)
    path = s.save(sample_chain)
    assert path == tmp_path / f"{sample_chain.id}.json"
    assert sample_chain.id in s
    assert s.load(sample_chain.id) == sample_chain
    s.delete(sample_chain.id)
    assert sample_chain.id not in s
    with pytest.raises(ct.ChainNotFoundError) as info:
        s.load(sample_chain.id)
    assert isinstance(info.value, KeyError)
    assert info.value.chain_id == sample_chain.id
    with pytest.raises(ct.ChainNotFoundError):
        s.delete(sample_chain.id)
    assert s.list_chains() == ()


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "chain_01JBZ0000000000000000000AA/../x",
        "..",
        "",
        "index",
        "chain_01jbz0000000000000000000aa",
        7,
    ],
)
def test_ids_cannot_escape_the_directory(store: ct.TraceStore, bad: object) -> None:
    for op in (store.load, store.delete):
        with pytest.raises(ct.InvalidChainIdError) as info:
            op(bad)  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)
    assert bad not in store


def test_list_and_search(store: ct.TraceStore) -> None:
    names = [s.name for s in store.list_chains()]
    assert names == ["cache design", "parser", "retry policy"]
    first = store.list_chains()[0]
    assert (first.event_count, first.types, first.max_confidence) == (
        2,
        ("decision_made", "uncertainty_flagged"),
        0.9,
    )
    assert first.mean_confidence == pytest.approx(0.6)

    def found(*args: object, **kwargs: object) -> list[tuple[str, int]]:
        return [(h.chain.name, len(h.event_ids)) for h in store.search(*args, **kwargs)]  # type: ignore[arg-type]

    assert found() == [("cache design", 0), ("parser", 0), ("retry policy", 0)]
    assert found("lru") == [("cache design", 1)]
    assert found("BECAUSE") == [("cache design", 2), ("parser", 1), ("retry policy", 1)]
    assert found("parser") == [("parser", 0)]  # its name only
    assert found("parser", type="decision_made") == [("parser", 1)]
    assert found(type="decision_made") == [("cache design", 1), ("parser", 1)]
    assert found(type="decision_made", min_confidence=0.7) == [("cache design", 1)]
    assert found(min_confidence=0.2) == [("cache design", 2), ("parser", 1)]
    assert found("eviction", type="decision_made") == []
    assert found(since=T0 + dt.timedelta(days=1)) == [
        ("parser", 0),
        ("retry policy", 0),
    ]
    assert found("nothing like this") == []


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"type": "decison_made"}, "type"),
        ({"min_confidence": 2}, "min_confidence"),
        ({"min_confidence": True}, "min_confidence"),
        ({"since": dt.datetime(2025, 1, 1)}, "since"),  # noqa: DTZ001 - naive on purpose
        ({"query": 3}, "query"),
    ],
)
def test_search_rejects_bad_filters(
    store: ct.TraceStore, kwargs: dict, option: str
) -> None:
    with pytest.raises(ct.InvalidQueryError) as info:
        store.search(**kwargs)
    assert info.value.option == option


def test_index_is_repaired_from_the_files(store: ct.TraceStore, tmp_path: Path) -> None:
    index = store.directory / "index.json"
    assert set(json.loads(index.read_text())["chains"]) == {
        s.id for s in store.list_chains()
    }
    # another process (or a person) adds a chain and removes one behind the index's back
    outsider = chain("copied in", ("decision_made", "x", 0.5), days=3)
    (store.directory / f"{outsider.id}.json").write_text(ct.to_json(outsider))
    victim = store.list_chains()[0]
    (store.directory / f"{victim.id}.json").unlink()
    assert [s.name for s in store.list_chains()] == [
        "parser",
        "retry policy",
        "copied in",
    ]
    assert set(json.loads(index.read_text())["chains"]) == {
        s.id for s in store.list_chains()
    }
    # a damaged index is rebuilt, not trusted
    index.write_text("{not json")
    assert len(store.list_chains()) == 3
    index.write_text('{"schema": "crucible-trace.index", "version": 99, "chains": {}}')
    assert len(store.rebuild_index()) == 3
    assert [s.name for s in ct.TraceStore(store.directory).list_chains()][
        -1
    ] == "copied in"
    assert [c.name for c in store] == ["parser", "retry policy", "copied in"]


def test_unreadable_files_are_skipped_with_a_warning(store: ct.TraceStore) -> None:
    bad = store.directory / "chain_01JBZ0000000000000000000ZZ.json"
    bad.write_text("{broken")
    (store.directory / "notes.json").write_text(
        "{}"
    )  # not a chain id: not ours, ignored
    with pytest.warns(CrucibleWarning, match="not a readable chain"):
        listed = store.list_chains()
    assert len(listed) == 3
    assert bad.read_text() == "{broken"  # nothing written is lost


def test_a_file_under_the_wrong_name_is_refused(store: ct.TraceStore) -> None:
    real = store.list_chains()[0]
    wrong = "chain_01JBZ0000000000000000000ZZ"
    (store.directory / f"{wrong}.json").write_text(
        (store.directory / f"{real.id}.json").read_text()
    )
    with pytest.raises(ct.ChainFormatError, match="rename it"):
        store.load(wrong)


def test_saving_again_replaces(store: ct.TraceStore) -> None:
    first = store.list_chains()[0]
    loaded = store.load(first.id)
    grown = ct.add_event(
        loaded, ct.create_event("decision_made", "More", confidence=1.0)
    )
    store.save(grown)
    assert store.load(first.id) == grown
    assert store.list_chains()[0].event_count == 3
    assert not [p for p in store.directory.iterdir() if p.name.endswith(".tmp")]
    assert repr(store).startswith("TraceStore(")
