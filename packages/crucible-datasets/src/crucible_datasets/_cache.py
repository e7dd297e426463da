"""The download cache: where files live, what was recorded about them, and how to clear it.

Layout under the cache root (`cache_dir=`, else `CRUCIBLE_CACHE_DIR`, else
`$XDG_CACHE_HOME/crucible/datasets`, else `~/.cache/crucible/datasets`):

```
files/<owner>--<repo>/<commit>/<path>      downloaded bytes, verified against `sha256`
refs/<owner>--<repo>/<revision>            the commit a branch or tag last resolved to
entries/<dataset>/<key>.json              one record per loaded (dataset, subset, split, revision)
derived/<owner>--<repo>/<commit>/<path>.json   stamps: what each file hashed to, and its `stat` then
derived/<owner>--<repo>/<commit>/<path>.arrow  a Parquet file decoded once, as uncompressed Arrow IPC
```

A cached file is hashed again only when its stamp no longer matches: its size, mtime, ctime,
inode or device differ from when it was last hashed, or it had changed too recently before that
hash for the file system's timestamps to tell a later same-size edit apart (see
`crucible_core._stamps`). A user cannot set a ctime back, so an edit that restores the mtime is
still caught. Everything under `derived/` can be deleted at any time; it is rebuilt from the
verified files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import orjson

from crucible_core._stamps import settled, stamp
from crucible_core.export import atomic_write
from crucible_core.render import RenderMixin, Table, View
from crucible_datasets.exceptions import DownloadError

__all__ = (
    "CacheEntry",
    "CacheListing",
    "CachedFile",
    "cache_root",
    "clear_cache",
    "invalidate_cache",
    "list_cached",
    "sha256_bytes",
    "sha256_file",
)

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at `path`, read in chunks."""
    return _hashed(path)[0]


def _hashed(path: Path) -> tuple[str, list[int] | None]:
    """The SHA-256 of `path` and its stamp, or `None` for the stamp if it changed while read."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        before = stamp(os.fstat(fh.fileno()))
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
        after = stamp(os.fstat(fh.fileno()))
    return digest.hexdigest(), before if before == after else None


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache root in use: `cache_dir`, else the `cache_dir` setting.

    The setting is `CRUCIBLE_CACHE_DIR`, else `cache_dir` in the project's `crucible.toml` or
    `[tool.crucible]`, else the XDG cache directory (see `crucible_core.settings`).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from crucible_core.settings import load_settings

    return Path(load_settings()["cache_dir"]).expanduser()


def _repo_dir(repo: str) -> str:
    return _safe(repo.replace("/", "--"))


def _safe(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return "_" * len(out) if set(out) <= {"."} else out  # never "", "." or ".."


_HEX = frozenset("0123456789abcdef")


def _inside(root: Path, path: Path, what: str) -> Path:
    """`path`, after checking that it stays inside the cache root (symlinks resolved)."""
    base = root.resolve()
    real = path.resolve()
    if real != base and not real.is_relative_to(base):
        raise DownloadError(
            f"refusing to use {what} {str(path)!r}: it lies outside the cache at {str(base)!r} "
            "(a hostile or broken hub, or a tampered cache); nothing was written",
            url=None,
            status=None,
        )
    return path


def file_path(root: Path, repo: str, commit: str, path: str) -> Path:
    """Where the file `path` of `repo` at `commit` is cached (checked to stay in the cache)."""
    if len(commit) != 40 or not set(commit) <= _HEX:
        raise DownloadError(
            f"refusing commit {commit!r:.80} for {repo}: a commit is 40 hex characters "
            "(a hostile or broken hub, or a tampered cache); nothing was written",
            url=None,
            status=None,
        )
    parts = Path(path).parts
    if not parts or Path(path).is_absolute() or any(p in ("..", ".") for p in parts):
        raise DownloadError(
            f"refusing file path {path!r:.200} in {repo}: it must be relative, without '..'",
            url=None,
            status=None,
        )
    return _inside(
        root, root / "files" / _repo_dir(repo) / commit / path, "the file path"
    )


def ref_path(root: Path, repo: str, revision: str) -> Path:
    """Where the commit that `revision` of `repo` last resolved to is recorded."""
    return _inside(
        root, root / "refs" / _repo_dir(repo) / _safe(revision), "the ref path"
    )


def read_ref(root: Path, repo: str, revision: str) -> str | None:
    """The commit `revision` last resolved to, or `None` if never resolved."""
    path = ref_path(root, repo, revision)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def write_ref(root: Path, repo: str, revision: str, commit: str) -> None:
    """Record that `revision` of `repo` resolved to `commit`."""
    with atomic_write(ref_path(root, repo, revision)) as fh:
        fh.write(commit)


@attrs.define(frozen=True, kw_only=True)
class CachedFile:
    """One cached file and its verified checksum."""

    path: str
    """The file's path in its repository."""
    sha256: str
    """Hex SHA-256 of its bytes."""
    size: int
    """Size in bytes."""


