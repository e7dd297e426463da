"""Run untrusted Python (model-written code) behind an operating-system boundary.

Backends, behind one [`Sandbox`][crucible_datasets.Sandbox] interface:

- **bubblewrap** (`bwrap`, Debian/Ubuntu/Fedora package `bubblewrap`) and **unshare**
  (util-linux): Linux namespaces. A new user namespace without capabilities, a private mount
  namespace whose root holds only read-only `/usr`, the interpreter and, when allowed, named
  packages; a fresh writable work dir and `/tmp`, each a tmpfs of `disk_mb` (bubblewrap >=
  0.8); a private `/proc` showing only the sandbox's processes; a new PID namespace (nothing
  outside can be seen or signalled; the judge is PID 1, so the program cannot kill it either);
  an empty network namespace; IPC and UTS namespaces; an allow-listed environment (no keys
  ever); rlimits on CPU, address space, file size, open files and processes; and a wall-clock
  kill of the whole process tree.
- **docker** / **podman**, when asked for (`SandboxConfig(backend="docker", image=...)`):
  `--network none`, all capabilities dropped, read-only root, tmpfs work dir, pids and memory
  limits.
- **process**: a plain subprocess with rlimits and a scrubbed environment. *Not a security
  boundary* (the program can read and write whatever the user running it can); only by explicit
  choice, for machines without namespaces.

`backend="auto"` (the default) takes bubblewrap, else unshare, and raises
[`SandboxUnavailableError`][crucible_datasets.SandboxUnavailableError], saying how to install
one, when neither works. Each result names the backend that ran it.

Verdicts. A run passes only when the sandbox's trusted code writes a per-run random token (128
bits, from `secrets`) with an "ok" verdict *after* the program or the tests finished, and the
sandbox exits with status 0. `SystemExit`, `os._exit`, `atexit`, `sys.excepthook`, signals and
threads cannot produce that line. For a [`CodeCheck`][crucible_datasets.CodeCheck] (a prompt,
completion and tests, as HumanEval is scored), the tests run in a separate judge process that
never runs model-written code and that forked the program process before reading the token or
the tests; the completion is called over a pipe and only plain values cross it, so the program
cannot see the token, read the expected answers, or fake a comparison (`__eq__` that always
says yes). For a plain program string the token lives in the same interpreter as the program:
exits and hooks cannot pass, but a program written against this protocol could find the token;
score benchmarks with `CodeCheck`.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import importlib.util
import marshal
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs

from crucible_core.exceptions import ValidationError
from crucible_core.render import RenderMixin, View
from crucible_datasets._sandbox_boot import WRAPPER
from crucible_datasets.exceptions import SandboxUnavailableError

__all__ = (
    "BubblewrapSandbox",
    "CodeCheck",
    "DockerSandbox",
    "ExecutionResult",
    "ProcessSandbox",
    "Sandbox",
    "SandboxConfig",
    "UnshareSandbox",
    "available_sandboxes",
    "execute",
    "execute_many",
    "get_sandbox",
)

Status = Literal["passed", "failed", "timeout"]
Reason = Literal[
    "passed",
    "assertion",
    "exception",
    "syntax",
    "timeout",
    "memory",
    "output_limit",
    "forged_exit",
    "exit",
    "crash",
    "sandbox_error",
]

_WORK = "/sandbox"
_SITE = "/site"
_PY = "/python"
_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": _WORK,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install "
    "bubblewrap`), or allow unprivileged user namespaces for `unshare` (sysctl "
    "kernel.unprivileged_userns_clone=1), or use SandboxConfig(backend='docker') with a running "
    "Docker or Podman daemon. To run without isolation, opt in with "
    "SandboxConfig(backend='process'), which is not a security boundary"
)


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


_NAMES = ("auto", "bwrap", "unshare", "docker", "podman", "process")


def _backend(_: object, __: object, value: Any) -> None:
    if not isinstance(value, Sandbox) and value not in _NAMES:
        raise ValidationError(
            f"backend must be one of {list(_NAMES)} or a Sandbox, got {value!r}",
            backend=value,
        )


def _packages(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    names = tuple(str(v) for v in value)
    for name in names:
        if not name.isidentifier():
            raise ValidationError(
                f"allow_packages takes top-level package names, got {name!r}",
                allow_packages=names,
            )
    return names


@attrs.define(frozen=True, kw_only=True)
class SandboxConfig:
    """Where and within which limits untrusted code runs (see [`execute`][crucible_datasets.execute])."""

    timeout: float = attrs.field(default=10.0, validator=_positive("timeout"))
    """Wall-clock seconds before the whole process tree is killed (CPU limit: this + 1)."""
    memory_mb: int = attrs.field(default=1024, validator=_positive("memory_mb"))
    """Address-space limit in MiB, per process."""
    max_output_bytes: int = attrs.field(
        default=1 << 20, validator=_positive("max_output_bytes")
    )
    """The largest file the program may write. Standard output and error are never a reason to
    fail: beyond `keep_output_bytes` they are read and dropped (as the reference scorer does)."""
    keep_output_bytes: int = attrs.field(
        default=4096, validator=_positive("keep_output_bytes")
    )
    """How much of stdout and stderr to keep in each result."""
    max_processes: int = attrs.field(default=32, validator=_positive("max_processes"))
    """`RLIMIT_NPROC`: processes and threads (namespace backends count the sandbox's own)."""
    max_open_files: int = attrs.field(default=64, validator=_positive("max_open_files"))
    """`RLIMIT_NOFILE`."""
    disk_mb: int = attrs.field(default=64, validator=_positive("disk_mb"))
    """The size in MiB of the work dir and of `/tmp`, each a fresh tmpfs, on the namespace and
    container backends (so a program cannot fill the disk or memory with files); the process
    backend's work dir is a plain directory."""
    max_workers: int | None = attrs.field(default=None, validator=_workers)
    """Programs run at once (default: the number of CPUs)."""
    backend: str | Sandbox = attrs.field(default="auto", validator=_backend)
    """`"auto"` (bubblewrap, else unshare), `"bwrap"`, `"unshare"`, `"docker"`, `"podman"`,
    `"process"` (no isolation: explicit opt-in only), or a [`Sandbox`][crucible_datasets.Sandbox]."""
    image: str = "python:3.11-slim"
    """The container image for the docker and podman backends."""
    allow_packages: tuple[str, ...] = attrs.field(default=(), converter=_packages)
    """Installed packages the program may import (e.g. `("numpy",)`), mounted read-only; by
    default only the standard library. Container backends use what the image has."""
    environment: Mapping[str, str] = attrs.field(factory=dict)
    """Extra environment variables, given explicitly: nothing is copied from the caller's."""


@attrs.define(frozen=True, kw_only=True)
class CodeCheck:
    """A completion scored by tests, as HumanEval is: `prompt + completion`, then `check(entry_point)`.

    The tests (`test`, defining `check(candidate)`) run in the sandbox's judge process, apart from
    the program, with `candidate` calling `entry_point` in the program process.
    """

    prompt: str
    """The problem's prompt (trusted: it runs in the judge too, for helpers the tests use)."""
    completion: str
    """The model's completion, appended to the prompt."""
    test: str
    """Source defining `check(candidate)`."""
    entry_point: str
    """The function the tests call."""

    def program(self) -> str:
        """The whole program, as OpenAI's human-eval assembles it."""
        return (
            f"{self.prompt}{self.completion}\n{self.test}\ncheck({self.entry_point})\n"
        )


@attrs.define(frozen=True, kw_only=True)
class ExecutionResult(RenderMixin):
    """What running one program did."""

    status: Status
    """`"passed"`, `"failed"` or `"timeout"`."""
    reason: Reason
    """Why: `"passed"`, `"assertion"`, `"exception"` (see `error_type`), `"syntax"`, `"timeout"`,
    `"memory"`, `"output_limit"` (a file larger than `max_output_bytes`), `"forged_exit"` (exit
    status 0 without the tests or program reaching their end), `"exit"` (a non-zero exit before
    the end), `"crash"` (killed by a signal) or `"sandbox_error"` (the sandbox failed to start)."""
    returncode: int | None
    """The sandbox's exit status (negative: killed by that signal); `None` after a timeout."""
    stdout: str
    """The start of standard output (at most `keep_output_bytes`)."""
    stderr: str
    """The start of standard error, e.g. the traceback (at most `keep_output_bytes`)."""
    duration: float
    """Wall-clock seconds."""
    backend: str
    """The sandbox that ran it (`"bwrap"`, `"unshare"`, `"docker"`, `"podman"`, `"process"`)."""
    error_type: str | None = None
    """The exception's type name, when one ended the run."""
    message: str = ""
    """The exception's message, or what killed the program."""
    truncated: bool = False
    """Whether stdout or stderr was longer than what is kept."""

    @property
    def passed(self) -> bool:
        """Whether the tests (or the program) ran to their end."""
        return self.status == "passed"

    def _view(self) -> View:
        tail = self.stderr.strip().splitlines()[-1:] if self.stderr.strip() else []
        return View(
            title=f"Execution: {self.status} ({self.reason})",
            facts=[
                ("backend", self.backend),
                ("error", self.error_type),
                ("returncode", self.returncode),
                ("duration (s)", self.duration),
                ("truncated", self.truncated),
            ],
            notes=[self.message, *tail] if self.message else tail,
        )


# ---------------------------------------------------------------------------------------------
# Backends


@attrs.define(frozen=True, kw_only=True)
class _Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    site: list[str]
    kill: list[str] | None = None  # a command that stops the sandbox (containers)


def _interpreter() -> tuple[Path, Path]:
    """The real interpreter (symlinks resolved) and the prefix holding its standard library."""
    exe = Path(os.path.realpath(sys.executable))
    base = Path(os.path.realpath(sys.base_prefix))
    return exe, base


def _package_dirs(names: Sequence[str]) -> list[tuple[Path, str]]:
    """(source path, name under /site) for each allowed package and its sibling data dirs."""
    out: list[tuple[Path, str]] = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValidationError(
                f"allow_packages names {name!r}, which is not installed here",
                allow_packages=tuple(names),
            )
        origin = Path(spec.origin)
        root = origin.parent if origin.name == "__init__.py" else origin
        parent = root.parent
        prefixes = (f"{name}.", f"{name}-")
        out.extend(
            (entry, entry.name)
            for entry in sorted(parent.iterdir())
            if entry.name == root.name or entry.name.startswith(prefixes)
        )
    return out


class Sandbox(abc.ABC):
    """A way to run the sandbox's Python wrapper in isolation (see the module notes)."""

    name: str
    """The backend's name, as results report it."""
    isolating: ClassVar[bool] = True
    """Whether it is a security boundary (only `process` is not)."""

    @abc.abstractmethod
    def unavailable(self) -> str | None:
        """`None` when the backend works on this machine, else why not."""

    @abc.abstractmethod
    def _launch(
        self, workdir: Path, mode: str, config: SandboxConfig, run_id: str
    ) -> _Launch:
        """The command that starts the wrapper in `mode` with `workdir` as its work dir."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_PROBES: dict[str, str | None] = {}
_PROBE_LOCK = threading.Lock()


def _probe(sandbox: Sandbox, fail: str | None) -> str | None:
    """Run `print(1)` in the sandbox once per process; the error if it does not work."""
    if fail is not None:
        return fail
    with _PROBE_LOCK:
        if sandbox.name not in _PROBES:
            try:
                result = _run_one(
                    "print('ok')", SandboxConfig(timeout=20.0, backend=sandbox), sandbox
                )
                _PROBES[sandbox.name] = (
                    None
                    if result.passed and result.stdout.strip() == "ok"
                    else f"a test run failed: {result.reason}: {result.stderr.strip()[-300:]}"
                )
            except OSError as err:
                _PROBES[sandbox.name] = f"a test run failed: {err}"
        return _PROBES[sandbox.name]


def _env(config: SandboxConfig) -> dict[str, str]:
    return {**_ENV, **{str(k): str(v) for k, v in config.environment.items()}}


def _python_argv(mode: str, exe: str) -> list[str]:
    return [exe, "-I", "-S", "-B", "-c", WRAPPER, mode]


class BubblewrapSandbox(Sandbox):
    """Linux namespaces through bubblewrap (`bwrap`), the default where it is installed."""

    name = "bwrap"

    def unavailable(self) -> str | None:
        if not sys.platform.startswith("linux"):
            return "bubblewrap needs Linux"
        return _probe(self, None if shutil.which("bwrap") else "`bwrap` is not on PATH")

    def _launch(
        self, workdir: Path, mode: str, config: SandboxConfig, run_id: str
    ) -> _Launch:
        exe, base = _interpreter()
        bwrap = shutil.which("bwrap") or "bwrap"
        # As root, bwrap starts without a user namespace and setpriv drops the program to an
        # unprivileged uid with no capabilities: a sandbox uid that maps to root would be exempt
        # from RLIMIT_NPROC. Otherwise, the usual unprivileged user namespace.
        user = (
            []
            if _AS_ROOT
            else [
                "--unshare-user",
                "--uid",
                "65534",
                "--gid",
                "65534",
                "--cap-drop",
                "ALL",
            ]
        )
        argv = [
            bwrap,
            *user,
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",
            "--hostname",
            "sandbox",
            "--clearenv",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        argv += _usr_links()
        if exe.is_relative_to("/usr"):
            python = str(exe)
        else:
            argv += ["--ro-bind", str(base), _PY]
            python = f"{_PY}/{exe.relative_to(base)}"
        site: list[str] = []
        for src, name in _package_dirs(config.allow_packages):
            if not site:
                argv += ["--perms", "0755", "--dir", _SITE]
                site = [_SITE]
            argv += ["--ro-bind", str(src), f"{_SITE}/{name}"]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        size = str(config.disk_mb << 20)
        if _bwrap_version(bwrap) >= (
            0,
            8,
        ):  # --size and --perms for tmpfs came in 0.8.0
            argv += ["--size", size, "--perms", "1777", "--tmpfs", "/tmp"]
            argv += ["--size", size, "--perms", "0777", "--tmpfs", _WORK]
        else:  # unbounded tmpfs and the host-side work dir
            argv += ["--tmpfs", "/tmp", "--chmod", "1777", "/tmp"]
            argv += ["--bind", str(workdir), _WORK]
        argv += ["--chdir", _WORK]
        for key, value in _env(config).items():
            argv += ["--setenv", key, value]
        return _Launch(
            argv=[*argv, *_drop(), *_python_argv(mode, python)],
            env={},
            cwd=None,
            site=site,
        )


_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_NOBODY = 65534


@functools.cache
def _bwrap_version(bwrap: str) -> tuple[int, ...]:
    try:
        out = subprocess.run(
            [bwrap, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (0,)
    found = re.search(r"(\d+)\.(\d+)", out)
    return tuple(int(x) for x in found.groups()) if found else (0,)


def _drop() -> list[str]:
    """The command prefix that drops root to an unprivileged uid without capabilities."""
    if not _AS_ROOT:
        return []
    return [
        "/usr/bin/setpriv",
        f"--reuid={_NOBODY}",
        f"--regid={_NOBODY}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _usr_links() -> list[str]:
    """Arguments for bwrap recreating /bin, /lib, ... as on the host (merged-/usr links or binds)."""
    out: list[str] = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            out += ["--symlink", str(p.readlink()), top]
        elif p.is_dir():
            out += ["--ro-bind", top, top]
    return out


_UNSHARE_SETUP = r"""
set -eu
R=$1; D=$2; P=$3; C=$4; shift 4
{ hostname sandbox || echo sandbox > /proc/sys/kernel/hostname; } 2>/dev/null || true
mount -t tmpfs -o size=16m,mode=755,nosuid,nodev tmpfs "$R"
mkdir -p "$R/usr" "$R/sandbox" "$R/tmp" "$R/proc" "$R/dev" "$R/site" "$R/python"
mount --rbind /usr "$R/usr"
mount -o remount,bind,ro,nosuid,nodev "$R/usr"
if [ "$P" != "-" ]; then
  mount --bind "$P" "$R/python"; mount -o remount,bind,ro,nosuid,nodev "$R/python"
fi
for top in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$top" ]; then ln -s "$(readlink "/$top")" "$R/$top"
  elif [ -d "/$top" ]; then mkdir -p "$R/$top"; mount --rbind "/$top" "$R/$top"
    mount -o remount,bind,ro,nosuid,nodev "$R/$top"; fi
done
while [ "${1:-}" != "--" ]; do
  mkdir -p "$R/site/$2"; [ -d "$1" ] || { rmdir "$R/site/$2"; touch "$R/site/$2"; }
  mount --bind "$1" "$R/site/$2"; mount -o remount,bind,ro,nosuid,nodev "$R/site/$2"; shift 2
done
shift
mount -t tmpfs -o size="$D"m,mode=0777,nosuid,nodev tmpfs "$R/sandbox"
mount -t tmpfs -o size="$D"m,mode=1777,nosuid,nodev tmpfs "$R/tmp"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
for d in null zero full random urandom; do
  touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"
done
cd /
cd "$R"
exec "$C" "$R" /bin/sh -c 'cd /sandbox && exec "$@"' sh "$@"
"""


class UnshareSandbox(Sandbox):
    """Linux namespaces through util-linux `unshare`, `mount`, `chroot` and `setpriv`."""

    name = "unshare"

    def unavailable(self) -> str | None:
        if not sys.platform.startswith("linux"):
            return "unshare needs Linux"
        missing = [
            t for t in ("unshare", "setpriv", "chroot", "mount") if not shutil.which(t)
        ]
        return _probe(self, f"{', '.join(missing)} not on PATH" if missing else None)

    def _launch(
        self, workdir: Path, mode: str, config: SandboxConfig, run_id: str
    ) -> _Launch:
        exe, base = _interpreter()
        root = workdir.parent / "root"
        root.mkdir(exist_ok=True)
        if exe.is_relative_to("/usr"):
            python, prefix = str(exe), "-"
        else:
            python, prefix = f"{_PY}/{exe.relative_to(base)}", str(base)
        packages = _package_dirs(config.allow_packages)
        binds = [x for src, name in packages for x in (str(src), name)]
        user = [] if _AS_ROOT else ["--user", "--map-root-user"]
        drop = _drop() or [
            "/usr/bin/setpriv",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
        argv = [
            shutil.which("unshare") or "unshare",
            *user,
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--net",
            "--ipc",
            "--uts",
            "--cgroup",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _UNSHARE_SETUP,
            "sh",
            str(root),
            str(config.disk_mb),
            prefix,
            shutil.which("chroot") or "/usr/sbin/chroot",
            *binds,
            "--",
            *drop,
            *_python_argv(mode, python),
        ]
        return _Launch(
            argv=argv, env=_env(config), cwd="/", site=[_SITE] if packages else []
        )


class DockerSandbox(Sandbox):
    """A container per program (`docker run`, or `podman run` with `engine="podman"`)."""

    def __init__(self, engine: str = "docker") -> None:
        self.engine = engine
        self.name = engine

    def __repr__(self) -> str:
        return f"DockerSandbox(engine={self.engine!r})"

    def unavailable(self) -> str | None:
        exe = shutil.which(self.engine)
        if exe is None:
            return f"`{self.engine}` is not on PATH"
        try:
            probe = subprocess.run(
                [exe, "info"], capture_output=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"`{self.engine} info` failed: {err}"
        if probe.returncode != 0:
            return f"no {self.engine} daemon: {probe.stderr.decode(errors='replace').strip()[-200:]}"
        return None

    def _launch(
        self, workdir: Path, mode: str, config: SandboxConfig, run_id: str
    ) -> _Launch:
        exe = shutil.which(self.engine) or self.engine
        name = f"crucible-sandbox-{run_id}"
        argv = [
            exe,
            "run",
            "--rm",
            "-i",
            "--name",
            name,
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--read-only",
            "--user",
            "65534:65534",
            "--pids-limit",
            str(config.max_processes + 8),
            "--memory",
            f"{config.memory_mb * 2}m",
            "--tmpfs",
            f"/tmp:size={config.disk_mb}m",
            "--tmpfs",
            f"{_WORK}:size={config.disk_mb}m,uid=65534,gid=65534",
            "--workdir",
            _WORK,
        ]
        for key, value in _env(config).items():
            argv += ["--env", f"{key}={value}"]
        argv += [config.image, *_python_argv(mode, "python3")]
        return _Launch(
            argv=argv, env=dict(os.environ), cwd=None, site=[], kill=[exe, "kill", name]
        )


class ProcessSandbox(Sandbox):
    """A plain subprocess with rlimits and a scrubbed environment. NOT a security boundary."""

    name = "process"
    isolating = False

    def unavailable(self) -> str | None:
        return None

    def _launch(
        self, workdir: Path, mode: str, config: SandboxConfig, run_id: str
    ) -> _Launch:
        site = [str(p.parent) for p, _ in _package_dirs(config.allow_packages)]
        env = {**_env(config), "HOME": str(workdir)}
        env.pop("TMPDIR")
        return _Launch(
            argv=_python_argv(mode, sys.executable),
            env=env,
            cwd=str(workdir),
            site=sorted(set(site)),
        )


_BUILTIN: dict[str, Sandbox] = {
    "bwrap": BubblewrapSandbox(),
    "unshare": UnshareSandbox(),
    "docker": DockerSandbox("docker"),
    "podman": DockerSandbox("podman"),
    "process": ProcessSandbox(),
}


def available_sandboxes() -> dict[str, str | None]:
    """Each backend and why it cannot run here (`None`: it can).

    Examples:
        >>> "process" in available_sandboxes()
        True
    """
    return {name: box.unavailable() for name, box in _BUILTIN.items()}


def get_sandbox(backend: str | Sandbox = "auto") -> Sandbox:
    """The backend `SandboxConfig(backend=...)` names, checked to work on this machine.

    `"auto"` is bubblewrap, else unshare; it never falls back to `process`.

    Raises:
        SandboxUnavailableError: the backend (or, for `"auto"`, every isolating one) cannot run
            here; the message says why and how to install one.
    """
    if isinstance(backend, Sandbox):
        box = backend
    elif backend == "auto":
        reasons = {}
        for name in ("bwrap", "unshare"):
            why = _BUILTIN[name].unavailable()
            if why is None:
                return _BUILTIN[name]
            reasons[name] = why
        raise SandboxUnavailableError(
            "no isolating sandbox can run here ("
            + "; ".join(f"{k}: {v}" for k, v in reasons.items())
            + f"): {_INSTALL_HINT}",
            backend="auto",
            reasons=reasons,
        )
    elif backend in _BUILTIN:
        box = _BUILTIN[backend]
    else:
        raise ValidationError(f"unknown sandbox backend {backend!r}", backend=backend)
    why = box.unavailable()
    if why is not None:
        raise SandboxUnavailableError(
            f"the {box.name} sandbox cannot run here: {why}. {_INSTALL_HINT}",
            backend=box.name,
            reasons={box.name: why},
        )
    return box


# ---------------------------------------------------------------------------------------------
# Running one program


class _Stream:
    """Keeps the start of a stream, counts the rest, and finds the verdict line in all of it."""

    def __init__(self, keep: int, token: bytes | None) -> None:
        self.keep = keep
        self.head = bytearray()
        self.total = 0
        self.token = token
        self.window = b""
        self.verdict: bytearray | None = None
        self.verdict_at: int | None = None
        self.count = 0

    def feed(self, chunk: bytes) -> None:
        start = self.total
        self.total += len(chunk)
        if len(self.head) <= self.keep:
            self.head += chunk[: self.keep + 1 - len(self.head)]
        token = self.token
        if token is None:
            return
        if self.verdict is not None and b"\n" not in self.verdict:
            self.verdict += chunk[: max(0, 4096 - len(self.verdict))]
        data = self.window + chunk
        base = start - len(self.window)
        at = data.find(token)
        while at >= 0:
            self.count += 1
            if self.verdict is None:
                self.verdict = bytearray(data[at + len(token) : at + len(token) + 4096])
                self.verdict_at = base + at
            at = data.find(token, at + len(token))
        self.window = data[-(len(token) - 1) :]

    def text(self) -> tuple[str, bool]:
        head = bytes(self.head)
        cut = self.total > self.keep
        if self.verdict_at is not None and self.verdict_at < len(head):
            end = head.find(b"\n", self.verdict_at)
            head = head[: self.verdict_at] + (head[end + 1 :] if end >= 0 else b"")
            cut = (
                self.total - (len(self.token or b"") + len(self.verdict or b""))
                > self.keep
            )
        return head[: self.keep].decode("utf-8", errors="replace"), cut

    def result(self) -> dict[str, Any] | None:
        if self.count > 1:
            return {
                "ok": False,
                "reason": "forged_exit",
                "type": "exit",
                "message": "more than one verdict line (a copy of the program answered too)",
            }
        if self.verdict is None or b"\n" not in self.verdict:
            return None
        # after the token: " <ok> <reason> <hex type> <hex message>"
        fields = bytes(self.verdict).split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
        if len(fields) != 5 or fields[0] != b"" or fields[1] not in (b"0", b"1"):
            return None
        try:
            error, message = (bytes.fromhex(f.decode()).decode() for f in fields[3:])
        except ValueError:
            return None
        fields = fields[1:]
        return {
            "ok": fields[0] == b"1",
            "reason": fields[1].decode(errors="replace"),
            "type": error or None,
            "message": message,
        }


def _kill(proc: subprocess.Popen[bytes], launch: _Launch) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if launch.kill is not None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(launch.kill, capture_output=True, timeout=10, check=False)


def _limits(config: SandboxConfig) -> dict[str, int]:
    return {
        "memory": int(config.memory_mb) << 20,
        "cpu": int(config.timeout) + 1,
        "fsize": int(config.max_output_bytes),
        "nofile": int(config.max_open_files),
        "nproc": int(config.max_processes),
    }


def _payload(
    program: str | CodeCheck, token: str, config: SandboxConfig, site: list[str]
) -> bytes:
    data: dict[str, Any] = {"token": token, "limits": _limits(config), "site": site}
    if isinstance(program, CodeCheck):
        data.update(attrs.asdict(program))
    else:
        data["program"] = program
    return marshal.dumps(
        data, 4
    )  # format 4: read by every Python >= 3.4 (container images)


def _signal_of(returncode: int, backend: str) -> int | None:
    if returncode < 0:
        return -returncode
    if (
        backend in ("bwrap", "unshare", "docker", "podman")
        and 128 < returncode < 128 + 65
    ):
        return returncode - 128
    return None


def _run_one(
    program: str | CodeCheck, config: SandboxConfig, box: Sandbox
) -> ExecutionResult:
    token = secrets.token_hex(16)
    base = Path(tempfile.mkdtemp(prefix="crucible-sandbox-"))
    workdir = base / "work"
    workdir.mkdir()
    if _AS_ROOT and box.isolating:
        os.chown(workdir, _NOBODY, _NOBODY)  # the program runs as that unprivileged uid
    mode = "check" if isinstance(program, CodeCheck) else "program"
    try:
        launch = box._launch(workdir, mode, config, token[:12])
        payload = _payload(program, token, config, launch.site)
        started = time.perf_counter()
        proc = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        stdin = proc.stdin
        assert stdin is not None

        def feed() -> None:
            with contextlib.suppress(OSError):
                stdin.write(payload)
            with contextlib.suppress(OSError):
                stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out = _Stream(config.keep_output_bytes, token.encode())
        err = _Stream(config.keep_output_bytes, None)
        timed_out = _pump(proc, out, err, started + config.timeout, launch)
        code = proc.wait()
        duration = time.perf_counter() - started
        writer.join(timeout=1.0)
        _kill(proc, launch)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    stdout, cut_out = out.text()
    stderr, cut_err = err.text()
    verdict = out.result()
    fields = _judge(verdict, code, timed_out=timed_out, backend=box.name, stderr=stderr)
    return ExecutionResult(
        returncode=None if timed_out else code,
        stdout=stdout,
        stderr=stderr,
        duration=duration,
        backend=box.name,
        truncated=cut_out or cut_err,
        **fields,
    )


def _pump(
    proc: subprocess.Popen[bytes],
    out: _Stream,
    err: _Stream,
    deadline: float,
    launch: _Launch,
) -> bool:
    """Read stdout and stderr until both close; kill the tree at the deadline. True if it did."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    timed_out = False
    grace: float | None = None
    try:
        while sel.get_map():
            now = time.perf_counter()
            if not timed_out and now >= deadline:
                timed_out = True
                _kill(proc, launch)
                grace = now + 2.0
            if grace is not None and now >= grace:
                break  # something outside the tree holds the pipes (process backend only)
            limit = (grace if grace is not None else deadline) - now
            for key, _ in sel.select(timeout=max(0.0, min(limit, 1.0))):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    key.data.feed(chunk)
                else:
                    sel.unregister(key.fileobj)
            if proc.poll() is not None and grace is None:
                grace = time.perf_counter() + 2.0  # the leader ended: drain, then stop
                _kill(proc, launch)
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
    return timed_out


def _judge(
    verdict: dict[str, Any] | None,
    returncode: int,
    *,
    timed_out: bool,
    backend: str,
    stderr: str,
) -> dict[str, Any]:
    """status, reason, error_type and message from the verdict line and how the sandbox ended."""
    if timed_out:
        return {
            "status": "timeout",
            "reason": "timeout",
            "message": "wall-clock timeout",
        }
    if verdict is not None and returncode == 0:
        if verdict.get("ok") is True:
            return {"status": "passed", "reason": "passed"}
        reason = str(verdict.get("reason"))
        if reason == "passed" or reason not in Reason.__args__:  # type: ignore[attr-defined]
            reason = "exception"
        error = verdict.get("type")
        return {
            "status": "timeout" if reason == "timeout" else "failed",
            "reason": reason,
            "error_type": None if error in (None, "exit", "signal") else str(error),
            "message": str(verdict.get("message", ""))[:500],
        }
    sig = _signal_of(returncode, backend)
    if sig == signal.SIGXCPU:
        return {"status": "timeout", "reason": "timeout", "message": "CPU time limit"}
    if sig == signal.SIGXFSZ:
        return {
            "status": "failed",
            "reason": "output_limit",
            "message": "file size limit",
        }
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        return {"status": "failed", "reason": "crash", "message": f"killed by {name}"}
    if returncode == 0:
        return {
            "status": "failed",
            "reason": "forged_exit",
            "message": "exited with status 0 before the end (no verdict from the sandbox)",
        }
    if "bwrap:" in stderr or "unshare:" in stderr or "setpriv:" in stderr:
        return {
            "status": "failed",
            "reason": "sandbox_error",
            "message": stderr.strip()[-300:],
        }
    if "MemoryError" in stderr:
        return {"status": "failed", "reason": "memory", "message": "out of memory"}
    return {
        "status": "failed",
        "reason": "exit",
        "message": f"exited with status {returncode}",
    }


def execute(
    program: str | CodeCheck, *, config: SandboxConfig | None = None
) -> ExecutionResult:
    """Run a program, or a completion against its tests, in the sandbox.

    Args:
        program: Python source (passes when it runs to its end), or a
            [`CodeCheck`][crucible_datasets.CodeCheck] (passes when `check()` returns).
        config: the backend and limits (default [`SandboxConfig()`][crucible_datasets.SandboxConfig]).

    Raises:
        SandboxUnavailableError: no isolating backend can run here (see `SandboxConfig.backend`).

    Examples:
        >>> execute("assert 1 + 1 == 2").status
        'passed'
        >>> execute("raise SystemExit(0)").reason
        'forged_exit'
        >>> execute("while True: pass", config=SandboxConfig(timeout=0.5)).status
        'timeout'
    """
    cfg = config or SandboxConfig()
    return _run_one(program, cfg, get_sandbox(cfg.backend))


def execute_many(
    programs: Sequence[str | CodeCheck], *, config: SandboxConfig | None = None
) -> list[ExecutionResult]:
    """Run programs in parallel (`config.max_workers` at once), results in the same order.

    Args:
        programs: Python sources or [`CodeCheck`][crucible_datasets.CodeCheck]s.
        config: the backend and limits (default [`SandboxConfig()`][crucible_datasets.SandboxConfig]).
    """
    cfg = config or SandboxConfig()
    if not programs:
        return []
    box = get_sandbox(cfg.backend)
    workers = cfg.max_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=min(workers, len(programs))) as pool:
        return list(pool.map(lambda p: _run_one(p, cfg, box), programs))
