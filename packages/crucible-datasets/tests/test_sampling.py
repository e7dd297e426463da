"""Samplers keep every item, keep proportions, and are reproducible."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

import crucible_datasets as cd
from crucible_datasets import Dataset, Item


@st.composite
def datasets(draw: st.DrawFn, min_size: int = 0, max_size: int = 60) -> Dataset:
    groups = draw(
        st.lists(st.sampled_from("abcde"), min_size=min_size, max_size=max_size)
    )
    items = [
        Item(
            id=f"item-{i}",
            input={"q": str(i)},
            expected=str(i % 3),
            metadata={"group": g},
        )
        for i, g in enumerate(groups)
    ]
    return Dataset.from_items("toy", items)


seeds = st.integers(0, 2**32 - 1)


@given(datasets(), st.data(), seeds)
def test_random_sample_is_a_subset_of_the_right_size(
    ds: Dataset, data: st.DataObject, seed: int
) -> None:
    size = data.draw(st.integers(0, len(ds)))
    sample = cd.random_sample(ds, size, seed=seed)
    assert len(sample) == size
    assert len(set(sample.ids)) == size
    assert set(sample.ids) <= set(ds.ids)
    positions = [ds.ids.index(i) for i in sample.ids]
    assert positions == sorted(positions)
    assert cd.random_sample(ds, size, seed=seed).ids == sample.ids


@given(datasets(min_size=1), st.data(), seeds)
def test_stratified_sample_keeps_proportions(
    ds: Dataset, data: st.DataObject, seed: int
) -> None:
    size = data.draw(st.integers(0, len(ds)))
    sample = cd.stratified_sample(ds, size, by="group", seed=seed)
    assert len(sample) == size
    assert set(sample.ids) <= set(ds.ids)
    total = Counter(i.metadata["group"] for i in ds)
    got = Counter(i.metadata["group"] for i in sample)
    for group, count in total.items():
        quota = size * count / len(ds)
        assert abs(got[group] - quota) < 1  # floor or ceiling of the exact share


@given(datasets(min_size=2), st.data(), seeds)
def test_train_test_split_partitions(
    ds: Dataset, data: st.DataObject, seed: int
) -> None:
    test_size = data.draw(st.one_of(st.integers(1, len(ds) - 1), st.floats(0.01, 0.99)))
    if isinstance(test_size, float) and not 0 < -(-test_size * len(ds) // 1) < len(ds):
        return
    stratify = data.draw(st.sampled_from([None, "group"]))
    train, test = cd.train_test_split(
        ds, test_size=test_size, seed=seed, stratify=stratify
    )
    assert sorted(train.ids + test.ids) == sorted(ds.ids)
    assert not set(train.ids) & set(test.ids)
    if isinstance(test_size, int):
        assert len(test) == test_size
    if stratify:
        total = Counter(i.metadata["group"] for i in ds)
        got = Counter(i.metadata["group"] for i in test)
        for group, count in total.items():
            assert abs(got[group] - len(test) * count / len(ds)) < 1


@given(datasets(min_size=2), st.data(), seeds, st.booleans())
def test_k_fold_keeps_every_item_once(
    ds: Dataset, data: st.DataObject, seed: int, shuffle: bool
) -> None:
    k = data.draw(st.integers(2, len(ds)))
    stratify = data.draw(st.sampled_from([None, "group", "expected"]))
    folds = cd.k_fold(ds, k, shuffle=shuffle, seed=seed, stratify=stratify)
    assert len(folds) == k
    tested = [i for f in folds for i in f.test.ids]
    assert sorted(tested) == sorted(
        ds.ids
    )  # a partition: nothing dropped, nothing twice
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for fold in folds:
        train, test = fold
        assert sorted(train.ids + test.ids) == sorted(ds.ids)
    if stratify == "group":
        for group in {i.metadata["group"] for i in ds}:
            counts = [sum(i.metadata["group"] == group for i in f.test) for f in folds]
            assert max(counts) - min(counts) <= 1


def test_unshuffled_folds_are_consecutive_blocks() -> None:
    ds = Dataset.from_items(
        "t", [Item(id=str(i), input={}, expected=i) for i in range(10)]
    )
    folds = cd.k_fold(ds, 3, shuffle=False)
    assert [f.test.ids for f in folds] == [
        ("0", "1", "2", "3"),
        ("4", "5", "6"),
        ("7", "8", "9"),
    ]
    _, test = cd.train_test_split(ds, test_size=3, shuffle=False)
    assert test.ids == ("7", "8", "9")
    assert (
        cd.train_test_split(ds, test_size=0.25, seed=1)[1].ids.__len__() == 3
    )  # ceil(2.5)


def test_bad_arguments() -> None:
    ds = Dataset.from_items(
        "t", [Item(id=str(i), input={}, expected=i) for i in range(10)]
    )
    with pytest.raises(ValueError, match="between 0 and"):
        cd.random_sample(ds, 11)
    with pytest.raises(ValueError, match="whole number"):
        cd.random_sample(ds, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        cd.k_fold(ds, 1)
    with pytest.raises(ValueError, match="k must be"):
        cd.k_fold(ds, 11)
    with pytest.raises(ValueError, match="both parts"):
        cd.train_test_split(ds, test_size=10)
    with pytest.raises(ValueError, match="between 0 and 1"):
        cd.train_test_split(ds, test_size=1.5)
    with pytest.raises(ValueError, match="shuffle=True"):
        cd.train_test_split(ds, shuffle=False, stratify="expected")
    with pytest.raises(ValueError, match="no 'grade'"):
        cd.stratified_sample(ds, 3, by="grade")


def test_stratified_on_real_mmlu(data_dir) -> None:  # type: ignore[no-untyped-def]
    ds = cd.load("mmlu", split="test", source=data_dir / "mmlu")
    sample = cd.stratified_sample(ds, 570, by="subject", seed=0)
    counts = Counter(i.metadata["subject"] for i in sample)
    assert len(counts) == 57
    assert abs(counts["professional_law"] - 570 * 1534 / 14042) < 1
    by_fn = cd.stratified_sample(ds, 100, by=lambda item: item.expected, seed=0)
    assert len(by_fn) == 100
