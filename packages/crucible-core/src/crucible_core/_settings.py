"""Project settings: `[tool.crucible]` in `pyproject.toml`, or `crucible.toml`, with sources.

Precedence, highest first: an explicit argument > the environment (`CRUCIBLE_*`) > the project file >
the built-in default. Every value remembers where it came from, which `crucible config` prints.
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from crucible_core._stamps import settled, stamp
from crucible_core.exceptions import ConfigurationError

__all__ = (
    "SETTINGS",
    "Setting",
    "Settings",
    "SettingValue",
    "find_project_file",
    "load_settings",
)

PROJECT_FILE = "crucible.toml"


def _cache_default(env: Mapping[str, str]) -> str:
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return str(base / "crucible" / "datasets")


def _as_path(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError("a non-empty path string")
    return str(Path(value).expanduser())


def _as_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError("a non-empty string")
    return value.strip()


def _as_positive_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("a positive number")
    try:
        number = float(value)
    except ValueError:
        raise TypeError("a positive number") from None
    if not 0 < number < float("inf"):
        raise TypeError("a positive number")
    return number


def _as_count(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("a whole number >= 0")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise TypeError("a whole number >= 0")
    return value


@attrs.define(frozen=True)
class Setting:
    """One known setting: its key in the file, its environment variable, type and default."""

    key: str
    """Dotted key under `[tool.crucible]`, e.g. `providers.timeout`."""
    env: str
    """The environment variable that overrides the file."""
    parse: Callable[[object], Any]
    """Checks and converts a value; raises `TypeError("what it must be")`."""
    default: Callable[[Mapping[str, str]], Any]
    """The built-in default, computed from the environment when asked (`XDG_CACHE_HOME`)."""
    doc: str
    """What it is for."""


SETTINGS: Mapping[str, Setting] = {
    s.key: s
    for s in (
        Setting("cache_dir", "CRUCIBLE_CACHE_DIR", _as_path, _cache_default,
                "the dataset cache: downloaded, checksummed, versioned files"),
        Setting("results_dir", "CRUCIBLE_RESULTS_DIR", _as_path, lambda _: "runs",
                "where `crucible run` and the harness put run directories"),
        Setting("telemetry.store", "CRUCIBLE_TELEMETRY_STORE", _as_text, lambda _: "memory",
                "default telemetry store: 'memory', a SQLite path, or a postgresql:// DSN"),
        Setting("hedging.policy", "CRUCIBLE_HEDGING_POLICY", _as_text, lambda _: "percentile:95",
                "default hedging delay policy: 'fixed:<seconds>', 'percentile:<p>' or 'adaptive'"),
        Setting("providers.timeout", "CRUCIBLE_PROVIDER_TIMEOUT", _as_positive_float, lambda _: 60.0,
                "seconds a model request may take, excluding time queued in crucible"),
        Setting("providers.max_tokens", "CRUCIBLE_PROVIDER_MAX_TOKENS", _as_count, lambda _: 4096,
                "max_tokens sent with every request that sets none (bounds the worst-case cost)"),
        Setting("providers.max_retries", "CRUCIBLE_PROVIDER_MAX_RETRIES", _as_count, lambda _: 3,
                "retries of a failed request (429, 5xx, network) before the error is reported"),
    )
}  # fmt: skip


@attrs.define(frozen=True)
class SettingValue:
    """A setting's effective value and where it came from."""

    key: str
    value: Any
    source: str
    """`explicit`, `environment (NAME)`, `file (path)` or `built-in`."""


