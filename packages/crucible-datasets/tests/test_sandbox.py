"""The HumanEval sandbox: canonical solutions pass, broken and hostile code is contained."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import crucible_datasets as cd
from crucible_datasets import SandboxConfig, execute

FAST = SandboxConfig(timeout=3.0)


def _marker(tmp_path: Path, name: str) -> Path:
    return tmp_path / name


def test_all_164_canonical_solutions_pass() -> None:
    ds = cd.load("humaneval")
    result = cd.evaluate(
        {i.id: i.expected for i in ds}, dataset=ds, model_name="canonical"
    )
    failed = [r.id for r in result.item_results if r.scores["pass@1"] != 1.0]
    assert failed == []
    assert result.accuracy == 1.0 and len(result.item_results) == 164
    assert result.intervals["pass@1"].method == "wilson"


def test_broken_solutions_fail() -> None:
    ds = cd.load("humaneval")
    first = ds.with_items(ds.items[:4])
    broken = {i.id: "    return None\n" for i in first}
    result = cd.evaluate(broken, dataset=first)
    assert result.accuracy == 0.0
    syntax = cd.evaluate({first[0].id: "    return (\n"}, dataset=first)
    assert syntax.item_results[0].scores["pass@1"] == 0.0
    assert syntax.n_missing == 3


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


def test_infinite_loop_is_killed_at_the_timeout() -> None:
    started = time.perf_counter()
    result = execute("while True:\n    pass\n", config=SandboxConfig(timeout=1.0))
    assert result.status == "timeout"
    assert result.returncode is None
    assert time.perf_counter() - started < 30  # generous: the point is that it returns


def test_sleeping_child_processes_do_not_survive() -> None:
    # Even with fork blocked, a program that hangs is killed with its whole process group.
    result = execute("import time\ntime.sleep(60)\n", config=SandboxConfig(timeout=0.5))
    assert result.status == "timeout"


def test_fork_bomb_is_contained() -> None:
    before = len(list(Path("/proc").iterdir())) if Path("/proc").is_dir() else 0
    result = execute(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        config=SandboxConfig(timeout=1.0),
    )
    assert result.status in ("failed", "timeout")
    if before:
        assert len(list(Path("/proc").iterdir())) < before + 50
    result = execute("import os\nos.fork()\n", config=FAST)
    assert result.status == "failed"
    assert "os.fork is not allowed" in result.stderr


@pytest.mark.parametrize(
    "program",
    [
        "import os\nos.system('touch {target}')\n",
        "import subprocess\nsubprocess.run(['touch', '{target}'])\n",
        "import os\nos.execv('/usr/bin/touch', ['touch', '{target}'])\n",
        "import os\nos.posix_spawn('/usr/bin/touch', ['touch', '{target}'], {{}})\n",
        "import pty\npty.spawn(['touch', '{target}'])\n",
        "import ctypes\nctypes.CDLL(None).system(b'touch {target}')\n",
        "open('{target}', 'w').write('x')\n",
        "import os\nfd = os.open('{target}', os.O_WRONLY | os.O_CREAT)\n",
        "import pathlib\npathlib.Path('{target}').write_text('x')\n",
        "import shutil\nshutil.copyfile('/etc/hostname', '{target}')\n",
        "import os\nos.symlink('/etc/hostname', 'link')\nopen('link', 'a').write('x')\n",
    ],
)
def test_hostile_programs_cannot_write_or_spawn(program: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    result = execute(program.format(target=target), config=FAST)
    assert result.status == "failed", result
    assert not target.exists()
    assert "sandbox" in result.stderr or "PermissionError" in result.stderr


def test_deleting_outside_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    for program in (
        f"import os\nos.remove({str(victim)!r})\n",
        f"import os\nos.rename({str(victim)!r}, 'mine')\n",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n",
        f"import os\nos.chmod({str(victim)!r}, 0)\n",
    ):
        assert execute(program, config=FAST).status == "failed"
    assert victim.read_text() == "precious"


def test_writes_inside_the_temporary_directory_work() -> None:
    result = execute(
        "import tempfile, os\n"
        "open('a.txt', 'w').write('hello')\n"
        "with tempfile.NamedTemporaryFile() as f:\n    f.write(b'x')\n"
        "os.mkdir('sub')\nos.rename('a.txt', 'sub/b.txt')\n"
        "print(open('sub/b.txt').read())\n",
        config=FAST,
    )
    assert result.status == "passed", result.stderr
    assert result.stdout.strip() == "hello"


def test_each_run_gets_a_fresh_directory() -> None:
    execute("open('left.txt', 'w').write('x')\n", config=FAST)
    result = execute("import os\nprint(os.listdir('.'))\n", config=FAST)
    assert result.stdout.strip() == "[]"


def test_huge_output_is_capped() -> None:
    cfg = SandboxConfig(timeout=5.0, max_output_bytes=1 << 16, keep_output_bytes=1000)
    result = execute(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 100000)\n", config=cfg
    )
    assert result.status == "failed"
    assert len(result.stdout) == 1000
    assert result.truncated
    big_file = execute("open('big', 'wb').write(b'0' * (1 << 20))\n", config=cfg)
    assert big_file.status == "failed"
    assert "File too large" in big_file.stderr


def test_memory_limit() -> None:
    result = execute(
        "x = bytearray(4 * 1024 ** 3)\n", config=SandboxConfig(memory_mb=256)
    )
    assert result.status == "failed"
    assert "MemoryError" in result.stderr


def test_execute_many_runs_in_parallel_and_keeps_order() -> None:
    programs = [f"print({i})\nimport sys\nsys.exit({i % 2})\n" for i in range(6)]
    results = cd.execute_many(
        programs, config=SandboxConfig(timeout=5.0, max_workers=2)
    )
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]
    assert [r.status for r in results] == ["passed", "failed"] * 3
    assert cd.execute_many([]) == []
    assert "passed" in results[0].render()


def test_config_validation() -> None:
    for bad in (
        {"timeout": 0},
        {"memory_mb": -1},
        {"max_workers": 0},
        {"timeout": True},
    ):
        with pytest.raises(ValueError, match="must be"):
            SandboxConfig(**bad)  # type: ignore[arg-type]
