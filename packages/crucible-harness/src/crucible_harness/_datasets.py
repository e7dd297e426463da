"""Resolving a dataset name through crucible-datasets into harness items."""

from __future__ import annotations

import os
from typing import Any

from crucible_harness._experiment import HarnessItem, dataset_items, dataset_source
from crucible_harness.exceptions import ExperimentDefinitionError

__all__ = ("load_items",)


def load_items(
    name: str,
    *,
    split: str | None = None,
    subset: str | None = None,
    revision: str | None = None,
    source: str | os.PathLike[str] | None = None,
) -> tuple[tuple[HarnessItem, ...], dict[str, Any]]:
    """Load `name` with crucible-datasets; items keep the dataset's metadata (tests, subjects…)."""
    import crucible_datasets

    try:
        ds = crucible_datasets.load(
            name, split=split, subset=subset, revision=revision, source=source
        )
    except crucible_datasets.DatasetError as err:
        raise ExperimentDefinitionError(
            f"cannot load dataset {name!r}: {err}", field="dataset"
        ) from err
    options = {"split": split, "subset": subset, "source": source}
    return dataset_items(ds), dataset_source(
        ds,
        name=name,
        **{k: v for k, v in options.items() if v is not None or k == "split"},
    )
