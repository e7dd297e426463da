from __future__ import annotations

import pytest

from crucible_core.testing import check_exports, imported_modules


@pytest.mark.parametrize(
    "module",
    ["crucible_core", "crucible_core.events", "crucible_core.context", "crucible_core.stats",
     "crucible_core.export", "crucible_core.serde", "crucible_core.render", "crucible_core.ids",
     "crucible_core.exceptions", "crucible_core.errors"],
)  # fmt: skip
def test_exports(module: str) -> None:
    check_exports(
        module,
        forbidden=("aiohttp", "pyarrow", "polars", "jinja2", "scipy", "tenacity"),
    )


def test_errors_alias_is_the_same_objects() -> None:
    import crucible_core.errors as errors
    import crucible_core.exceptions as exceptions

    assert all(getattr(errors, n) is getattr(exceptions, n) for n in exceptions.__all__)


def test_models_import_does_not_load_aiohttp() -> None:
    assert "aiohttp" not in imported_modules("import crucible_core.models")
