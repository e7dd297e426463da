"""Public surface of crucible_bench."""

from __future__ import annotations

from crucible_core.testing import check_exports


def test_exports() -> None:
    check_exports(
        "crucible_bench",
        forbidden=(
            "aiohttp",
            "pyarrow",
            "polars",
            "jinja2",
            "scipy",
            "pandas",
            "pingouin",
            "statsmodels",
        ),
    )


def test_import_loads_no_metadata_http_or_asyncio() -> None:
    import subprocess
    import sys

    heavy = ("importlib.metadata", "ssl", "asyncio", "crucible_core.models")
    code = f"import sys, crucible_bench\nprint(*[n for n in {heavy!r} if n in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == []
    from importlib.metadata import version

    import crucible_bench

    assert crucible_bench.__version__ == version("crucible-bench")
