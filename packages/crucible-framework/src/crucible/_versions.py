"""Member versions: the import-time guard and `show_versions()`."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from crucible_core.exceptions import ConfigurationError

__all__ = ("MEMBERS", "check_member_versions", "member_version", "show_versions")

MEMBERS: dict[str, tuple[str, str]] = {
    "core": ("crucible-core", "crucible_core"),
    "telemetry": ("crucible-telemetry", "crucible_telemetry"),
    "trace": ("crucible-trace", "crucible_trace"),
    "datasets": ("crucible-datasets", "crucible_datasets"),
    "bench": ("crucible-bench", "crucible_bench"),
    "ensemble": ("crucible-ensemble", "crucible_ensemble"),
    "hedging": ("crucible-hedging", "crucible_hedging"),
    "lora": ("crucible-lora", "crucible_lora"),
    "harness": ("crucible-harness", "crucible_harness"),
}
"""Attribute name → (distribution, import name) of every member the facade exposes."""

_OPTIONAL = (
    "numpy", "scipy", "attrs", "cattrs", "orjson", "tenacity", "aiohttp", "polars", "pyarrow",
    "jinja2", "pingouin", "statsmodels", "psycopg", "torch", "peft", "transformers", "tinker",
)  # fmt: skip

_VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def member_version(module: str) -> str | None:
    """The version in the `_version.py` of the package `module`, read without importing it.

    `None` if the package is not installed or has no `_version.py` (a release older than the
    file). Importing every member to ask its `__version__` would cost the facade ~0.5 s, and the
    installed metadata (`importlib.metadata`) ~40 ms and may lag an editable checkout's source.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = (Path(location) / "_version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        match = _VERSION_LINE.search(text)
        if match:
            return match.group(1)
    return None


def check_member_versions(expected: str) -> None:
    """Raise if an installed member's version differs from the facade's.

    Each member's version is its `_version.py` (what `scripts/bump-version` writes and the wheel
    ships), so an editable checkout is checked against its source, not against metadata that may
    lag it.
    """
    wrong = []
    for dist, module in MEMBERS.values():
        found = member_version(module)
        if found is None:
            found = _version_of(
                dist
            )  # a member older than `_version.py`, or none at all
            if found == "not installed":
                wrong.append(f"{dist} (missing)")
                continue
        if found != expected:
            wrong.append(f"{dist}=={found}")
    if wrong:
        raise ConfigurationError(
            f"crucible-framework {expected} needs every member at {expected}, found "
            f"{', '.join(wrong)}: `pip install crucible-framework=={expected}` aligns them",
            expected=expected,
            found=wrong,
        )


def _version_of(dist: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions of Python, every member and every optional dependency, by name."""
    import platform

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    out["crucible-framework"] = _version_of("crucible-framework")
    out.update({dist: _version_of(dist) for dist, _ in MEMBERS.values()})
    out.update({name: _version_of(name) for name in _OPTIONAL})
    return out


def show_versions() -> None:
    """Print the versions a bug report needs: Python, every crucible member, optional libraries."""
    info = versions()
    width = max(len(k) for k in info)
    sys.stdout.write("".join(f"{k.ljust(width)}  {v}\n" for k, v in info.items()))
