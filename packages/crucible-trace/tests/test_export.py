"""JSON (versioned), JSONL, CSV, Markdown and Mermaid exports, and `export` to files."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inline_snapshot import snapshot

import crucible_trace as ct

texts = st.text(
    st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")


@given(
    name=st.text(max_size=10),
    decisions=st.lists(texts, max_size=4),
    confidence=st.one_of(st.none(), st.floats(0, 1)),
    metadata=st.dictionaries(
        st.text(max_size=5),
        st.one_of(
            st.integers(-(2**53), 2**53), st.text(max_size=5), st.none(), st.booleans()
        ),
        max_size=3,
    ),
)
@settings(max_examples=100)
def test_json_round_trips(
    name: str, decisions: list[str], confidence: float | None, metadata: dict
) -> None:
    chain = ct.add_events(
        ct.Chain(name=name, metadata=metadata),
        [
            ct.create_event(
                "decision_made", d, d, confidence=confidence, metadata=metadata
            )
            for d in decisions
        ],
    )
    assert ct.from_json(ct.to_json(chain)) == chain


def test_json_document_is_versioned(sample_chain: ct.Chain) -> None:
    doc = json.loads(ct.to_json(sample_chain))
    assert (doc["schema"], doc["version"]) == ("crucible-trace.chain", 1)
    assert doc["chain"]["events"][1]["parent_ids"] == ["evt_01JBZ0000000000000000000B1"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{", "not a chain document"),
        ("[]", "not a chain document"),
        ('{"schema": "other", "version": 1, "chain": {}}', "not a chain document"),
        (
            '{"schema": "crucible-trace.chain", "version": 0, "chain": {}}',
            "positive integer",
        ),
        (
            '{"schema": "crucible-trace.chain", "version": true, "chain": {}}',
            "positive integer",
        ),
        (
            '{"schema": "crucible-trace.chain", "version": 2, "chain": {}}',
            "newer crucible-trace",
        ),
        (
            '{"schema": "crucible-trace.chain", "version": 1, "chain": {"name": "x", "events": [{"type": "decision_made"}]}}',
            "valid chain",
        ),
    ],
)
def test_from_json_rejects(text: str, match: str) -> None:
    with pytest.raises(ct.ChainFormatError, match=match) as info:
        ct.from_json(text)
    assert isinstance(info.value, ValueError)


def test_from_json_names_an_unregistered_type(sample_chain: ct.Chain) -> None:
    text = ct.to_json(sample_chain).replace('"ambiguity_flagged"', '"custom_kind"')
    with pytest.raises(ct.ChainFormatError, match="register_event_type"):
        ct.from_json(text)


def test_jsonl(sample_chain: ct.Chain) -> None:
    lines = [json.loads(line) for line in ct.to_jsonl(sample_chain).splitlines()]
    assert [r["index"] for r in lines] == [0, 1, 2, 3]
    assert {r["chain_name"] for r in lines} == {"cache design"}
    assert lines[3]["confidence"] is None


def test_csv(sample_chain: ct.Chain) -> None:
    rows = list(csv.DictReader(io.StringIO(ct.to_csv(sample_chain))))
    assert len(rows) == 4
    assert json.loads(rows[1]["alternatives"]) == ["TTL cache", "no cache"]
    assert rows[1]["parent_ids"] == "evt_01JBZ0000000000000000000B1"
    assert (rows[3]["confidence"], rows[3]["code_section"]) == ("", "")
    assert float(rows[0]["confidence"]) == 0.9


def test_markdown(sample_chain: ct.Chain) -> None:
    assert ct.to_markdown(sample_chain) == snapshot("""\
# Reasoning chain: cache design

- id: `chain_01JBZ0000000000000000000AA`
- created: 2025-01-02T03:04:05+00:00
- events: 4
- mean confidence: 0.7

| # | type | decision | confidence |
|---|---|---|---|
| 1 | task\\_decomposed | Split into storage and eviction | 0.9 |
| 2 | decision\\_made | Use an LRU cache | 0.8 |
| 3 | uncertainty\\_flagged | Eviction under concurrent writers | 0.4 |
| 4 | ambiguity\\_flagged | Spec does not say what a miss costs | unknown |

## 1. task\\_decomposed: Split into storage and eviction

- confidence: 0.9
- reasoning: They change for different reasons

## 2. decision\\_made: Use an LRU cache

- confidence: 0.8
- reasoning: Bounded memory with good hit rates
- alternatives:
    - TTL cache
    - no cache
