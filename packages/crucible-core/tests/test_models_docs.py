"""The code blocks of docs/guides/models.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "models.md"
BLOCKS = (
    re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    if GUIDE.is_file()
    else []
)


@pytest.mark.skipif(not BLOCKS, reason="the docs tree is not next to the package")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    from crucible_core.models import _registry

    before = set(_registry._PROVIDERS)
    try:
        exec(
            compile(BLOCKS[index], f"{GUIDE.name}[{index}]", "exec"),
            {"__name__": "guide"},
        )
    finally:
        for name in set(_registry._PROVIDERS) - before:
            del _registry._PROVIDERS[name]
    if index == 0:
        assert capsys.readouterr().out.count("$0.0050") == 3
