from __future__ import annotations

from crucible_core.testing import check_exports


def test_exports() -> None:
    check_exports(
        "crucible",
        forbidden=("scipy", "pingouin", "pyarrow", "polars", "aiohttp", "jinja2"),
    )
