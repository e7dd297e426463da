"""Public surface of crucible_hedging."""

from __future__ import annotations

from crucible_core.testing import NOT_AT_IMPORT, check_exports


def test_exports() -> None:
    check_exports(
        "crucible_hedging",
        forbidden=(*NOT_AT_IMPORT,),
    )
