"""The one sync→async bridge: `run_sync(coro)` runs a coroutine from sync code, even in Jupyter.

- No running loop: run it with `asyncio.run`.
- Inside a running loop (a notebook cell): run it on a private loop in a worker thread and wait;
  the notebook's loop is never patched.
- Called from inside one of our own `run_sync` calls: refused with a clear error (it would deadlock).
- Ctrl-C: the coroutine's task is cancelled and allowed to clean up before the interrupt propagates.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from crucible_core.exceptions import ConfigurationError

__all__ = ("run_sync",)

T = TypeVar("T")

_inside = contextvars.ContextVar("crucible_inside_run_sync", default=False)


async def _marked(coro: Coroutine[Any, Any, T]) -> T:
    _inside.set(True)
    return await coro


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    with asyncio.Runner() as runner:
        return runner.run(_marked(coro))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code and return its result.

    Raises:
        ConfigurationError: when called from code that a `run_sync` call is already running
            (use the `_async` twin and `await` it there instead).
    """
    if _inside.get():
        coro.close()
        raise ConfigurationError(
            "a sync crucible call was made from inside async crucible code; "
            "call the `_async` variant and `await` it instead"
        )
    import asyncio  # here: importing it loads ssl, which a package using run_sync may not need

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(coro)
    # A loop is running in this thread (Jupyter): use a private loop on a worker thread.
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(_run, coro)
        except BaseException as err:  # re-raised in the caller's thread below
            box["error"] = err

    thread = threading.Thread(target=target, name="crucible-run-sync", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
