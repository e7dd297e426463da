from __future__ import annotations

from crucible_core.testing import NOT_AT_IMPORT, check_exports


def test_exports() -> None:
    check_exports(
        "crucible",
        forbidden=(
            *NOT_AT_IMPORT,
            "pingouin",
            "ssl",
            "numpy",
            "attrs",
            "crucible_bench",
            "crucible_harness",
        ),
    )
