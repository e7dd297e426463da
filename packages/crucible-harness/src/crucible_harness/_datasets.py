"""Resolving a dataset name through crucible-datasets into harness items."""

from __future__ import annotations

from typing import Any

from crucible_harness._experiment import HarnessItem
from crucible_harness.exceptions import ExperimentDefinitionError

__all__ = ("load_items",)


def _prompt(raw: Any) -> Any:
    if isinstance(raw, dict) and "prompt" in raw:
        return raw["prompt"]
    if isinstance(raw, dict) and "question" in raw and "choices" in raw:
        letters = "ABCDEFGHIJ"
        options = "\n".join(f"({letters[i]}) {c}" for i, c in enumerate(raw["choices"]))
        return f"{raw['question']}\n{options}\nAnswer with the letter."
    if isinstance(raw, dict) and "question" in raw:
        return raw["question"]
    if isinstance(raw, dict) and "claim" in raw:
        return raw["claim"]
    return raw


def _metadata(metadata: Any, raw: Any) -> dict[str, Any]:
    out = dict(metadata)
    if isinstance(raw, dict):
        out["raw_input"] = raw
    return out


def load_items(
    name: str, *, split: str | None
) -> tuple[tuple[HarnessItem, ...], dict[str, Any]]:
    """Load `name` with crucible-datasets; items keep the dataset's metadata (tests, subjects…)."""
    import crucible_datasets

    try:
        ds = crucible_datasets.load(name, split=split)
    except crucible_datasets.DatasetError as err:
        raise ExperimentDefinitionError(
            f"cannot load dataset {name!r}: {err}", field="dataset"
        ) from err
    items = tuple(
        HarnessItem(
            id=str(i.id),
            input=_prompt(i.input),
            expected=i.expected,
            metadata=_metadata(i.metadata, i.input),
        )
        for i in ds.items
    )
    version = ds.version
    source = {
        "name": name,
        "split": split,
        "items": len(items),
        "revision": getattr(version, "revision", None),
        "commit": getattr(version, "commit", None),
        "checksum": getattr(version, "checksum", None),
    }
    return items, source
