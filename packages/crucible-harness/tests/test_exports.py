"""Public surface of crucible_harness."""

from __future__ import annotations

from crucible_core.testing import check_exports


def test_exports() -> None:
    check_exports(
        "crucible_harness",
        forbidden=("aiohttp", "pyarrow", "polars", "jinja2", "scipy", "ray"),
    )
