"""The run directory: a manifest, a lock, and finished tasks and events appended durably.

```
<run_dir>/
  manifest.json   the experiment definition, its fingerprint, item ids, seeds, versions
  lock            held (fcntl.flock) by the one process writing the run; names its pid and host
  tasks.jsonl     one checksummed JSON line per finished task, appended and fsynced in groups
  events.jsonl    the run's telemetry events, appended in the same group commits
  status.json     how the run stands (running, complete, stopped, budget, interrupted, failed) and
                  why; a sequential run's stopping summary (`SequentialStop.to_dict()`) at the end
```

A task counts as recorded once its line is fsynced. A process killed mid-write leaves at most one
torn last line, which reading detects and drops (and resuming truncates) so that the task simply
runs again. Every other line must be a valid record of a task of this run, carrying its task key
and a checksum of its content: anything else (a damaged or edited line, a record of a task the run
does not have, two different records of one task) stops reading with an error that names the
lines and points to `crucible repair RUN_DIR`. An exact duplicate line is dropped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from crucible_core.exceptions import SerializationError
from crucible_core.export import atomic_write
from crucible_core.render import RenderMixin, Table, View
from crucible_core.serde import dumps, loads
from crucible_harness.exceptions import (
    ResumeMismatchError,
    RunDirectoryError,
    RunDirectoryWarning,
    RunLockedError,
    RunRecordsError,
    RunWriteError,
)

__all__ = ("RepairResult", "RunLock", "RunStore", "repair", "task_key")

FORMAT = 2
"""Run directory format written: 2 adds record checksums (format 1 runs are read too)."""
_READABLE = (1, 2)
MANIFEST = "manifest.json"
TASKS = "tasks.jsonl"
EVENTS = "events.jsonl"
STATUS = "status.json"
LOCK = "lock"
_STATUS_SIZE = (
    4096  # status.json is padded to this size, so a full disk can still overwrite it
)
_CHECK = b',"checksum":"'
_CHECK_TAIL = len(_CHECK) + 32 + 2  # `,"checksum":"<32 hex>"}`
_SHOWN = 10  # problems named in an error message
_GROUP = 256  # records queued before a task yields the loop to the idle writer (`RunStore.pace`)
_BACKLOG = 16 * _GROUP  # records queued during a write before tasks wait for that write
_LOCK_TRIES = 10
_logger = logging.getLogger("crucible_harness")


def task_key(condition: str, item: str, repeat: int) -> str:
    """The unique key of one task."""
    return f"{condition}\x1f{item}\x1f{repeat}"


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).hexdigest().encode()


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One log line: the record's JSON with a checksum of that JSON as its last field.

    Raises:
        SerializationError: the record holds a value JSON cannot (a lone surrogate, an object).
    """
    body = dumps(record)
    return body[:-1] + _CHECK + _digest(body) + b'"}\n'


def _checked(line: bytes) -> bool | None:
    """Whether the line's checksum matches (`None`: the line carries none)."""
    if len(line) < _CHECK_TAIL + 2 or line[-_CHECK_TAIL:-34] != _CHECK:
        return None
    body = line[:-_CHECK_TAIL] + b"}"
    return _digest(body) == line[-34:-2]


# -- reading and checking the task log --------------------------------------------------------------


@attrs.define(kw_only=True)
class _Log:
    """What reading a task log found."""

    records: list[dict[str, Any]]
    lines: list[bytes]
    """The line of each record, as stored (without its newline)."""
    problems: list[tuple[int, str]]
    """(line number, what is wrong) for every line that cannot be used."""
    duplicates: list[int]
    """Line numbers of exact duplicates (dropped)."""
    unchecked: int
    """Records without a checksum (format-1 runs)."""
    good: int
    """Byte length of the prefix before a torn last line."""
    size: int


def expected_keys(manifest: Mapping[str, Any], path: Path) -> set[str]:
    """The key of every task the manifest's run has."""
    conditions, items, repeats = run_shape(manifest, path)
    return {
        task_key(c, i, r) for c in conditions for i in items for r in range(repeats)
    }


