"""Public surface of crucible_trace."""

from __future__ import annotations

from crucible_core.testing import NOT_AT_IMPORT, check_exports


def test_exports() -> None:
    check_exports(
        "crucible_trace",
        forbidden=(*NOT_AT_IMPORT, "ssl", "asyncio", "crucible_core.models"),
    )
