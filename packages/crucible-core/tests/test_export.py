from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible_core.exceptions import SerializationError, ValidationError
from crucible_core.export import atomic_write, load_records, save_records

ROWS = [
    {"id": "a", "latency": 0.25, "tokens": 10, "ok": True, "meta": {"k": [1, 2]}},
    {"id": "b", "latency": math.nan, "tokens": 12, "ok": False, "meta": {"k": []}},
]


def test_jsonl_round_trip_keeps_types_and_nan(tmp_path: Path) -> None:
    path = save_records(ROWS, tmp_path / "r.jsonl")
    back = load_records(path)
    assert back[0] == ROWS[0]
    assert (
        back[1]["latency"] == "NaN"
    )  # JSON has no NaN: written as the string, as serde does


def test_parquet_round_trip(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "meta"} for r in ROWS]
    path = save_records(rows, tmp_path / "r.parquet")
    table = pq.read_table(path)
    assert table.column_names == ["id", "latency", "tokens", "ok"]
    back = load_records(path)
    assert back[0] == rows[0]
    assert math.isnan(back[1]["latency"])


def test_columns_and_csv(tmp_path: Path) -> None:
    path = save_records({"x": [1, 2], "name": ["a,b", 'q"uote']}, tmp_path / "c.csv")
    assert load_records(path) == [
        {"x": "1", "name": "a,b"},
        {"x": "2", "name": 'q"uote'},
    ]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="suffix"):
        save_records(ROWS, tmp_path / "r.txt")
    with pytest.raises(ValidationError, match="different lengths"):
        save_records({"a": [1], "b": [1, 2]}, tmp_path / "r.csv")
    with pytest.raises(SerializationError, match="Parquet"):
        save_records([{"a": 1}, {"a": "x"}], tmp_path / "r.parquet")
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(SerializationError, match=r"bad.jsonl:2"):
        load_records(bad)


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    path = save_records([{"a": 1}], tmp_path / "keep.jsonl")
    before = path.read_bytes()
    with pytest.raises(SerializationError):
        save_records([{"a": 1}, {"a": "x"}], tmp_path / "keep.jsonl", format="parquet")

    def crash() -> None:
        with atomic_write(path) as fh:
            fh.write("partial")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "keep.jsonl"
    ]  # no temp files left behind


@settings(max_examples=40)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "s": st.text(),
                "i": st.integers(-(2**53), 2**53),
                "f": st.floats(allow_nan=False, allow_infinity=False),
            }
        ),
        min_size=1,
        max_size=20,
    )
)
def test_jsonl_and_parquet_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, object]]
) -> None:
    d = tmp_path_factory.mktemp("rt")
    assert load_records(save_records(rows, d / "x.jsonl")) == rows
    assert load_records(save_records(rows, d / "x.parquet")) == rows


def test_atomic_write_gives_new_files_the_umask_mode_and_keeps_an_existing_mode(
    tmp_path: Path,
) -> None:
    import os
    import stat

    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.txt") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o604)
    with atomic_write(existing) as fh:
        fh.write("new")
    assert existing.read_text() == "new"
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604


def test_csv_cells_that_start_a_formula_are_made_inert(tmp_path: Path) -> None:
    import csv

    from crucible_core.export import csv_cell
    from crucible_core.testing import (
        CSV_INERT_TEXTS,
        CSV_INJECTION_PAYLOADS,
        check_csv_inert,
    )

    texts = [*CSV_INJECTION_PAYLOADS, *CSV_INERT_TEXTS]
    rows = [
        {"n": i, "text": t, "score": -0.5, "nested": ["=1"]}
        for i, t in enumerate(texts)
    ]
    path = save_records(rows, tmp_path / "x.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    check_csv_inert([r["text"] for r in back], sent=texts)
    assert {r["score"] for r in back} == {"-0.5"}  # numbers are never touched
    assert {r["nested"] for r in back} == {'["=1"]'}  # JSON text starts with [ or {
    raw = save_records(rows, tmp_path / "raw.csv", neutralize_formulas=False)
    assert [r["text"] for r in load_records(raw)] == texts
    header = save_records([{"=cmd": 1}], tmp_path / "h.csv")
    assert list(load_records(header)[0]) == ["'=cmd"]
    assert csv_cell(None) == "" and csv_cell(True) is True
