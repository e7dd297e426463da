"""The code blocks of docs/guides/bench.md run as written, and the docstring examples hold."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "bench.md"
BLOCKS = (
    re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    if GUIDE.is_file()
    else []
)
MODULES = [
    "crucible_bench",
    "crucible_bench._adjust",
    "crucible_bench._anova",
    "crucible_bench._assumptions",
    "crucible_bench._bootstrap",
    "crucible_bench._compare",
    "crucible_bench._correlation",
    "crucible_bench._effect",
    "crucible_bench._power",
    "crucible_bench._rank",
    "crucible_bench._tables",
    "crucible_bench._ttest",
]


@pytest.mark.skipif(not BLOCKS, reason="the docs tree is not next to the package")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_block_runs(index: int) -> None:
    exec(
        compile(BLOCKS[index], f"{GUIDE.name}[{index}]", "exec"), {"__name__": "guide"}
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert failures == 0
    assert tried > 0 or name == "crucible_bench._validate"
