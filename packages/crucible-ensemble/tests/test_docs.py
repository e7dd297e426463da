"""Docstring examples run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "crucible_ensemble._ensemble",
    "crucible_ensemble._evaluate",
    "crucible_ensemble._normalize",
    "crucible_ensemble._results",
    "crucible_ensemble._voting",
    "crucible_ensemble.simulation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0 and result.failed == 0