def run_shape(
    manifest: Mapping[str, Any], path: Path
) -> tuple[list[str], list[str], int]:
    """(condition names, item ids, repeats) of a manifest; an error naming what is missing."""
    exp = manifest.get("experiment")
    items = manifest.get("items")
    conditions: list[str] | None = None
    repeats: object = None
    if isinstance(exp, Mapping) and isinstance(exp.get("conditions"), list):
        names = [
            c.get("name") if isinstance(c, Mapping) else None for c in exp["conditions"]
        ]
        conditions = [n for n in names if isinstance(n, str)]
        conditions = conditions if len(conditions) == len(names) else None
        repeats = exp.get("repeats")
    if (
        conditions is None
        or not isinstance(items, list)
        or not isinstance(repeats, int)
        or repeats < 1
        or not isinstance(manifest.get("run_id"), str)
    ):
        raise RunDirectoryError(
            f"{path / MANIFEST} lacks the run's id, conditions, items or repeats (was it edited?); "
            "restore it from a backup, or start a new run",
            path=str(path),
        )
    return conditions, [str(i) for i in items], repeats


_FIELDS: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "condition": (str,),
    "item": (str,),
    "repeat": (int,),
    "status": (str,),
    "cost": (int, float, type(None)),  # None: unknown (a model without a price)
}


def _problem(record: object, keys: set[str]) -> str | None:
    """What makes a parsed record unusable, if anything."""
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [f for f in _FIELDS if f not in record]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for name, types in _FIELDS.items():
        value = record[name]
        if not isinstance(value, types) or isinstance(value, bool):
            return f"field {name!r} is {type(value).__name__}, not {types[0].__name__}"
    if record["status"] not in ("ok", "error"):
        return f"status {record['status']!r} is neither 'ok' nor 'error'"
    if record["key"] != task_key(record["condition"], record["item"], record["repeat"]):
        return "its key does not match its condition, item and repeat"
    if record["key"] not in keys:
        return (
            f"no task of this run has condition {record['condition']!r}, item "
            f"{record['item']!r}, repeat {record['repeat']}"
        )
    return None


def read_log(path: Path, keys: set[str], *, checksums: bool) -> _Log:
    """Read and check a task log (`checksums`: every record must carry a valid one)."""
    try:
        data = path.read_bytes() if path.exists() else b""
    except OSError as err:
        raise _os_error(err, path, doing="read the task log") from err
    log = _Log(
        records=[], lines=[], problems=[], duplicates=[], unchecked=0, good=0, size=0
    )
    log.size = len(data)
    seen: dict[str, int] = {}
    pieces = data.split(b"\n")
    for number, line in enumerate(pieces, start=1):
        if number == len(pieces):
            # no newline after it: a torn write (or the empty string after the final newline)
            break
        log.good += len(line) + 1
        if not line.strip():
            continue
        checked = _checked(line)
        if checked is False:
            log.problems.append((number, "its checksum does not match its content"))
            continue
        try:
            record = loads(line)
        except SerializationError as err:
            log.problems.append((number, f"not valid JSON ({err.message})"))
            continue
        if isinstance(record, dict):
            record.pop("checksum", None)
        why = _problem(record, keys)
        if why is None and checked is None:
            if checksums:
                why = "it carries no checksum"
            else:
                log.unchecked += 1
        if why is not None:
            log.problems.append((number, why))
            continue
        first = seen.get(record["key"])
        if first is None:
            seen[record["key"]] = len(log.records)
            log.records.append(record)
            log.lines.append(line)
        elif log.lines[first] == line:
            log.duplicates.append(number)
        else:
            log.problems.append(
                (
                    number,
                    f"a second, different record of task {record['key']!r} "
                    f"(condition {record['condition']!r}, item {record['item']!r}, "
                    f"repeat {record['repeat']})",
                )
            )
    return log


def _records_error(path: Path, problems: Sequence[tuple[int, str]]) -> RunRecordsError:
    shown = "; ".join(f"line {n}: {why}" for n, why in problems[:_SHOWN])
    more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    run_dir = path.parent
    return RunRecordsError(
        f"{path} holds {len(problems)} record(s) that cannot be used ({shown}{more}). "
        f"Run `crucible repair {run_dir}` to write a clean log (the original is kept beside "
        "it); the tasks it drops run again on resume",
        path=str(path),
        lines=[n for n, _ in problems],
        problems=[why for _, why in problems],
    )


