"""The code blocks of docs/guides/ensemble.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "ensemble.md"
BLOCKS = (
    re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    if GUIDE.is_file()
    else []
)


@pytest.mark.skipif(not BLOCKS, reason="the docs tree is not next to the package")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(
        compile(BLOCKS[index], f"{GUIDE.name}[{index}]", "exec"), {"__name__": "guide"}
    )
    assert capsys.readouterr().out.strip()
