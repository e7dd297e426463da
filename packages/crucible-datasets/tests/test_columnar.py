"""Columnar datasets make exactly the items the row-based construction made.

`expected_items.json` holds, for every load below, the item count, the first and last ids and a
SHA-256 over the `repr` of every item (so ids, order, values, key order and Python types all
count: `1` differs from `1.0` and `[..]` from `(..)`). It was computed by the row-based code that
built one `Item` per row before datasets became columnar (commit dee9321); regenerate it only on
purpose, with `CRUCIBLE_WRITE_EXPECTATIONS=1`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crucible_datasets as cd
from crucible_datasets import Dataset, Item

EXPECTED = Path(__file__).with_name("expected_items.json")
_WRITE = os.environ.get("CRUCIBLE_WRITE_EXPECTATIONS") == "1"


def _digest(items: Any) -> dict[str, Any]:
    """Count, first and last id, and a SHA-256 over the `repr` of every item."""
    items = list(items)
    h = hashlib.sha256()
    for item in items:
        h.update(repr(item).encode())
        h.update(b"\n")
    return {
        "n": len(items),
        "first": items[0].id if items else None,
        "last": items[-1].id if items else None,
        "sha256": h.hexdigest(),
    }


def _samplers(ds: Dataset) -> dict[str, Any]:
    """What the samplers pick, as ids (the same draws as the row-based code)."""
    train, test = cd.train_test_split(ds, test_size=0.25, seed=3)
    strain, stest = cd.train_test_split(ds, test_size=0.2, seed=4, stratify="expected")
    folds = cd.k_fold(ds, 4, seed=5)
    sfolds = cd.k_fold(ds, 3, seed=6, stratify="expected")
    return {
        "random": list(cd.random_sample(ds, min(25, len(ds)), seed=1).ids),
        "stratified": list(
            cd.stratified_sample(ds, min(30, len(ds)), by="expected", seed=2).ids
        ),
        "parts": hashlib.sha256(
            "".join(
                _digest(part)["sha256"]
                for part in [train, test, strain, stest]
                + [p for f in [*folds, *sfolds] for p in (f.train, f.test)]
            ).encode()
        ).hexdigest(),
    }


def _local_loads(data: Path) -> Iterator[tuple[str, Callable[[], Dataset]]]:
    yield "local gsm8k test", lambda: cd.load("gsm8k", source=data / "gsm8k")
    yield (
        "local gsm8k train",
        lambda: cd.load("gsm8k", split="train", source=data / "gsm8k"),
    )
    for split in ("test", "dev"):
        yield (
            f"local mmlu {split}",
            lambda split=split: cd.load("mmlu", split=split, source=data / "mmlu"),
        )
    yield (
        "local mmlu test stem",
        lambda: cd.load("mmlu", split="test", subset="stem", source=data / "mmlu"),
    )
    yield (
        "local mmlu test anatomy",
        lambda: cd.load("mmlu", split="test", subset="anatomy", source=data / "mmlu"),
    )
    for split in ("dev", "validation"):
        yield (
            f"local mmlu-hendrycks {split}",
            lambda split=split: cd.load(
                "mmlu", split=split, source=data / "mmlu_hendrycks_2020-09-08"
            ),
        )
    yield (
        "local humaneval",
        lambda: cd.load("humaneval", source=data / "humaneval" / "HumanEval.jsonl.gz"),
    )
    yield "package humaneval", lambda: cd.load("humaneval")
    for split in ("train", "validation", "test"):
        yield (
            f"local scifact {split}",
            lambda split=split: cd.load(
                "scifact", split=split, source=data / "scifact"
            ),
        )
    yield "local fever paper_dev", lambda: cd.load("fever", source=data / "fever")


def _hub_loads() -> Iterator[tuple[str, Callable[[], Dataset]]]:
    for split in ("test", "train"):
        yield f"hub gsm8k {split}", lambda split=split: cd.load("gsm8k", split=split)
    for split in ("test", "dev"):
        yield f"hub mmlu {split}", lambda split=split: cd.load("mmlu", split=split)
    yield (
        "hub mmlu test humanities",
        lambda: cd.load("mmlu", split="test", subset="humanities"),
    )
    yield (
        "hub mmlu dev anatomy",
        lambda: cd.load("mmlu", split="dev", subset="anatomy"),
    )
    yield "hub humaneval", lambda: cd.load("humaneval", revision="main")
    for split in ("train", "validation", "test"):
        yield (
            f"hub scifact {split}",
            lambda split=split: cd.load("scifact", split=split),
        )
    yield "hub fever paper_dev", lambda: cd.load("fever")


def _record(loads: Iterator[tuple[str, Callable[[], Dataset]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, fn in loads:
        ds = fn()
        out[name] = {"items": _digest(ds), "samplers": _samplers(ds)}
        assert tuple(ds.ids) == tuple(i.id for i in ds)
    return out


def _check(kind: str, got: dict[str, Any]) -> None:
    if _WRITE:
        saved = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
        saved[kind] = got
        EXPECTED.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
        return
    want = json.loads(EXPECTED.read_text())[kind]
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name]["items"] == want[name]["items"], name
        assert got[name]["samplers"] == want[name]["samplers"], name


def test_local_loads_make_the_row_based_items(data_dir: Path) -> None:
    _check("local", _record(_local_loads(data_dir)))


def test_hub_loads_make_the_row_based_items(hub: Any) -> None:
    _check("hub", _record(_hub_loads()))


# ---------------------------------------------------------------------------------------------
# The Arrow builders against the row builders on generated tables.


def _items_of(columns: Any) -> tuple[Item, ...]:
    from crucible_datasets._types import DatasetMetadata, DatasetVersion

    version = DatasetVersion(revision="r", commit=None, checksum="sha256:0")
    meta = DatasetMetadata(
        source="s",
        license="l",
        domain="d",
        total_items=columns.n,
        loaded_at=__import__("datetime").datetime(2026, 1, 1),
        checksum="sha256:0",
        split="test",
    )
    return Dataset._from_columns(
        name="x", version=version, columns=columns, metadata=meta
    ).items


def _both(arrow: Any, rows: Any, table: Any) -> tuple[Any, Any]:
    """(items or the error) from the Arrow builder (or its row fallback) and the row builder."""
    from crucible_datasets._parse import rows_of

    def run(fn: Callable[[], Any]) -> Any:
        try:
            return _items_of(fn())
        except cd.MalformedDataError as err:
            return ("error", str(err))

    def via_arrow() -> Any:
        return arrow(table, "test", None, "p") or rows(
            rows_of(table), "test", None, "p"
        )

    return run(via_arrow), run(lambda: rows(rows_of(table), "test", None, "p"))


_SPACES = st.sampled_from([" ", "\t", "\n", "\x0b", "\x1c", "", "  "])
_SUBJECTS = st.sampled_from(["anatomy", "virology", "astronomy"])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.text(max_size=8),
            _SUBJECTS,
            st.lists(st.text(max_size=5), min_size=3, max_size=5),
            st.one_of(
                st.integers(-1, 4),
                st.builds(
                    lambda a, b, c: a + b + c,
                    _SPACES,
                    st.sampled_from(["A", "B", "C", "D", "0", "3", "E", "AB", ""]),
                    _SPACES,
                ),
            ),
        ),
        max_size=12,
    ),
    textual=st.booleans(),
)
def test_mmlu_arrow_builder_equals_the_row_builder(
    rows: list[tuple[str, str, list[str], Any]], textual: bool
) -> None:
    import pyarrow as pa

    from crucible_datasets._registry import _mmlu, _mmlu_arrow

    answers = [str(a) if textual else a for *_, a in rows]
    if not all(isinstance(a, type(answers[0])) for a in answers):
        answers = [str(a) for a in answers]
    table = pa.table(
        {
            "question": [r[0] for r in rows],
            "subject": [r[1] for r in rows],
            "choices": pa.array([r[2] for r in rows], type=pa.list_(pa.string())),
            "answer": pa.array(answers, type=pa.string() if textual else None),
        }
    )
    fast, slow = _both(_mmlu_arrow, _mmlu, table)
    assert fast == slow


@settings(max_examples=150, deadline=None)
@given(
    answers=st.lists(
        st.builds(
            lambda work, sp1, number, sp2: f"{work}####{sp1}{number}{sp2}",
            st.text(alphabet="ab 12\n#", max_size=6),
            _SPACES,
            st.sampled_from(["1,234", "$5", "7", " 8 ", "9 #### 10", "", "\u00a03"]),
            _SPACES,
        )
        | st.text(max_size=6),
        max_size=10,
    )
)
def test_gsm8k_arrow_builder_equals_the_row_builder(answers: list[str]) -> None:
    import pyarrow as pa

    from crucible_datasets._registry import _gsm8k, _gsm8k_arrow

    table = pa.table(
        {"question": [f"q{i}" for i in range(len(answers))], "answer": answers}
    )
    fast, slow = _both(_gsm8k_arrow, _gsm8k, table)
    assert fast == slow


def test_hub_datasets_stay_columns_and_hand_them_over_without_a_copy(hub: Any) -> None:
    for name in ("mmlu", "gsm8k", "humaneval"):
        ds = cd.load(name, revision="main")
        columns = ds._store.columns
        assert columns is not None and not isinstance(columns.ids, list), name
        assert ds._store.made is None  # no Item made yet
        table = ds.to_arrow()
        assert table.num_rows == len(ds)
        first = next(iter(columns.input.values()))
        shared = table.column(1).chunks[0].buffers()[-1]
        assert shared.address == first.chunks[0].buffers()[-1].address, name
        frame = ds.to_polars()
        assert frame.columns == table.column_names
    ds = cd.load("mmlu", split="dev")
    item = ds[3]
    assert ds._store.made is not None and not isinstance(ds._store.made, tuple)
    assert ds.items[3] is item and ds[item.id] is item
    sample = cd.random_sample(ds, 10, seed=0)  # ds's items are made: shared
    assert sample.items[0] is ds[sample.ids[0]]
    fresh = cd.load("mmlu", split="dev")
    assert cd.random_sample(fresh, 10, seed=0)._store.made is None
    assert list(sample) == [ds[i] for i in sorted(ds.ids.index(x) for x in sample.ids)]


@given(st.lists(st.integers(0, 49), max_size=20), st.integers(-50, 49))
def test_take_and_indexing_agree_with_the_items(picks: list[int], pos: int) -> None:
    items = [
        Item(id=f"i{k}", input={"q": k}, expected=str(k % 3), metadata={"m": [k]})
        for k in range(50)
    ]
    from crucible_datasets._types import Columns

    columns = Columns(
        ids=[i.id for i in items],
        input={"q": [i.input["q"] for i in items]},
        expected=[i.expected for i in items],
        metadata={"m": [i.metadata["m"] for i in items]},
    )
    ds = Dataset.from_items("t", items)
    col = Dataset._from_columns(
        name="t", version=ds.version, columns=columns, metadata=ds.metadata
    )
    assert col[pos] == items[pos] and col[items[pos].id] == items[pos]
    unique = list(dict.fromkeys(picks))
    assert (
        col._take(unique).items
        == ds._take(unique).items
        == tuple(items[p] for p in unique)
    )
    assert col == ds and col.to_dict() == ds.to_dict()
    assert col.to_polars().equals(ds.to_polars())
    if len(unique) != len(picks):
        with pytest.raises(cd.MalformedDataError, match="two items with id"):
            col._take(picks)


# ---------------------------------------------------------------------------------------------
# All five datasets: items made on access, the Arrow and polars tables, and their rows agree.


def _five(data: Path) -> dict[str, Dataset]:
    """Every dataset, from the hub (Parquet: Arrow columns) and from local files (rows)."""
    return {
        "hub gsm8k": cd.load("gsm8k"),
        "hub mmlu": cd.load("mmlu", split="test"),
        "hub humaneval": cd.load("humaneval", revision="main"),
        "hub scifact": cd.load("scifact", split="train"),
        "hub fever": cd.load("fever"),
        "local gsm8k": cd.load("gsm8k", source=data / "gsm8k"),
        "local mmlu": cd.load("mmlu", split="dev", source=data / "mmlu"),
        "local humaneval": cd.load(
            "humaneval", source=data / "humaneval" / "HumanEval.jsonl.gz"
        ),
        "local scifact": cd.load(
            "scifact", split="validation", source=data / "scifact"
        ),
        "local fever": cd.load("fever", source=data / "fever"),
    }


def _plain(value: Any) -> Any:
    """A value as JSON gives it back (tuples as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(cell: Any, column_type: Any, value: Any) -> bool:
    """Whether `to_arrow`'s `cell` (in a column of `column_type`) holds an item's `value`."""
    import pyarrow as pa

    if (
        pa.types.is_string(column_type)
        and value is not None
        and not isinstance(value, str)
    ):
        return bool(json.loads(cell) == _plain(value))  # nested values: as JSON text
    return bool(cell == _plain(value))


def test_all_five_datasets_agree_item_by_item_with_their_arrow_and_polars_tables(
    hub: Any, data_dir: Path
) -> None:
    loaded = _five(data_dir)
    kinds = {
        name: not isinstance(ds._store.columns.ids, list) for name, ds in loaded.items()
    }
    assert kinds["hub mmlu"] and kinds["hub gsm8k"] and kinds["hub humaneval"]
    tables = {name: ds.to_arrow() for name, ds in loaded.items()}
    frames = {name: ds.to_polars() for name, ds in loaded.items()}
    made = {name: ds.items for name, ds in loaded.items()}  # every item made, in order

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(loaded)))
        ds, table, frame, items = loaded[name], tables[name], frames[name], made[name]
        n = len(items)
        assert table.num_rows == frame.height == n == len(ds.ids)
        # a fresh dataset over the same columns: nothing made yet, items made on access
        lazy = Dataset._from_columns(
            name=ds.name,
            version=ds.version,
            columns=ds._store.columns,
            metadata=ds.metadata,
        )
        picks = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=8))
        for p in picks:
            item = lazy[p]
            assert item == items[p]
            assert lazy[item.id] is item and item.id in lazy
            row = table.slice(p % n, 1).to_pylist()[0]
            want = {
                "id": item.id,
                **{f"input.{k}": v for k, v in item.input.items()},
                "expected": item.expected,
                **{f"metadata.{k}": v for k, v in item.metadata.items()},
            }
            assert list(row) == list(want), name
            for key, value in want.items():
                assert _cell(row[key], table.schema.field(key).type, value), (name, key)
            assert frame.row(p % n, named=True) == row, name
        unique = list(dict.fromkeys(p % n for p in picks))
        assert lazy._take(unique).items == tuple(items[p] for p in unique)
        if data.draw(
            st.booleans()
        ):  # then every item, keeping those already handed out
            handed = {p % n: lazy[p] for p in picks}
            assert list(lazy) == list(items)
            assert all(lazy.items[p] is item for p, item in handed.items())

    check()


