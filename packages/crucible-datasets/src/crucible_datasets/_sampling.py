"""Samplers: random, stratified, train/test split and k-fold; seeded, and never dropping items."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import attrs
import numpy as np

from crucible_core.exceptions import ValidationError
from crucible_datasets._types import Dataset, Item, pylist

__all__ = ("Fold", "k_fold", "random_sample", "stratified_sample", "train_test_split")

Strata = str | Callable[[Item], Hashable]
"""A stratum key: a name looked up in `item.metadata`, then `item.input` (`"expected"` means
the expected answer), or a function of the item."""


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return (
        seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    )


def _key(by: Strata) -> Callable[[Item], Hashable]:
    if callable(by):
        return by
    if not isinstance(by, str):
        raise ValidationError(
            f"by= must be a field name or a function of the item, got {by!r}", by=by
        )

    def key(item: Item) -> Hashable:
        if by == "expected":
            value = item.expected
        elif by in item.metadata:
            value = item.metadata[by]
        elif by in item.input:
            value = item.input[by]
        else:
            raise ValidationError(
                f"item {item.id!r} has no {by!r} in its metadata or input (metadata keys: "
                f"{sorted(item.metadata)}, input keys: {sorted(item.input)}); pass a field "
                'that every item has, "expected", or a function',
                by=by,
                item_id=item.id,
            )
        return value if isinstance(value, Hashable) else repr(value)

    return key


def _groups(dataset: Dataset, by: Strata) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = {}
    values = _column_values(dataset, by)
    if values is not None:
        for i, value in enumerate(values):
            key = value if isinstance(value, Hashable) else repr(value)
            groups.setdefault(key, []).append(i)
        return groups
    key = _key(by)
    for i, item in enumerate(dataset.items):
        groups.setdefault(key(item), []).append(i)
    return groups


def _column_values(dataset: Dataset, by: Strata) -> list[Any] | None:
    """The values of the column `by` names, when the dataset holds columns (every item has it)."""
    columns = dataset._store.columns
    if columns is None or callable(by) or not isinstance(by, str):
        return None
    column = columns.lookup(by)
    return None if column is None else pylist(column)


def _check_size(size: Any, n: int, what: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ValidationError(f"{what} must be a whole number, got {size!r}", size=size)
    if not 0 <= size <= n:
        raise ValidationError(
            f"{what} must be between 0 and the dataset's {n} items, got {size}",
            size=int(size),
            n=n,
        )
    return int(size)


def allocate(counts: list[int], size: int, rng: np.random.Generator) -> list[int]:
    """Split `size` across groups of `counts` in proportion (largest remainders, random ties).

    Every share is the floor or the ceiling of `size * count / total`, and they sum to `size`.
    """
    total = sum(counts)
    if total == 0:
        return [0] * len(counts)
    base = [c * size // total for c in counts]
    remainders = [c * size % total for c in counts]
    short = size - sum(base)
    ties = rng.random(len(counts))
    order = sorted(range(len(counts)), key=lambda i: (-remainders[i], ties[i]))
    for i in order[:short]:
        base[i] += 1
    return base


def random_sample(
    dataset: Dataset, size: int, *, seed: int | np.random.Generator | None = None
) -> Dataset:
    """`size` items drawn without replacement, kept in the dataset's order.

    Args:
        dataset: the dataset.
        size: how many items, from 0 to `len(dataset)`.
        seed: a seed or `numpy.random.Generator` (the same seed draws the same items).

    Examples:
        >>> from crucible_datasets import Dataset, Item
        >>> ds = Dataset.from_items("t", [Item(id=str(i), input={}, expected=i) for i in range(10)])
        >>> len(random_sample(ds, 3, seed=1))
        3
    """
    size = _check_size(size, len(dataset), "size")
    chosen = np.sort(_rng(seed).choice(len(dataset), size=size, replace=False))
    return dataset._take(chosen.tolist())


def stratified_sample(
    dataset: Dataset,
    size: int,
    *,
    by: Strata,
    seed: int | np.random.Generator | None = None,
) -> Dataset:
    """`size` items whose strata keep the dataset's proportions as exactly as whole counts allow.

    Each stratum gets the floor or the ceiling of `size × its share` (largest remainders), and
    the counts sum to `size`. Items are kept in the dataset's order.

    Args:
        dataset: the dataset.
        size: how many items.
        by: the stratum of an item: a metadata or input field name, `"expected"`, or a function.
        seed: a seed or `numpy.random.Generator`.
    """
    size = _check_size(size, len(dataset), "size")
    rng = _rng(seed)
    groups = _groups(dataset, by)
    shares = allocate([len(g) for g in groups.values()], size, rng)
    chosen: list[int] = []
    for members, share in zip(groups.values(), shares, strict=True):
        chosen += [
            members[int(i)] for i in rng.choice(len(members), size=share, replace=False)
        ]
    chosen.sort()
    return dataset._take(chosen)


def _test_count(test_size: Any, n: int) -> int:
    if isinstance(test_size, float):
        if not 0 < test_size < 1:
            raise ValidationError(
                f"a fractional test_size must be between 0 and 1, got {test_size!r}",
                test_size=test_size,
            )
        count = math.ceil(test_size * n)
    else:
        count = _check_size(test_size, n, "test_size")
    if not 0 < count < n:
        raise ValidationError(
            f"test_size={test_size!r} leaves {count} test and {n - count} train items of {n}; "
            "both parts need at least one",
            test_size=test_size,
            n=n,
        )
    return count


def train_test_split(
    dataset: Dataset,
    *,
    test_size: float | int = 0.2,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    stratify: Strata | None = None,
) -> tuple[Dataset, Dataset]:
    """Split into (train, test); every item lands in exactly one part.

    Args:
        dataset: the dataset.
        test_size: a fraction in (0, 1) (the test part gets its ceiling) or a count.
        shuffle: draw the test items at random (else the last items are the test part).
        seed: a seed or `numpy.random.Generator`.
        stratify: keep stratum proportions in both parts (a field name or function; needs
            `shuffle=True`).

    Returns:
        `(train, test)`, each in the dataset's order.
    """
    n = len(dataset)
    count = _test_count(test_size, n)
    rng = _rng(seed)
    if stratify is not None:
        if not shuffle:
            raise ValidationError(
                "stratify= needs shuffle=True (a stratified split draws within strata)",
                stratify=repr(stratify),
            )
        groups = _groups(dataset, stratify)
        shares = allocate([len(g) for g in groups.values()], count, rng)
        test: set[int] = set()
        for members, share in zip(groups.values(), shares, strict=True):
            test.update(
                members[int(i)]
                for i in rng.choice(len(members), size=share, replace=False)
            )
    elif shuffle:
        test = {int(i) for i in rng.choice(n, size=count, replace=False)}
    else:
        test = set(range(n - count, n))
    return (
        dataset._take([i for i in range(n) if i not in test]),
        dataset._take([i for i in range(n) if i in test]),
    )


@attrs.define(frozen=True, kw_only=True)
class Fold:
    """One fold of a k-fold split: unpack as `train, test = fold`."""

    index: int
    """The fold's position, from 0."""
    train: Dataset
    """Every item not in `test`."""
    test: Dataset
    """This fold's held-out items."""

    def __iter__(self) -> Iterator[Dataset]:
        return iter((self.train, self.test))


