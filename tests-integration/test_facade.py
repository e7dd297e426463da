from __future__ import annotations

import subprocess
import sys

import pytest

import crucible
from crucible_core.testing import check_exports, imported_modules


def test_members_are_lazy_attributes() -> None:
    import crucible_bench
    import crucible_core

    assert crucible.core is crucible_core
    assert crucible.bench is crucible_bench
    assert {"bench", "core", "show_versions", "__version__"} <= set(dir(crucible))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = crucible.nope  # type: ignore[attr-defined]


def test_import_crucible_loads_nothing_heavy() -> None:
    loaded = imported_modules("import crucible")
    assert not loaded & {
        "scipy",
        "pingouin",
        "pyarrow",
        "polars",
        "aiohttp",
        "jinja2",
        "crucible_bench",
    }


def test_exports() -> None:
    check_exports("crucible", forbidden=("scipy", "pingouin", "pyarrow"))


def test_show_versions(capsys: pytest.CaptureFixture[str]) -> None:
    crucible.show_versions()
    out = capsys.readouterr().out
    assert f"crucible-framework  {crucible.__version__}" in out
    assert "crucible-bench" in out and "numpy" in out


def test_cli_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "crucible", "--version"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == f"crucible {crucible.__version__}"
