"""The workspace lock never holds torch: the local adapter's stack is installed with pip only."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_uv_lock_has_no_torch_or_cuda_wheels() -> None:
    lock = ROOT / "uv.lock"
    if not lock.is_file():
        pytest.skip("not running from the workspace checkout (no uv.lock)")
    names = {p["name"] for p in tomllib.loads(lock.read_text())["package"]}
    heavy = sorted(n for n in names if re.match(r"^(torch|triton|peft|nvidia-.*)$", n))
    assert not heavy, (
        f"uv.lock holds {heavy}: `uv sync --all-extras` would install the CUDA build; keep "
        "torch/peft out of crucible-lora's extras (see packages/crucible-lora/pyproject.toml)"
    )
    assert (
        "tinker" in names
    )  # the lock is the real one, with crucible-lora's extra in it


def test_local_requirements_pin_the_cpu_build() -> None:
    text = (ROOT / "packages/crucible-lora/scripts/local-requirements.txt").read_text()
    assert re.search(r"^torch==[\d.]+\+cpu$", text, re.MULTILINE)
