"""Public surface of crucible_lora."""

from __future__ import annotations

from crucible_core.testing import check_exports


def test_exports() -> None:
    check_exports(
        "crucible_lora",
        forbidden=(
            "torch",
            "transformers",
            "peft",
            "tinker",
            "aiohttp",
            "pyarrow",
            "polars",
            "jinja2",
            "scipy",
        ),
    )
