"""Run untrusted Python (model-written code) in a contained subprocess.

Each program runs in its own interpreter process (`python -I -S -B`: isolated, standard library
only, no bytecode writes) in a fresh temporary working directory, as the leader of a new session,
with these layers of containment:

- **Kernel limits** (`setrlimit`, set before the program runs): address space (`memory_mb`), CPU
  seconds (`timeout` + 1), file size (`max_output_bytes`, which also caps stdout/stderr, written
  to files), no core dumps, and `RLIMIT_NPROC` of 1 so the process cannot fork (enforced by the
  kernel for unprivileged users; root is exempt, so the guard below also blocks it).
- **An interpreter guard** (a `sys.addaudithook` hook, which cannot be removed once added): no
  `fork`, `exec`, `posix_spawn`, `os.system`, `subprocess`, signals to other processes, `ctypes`,
  sockets, or writes, renames, deletions and permission changes outside the working directory.
- **Wall-clock timeout**: the parent kills the whole process group with SIGKILL when `timeout`
  passes, and after every run, so nothing the program started survives it.

This is containment for benchmark code, not a security boundary against a determined attacker:
run untrusted code at scale as an unprivileged user (or in a container) as well.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import attrs
import orjson

from crucible_core.exceptions import ValidationError
from crucible_core.render import RenderMixin, View

__all__ = ("ExecutionResult", "SandboxConfig", "execute", "execute_many")

Status = Literal["passed", "failed", "timeout"]

_BOOTSTRAP = r"""
import os, sys, resource
_cfg = __import__("json").loads(sys.argv[1])
def _limit(name, value):
    res = getattr(resource, name, None)
    if res is not None:
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
_limit("RLIMIT_AS", _cfg["memory"])
_limit("RLIMIT_CPU", _cfg["cpu"])
_limit("RLIMIT_FSIZE", _cfg["fsize"])
_limit("RLIMIT_CORE", 0)
_limit("RLIMIT_NPROC", 1)
_src = open(_cfg["program"], encoding="utf-8").read()
_root = os.path.realpath(os.getcwd())
_BLOCKED = frozenset((
    "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.posix_spawnp", "os.spawn",
    "os.exec", "os.kill", "os.killpg", "os.setuid", "os.setgid", "os.setsid", "os.chroot",
    "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
    "socket.connect", "socket.bind", "socket.sendto", "socket.__new__",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
    "sys.setprofile", "sys.settrace", "resource.setrlimit", "resource.prlimit",
    "os.signal", "signal.pthread_kill", "os.putenv", "os.unsetenv", "webbrowser.open",
    "shutil.chown", "os.mknod", "os.mkfifo",
))
_BLOCKED_IMPORTS = frozenset((
    "ctypes", "_ctypes", "_posixsubprocess", "multiprocessing", "_multiprocessing",
    "_xxsubinterpreters", "socket", "_socket",
))
_PATH_EVENTS = {
    "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1,
    "os.truncate": 1, "os.utime": 1, "os.chflags": 1, "os.lchflags": 1, "os.setxattr": 1,
    "os.removexattr": 1, "shutil.rmtree": 1, "shutil.copyfile": 2, "shutil.copytree": 2,
    "shutil.move": 2, "shutil.copymode": 2, "shutil.copystat": 2, "shutil.copyxattr": 2,
    "shutil.make_archive": 1, "shutil.unpack_archive": 2, "os.rename": 2, "os.link": 2,
    "os.symlink": 2, "os.truncate": 1,
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_realpath, _join, _sep, _fsdecode = os.path.realpath, os.path.join, os.sep, os.fsdecode
_isinstance, _int, _str, _PE = isinstance, int, str, PermissionError

def _inside(path):
    if _isinstance(path, _int):
        return True
    real = _realpath(_join(_root, _fsdecode(path)))
    return real == _root or real.startswith(_root + _sep)

def _guard(event, args):
    if event in _BLOCKED or event.startswith(("os.exec", "os.spawn", "os.posix_spawn")):
        raise _PE("sandbox: " + event + " is not allowed")
    if event == "import":
        if args[0] in _BLOCKED_IMPORTS:
            raise _PE("sandbox: importing " + _str(args[0]) + " is not allowed")
    elif event == "open":
        path, mode, flags = (tuple(args) + (None, None, 0))[:3]
        if path is None or _isinstance(path, _int):
            return
        writes = (_isinstance(mode, _str) and any(c in mode for c in "wax+")) or (
            _isinstance(flags, _int) and flags & _WRITE_FLAGS
        )
        if writes and not _inside(path):
            raise _PE("sandbox: writing outside the working directory is not allowed: "
                      + _str(path))
    else:
        count = _PATH_EVENTS.get(event)
        if count:
            for path in args[:count]:
                if path is not None and not _inside(path):
                    raise _PE("sandbox: " + event + " outside the working directory is "
                              "not allowed: " + _str(path))

for _name in list(sys.modules):
    if _name in _BLOCKED_IMPORTS:
        del sys.modules[_name]
sys.addaudithook(_guard)
del _name, _limit, _cfg
_globals = {"__name__": "__main__", "__builtins__": __builtins__}
exec(compile(_src, "<program>", "exec"), _globals)
"""


def _positive(name: str) -> Any:
    def check(_: object, __: object, value: Any) -> None:
        if isinstance(value, bool) or not value > 0:
            raise ValidationError(f"{name} must be > 0, got {value!r}", **{name: value})

    return check


def _workers(_: object, __: object, value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ValidationError(
            f"max_workers must be a whole number >= 1 or None, got {value!r}",
            max_workers=value,
        )


@attrs.define(frozen=True, kw_only=True)
class SandboxConfig:
    """Limits for running untrusted code (see [`execute`][crucible_datasets.execute])."""

    timeout: float = attrs.field(default=10.0, validator=_positive("timeout"))
    """Wall-clock seconds before the process group is killed (CPU limit: this + 1)."""
    memory_mb: int = attrs.field(default=1024, validator=_positive("memory_mb"))
    """Address-space limit in MiB."""
    max_output_bytes: int = attrs.field(
        default=1 << 20, validator=_positive("max_output_bytes")
    )
    """The most bytes any file, stdout or stderr may grow to."""
    keep_output_bytes: int = attrs.field(
        default=4096, validator=_positive("keep_output_bytes")
    )
    """How much of stdout and stderr to keep in each result."""
    max_workers: int | None = attrs.field(default=None, validator=_workers)
    """Programs run at once (default: the number of CPUs)."""


@attrs.define(frozen=True, kw_only=True)
class ExecutionResult(RenderMixin):
    """What running one program did."""

    status: Status
    """`"passed"` (exit status 0), `"failed"` (an error or non-zero exit) or `"timeout"`."""
    returncode: int | None
    """The exit status (negative: killed by that signal); `None` after a timeout."""
    stdout: str
    """The start of standard output (at most `keep_output_bytes`)."""
    stderr: str
    """The start of standard error, e.g. the traceback (at most `keep_output_bytes`)."""
    duration: float
    """Wall-clock seconds."""
    truncated: bool = False
    """Whether stdout or stderr was longer than what is kept."""

    @property
    def passed(self) -> bool:
        """Whether the program exited with status 0 in time."""
        return self.status == "passed"

    def _view(self) -> View:
        tail = self.stderr.strip().splitlines()[-1:] if self.stderr.strip() else []
        return View(
            title=f"Execution: {self.status}",
            facts=[
                ("returncode", self.returncode),
                ("duration (s)", self.duration),
                ("truncated", self.truncated),
            ],
            notes=tail,
        )


def _read(path: Path, keep: int) -> tuple[str, bool]:
    try:
        with path.open("rb") as fh:
            data = fh.read(keep + 1)
    except FileNotFoundError:
        return "", False
    return data[:keep].decode("utf-8", errors="replace"), len(data) > keep


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def execute(program: str, *, config: SandboxConfig | None = None) -> ExecutionResult:
    """Run a Python program in the sandbox and report how it ended.

    Args:
        program: Python source (standard library only).
        config: the limits (default [`SandboxConfig()`][crucible_datasets.SandboxConfig]).

    Examples:
        >>> execute("assert 1 + 1 == 2").status
        'passed'
        >>> execute("while True: pass", config=SandboxConfig(timeout=0.5)).status
        'timeout'
    """
    cfg = config or SandboxConfig()
    outdir = Path(tempfile.mkdtemp(prefix="crucible-run-"))
    workdir = Path(tempfile.mkdtemp(prefix="crucible-sandbox-"))
    try:
        source = outdir / "program.py"
        source.write_text(program, encoding="utf-8")
        settings = orjson.dumps(
            {
                "program": str(source),
                "memory": int(cfg.memory_mb) << 20,
                "cpu": int(cfg.timeout) + 1,
                "fsize": int(cfg.max_output_bytes),
            }
        ).decode()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        started = time.perf_counter()
        with (
            (outdir / "stdout").open("wb") as out,
            (outdir / "stderr").open("wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-c", _BOOTSTRAP, settings],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            try:
                returncode: int | None = proc.wait(timeout=cfg.timeout)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                _kill_group(proc.pid)
                proc.wait()
        duration = time.perf_counter() - started
        stdout, cut_out = _read(outdir / "stdout", cfg.keep_output_bytes)
        stderr, cut_err = _read(outdir / "stderr", cfg.keep_output_bytes)
        status: Status = (
            "timeout"
            if returncode is None
            else "passed"
            if returncode == 0
            else "failed"
        )
        return ExecutionResult(
            status=status,
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            duration=duration,
            truncated=cut_out or cut_err,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)


def execute_many(
    programs: Sequence[str], *, config: SandboxConfig | None = None
) -> list[ExecutionResult]:
    """Run programs in parallel (`config.max_workers` at once), results in the same order.

    Args:
        programs: Python sources.
        config: the limits (default [`SandboxConfig()`][crucible_datasets.SandboxConfig]).
    """
    cfg = config or SandboxConfig()
    workers = cfg.max_workers or os.cpu_count() or 1
    if not programs:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(programs))) as pool:
        return list(pool.map(lambda p: execute(p, config=cfg), programs))
