"""Member versions: the import-time guard and `show_versions()`."""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
import sys

from crucible_core.exceptions import ConfigurationError

__all__ = ("MEMBERS", "check_member_versions", "show_versions")

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


def _is_editable(distribution: str) -> bool:
    try:
        text = md.distribution(distribution).read_text("direct_url.json")
    except md.PackageNotFoundError:
        return False
    if not text:
        return False
    return bool(json.loads(text).get("dir_info", {}).get("editable", False))


def check_member_versions(expected: str, *, editable: bool | None = None) -> None:
    """Raise if an installed member's version differs from the facade's.

    Editable installs (a development checkout) are not checked, since their metadata may lag the
    source; pass `editable=False` to check anyway.
    """
    if editable is None:
        editable = _is_editable("crucible-framework")
    if editable:
        return
    wrong = []
    for dist, _ in MEMBERS.values():
        try:
            found = md.version(dist)
        except md.PackageNotFoundError:
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
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions of Python, every member and every optional dependency, by name."""
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
