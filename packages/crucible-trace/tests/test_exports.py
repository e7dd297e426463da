"""Public surface of crucible_trace."""

from __future__ import annotations

from crucible_core.testing import check_exports


def test_exports() -> None:
    check_exports(
        "crucible_trace", forbidden=("aiohttp", "pyarrow", "polars", "jinja2", "scipy")
    )