@attrs.define(frozen=True, kw_only=True)
class CacheEntry:
    """What one load recorded in the cache: the dataset, the revision, the commit, every file."""

    dataset: str
    """The dataset's name (`"mmlu"`)."""
    subset: str | None
    """The subset or config, if any."""
    split: str
    """The split."""
    repo: str
    """The hub repository, e.g. `"cais/mmlu"`."""
    revision: str
    """The revision asked for."""
    commit: str
    """The commit it resolved to."""
    files: tuple[CachedFile, ...]
    """Every file, with its SHA-256."""
    downloaded_at: dt.datetime
    """When the files were (last) downloaded, UTC."""

    @property
    def size(self) -> int:
        """Total bytes of the entry's files."""
        return sum(f.size for f in self.files)

    @property
    def key(self) -> str:
        """The entry's file name (without `.json`)."""
        return _safe(f"{self.subset or '-'}--{self.split}--{self.revision}")


def entry_path(root: Path, dataset: str, key: str) -> Path:
    """Where the entry `key` of `dataset` is recorded."""
    return _inside(root, root / "entries" / _safe(dataset) / f"{key}.json", "the entry")


def _entry_to_json(entry: CacheEntry) -> bytes:
    data: dict[str, Any] = attrs.asdict(entry, recurse=True)
    data["downloaded_at"] = entry.downloaded_at.isoformat()
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def _entry_from_json(data: bytes) -> CacheEntry:
    raw = orjson.loads(data)
    return CacheEntry(
        dataset=raw["dataset"],
        subset=raw["subset"],
        split=raw["split"],
        repo=raw["repo"],
        revision=raw["revision"],
        commit=raw["commit"],
        files=tuple(CachedFile(**f) for f in raw["files"]),
        downloaded_at=dt.datetime.fromisoformat(raw["downloaded_at"]),
    )


def write_entry(root: Path, entry: CacheEntry) -> None:
    """Record `entry` atomically."""
    with atomic_write(entry_path(root, entry.dataset, entry.key), binary=True) as fh:
        fh.write(_entry_to_json(entry))


