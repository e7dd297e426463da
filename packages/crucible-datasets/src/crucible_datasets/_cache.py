"""The download cache: where files live, what was recorded about them, and how to clear it.

Layout under the cache root (`cache_dir=`, else `CRUCIBLE_CACHE_DIR`, else
`$XDG_CACHE_HOME/crucible/datasets`, else `~/.cache/crucible/datasets`):

```
files/<owner>--<repo>/<commit>/<path>      downloaded bytes, verified against `sha256`
refs/<owner>--<repo>/<revision>            the commit a branch or tag last resolved to
entries/<dataset>/<key>.json              one record per loaded (dataset, subset, split, revision)
```
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import orjson

from crucible_core.export import atomic_write
from crucible_core.render import RenderMixin, Table, View
from crucible_datasets.exceptions import ChecksumError, DownloadError

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
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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


def verify(path: Path, expected_sha256: str) -> None:
    """Raise `ChecksumError` if the file at `path` does not hash to `expected_sha256`."""
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{str(path)!r} has SHA-256 {actual[:16]}…, expected {expected_sha256[:16]}…; "
            "the file was changed or corrupted. It will be downloaded again on the next "
            "online load, or remove it with `crucible_datasets.invalidate_cache(name)`",
            path=str(path),
            expected=expected_sha256,
            actual=actual,
        )


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
                file_path(root, entry.repo, entry.commit, f.path).unlink(
                    missing_ok=True
                )
        entry_path(root, entry.dataset, entry.key).unlink(missing_ok=True)
    return len(mine)


def clear_cache(*, cache_dir: str | os.PathLike[str] | None = None) -> int:
    """Remove every cached dataset file, entry and ref under the cache root.

    Only the `files`, `refs` and `entries` directories this package writes are removed.

    Args:
        cache_dir: the cache root (default `CRUCIBLE_CACHE_DIR` or the XDG cache directory).

    Returns:
        The number of entries removed.
    """
    root = cache_root(cache_dir)
    count = sum(1 for _ in _entries(root))
    for sub in ("files", "refs", "entries"):
        shutil.rmtree(root / sub, ignore_errors=True)
    return count