- code section: Cache\\_get
- spec reference: §2 latency
- follows from: `evt_01JBZ0000000000000000000B1`

## 3. uncertainty\\_flagged: Eviction under concurrent writers

- confidence: 0.4
- follows from: `evt_01JBZ0000000000000000000B2`

## 4. ambiguity\\_flagged: Spec does not say what a miss costs

- confidence: unknown
- reasoning: No number given
""")


def test_mermaid(sample_chain: ct.Chain) -> None:
    assert ct.to_mermaid(sample_chain) == snapshot("""\
flowchart TD
    e0["task_decomposed: Split into storage and eviction (0.9)"]
    e1["decision_made: Use an LRU cache (0.8)"]
    e2["uncertainty_flagged: Eviction under concurrent writers (0.4)"]
    e3["ambiguity_flagged: Spec does not say what a miss costs"]
    e0 --> e1
    e1 --> e2
    e2 --> e3
    classDef low fill:#fde2e1,stroke:#c0392b
    class e2 low
""")


def test_markdown_is_inert(hostile_chain: ct.Chain) -> None:
    md = ct.to_markdown(hostile_chain)
    # no raw HTML tag, template braces, link or code span survives unescaped
    assert not re.search(r"(?<!\\)<", md)
    assert not re.search(r"(?<!\\)\{", md)
    assert not re.search(r"(?<!\\)\]\(", md)
    for line in md.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 5  # no injected table cells


def test_mermaid_is_inert(hostile_chain: ct.Chain) -> None:
    mmd = ct.to_mermaid(hostile_chain)
    for line in mmd.splitlines()[1:]:
        assert re.fullmatch(
            r'    e\d+\["[\w .,:!?\-/\'#;…()]*"\]|    e\d+ --> e\d+|    classDef .*|    class [e\d,]+ low',
            line,
        ), line
    assert "<" not in mmd and "{" not in mmd and '"]' not in mmd.replace('"]\n', "\n")


def test_export_by_suffix(tmp_path: Path, sample_chain: ct.Chain) -> None:
    for suffix in (".json", ".jsonl", ".csv", ".md", ".mmd", ".html"):
        path = ct.export(sample_chain, tmp_path / f"c{suffix}")
        assert path.read_text(encoding="utf-8")
    assert ct.from_json((tmp_path / "c.json").read_text()) == sample_chain
    assert (tmp_path / "c.md").read_text() == ct.to_markdown(sample_chain)
    forced = ct.export(sample_chain, tmp_path / "chain.txt", format="mermaid")
    assert forced.read_text() == ct.to_mermaid(sample_chain)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_export_rejects_unknown_formats(tmp_path: Path, sample_chain: ct.Chain) -> None:
    with pytest.raises(ct.InvalidQueryError, match="suffix"):
        ct.export(sample_chain, tmp_path / "c.xlsx")
    with pytest.raises(ct.InvalidQueryError, match="format must be"):
        ct.export(sample_chain, tmp_path / "c.json", format="xml")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_csv_cells_that_start_a_formula_are_made_inert(tmp_path: Path) -> None:
    from crucible_core.testing import (
        CSV_INERT_TEXTS,
        CSV_INJECTION_PAYLOADS,
        check_csv_inert,
    )

    texts = [*CSV_INJECTION_PAYLOADS, *(t for t in CSV_INERT_TEXTS if t.strip())]
    chain = ct.add_events(
        ct.Chain(name="=cmd|' /C calc'!A0"),
        [ct.create_event("decision_made", t, t, code_section=t) for t in texts],
    )
    rows = list(csv.DictReader(io.StringIO(ct.to_csv(chain), newline="")))
    check_csv_inert([r["decision"] for r in rows], sent=texts)
    check_csv_inert([r["reasoning"] for r in rows], sent=texts)
    check_csv_inert([r["code_section"] for r in rows], sent=texts)
    assert {r["chain_name"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    path = ct.export(chain, tmp_path / "raw.csv", neutralize_formulas=False)
    with path.open(newline="", encoding="utf-8") as fh:
        assert [r["decision"] for r in csv.DictReader(fh)] == texts


def test_ids_and_names_with_a_trailing_newline_are_refused(tmp_path: Path) -> None:
    from crucible_core.ids import is_id, new_id

    chain_id = new_id("chain")
    assert is_id(chain_id) and not is_id(chain_id + "\n")
    with pytest.raises(ct.TraceError):
        ct.Chain(id=chain_id + "\n", name="x")
    store = ct.TraceStore(tmp_path)
    with pytest.raises(ct.TraceError):
        store.load(chain_id + "\n")