def read_entry(root: Path, dataset: str, key: str) -> CacheEntry | None:
    """The entry `key` of `dataset`, or `None` if absent or unreadable."""
    try:
        return _entry_from_json(entry_path(root, dataset, key).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Stamps and the Arrow copies under derived/

_STAMPS_FORMAT = 1


def derived_path(root: Path, local: Path, suffix: str) -> Path:
    """Where what is derived from the cached file `local` lives: `suffix` `.json` or `.arrow`."""
    rel = local.relative_to(root / "files")
    return _inside(
        root, root / "derived" / rel.parent / f"{rel.name}{suffix}", "the derived path"
    )


def _read_stamps(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if isinstance(data, dict) and data.get("format") == _STAMPS_FORMAT:
        return data
    return {}


def _write_stamps(path: Path, stamps: dict[str, Any]) -> None:
    """Record `stamps`; a cache that cannot be written (read-only, full) just keeps hashing."""
    stamps["format"] = _STAMPS_FORMAT
    with contextlib.suppress(OSError), atomic_write(path, binary=True) as fh:
        fh.write(orjson.dumps(stamps))


def _trusted(record: dict[str, Any], stat: list[int]) -> bool:
    """Whether `record`'s stamp vouches that the file now at `stat` still has its SHA-256.

    It does when the stamp is the same and was taken once the file had settled.
    """
    at = record.get("at")
    return record.get("stat") == stat and isinstance(at, int) and settled(stat, at)


def is_verified(root: Path, local: Path, sha256: str) -> bool:
    """Whether the cached file `local` exists and has SHA-256 `sha256`.

    A file unchanged since it was hashed (its stamp under `derived/` still matches) is not read;
    any other is hashed, and stamped when its timestamps have settled.
    """
    try:
        stat = stamp(local.stat())
    except OSError:
        return False
    where = derived_path(root, local, ".json")
    stamps = _read_stamps(where)
    record = stamps.get("file")
    if (
        isinstance(record, dict)
        and record.get("sha256") == sha256
        and _trusted(record, stat)
    ):
        return True
    at = time.time_ns()
    try:
        actual, hashed = _hashed(local)
    except OSError:
        return False
    if actual != sha256:
        return False
    if hashed is not None and settled(hashed, at):
        stamps["file"] = {"sha256": actual, "stat": hashed, "at": at}
        _write_stamps(where, stamps)
    return True


def arrow_copy(
    root: Path, local: Path, sha256: str, decode: Callable[[Path], Any]
) -> Any:
    """The verified cached file `local` (SHA-256 `sha256`) as a pyarrow Table.

    Read from its uncompressed Arrow IPC copy under `derived/` when that copy is intact (its
    stamp matches, or it hashes to what was written), else decoded by `decode` and copied
    there atomically for next time. The copy is read into memory, not memory-mapped, so a
    cache cleared or rewritten later never pulls data out from under a live `Dataset`.
    """
    import pyarrow as pa

    where = derived_path(root, local, ".json")
    copy = derived_path(root, local, ".arrow")
    stamps = _read_stamps(where)
    record = stamps.get("arrow")
    if isinstance(record, dict) and record.get("from") == sha256:
        found = _read_copy(copy, record)
        if found is not None:
            table, hashed_at = found
            if hashed_at is not None:
                # vouched for by a hash of settled bytes: from now on its stamp will do
                stamps["arrow"] = record | {"at": hashed_at}
                _write_stamps(where, stamps)
            return table
    table = decode(local)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue()
    try:
        with atomic_write(copy, binary=True) as fh:
            fh.write(data)
        stat = stamp(copy.stat())
    except OSError:
        return table
    stamps["arrow"] = {
        "from": sha256,
        "sha256": hashlib.sha256(data).hexdigest(),
        "stat": stat,
        "rows": table.num_rows,
        "at": None,  # just written, so not settled: hashed on the next read
    }
    _write_stamps(where, stamps)
    return table


def _read_copy(path: Path, record: dict[str, Any]) -> tuple[Any, int | None] | None:
    """The Arrow copy at `path` if `record` vouches for it, else `None`.

    `None` covers a copy replaced, truncated, edited or unreadable. With the table comes the
    time it was hashed, when a hash had to vouch for it and its timestamps had settled (stamp it
    then), else `None`.
    """
    import pyarrow as pa

    try:
        with path.open("rb") as fh:
            stat = stamp(os.fstat(fh.fileno()))
            if record.get("stat") != stat:
                return None
            data = fh.read()
    except OSError:
        return None
    hashed_at = None
    if not _trusted(record, stat):
        at = time.time_ns()
        if hashlib.sha256(data).hexdigest() != record.get("sha256"):
            return None
        hashed_at = at if settled(stat, at) else None
    try:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
        table.validate()
    except (pa.ArrowException, ValueError):
        return None
    return (table, hashed_at) if table.num_rows == record.get("rows") else None


@attrs.define(frozen=True, kw_only=True)
class CacheListing(RenderMixin):
    """What is cached: one row per loaded (dataset, subset, split, revision)."""

    root: str
    """The cache root listed."""
    entries: tuple[CacheEntry, ...]
    """Every entry, sorted by dataset, subset, split."""

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        """Iterate the entries."""
        return iter(self.entries)

    def _view(self) -> View:
        return View(
            title=f"crucible-datasets cache ({self.root})",
            facts=[("entries", len(self.entries))],
            tables=[
                Table(
                    headers=(
                        "dataset",
                        "subset",
                        "split",
                        "revision",
                        "commit",
                        "files",
                        "bytes",
                    ),
                    rows=[
                        (
                            e.dataset,
                            e.subset,
                            e.split,
                            e.revision,
                            e.commit[:12],
                            len(e.files),
                            e.size,
                        )
                        for e in self.entries
                    ],
                )
            ],
        )


def _entries(root: Path) -> Iterable[CacheEntry]:
    base = root / "entries"
    if not base.is_dir():
        return
    for path in sorted(base.glob("*/*.json")):
        entry = read_entry(root, path.parent.name, path.stem)
        if entry is not None:
            yield entry


def list_cached(*, cache_dir: str | os.PathLike[str] | None = None) -> CacheListing:
    """List what the cache holds.

    Args:
        cache_dir: the cache root (default `CRUCIBLE_CACHE_DIR` or the XDG cache directory).

    Returns:
        A [`CacheListing`][crucible_datasets.CacheListing]: iterate it for
        [`CacheEntry`][crucible_datasets.CacheEntry] values, or show it as a table.
    """
    root = cache_root(cache_dir)
    entries = sorted(
        _entries(root), key=lambda e: (e.dataset, e.subset or "", e.split, e.revision)
    )
    return CacheListing(root=str(root), entries=tuple(entries))


def invalidate_cache(
    name: str, *, cache_dir: str | os.PathLike[str] | None = None
) -> int:
    """Forget everything cached for dataset `name`; the next load downloads it again.

    Files shared with another cached dataset's entry are kept for that entry.

    Args:
        name: the dataset, e.g. `"mmlu"`.
        cache_dir: the cache root (default `CRUCIBLE_CACHE_DIR` or the XDG cache directory).

    Returns:
        The number of entries removed.
    """
    root = cache_root(cache_dir)
    all_entries = list(_entries(root))
    mine = [e for e in all_entries if e.dataset == name]
    keep = {
        (e.repo, e.commit, f.path)
        for e in all_entries
        if e.dataset != name
        for f in e.files
    }
    for entry in mine:
        for f in entry.files:
            if (entry.repo, entry.commit, f.path) not in keep:
                local = file_path(root, entry.repo, entry.commit, f.path)
                for suffix in (".arrow", ".json"):
                    derived_path(root, local, suffix).unlink(missing_ok=True)
                local.unlink(missing_ok=True)
        entry_path(root, entry.dataset, entry.key).unlink(missing_ok=True)
    return len(mine)


def clear_cache(*, cache_dir: str | os.PathLike[str] | None = None) -> int:
    """Remove every cached dataset file, entry and ref under the cache root.

    Only the `files`, `refs`, `entries` and `derived` directories this package writes are
    removed.

    Args:
        cache_dir: the cache root (default `CRUCIBLE_CACHE_DIR` or the XDG cache directory).

    Returns:
        The number of entries removed.
    """
    root = cache_root(cache_dir)
    count = sum(1 for _ in _entries(root))
    for sub in ("files", "refs", "entries", "derived"):
        shutil.rmtree(root / sub, ignore_errors=True)
    return count
