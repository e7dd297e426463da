"""Shared fixtures: the R/NIST reference cases, located outside the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# First calls import scipy lazily (hundreds of ms); deadlines would make that flaky.
settings.register_profile("crucible-bench", deadline=None)
settings.load_profile("crucible-bench")


def _shared_dir() -> Path:
    default = Path(__file__).resolve().parents[3] / ".." / "shared"
    return Path(os.environ.get("CRUCIBLE_SHARED", default))


def _cases() -> list[dict[str, Any]]:
    path = _shared_dir() / "reference" / "stats_cases.json"
    return list(json.loads(path.read_text()))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `reference_case` over every case in stats_cases.json, by id."""
    if "reference_case" in metafunc.fixturenames:
        cases = _cases()
        metafunc.parametrize("reference_case", cases, ids=[c["id"] for c in cases])


@pytest.fixture(scope="session")
def reference_cases() -> dict[str, dict[str, Any]]:
    """Every reference case, keyed by id."""
    return {c["id"]: c for c in _cases()}
