from __future__ import annotations

import sys

import pytest

from crucible_core.testing import NOT_AT_IMPORT, check_exports, imported_modules


@pytest.mark.parametrize(
    "module",
    ["crucible_core", "crucible_core.events", "crucible_core.context", "crucible_core.stats",
     "crucible_core.export", "crucible_core.serde", "crucible_core.render", "crucible_core.ids",
     "crucible_core.exceptions", "crucible_core.errors"],
)  # fmt: skip
def test_exports(module: str) -> None:
    check_exports(
        module,
        forbidden=(*NOT_AT_IMPORT, "tenacity", "ssl", "crucible_core.models"),
    )


def test_import_loads_none_of_its_submodules() -> None:
    """Every package imports its errors from crucible_core: that must not load attrs or numpy."""
    for statement in ("import crucible_core", "import crucible_core.exceptions"):
        loaded = _loaded(
            statement, ("attrs", "numpy", "asyncio", "datetime", "logging")
        )
        assert loaded == [], statement
    assert _loaded("import crucible_core", ("crucible_core.exceptions",)) == []
    assert _loaded("import crucible_core as c; c.emit", ("attrs",)) == ["attrs"]


def test_errors_alias_is_the_same_objects() -> None:
    import crucible_core.errors as errors
    import crucible_core.exceptions as exceptions

    assert all(getattr(errors, n) is getattr(exceptions, n) for n in exceptions.__all__)


def test_models_import_does_not_load_aiohttp() -> None:
    assert "aiohttp" not in imported_modules("import crucible_core.models")


def _loaded(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of the modules `names` (full dotted names) `statement` loads in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        f"import sys\n{statement}\nprint(*[n for n in {names!r} if n in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


_HEAVY = ("importlib.metadata", "ssl", "asyncio", "crucible_core.models", "attrs")


def test_import_defers_metadata_models_retries_and_rate_limits() -> None:
    assert _loaded("import crucible_core", _HEAVY) == []
    # each lazy name is the submodule's own object, and is then cached on the package
    import crucible_core
    import crucible_core._config as _config
    import crucible_core.events as events
    import crucible_core.ids as ids
    import crucible_core.models as models
    import crucible_core.ratelimit as ratelimit

    retry = sys.modules[
        "crucible_core.retry"
    ]  # `import ... as` would give the function

    assert crucible_core.Model is models.Model
    assert crucible_core.build_model is models.build_model
    assert crucible_core.TokenBucket is ratelimit.TokenBucket
    assert crucible_core.retry_context is retry.retry_context
    assert (
        crucible_core.retry is retry.retry
    )  # the function, though its submodule loaded
    assert crucible_core.emit is events.emit
    assert crucible_core.new_id is ids.new_id
    assert crucible_core.DisplayOptions is _config.DisplayOptions
    assert "Model" in vars(crucible_core)
    assert _loaded("import crucible_core as c; c.models.Model", _HEAVY) != []
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        crucible_core.nope  # noqa: B018


def test_version_is_the_installed_one_without_metadata() -> None:
    from importlib.metadata import version

    import crucible_core

    assert crucible_core.__version__ == version("crucible-core")
    assert _loaded("import crucible_core; crucible_core.__version__", _HEAVY) == []


def test_a_name_spelled_like_its_submodule_stays_the_exported_object() -> None:
    code = (
        "import crucible_core.retry, crucible_core as c, sys\n"
        "print(c.retry is sys.modules['crucible_core.retry'].retry)\n"
        "from crucible_core import retry\n"
        "print(retry is c.retry, callable(retry))"
    )
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True", "True"]
