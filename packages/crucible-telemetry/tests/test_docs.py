"""The guide's code blocks and the docstring examples run, and say what they claim."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "telemetry.md"
MODULES = (
    "crucible_telemetry",
    "crucible_telemetry._capture",
    "crucible_telemetry._experiment",
    "crucible_telemetry._metrics",
    "crucible_telemetry._sqlite",
    "crucible_telemetry._stores",
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0


def test_guide_code_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    if not GUIDE.exists():
        pytest.skip(f"{GUIDE} is not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 6
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks):
        exec(compile(block, f"{GUIDE.name} block {number}", "exec"), namespace)
    assert "Metrics of" in capsys.readouterr().out
