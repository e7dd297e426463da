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

import crucible_datasets as cd
from crucible_datasets import Dataset

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
