"""A directory of chains as JSON files, with an index for listing and search."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from crucible_core.exceptions import CrucibleWarning
from crucible_core.export import atomic_write
from crucible_core.ids import is_id
from crucible_core.serde import converter, dumps, loads
from crucible_trace._check import is_aware, is_probability, is_text
from crucible_trace._export import from_json, to_json
from crucible_trace._model import Chain, TraceEvent
from crucible_trace._types import is_event_type
from crucible_trace.exceptions import (
    ChainFormatError,
    ChainNotFoundError,
    InvalidChainIdError,
    InvalidQueryError,
)

__all__ = ("ChainSummary", "SearchHit", "TraceStore")

_INDEX = "index.json"
_INDEX_SCHEMA = "crucible-trace.index"
_INDEX_VERSION = 1


@attrs.define(frozen=True, kw_only=True)
class ChainSummary:
    """What the store's index knows about one chain without reading it."""

    id: str
    """The chain id (its file is `<id>.json`)."""
    name: str
    """The chain name."""
    created_at: dt.datetime
    """When the chain was made."""
    event_count: int
    """How many events it holds."""
    types: tuple[str, ...]
    """The event types present, sorted."""
    mean_confidence: float | None
    """Mean stated confidence; `None` if no event states one."""
    max_confidence: float | None
    """Highest stated confidence."""

    @classmethod
    def of(cls, chain: Chain) -> ChainSummary:
        """The summary of a chain."""
        known = [e.confidence for e in chain.events if e.confidence is not None]
        return cls(
            id=chain.id,
            name=chain.name,
            created_at=chain.created_at,
            event_count=len(chain.events),
            types=tuple(sorted({e.type for e in chain.events})),
            mean_confidence=sum(known) / len(known) if known else None,
            max_confidence=max(known) if known else None,
        )


@attrs.define(frozen=True, kw_only=True)
class SearchHit:
    """A chain that matched a search, and which of its events matched."""

    chain: ChainSummary
    """The chain."""
    event_ids: tuple[str, ...]
    """Ids of the matching events, in chain order (empty when only the chain's name matched)."""


def _event_text(event: TraceEvent) -> str:
    parts = [event.decision, event.reasoning, *event.alternatives]
    parts += [p for p in (event.code_section, event.spec_reference) if p is not None]
    return "\n".join(parts).casefold()