def test_parquet_columns_reach_arrow_and_polars_without_a_copy(hub: Any) -> None:
    import numpy as np

    for name in ("mmlu", "gsm8k", "humaneval"):
        ds = cd.load(name, revision="main")
        stored = dict(ds._store.columns.named())
        table = ds.to_arrow()
        for column in table.column_names:  # every column: the stored array itself
            got, own = table.column(column), stored[column]
            own_chunks = own.chunks if hasattr(own, "chunks") else [own]
            for a, b in zip(got.chunks, own_chunks, strict=True):
                assert [x.address for x in a.buffers() if x is not None] == [
                    x.address for x in b.buffers() if x is not None
                ], (name, column)
    mmlu = cd.load("mmlu", split="test")
    index = dict(mmlu._store.columns.named())["metadata.answer_index"]
    own = (index.chunks[0] if hasattr(index, "chunks") else index).to_numpy()
    frame = mmlu.to_polars()
    assert np.shares_memory(frame["metadata.answer_index"].to_numpy(), own)
    assert mmlu._store.made is None  # neither made an Item


def test_row_built_datasets_hand_over_the_same_values_as_tables(
    hub: Any, data_dir: Path
) -> None:
    """SciFact and FEVER are regrouped row by row (no Parquet columns to share): equal values."""
    for ds in (cd.load("scifact"), cd.load("fever", source=data_dir / "fever")):
        assert isinstance(ds._store.columns.ids, list)
        table, frame = ds.to_arrow(), ds.to_polars()
        assert table.column_names == frame.columns
        assert table.to_pylist() == frame.to_dicts()
        assert table.column("id").to_pylist() == list(ds.ids)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(*[st.one_of(st.text(max_size=6), st.none()) for _ in range(5)]),
        max_size=8,
    ),
    ids=st.booleans(),
)
def test_humaneval_arrow_builder_equals_the_row_builder(
    rows: list[tuple[str | None, ...]], ids: bool
) -> None:
    import pyarrow as pa

    from crucible_datasets._registry import _HUMANEVAL, _humaneval, _humaneval_arrow

    if ids:  # unique ids (else the dataset refuses them, on both paths alike)
        rows = [(f"HumanEval/{k}", *r[1:]) for k, r in enumerate(rows)]
    table = pa.table(
        {
            name: pa.array([r[j] for r in rows], type=pa.string())
            for j, name in enumerate(_HUMANEVAL)
        }
    )
    fast, slow = _both(_humaneval_arrow, _humaneval, table)
    assert fast == slow
