"""An asyncio event loop whose clock is virtual: timers fire at once, in order, without sleeping."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

__all__ = ("VirtualTimeLoop", "run_virtual")

T = TypeVar("T")


class _VirtualSelector(selectors.BaseSelector):
    """Polls the real selector without blocking; a wait for a timer advances the virtual clock."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(
        self, fileobj: Any, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: Any, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:  # nothing scheduled: only real I/O (a thread) can wake us
            return self._real.select(None)
        ready = self._real.select(0)
        if not ready and timeout > 0:
            self._loop._now += timeout
        return ready

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop in virtual time, for tests and what-if runs of real async code.

    `loop.time()` starts at 0 and only moves when every task is waiting on a timer: the clock then
    jumps to the next timer. So `asyncio.sleep(3600)`, `asyncio.wait_for` and
    [`hedged`][crucible_hedging.hedged]'s hedge delays take no wall time, and the order of events
    and every measured latency are exactly what they would be on an ideal machine. Real I/O
    (sockets, threads) still works, but the clock does not advance while it is pending, so keep
    network servers out of virtual-time runs.

    Examples:
        >>> import asyncio
        >>> async def main() -> float:
        ...     loop = asyncio.get_running_loop()
        ...     await asyncio.sleep(3600)
        ...     return loop.time()
        >>> run_virtual(main())
        3600.0
    """

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        """The virtual time in seconds since the loop was created."""
        return self._now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh [`VirtualTimeLoop`][crucible_hedging.VirtualTimeLoop].

    Like `asyncio.run`, but sleeps and timeouts take no wall time.

    Args:
        main: the coroutine to run.

    Returns:
        What `main` returns.
    """
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