class TraceStore:
    """Chains saved as `<chain id>.json` files in one directory, with `index.json` beside them.

    Every write is atomic (temporary file, fsync, rename), so a crash never leaves a half-written
    chain. The index is a cache: it is checked against the files (name, size, modification time)
    on every listing and repaired, so chains copied in by hand, or saved by another process, are
    found. Chain ids are checked to be crucible ids before any path is built, so no id can name a
    file outside the directory.

    Examples:
        >>> import tempfile
        >>> from crucible_trace import TraceStore, new_chain
        >>> store = TraceStore(tempfile.mkdtemp())
        >>> chain = new_chain("demo")
        >>> _ = store.save(chain)
        >>> store.load(chain.id) == chain
        True
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)

    @property
    def directory(self) -> Path:
        """The directory holding the chains."""
        return self._dir

    def __repr__(self) -> str:
        return f"TraceStore({str(self._dir)!r})"

    def _path(self, chain_id: object) -> Path:
        if not is_id(chain_id):
            raise InvalidChainIdError(
                f"{chain_id!r} is not a chain id; chain ids look like 'chain_01J…' "
                "(see `Chain.id`)",
                chain_id=chain_id,
            )
        assert isinstance(chain_id, str)
        return self._dir / f"{chain_id}.json"

    # -- chains ------------------------------------------------------------------------------
    def save(self, chain: Chain) -> Path:
        """Write the chain (replacing an earlier version with the same id) and index it.

        Returns:
            The chain's file.
        """
        path = self._path(chain.id)
        with atomic_write(path) as fh:
            fh.write(to_json(chain))
        entries = self._read_index()
        entries[chain.id] = self._entry(path, ChainSummary.of(chain))
        self._write_index(entries)
        return path

    def load(self, chain_id: str) -> Chain:
        """Read one chain.

        Raises:
            InvalidChainIdError: if `chain_id` is not a chain id.
            ChainNotFoundError: if no such chain is stored.
            ChainFormatError: if its file does not hold a valid chain.
        """
        path = self._path(chain_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError as err:
            raise ChainNotFoundError(
                f"no chain {chain_id!r} in {str(self._dir)!r}; `list_chains()` shows what is "
                "stored",
                chain_id=chain_id,
                directory=str(self._dir),
            ) from err
        chain = from_json(data)
        if chain.id != chain_id:
            raise ChainFormatError(
                f"file {str(path)!r} holds chain {chain.id!r}, not {chain_id!r}; rename it to "
                f"{chain.id}.json",
                version=None,
            )
        return chain

    def delete(self, chain_id: str) -> None:
        """Remove one chain and its index entry.

        Raises:
            InvalidChainIdError: if `chain_id` is not a chain id.
            ChainNotFoundError: if no such chain is stored.
        """
        path = self._path(chain_id)
        try:
            path.unlink()
        except FileNotFoundError as err:
            raise ChainNotFoundError(
                f"no chain {chain_id!r} in {str(self._dir)!r} to delete",
                chain_id=chain_id,
                directory=str(self._dir),
            ) from err
        entries = self._read_index()
        entries.pop(chain_id, None)
        self._write_index(entries)

    def __contains__(self, chain_id: object) -> bool:
        return is_id(chain_id) and self._path(chain_id).is_file()

    def __iter__(self) -> Iterator[Chain]:
        for summary in self.list_chains():
            yield self.load(summary.id)

    # -- the index ---------------------------------------------------------------------------
    @staticmethod
    def _entry(path: Path, summary: ChainSummary) -> dict[str, Any]:
        st = path.stat()
        return {
            "mtime_ns": st.st_mtime_ns,
            "size": st.st_size,
            "summary": converter.unstructure(summary),
        }

    def _read_index(self) -> dict[str, dict[str, Any]]:
        try:
            doc = loads((self._dir / _INDEX).read_bytes())
        except (FileNotFoundError, ValueError):
            return {}  # missing or damaged: rebuilt from the files
        if (
            not isinstance(doc, dict)
            or doc.get("schema") != _INDEX_SCHEMA
            or doc.get("version") != _INDEX_VERSION
            or not isinstance(doc.get("chains"), dict)
        ):
            return {}
        return doc["chains"]  # type: ignore[no-any-return]

    def _write_index(self, entries: dict[str, dict[str, Any]]) -> None:
        doc = {"schema": _INDEX_SCHEMA, "version": _INDEX_VERSION, "chains": entries}
        with atomic_write(self._dir / _INDEX, binary=True) as fh:
            fh.write(dumps(doc))

    def _summaries(self) -> list[ChainSummary]:
        entries = self._read_index()
        fresh: dict[str, dict[str, Any]] = {}
        changed = False
        for item in os.scandir(self._dir):
            stem, _, suffix = item.name.rpartition(".")
            if suffix != "json" or not is_id(stem) or not item.is_file():
                continue
            st = item.stat()
            entry = entries.get(stem)
            if (
                entry is not None
                and entry.get("mtime_ns") == st.st_mtime_ns
                and entry.get("size") == st.st_size
            ):
                fresh[stem] = entry
                continue
            changed = True
            try:
                chain = self.load(stem)
            except (ChainFormatError, ChainNotFoundError) as err:
                warnings.warn(
                    f"skipped {item.path!r}, which is not a readable chain: {err}",
                    CrucibleWarning,
                    stacklevel=3,
                )
                continue
            fresh[stem] = self._entry(Path(item.path), ChainSummary.of(chain))
        if changed or fresh.keys() != entries.keys():
            self._write_index(fresh)
        out: list[ChainSummary] = []
        for entry in fresh.values():
            try:
                out.append(converter.structure(entry["summary"], ChainSummary))
            except Exception:  # a damaged entry: read the chain itself
                out.append(ChainSummary.of(self.load(entry["summary"]["id"])))
        out.sort(key=lambda s: (s.created_at, s.id))
        return out

    def list_chains(self) -> tuple[ChainSummary, ...]:
        """Every stored chain, oldest first.

        Files that are not valid chains are skipped with a `CrucibleWarning`.
        """
        return tuple(self._summaries())

    def rebuild_index(self) -> tuple[ChainSummary, ...]:
        """Throw the index away and rebuild it from the chain files."""
        (self._dir / _INDEX).unlink(missing_ok=True)
        return self.list_chains()

    def search(
        self,
        query: str = "",
        *,
        type: str | None = None,
        min_confidence: float | None = None,
        since: dt.datetime | None = None,
    ) -> tuple[SearchHit, ...]:
        """Find chains, and the events in them, matching every filter given.

        An event matches when it has the `type`, a confidence of at least `min_confidence`, and
        `query` (case-insensitive) in its decision, reasoning, alternatives, code section or spec
        reference, or in its chain's name. A chain matches when one of its events does; with no
        event filter (`type`, `min_confidence`), a chain whose name holds `query` matches too.
        The index skips chains that cannot match before any is read.

        Args:
            query: text to look for; empty matches everything.
            type: a registered event type.
            min_confidence: a number in [0, 1].
            since: only chains created at or after this timezone-aware time.

        Raises:
            InvalidQueryError: if a filter cannot be used as given.
        """
        if not is_text(query):
            raise InvalidQueryError(
                f"query must be a string, got {query!r}", option="query", value=query
            )
        if type is not None and not is_event_type(type):
            raise InvalidQueryError(
                f"unknown event type {type!r}; see `crucible_trace.event_types()`",
                option="type",
                value=type,
            )
        if min_confidence is not None and not is_probability(min_confidence):
            raise InvalidQueryError(
                f"min_confidence {min_confidence!r} must be a number in [0, 1]",
                option="min_confidence",
                value=min_confidence,
            )
        if since is not None and not is_aware(since):
            raise InvalidQueryError(
                f"since {since!r} must be a timezone-aware datetime, e.g. "
                "`datetime(2025, 1, 1, tzinfo=timezone.utc)`",
                option="since",
                value=since,
            )
        needle = query.strip().casefold()
        event_filter = type is not None or min_confidence is not None
        hits: list[SearchHit] = []
        for summary in self._summaries():
            if since is not None and summary.created_at < since:
                continue
            if type is not None and type not in summary.types:
                continue
            if min_confidence is not None and (
                summary.max_confidence is None
                or summary.max_confidence < min_confidence
            ):
                continue
            name_hit = bool(needle) and needle in summary.name.casefold()
            if not needle and not event_filter:
                hits.append(SearchHit(chain=summary, event_ids=()))
                continue
            chain = self.load(summary.id)
            ids = tuple(
                e.id
                for e in chain.events
                if (type is None or e.type == type)
                and (
                    min_confidence is None
                    or (e.confidence is not None and e.confidence >= min_confidence)
                )
                and (
                    not needle
                    or (event_filter and name_hit)
                    or needle in _event_text(e)
                )
            )
            if ids or (name_hit and not event_filter):
                hits.append(SearchHit(chain=summary, event_ids=ids))
        return tuple(hits)
