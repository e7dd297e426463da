"""Public surface of crucible_telemetry."""

from __future__ import annotations

from crucible_core.testing import NOT_AT_IMPORT, check_exports


def test_exports() -> None:
    check_exports(
        "crucible_telemetry",
        forbidden=(
            *NOT_AT_IMPORT,
            "psycopg",
            "ssl",
            "asyncio",
            "crucible_core.models",
            "urllib.request",
        ),
    )