def k_fold(
    dataset: Dataset,
    k: int = 5,
    *,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    stratify: Strata | None = None,
) -> list[Fold]:
    """Split into `k` folds whose test parts partition the dataset (no remainder is dropped).

    Fold sizes differ by at most one; with `stratify=`, each stratum's count in a fold differs
    from its count in any other fold by at most one.

    Args:
        dataset: the dataset.
        k: the number of folds, from 2 to `len(dataset)`.
        shuffle: assign items to folds at random (else in order: consecutive blocks).
        seed: a seed or `numpy.random.Generator`.
        stratify: balance strata across folds (a field name or function).
    """
    n = len(dataset)
    value: Any = k
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not 2 <= k <= n
    ):
        raise ValidationError(
            f"k must be a whole number from 2 to the dataset's {n} items, got {k!r}",
            k=k,
            n=n,
        )
    k = int(k)
    rng = _rng(seed)
    if stratify is not None:
        order: list[int] = []
        for members in _groups(dataset, stratify).values():
            block = list(members)
            if shuffle:
                block = [block[int(i)] for i in rng.permutation(len(block))]
            order += block
        assignment = {i: pos % k for pos, i in enumerate(order)}
    else:
        order = [int(i) for i in rng.permutation(n)] if shuffle else list(range(n))
        sizes = [n // k + (1 if f < n % k else 0) for f in range(k)]
        assignment = {}
        pos = 0
        for f, size in enumerate(sizes):
            for i in order[pos : pos + size]:
                assignment[i] = f
            pos += size
    return [
        Fold(
            index=f,
            train=dataset._take([i for i in range(n) if assignment[i] != f]),
            test=dataset._take([i for i in range(n) if assignment[i] == f]),
        )
        for f in range(k)
    ]
