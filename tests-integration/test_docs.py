"""Every ```python block of every guide runs (blocks of one page share a namespace, in order)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs" / "guides").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = BLOCK.findall(page.read_text())
    if not blocks:
        pytest.skip(f"{page.name} has no python blocks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRUCIBLE_CACHE_DIR", str(tmp_path / "cache"))
    # the guides read real benchmark files from the shared datasets when told where they are
    shared = (
        Path(os.environ.get("CRUCIBLE_SHARED_DIR", ROOT.parent / "shared")) / "datasets"
    )
    monkeypatch.setenv("CRUCIBLE_DATASETS", str(shared))
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(blocks, start=1):
        try:
            exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
        except Exception as err:
            raise AssertionError(
                f"{page.name}, python block {number} failed: {err!r}\n{code}"
            ) from err
    assert Path.cwd() == tmp_path
