"""Public surface of crucible_harness."""

from __future__ import annotations

from crucible_core.testing import NOT_AT_IMPORT, check_exports


def test_exports() -> None:
    check_exports(
        "crucible_harness",
        forbidden=(*NOT_AT_IMPORT, "ray", "crucible_core.models"),
    )
