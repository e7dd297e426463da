"""Public surface of crucible_bench, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crucible_core.testing import NOT_AT_IMPORT, check_exports, loaded_modules


def test_exports() -> None:
    # every `__all__` name resolves, is in dir(), and is what mypy and the docs see
    check_exports(
        "crucible_bench",
        forbidden=(
            *NOT_AT_IMPORT,
            "ssl",
            "asyncio",
            "crucible_core.models",
            "numpy",
            "attrs",
            "pandas",
            "pingouin",
            "statsmodels",
        ),
    )


def test_each_name_loads_its_own_submodule_and_no_scipy() -> None:
    loaded = loaded_modules("from crucible_bench import ttest")
    assert "crucible_bench._ttest" in loaded and "numpy" in loaded
    assert "crucible_bench._compare" not in loaded
    assert not {m for m in loaded if m.split(".")[0] in {"scipy", "ssl", "aiohttp"}}


@pytest.mark.parametrize(
    "statement",
    [
        "import crucible_bench as cb; cb.compare",
        "from crucible_bench import *",
        "import crucible_bench as cb; dir(cb); cb.__version__",
    ],
)
def test_first_use_loads_no_scipy_http_or_metadata(statement: str) -> None:
    loaded = loaded_modules(statement)
    heavy = {"scipy", "ssl", "aiohttp", "importlib.metadata", "crucible_core.models"}
    assert not {m for m in loaded if m in heavy or m.split(".")[0] in heavy}


def test_star_import_binds_every_name() -> None:
    code = (
        "import crucible_bench\nns = {}\nexec('from crucible_bench import *', ns)\n"
        "print(sorted(set(crucible_bench.__all__) - set(ns)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_lazy_names_are_the_submodules_objects_and_are_cached() -> None:
    import crucible_bench as cb
    from crucible_bench import _compare, _ttest

    assert cb.ttest is _ttest.ttest
    assert cb.TtestResult is _ttest.TtestResult
    assert cb.compare is _compare.compare
    assert "ttest" in vars(cb)  # resolved once, then a plain attribute
    assert {"ttest", "compare", "__version__", "BenchError"} <= set(dir(cb))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        cb.nope  # noqa: B018
