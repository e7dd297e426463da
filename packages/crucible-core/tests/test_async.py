from __future__ import annotations

import asyncio

import pytest

from crucible_core._async import run_sync
from crucible_core.exceptions import ConfigurationError


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def test_without_a_loop() -> None:
    assert run_sync(_double(2)) == 4


async def test_inside_a_running_loop_like_jupyter() -> None:
    # The running loop (as in a notebook cell) is not patched: the coroutine runs on a worker thread.
    assert run_sync(_double(3)) == 6
    assert run_sync(_double(4)) == 8


def test_errors_propagate() -> None:
    async def fail() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        run_sync(fail())


def test_nested_sync_call_is_refused() -> None:
    async def outer() -> int:
        return run_sync(_double(1))

    with pytest.raises(ConfigurationError, match="_async"):
        run_sync(outer())
