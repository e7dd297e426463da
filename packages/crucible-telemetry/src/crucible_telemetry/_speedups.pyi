"""Type stubs for the optional C extension (`_speedups.c`); see `_columnar.py`."""

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from crucible_core.context import Context

Buffers = tuple[bytearray, ...]

def scan(
    flat: list[Any],
    float_fallback: Callable[[Any, float], float | None],
    int_fallback: Callable[[Any], int | None],
    /,
) -> tuple[int, Buffers, list[Any], list[int], list[str], list[str], bool] | None: ...
def split_json(raw: bytes, n: int, /) -> tuple[bytearray, bytearray] | None: ...
def take(codes: Any, values: list[Any], /) -> list[Any]: ...
def numbers(values: Any, valid: Any, kind: str, /) -> list[Any]: ...
def event_ids(prefix: str, seq: Any, /) -> list[str]: ...
def event_id_buffers(
    prefix: bytes, seq: Any, /
) -> tuple[bytearray, bytearray] | None: ...

class Handler:
    def __init__(
        self,
        var: ContextVar[Context],
        live: Mapping[str, tuple[Any, ...]],
        fallback: Callable[[Any, Any, Any], None],
        perf_ns: Callable[[], int],
        time_ns: Callable[[], int],
    ) -> None: ...
    def __call__(self, name: Any, measurements: Any, metadata: Any, /) -> None: ...
