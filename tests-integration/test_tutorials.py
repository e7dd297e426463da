"""The five tutorial notebooks of docs/notebooks/ execute with nbclient and show what they claim (#18).

GSM8K is read from the shared datasets (`CRUCIBLE_GSM8K_SOURCE`), since CI has no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "docs" / "notebooks"
SHARED = Path(os.environ.get("CRUCIBLE_SHARED_DIR", ROOT.parent / "shared"))

EXPECTED = {
    "tutorial-1-harness-gsm8k": ["complete", "Simulated models", "gpt-4 (simulated)"],
    "tutorial-2-compare-arrays": ["t-test", "p ="],
    "tutorial-3-ensemble-vs-members": ["ensemble vs", "McNemar"],
    "tutorial-4-hedging-your-latencies": ["P99 reduction", "correlated attempts"],
    "tutorial-5-reasoning-trace": ["Use a dict plus a doubly linked list", "<html"],
}


def _text(notebook: Any) -> str:
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(
                v if isinstance(v, str) else json.dumps(v)
                for v in out.get("data", {}).values()
            )
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tutorial_notebook_executes(name: str, tmp_path: Path) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    gsm8k = SHARED / "datasets" / "gsm8k" / "test.jsonl"
    assert gsm8k.is_file(), (
        f"shared datasets missing at {SHARED}; set CRUCIBLE_SHARED_DIR"
    )
    os.environ["CRUCIBLE_GSM8K_SOURCE"] = str(gsm8k)  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        "commit notebooks with outputs stripped (scripts/make-tutorials.py writes them so)"
    )
    nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    text = _text(notebook)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in the outputs"


def test_the_notebooks_are_what_the_generator_writes(tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in NOTEBOOKS.glob("tutorial-*.ipynb")}
    assert sorted(before) == sorted(f"{n}.ipynb" for n in EXPECTED)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make-tutorials.py")], check=True,
                   capture_output=True)  # fmt: skip
    after = {p.name: p.read_bytes() for p in NOTEBOOKS.glob("tutorial-*.ipynb")}
    assert after == before, (
        "docs/notebooks differ from scripts/make-tutorials.py: rerun it"
    )