@attrs.define(frozen=True)
class Settings(Mapping[str, Any]):
    """The effective settings: a read-only mapping of key → value, with `.source(key)`."""

    entries: Mapping[str, SettingValue]
    """Every setting's value and source, by key."""
    file: Path | None
    """The project file read, if any."""

    def __getitem__(self, key: str) -> Any:
        try:
            return self.entries[key].value
        except KeyError:
            raise KeyError(
                f"{key!r} is not a crucible setting; known: {', '.join(SETTINGS)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def source(self, key: str) -> str:
        """Where the value of `key` came from."""
        self[key]  # a clear KeyError for an unknown key
        return self.entries[key].source

    def render(self) -> str:
        """One line per setting: key, value, source."""
        width = max(len(k) for k in self.entries)
        shown = [(k, repr(v.value)) for k, v in self.entries.items()]
        vwidth = max(len(v) for _, v in shown)
        lines = [
            f"{k:<{width}}  {v:<{vwidth}}  {self.entries[k].source}" for k, v in shown
        ]
        head = f"project file: {self.file}" if self.file else "project file: none found"
        return "\n".join([head, *lines])


def find_project_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest `crucible.toml`, or `pyproject.toml` with `[tool.crucible]`, from `start` up.

    In one directory `crucible.toml` wins over `pyproject.toml`.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for directory in (here, *here.parents):
        own = directory / PROJECT_FILE
        if own.is_file():
            return own
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "crucible" in _read(pyproject).get("tool", {}):
            return pyproject
    return None


_PARSED: dict[Path, tuple[list[int], dict[str, Any]]] = {}
"""Project files already parsed, by path, with the stamp they had (see `crucible_core._stamps`)."""


def _read(path: Path) -> dict[str, Any]:
    """The parsed TOML at `path` (shared: callers must not modify it).

    A file whose stamp is unchanged since it was parsed, and which had settled then, is not
    parsed again: `load_settings` runs on every dataset load and model build.
    """
    try:
        with path.open(encoding="utf-8") as fh:
            mark = stamp(os.fstat(fh.fileno()))
            hit = _PARSED.get(path)
            if hit is not None and hit[0] == mark:
                return hit[1]
            read_at = time.time_ns()
            data = tomllib.loads(fh.read())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the project settings in {str(path)!r}: {exc}; fix the TOML or remove "
            "the file",
            path=str(path),
        ) from exc
    if settled(mark, read_at):
        _PARSED[path] = (mark, data)
    return data


def _flatten(table: Mapping[str, Any], path: Path, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, path, f"{key}."))
        elif key in SETTINGS:
            out[key] = value
        else:
            raise ConfigurationError(
                f"{str(path)!r}: {key!r} is not a crucible setting; known settings: "
                f"{', '.join(SETTINGS)} (see `crucible config`)",
                path=str(path),
                key=key,
            )
    return out


def _file_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = _read(path)
    table = (
        data if path.name == PROJECT_FILE else data.get("tool", {}).get("crucible", {})
    )
    if path.name == PROJECT_FILE and "tool" in table and "crucible" in table["tool"]:
        table = table["tool"][
            "crucible"
        ]  # also accept [tool.crucible] inside crucible.toml
    if not isinstance(table, dict):
        raise ConfigurationError(
            f"{str(path)!r}: [tool.crucible] must be a table", path=str(path)
        )
    return _flatten(table, path)


def _checked(setting: Setting, value: object, where: str) -> Any:
    try:
        return setting.parse(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{setting.key} from {where} must be {exc}, got {value!r}",
            key=setting.key,
            value=value,
        ) from None


def load_settings(
    start: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **explicit: Any,
) -> Settings:
    """The effective settings for a project, each with its source.

    Args:
        start: the directory to look for the project file from (default: the working directory).
        environ: the environment to read (default `os.environ`).
        **explicit: values given in code, by key with `.` written as `__`
            (`providers__timeout=30`); they win over everything else.

    Raises:
        ConfigurationError: an unknown key, a value of the wrong type, or unreadable TOML, with
            the file and key named.
    """
    env = os.environ if environ is None else environ
    path = find_project_file(start)
    from_file = _file_values(path)
    given = {k.replace("__", "."): v for k, v in explicit.items() if v is not None}
    unknown = set(given) - set(SETTINGS)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}",
            keys=sorted(unknown),
        )
    values: dict[str, SettingValue] = {}
    for key, setting in SETTINGS.items():
        if key in given:
            value, source = _checked(setting, given[key], "code"), "explicit"
        elif env.get(setting.env, "").strip():
            where = f"environment ({setting.env})"
            value, source = _checked(setting, env[setting.env], where), where
        elif key in from_file:
            where = f"file ({path})"
            value, source = _checked(setting, from_file[key], where), where
        else:
            value, source = setting.default(env), "built-in"
        values[key] = SettingValue(key, value, source)
    return Settings(values, path)
