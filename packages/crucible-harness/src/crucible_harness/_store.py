"""The run directory: a manifest, and finished tasks appended durably as they complete.

```
<run_dir>/
  manifest.json   the experiment definition, its fingerprint, item ids, seeds, versions
  tasks.jsonl     one JSON line per finished task, appended and fsynced in groups
  status.json     how the run ended (complete, budget, interrupted, failed), rewritten atomically
```

A task counts as recorded once its line is fsynced. A process killed mid-write leaves at most one
torn last line, which reading detects and drops (and resuming truncates) so that the task simply
runs again. A malformed line anywhere else means the file was damaged and is an error.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crucible_core.exceptions import SerializationError
from crucible_core.export import atomic_write
from crucible_core.serde import dumps, loads
from crucible_harness.exceptions import ResumeMismatchError, RunDirectoryError

__all__ = ("RunStore", "task_key")

FORMAT = 1
MANIFEST = "manifest.json"
TASKS = "tasks.jsonl"
STATUS = "status.json"


def task_key(condition: str, item: str, repeat: int) -> str:
    """The unique key of one task."""
    return f"{condition}\x1f{item}\x1f{repeat}"


class RunStore:
    """Reads and appends one run directory."""

    def __init__(
        self, path: Path, manifest: dict[str, Any], records: list[dict[str, Any]]
    ) -> None:
        self.path = path
        """The run directory."""
        self.manifest = manifest
        """The manifest as written at creation."""
        self.records = records
        """Every recorded task, in the order recorded."""
        self._fh: Any = None
        self._pending: list[dict[str, Any]] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- creating and opening ------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, manifest: Mapping[str, Any]) -> RunStore:
        """Make a new run directory; refuses an existing non-empty directory."""
        if path.exists() and any(path.iterdir()):
            raise RunDirectoryError(
                f"{str(path)!r} already exists and is not empty; resume it with `resume=` "
                "or choose another output directory",
                path=str(path),
            )
        path.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, **manifest}
        with atomic_write(path / MANIFEST, binary=True) as fh:
            fh.write(dumps(data))
        (path / TASKS).touch()
        return cls(path, data, [])

    @classmethod
    def open(
        cls, path: Path, *, fingerprint: str | None = None, repair: bool = False
    ) -> RunStore:
        """Open an existing run directory, reading every recorded task.

        Args:
            path: the run directory.
            fingerprint: when given, the experiment fingerprint the run must have been made with.
            repair: truncate a torn last line (done before appending on resume).
        """
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise RunDirectoryError(
                f"{str(path)!r} is not a crucible run directory (no {MANIFEST}); pass the directory "
                "that `run` printed",
                path=str(path),
            )
        try:
            manifest = loads(manifest_path.read_bytes())
        except SerializationError as err:
            raise RunDirectoryError(
                f"{manifest_path}: {err.message}", path=str(manifest_path)
            ) from err
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise RunDirectoryError(
                f"{manifest_path} has an unknown format; it was not written by this version",
                path=str(path),
            )
        if fingerprint is not None and manifest.get("fingerprint") != fingerprint:
            raise ResumeMismatchError(
                f"{str(path)!r} was run with a different experiment definition "
                f"(fingerprint {manifest.get('fingerprint')!r}, now {fingerprint!r}): the conditions, "
                "dataset, sample, repeats or seed changed; start a new run instead",
                path=str(path),
                expected=manifest.get("fingerprint"),
                found=fingerprint,
            )
        records, good_bytes, total = _read_tasks(path / TASKS)
        if repair and good_bytes < total:
            with (path / TASKS).open("r+b") as fh:
                fh.truncate(good_bytes)
                fh.flush()
                os.fsync(fh.fileno())
        return cls(path, manifest, records)

    def completed_keys(self) -> set[str]:
        """Keys of every recorded task."""
        return {r["key"] for r in self.records}

    # -- appending -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background writer (inside the running loop)."""
        self._fh = (self.path / TASKS).open("ab")
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def add(self, record: dict[str, Any]) -> None:
        """Queue a finished task; it is durable after the next group write."""
        self.records.append(record)
        # serialized by the writer thread, off the event loop
        self._pending.append(record)
        assert self._wake is not None, "start() the store first"
        self._wake.set()

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()
            if self._closed and not self._pending:
                return

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        self._fh.write(b"".join(dumps(r) + b"\n" for r in batch))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    async def close(self) -> None:
        """Write everything queued and stop the writer."""
        if self._writer is None:
            return
        self._closed = True
        assert self._wake is not None
        self._wake.set()
        await self._writer
        self._writer = None
        await self._flush()
        self._fh.close()

    def write_status(self, status: Mapping[str, Any]) -> None:
        """Rewrite `status.json` atomically."""
        with atomic_write(self.path / STATUS, binary=True) as fh:
            fh.write(dumps(dict(status)))

    def read_status(self) -> dict[str, Any] | None:
        """The last status written, if any."""
        path = self.path / STATUS
        if not path.is_file():
            return None
        value = loads(path.read_bytes())
        return value if isinstance(value, dict) else None


def _read_tasks(path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """Records, the byte length of the good prefix, and the file's length."""
    if not path.is_file():
        return [], 0, 0
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        is_last = number == len(lines)
        if is_last:
            # no newline after it: a torn write (or the empty string after the final newline)
            break
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            record = loads(line)
            if not isinstance(record, dict) or "key" not in record:
                raise SerializationError("not a task record")
        except SerializationError as err:
            raise RunDirectoryError(
                f"{path}:{number} is not a valid task record ({err.message}); the file was damaged "
                "outside a crash (only the last line can be torn)",
                path=str(path),
                line=number,
            ) from err
        records.append(record)
        good += len(line) + 1
    return records, good, len(data)