def _os_error(err: OSError, path: Path, *, doing: str) -> RunDirectoryError:
    """A crucible error for an OSError met in a run directory, saying what to do."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (
            "the directory is read-only or not yours: make it writable, or copy the run "
            "directory somewhere writable and use the copy (reading it with `load_run`/"
            "`crucible report` needs no write access)"
        )
    elif err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "the disk is full: free space, then resume the run"
    elif err.errno == errno.ENOENT:
        fix = "the file or directory is missing: pass the directory that `run` printed"
    else:
        fix = "check the disk and the directory, then try again"
    return RunDirectoryError(
        f"cannot {doing} at {str(path)!r}: {reason}; {fix}",
        path=str(path),
        errno=err.errno,
    )


# -- the lock ---------------------------------------------------------------------------------------


def _holder_text() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(),
        "command": " ".join(sys.argv)[:500],
    }


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        value = loads(raw) if raw.strip() else {}
    except (OSError, SerializationError):
        return {}
    return value if isinstance(value, dict) else {}


class RunLock:
    """The one-writer lock of a run directory: `fcntl.flock` on `<run_dir>/lock`.

    The lock file holds the holder's pid, host and start time so that a refused process can name
    it. The kernel releases the lock when its holder exits, however it exits, so a lock left by a
    killed process is simply taken over (with a warning naming the old holder).
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        """The lock file."""
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """Take the lock, or raise `RunLockedError` naming the process holding it."""
        path = run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise _os_error(err, run_dir, doing="lock the run directory") from err
        try:
            _flock_briefly(fd)
        except OSError as err:
            holder = _read_holder(fd)
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _os_error(err, run_dir, doing="lock the run directory") from err
            who = (
                f"pid {holder.get('pid')} on host {holder.get('host')!r} "
                f"(since {holder.get('since')}, `{holder.get('command')}`)"
                if holder
                else "another process"
            )
            raise RunLockedError(
                f"{str(run_dir)!r} is being written by {who}; one process at a time may run or "
                "resume a run directory: wait for it to finish, or stop it and resume then",
                path=str(run_dir),
                pid=holder.get("pid"),
                host=holder.get("host"),
            ) from None
        previous = _read_holder(fd)
        if previous:
            _logger.warning(
                "taking over the lock of %s from pid %s on host %r, which no longer holds it "
                "(it was killed or crashed)",
                run_dir,
                previous.get("pid"),
                previous.get("host"),
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, dumps(_holder_text()) + b"\n", 0)
            os.fsync(fd)
        except OSError as err:
            os.close(fd)  # releases the lock
            raise _os_error(
                err, run_dir, doing="write the run directory's lock"
            ) from err
        return cls(path, fd)

    def release(self) -> None:
        """Clear the holder and release the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(
            OSError
        ):  # a full or read-only disk: the holder text stays
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock


def _flock_briefly(fd: int) -> None:
    """`flock(LOCK_EX)` without waiting for a writer, but past a reader's momentary probe.

    [`lock_held`][crucible_harness._store.lock_held] takes a shared lock for a few microseconds;
    a few short retries keep it from refusing a `resume` that starts at that instant.
    """
    for attempt in range(_LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or (
                attempt == _LOCK_TRIES - 1
            ):
                raise
            time.sleep(0.02)


def lock_held(run_dir: Path) -> bool:
    """Whether some process holds the run's lock now (asked of the kernel, not of the pid file).

    Unlike a pid check, this cannot be fooled by a reused pid; it needs no write access.
    """
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        return False
    finally:
        os.close(fd)  # releases the probe


# -- the store --------------------------------------------------------------------------------------


def _safe(value: Any) -> Any:
    """`value` with every string writable as JSON (lone surrogates escaped as backslash-u text)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {str(_safe(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    try:
        dumps(value)
    except SerializationError:
        return _safe(repr(value))
    return value


def unwritable(record: Mapping[str, Any], err: SerializationError) -> dict[str, Any]:
    """The failed record of a task whose record cannot be written as JSON.

    The output is kept losslessly as its Python `repr` (which escapes lone surrogates and other
    unprintable characters; `ast.literal_eval` gives back a string output exactly), in
    `raw_output`, and its metadata in `raw_metadata`.
    """
    failed = {
        k: _safe(v)
        for k, v in record.items()
        if k not in ("prediction", "metadata", "score")
    }
    failed.update(
        status="error",
        prediction=None,
        score=None,
        correct=False if record.get("correct") is not None else None,
        metadata={},
        error_type="SerializationError",
        error=_safe(
            f"the task's record cannot be written as JSON ({err.message}); its output is kept "
            "as its Python repr in `raw_output`"
        ),
        raw_output=_safe(repr(record.get("prediction"))),
        raw_metadata=_safe(repr(record.get("metadata"))),
    )
    return failed


_EVENT_KEYS = (
    "name",
    "time",
    "condition",
    "item",
    "repeat",
    "measurements",
    "metadata",
)


def encode_events(events: Sequence[tuple[Any, ...]]) -> bytes:
    """JSON lines of captured events; an event JSON cannot hold is written with escaped strings.

    Each line is copied into one buffer as soon as it is made: the bytes `orjson.dumps` returns
    keep the whole 4 KiB it allocated, so a list of them would hold 4 KiB per event.
    """
    out = bytearray()
    for e in events:
        row = dict(zip(_EVENT_KEYS, (".".join(e[0]), *e[1:]), strict=True))
        try:
            out += dumps(row)
        except SerializationError:
            out += dumps(_safe(row))
        out += b"\n"
    return bytes(out)


class _Appender:
    """One append-only log file written with raw `os.write`, so a failure leaves whole lines."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )

    def append(self, lines: Sequence[bytes]) -> tuple[int, OSError | None]:
        """Append whole lines and fsync; (lines now in the file, the error that stopped it)."""
        data = b"".join(lines)
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, view[done:])
            os.fsync(self.fd)
        except OSError as err:
            whole, length = 0, 0
            for line in lines:
                if length + len(line) > done:
                    break
                length += len(line)
                whole += 1
            if done > length:  # drop the torn piece of the next line
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, self.size + length)
            self.size += length
            return whole, err
        self.size += len(data)
        return len(lines), None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


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
        """Every recorded task, in the order recorded (queued ones included)."""
        self.failure: OSError | None = None
        """The error that stopped writing the logs, if one did: the run must stop."""
        self.unwritten = 0
        """Records queued that could not be written (after a failure)."""
        self.lock: RunLock | None = None
        self._tasks: _Appender | None = None
        self._events: _Appender | None = None
        self._pending: list[bytes] = []
        self._pending_events: list[tuple[Any, ...]] = []
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- creating and opening ------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, manifest: Mapping[str, Any]) -> RunStore:
        """Make a new run directory and lock it; refuses an existing non-empty directory."""
        try:
            if path.exists() and any(path.iterdir()):
                raise RunDirectoryError(
                    f"{str(path)!r} already exists and is not empty; resume it with `resume=` "
                    "or choose another output directory",
                    path=str(path),
                )
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _os_error(err, path, doing="create the run directory") from err
        lock = RunLock.acquire(path)
        data = {"format": FORMAT, **manifest}
        try:
            with atomic_write(path / MANIFEST, binary=True) as fh:
                fh.write(dumps(data))
            (path / TASKS).touch()
        except OSError as err:
            lock.release()
            raise _os_error(err, path, doing="write the run's manifest") from err
        store = cls(path, data, [])
        store.lock = lock
        return store

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        fingerprint: str | None = None,
        repair: bool = False,
        lock: bool = False,
    ) -> RunStore:
        """Open an existing run directory, reading and checking every recorded task.

        Args:
            path: the run directory.
            fingerprint: when given, the experiment fingerprint the run must have been made with.
            repair: truncate a torn last line of the logs (done before appending on resume).
            lock: take the run's lock first (to append: resume).

        Raises:
            RunDirectoryError: not a run directory, or its manifest is unreadable.
            RunLockedError: `lock` and another process holds it.
            RunRecordsError: the task log holds records that cannot be used.
        """
        manifest = read_manifest(path)
        if fingerprint is not None and manifest.get("fingerprint") != fingerprint:
            raise ResumeMismatchError(
                f"{str(path)!r} was run with a different experiment definition "
                f"(fingerprint {manifest.get('fingerprint')!r}, now {fingerprint!r}): the conditions, "
                "dataset, sample, repeats or seed changed; start a new run instead",
                path=str(path),
                expected=manifest.get("fingerprint"),
                found=fingerprint,
            )
        held = RunLock.acquire(path) if lock else None
        try:
            log = read_log(
                path / TASKS,
                expected_keys(manifest, path),
                checksums=manifest["format"] >= 2,
            )
            if log.problems:
                raise _records_error(path / TASKS, log.problems)
            if log.duplicates:
                warnings.warn(
                    f"{path / TASKS}: dropped {len(log.duplicates)} exact duplicate record(s) "
                    f"(lines {', '.join(map(str, log.duplicates[:_SHOWN]))}); "
                    f"`crucible repair {path}` removes them from the file",
                    RunDirectoryWarning,
                    stacklevel=3,
                )
            if log.unchecked and repair:
                _logger.info(
                    "%s: %d record(s) written before checksums were added are read unchecked; "
                    "`crucible repair %s` adds checksums",
                    path / TASKS,
                    log.unchecked,
                    path,
                )
            store = cls(path, manifest, log.records)
            if repair:
                store._truncate(path / TASKS, log.good, log.size)
                store._truncate(path / EVENTS, _good_prefix(path / EVENTS), None)
        except BaseException:
            if held is not None:
                held.release()
            raise
        store.lock = held
        return store

    def _truncate(self, path: Path, good: int, size: int | None) -> None:
        if not path.exists() or (size is not None and good >= size):
            return
        try:
            with path.open("r+b") as fh:
                if good < fh.seek(0, os.SEEK_END):
                    fh.truncate(good)
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as err:
            raise _os_error(err, path, doing="drop the torn last line") from err

    def completed_keys(self) -> set[str]:
        """Keys of every recorded task."""
        return {r["key"] for r in self.records}

    # -- appending -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the logs and start the background writer (inside the running loop)."""
        try:
            self._tasks = _Appender(
                self.path / TASKS, (self.path / TASKS).stat().st_size
            )
            events = self.path / EVENTS
            self._events = _Appender(
                events, events.stat().st_size if events.exists() else 0
            )
        except OSError as err:
            raise _os_error(err, self.path, doing="open the run's logs") from err
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Queue a finished task; it is durable after the next group write.

        A record JSON cannot hold becomes the failed record of
        [`unwritable`][crucible_harness._store.unwritable]; the record queued is returned.
        """
        try:
            line = encode_record(record)
        except SerializationError as err:
            record = unwritable(record, err)
            line = encode_record(record)
        self.records.append(record)
        self._pending.append(line)
        assert self._wake is not None, "start() the store first"
        self._wake.set()
        return record

    def add_event(self, event: tuple[Any, ...]) -> None:
        """Queue a telemetry event for `events.jsonl` (written with the next group)."""
        self._pending_events.append(event)

    async def pace(self) -> None:
        """Give the writer its turn when tasks finish without ever suspending.

        Tasks that await a network give the background writer the loop while they wait; tasks
        that never suspend (a zero-latency or cached model, a plain function) would otherwise
        keep it to themselves, queueing the whole run in memory and writing it only at the end
        (nothing durable until then, and every record, line and event held at once). Called by
        the executor after each task: with `_GROUP` records queued it yields one loop turn, in
        which the idle writer takes them; with `_BACKLOG` queued while a write is under way it
        waits for that write, so the queue stays bounded however fast tasks finish.
        """
        queued = len(self._pending)
        if queued < _GROUP or self._idle is None or self.failure is not None:
            return
        if self._idle.is_set():
            await asyncio.sleep(0)
        elif queued >= _BACKLOG:
            await self._idle.wait()

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()
            if self._closed and (not self._pending or self.failure is not None):
                return

    async def _flush(self) -> None:
        if self.failure is not None or not (self._pending or self._pending_events):
            return
        batch, self._pending = self._pending, []
        events, self._pending_events = self._pending_events, []
        assert self._idle is not None
        self._idle.clear()
        try:
            await asyncio.to_thread(self._write, batch, events)
        finally:
            self._idle.set()

    def _write(self, batch: list[bytes], events: list[tuple[Any, ...]]) -> None:
        assert self._tasks is not None
        assert self._events is not None
        if batch:
            written, err = self._tasks.append(batch)
            if err is not None:
                self._fail(err, batch[written:])
                return
        if events:
            _, err = self._events.append([encode_events(events)])
            if err is not None:
                self._fail(err, [])

    def _fail(self, err: OSError, unwritten: list[bytes]) -> None:
        if self.failure is None:
            self.failure = err
            _logger.error(
                "cannot write the logs of %s (%s); stopping the run", self.path, err
            )
        self._pending[:0] = unwritten  # kept for a last attempt when closing

    async def close(self) -> None:
        """Write everything queued and stop the writer.

        After a write failure, one last attempt writes whatever still fits, record by record;
        `unwritten` counts the records that did not.
        """
        if self._writer is None:
            return
        self._closed = True
        assert self._wake is not None
        self._wake.set()
        await self._writer
        self._writer = None
        await self._flush()
        if self.failure is not None and self._pending and self._tasks is not None:
            rest, self._pending = self._pending, []
            written, _ = await asyncio.to_thread(self._tasks.append, rest)
            self.unwritten = len(rest) - written
            if self._pending_events and self._events is not None:
                events, self._pending_events = self._pending_events, []
                await asyncio.to_thread(self._events.append, [encode_events(events)])
        for log in (self._tasks, self._events):
            if log is not None:
                log.close()

    def release(self) -> None:
        """Release the run's lock (if this store holds it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def write_status(
        self, status: Mapping[str, Any], *, in_place: bool = True, reserve: int = 0
    ) -> None:
        """Rewrite `status.json` atomically, padded to a fixed size.

        When the disk is full (or failing) and the atomic rewrite cannot be done, the padded
        file is overwritten in place (which needs no new space) if `in_place`; a run starting
        passes `in_place=False`, so that it refuses to start on a disk that cannot take a file,
        and `reserve`: the bytes its final status may add (a sequential summary), padded for.

        Raises:
            RunWriteError: neither way could write it.
        """
        data = dumps(dict(status))
        data = data + b" " * max(0, _STATUS_SIZE + reserve - 1 - len(data)) + b"\n"
        path = self.path / STATUS
        try:
            with atomic_write(path, binary=True) as fh:
                fh.write(data)
            return
        except OSError as first:
            try:
                if not in_place:
                    raise first
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    size = os.fstat(fd).st_size
                    if size < len(data):
                        raise first
                    # padded to the file's size: no byte of a longer earlier status is left
                    os.pwrite(fd, data[:-1] + b" " * (size - len(data)) + b"\n", 0)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as err:
                raise RunWriteError(
                    f"cannot write {path}: {os.strerror(err.errno or 0) or err}; the run's "
                    "status is not recorded (its tasks are): free space or make the directory "
                    "writable, then resume",
                    path=str(path),
                    errno=err.errno,
                ) from err

    def read_status(self) -> dict[str, Any] | None:
        """The last status written, if any."""
        path = self.path / STATUS
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _os_error(err, path, doing="read the run's status") from err
        try:
            value = loads(raw)
        except SerializationError:
            return None  # a status is advisory; a damaged one reads as unknown
        return value if isinstance(value, dict) else None


def _good_prefix(path: Path) -> int:
    """Byte length of a JSON-lines file up to its last newline."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            step = 4096
            pos = size
            while pos > 0:
                start = max(0, pos - step)
                fh.seek(start)
                chunk = fh.read(pos - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    return start + cut + 1
                pos = start
            return 0
    except FileNotFoundError:
        return 0


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a run directory, checked to be one this version reads."""
    manifest_path = path / MANIFEST
    try:
        raw = manifest_path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise RunDirectoryError(
            f"{str(path)!r} is not a crucible run directory (no {MANIFEST}); pass the directory "
            "that `run` printed",
            path=str(path),
        ) from None
    except OSError as err:
        raise _os_error(err, manifest_path, doing="read the run's manifest") from err
    try:
        manifest = loads(raw)
    except SerializationError as err:
        raise RunDirectoryError(
            f"{manifest_path}: {err.message}", path=str(manifest_path)
        ) from err
    if not isinstance(manifest, dict) or manifest.get("format") not in _READABLE:
        raise RunDirectoryError(
            f"{manifest_path} has an unknown format; it was not written by this version",
            path=str(path),
        )
    run_shape(manifest, path)
    return manifest


# -- repair -----------------------------------------------------------------------------------------


@attrs.define(frozen=True, kw_only=True)
class RepairResult(RenderMixin):
    """What [`repair`][crucible_harness.repair] did to a run directory's task log."""

    run_dir: Path
    """The run directory."""
    kept: int
    """Records in the clean log."""
    duplicates: int
    """Exact duplicate lines dropped."""
    dropped: Mapping[int, str] = attrs.field(factory=dict)
    """Lines dropped (damaged, foreign, conflicting), each with the reason."""
    checksummed: int = 0
    """Records of a format-1 run given checksums."""
    torn: bool = False
    """Whether a torn last line was dropped."""
    backup: Path | None = None
    """Where the original log was kept (`None`: the log was already clean, nothing changed)."""

    @property
    def changed(self) -> bool:
        """Whether the log was rewritten."""
        return self.backup is not None

    def _view(self) -> View:
        return View(
            title=f"Repair of {self.run_dir}: {'rewritten' if self.changed else 'already clean'}",
            facts=[
                ("records kept", self.kept),
                ("exact duplicates dropped", self.duplicates),
                ("records dropped", len(self.dropped)),
                ("checksums added", self.checksummed),
                ("torn last line dropped", self.torn),
                ("original kept at", str(self.backup) if self.backup else None),
            ],
            tables=[
                Table(
                    headers=("line", "dropped because"),
                    rows=sorted(self.dropped.items()),
                )
            ]
            if self.dropped
            else [],
        )


def repair(run_dir: str | os.PathLike[str]) -> RepairResult:
    """Write a clean task log for a run directory, keeping the original beside it.

    Keeps, in order, the first record of each task of the run that is intact (valid JSON, every
    field, a matching checksum); drops exact duplicates, records of tasks the run does not have,
    damaged lines, later conflicting records of a task already kept, and a torn last line. The
    dropped tasks run again on resume. A format-1 run (no checksums) gets checksums. The cost of
    the records dropped is remembered in the manifest so a resumed run's budget still counts it.
    Takes the run's lock, so it refuses a run that is being written.

    Returns:
        What was kept and dropped, and where the original is.
    """
    path = Path(run_dir)
    manifest = read_manifest(path)
    lock = RunLock.acquire(path)
    try:
        tasks = path / TASKS
        log = read_log(
            tasks, expected_keys(manifest, path), checksums=manifest["format"] >= 2
        )
        torn = log.good < log.size
        upgrade = manifest["format"] < FORMAT
        dropped = dict(log.problems)
        result = RepairResult(
            run_dir=path,
            kept=len(log.records),
            duplicates=len(log.duplicates),
            dropped=dropped,
            checksummed=log.unchecked,
            torn=torn,
        )
        if not (dropped or log.duplicates or log.unchecked or torn or upgrade):
            return result
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = path / f"{TASKS}.orig-{stamp}"
        dropped_cost = _dropped_cost(tasks, list(dropped))
        try:
            if tasks.exists():
                shutil.copy2(tasks, backup)
            with atomic_write(tasks, binary=True) as fh:
                for record in log.records:
                    fh.write(encode_record(record))
            _truncate_events(path / EVENTS)
            repairs = list(manifest.get("repairs") or [])
            repairs.append(
                {
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                    "kept": len(log.records),
                    "duplicates": len(log.duplicates),
                    "dropped": len(dropped),
                    "dropped_cost": dropped_cost,
                    "backup": backup.name if tasks.exists() else None,
                }
            )
            updated = {**manifest, "format": FORMAT, "repairs": repairs}
            with atomic_write(path / MANIFEST, binary=True) as fh:
                fh.write(dumps(updated))
        except OSError as err:
            raise _os_error(err, path, doing="write the repaired log") from err
        return attrs.evolve(result, backup=backup)
    finally:
        lock.release()


def _dropped_cost(tasks: Path, lines: list[int]) -> dict[str, float]:
    """Dollars of dropped lines that still read as records, per condition (best effort)."""
    if not lines:
        return {}
    wanted = set(lines)
    out: dict[str, float] = {}
    for number, line in enumerate(tasks.read_bytes().split(b"\n"), start=1):
        if number not in wanted:
            continue
        try:
            record = loads(line)
            cost = float(record["cost"])
            condition = str(record["condition"])
        except (SerializationError, KeyError, TypeError, ValueError):
            continue
        out[condition] = out.get(condition, 0.0) + cost
    return out


def _truncate_events(path: Path) -> None:
    if path.exists():
        good = _good_prefix(path)
        if good < path.stat().st_size:
            with path.open("r+b") as fh:
                fh.truncate(good)


def dropped_spend(manifest: Mapping[str, Any]) -> dict[str, float]:
    """Dollars of records `repair` dropped, per condition (they were paid for)."""
    out: dict[str, float] = {}
    for entry in manifest.get("repairs") or []:
        for condition, cost in (entry.get("dropped_cost") or {}).items():
            out[condition] = out.get(condition, 0.0) + float(cost)
    return out
