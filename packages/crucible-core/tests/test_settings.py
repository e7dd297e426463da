"""Project settings: precedence explicit > environment > file > built-in, with sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from crucible_core.exceptions import ConfigurationError
from crucible_core.settings import SETTINGS, find_project_file, load_settings


def _project(tmp_path: Path, text: str, name: str = "pyproject.toml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    return nested


def test_built_in_defaults_without_a_file(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert s.file is None
    assert s["cache_dir"] == str(tmp_path / "xdg" / "crucible" / "datasets")
    assert s["providers.max_tokens"] == 1024
    assert {s.source(k) for k in SETTINGS} == {"built-in"}
    assert "project file: none found" in s.render()


def test_precedence_and_sources(tmp_path: Path) -> None:
    start = _project(
        tmp_path,
        '[project]\nname = "x"\n[tool.crucible]\nresults_dir = "runs"\n'
        "[tool.crucible.providers]\ntimeout = 30\nmax_tokens = 256\n",
    )
    env = {"CRUCIBLE_PROVIDER_TIMEOUT": "12.5"}
    s = load_settings(start, environ=env, providers__max_tokens=64)
    assert s.file == tmp_path / "pyproject.toml"
    assert s["results_dir"] == "runs"
    assert s.source("results_dir") == f"file ({tmp_path / 'pyproject.toml'})"
    assert s["providers.timeout"] == 12.5
    assert s.source("providers.timeout") == "environment (CRUCIBLE_PROVIDER_TIMEOUT)"
    assert s["providers.max_tokens"] == 64
    assert s.source("providers.max_tokens") == "explicit"
    assert s.source("hedging.policy") == "built-in"
    text = s.render()
    assert (
        "providers.timeout" in text
        and "environment (CRUCIBLE_PROVIDER_TIMEOUT)" in text
    )


def test_crucible_toml_wins_over_pyproject_in_the_same_directory(
    tmp_path: Path,
) -> None:
    _project(tmp_path, '[tool.crucible]\nresults_dir = "from-pyproject"\n')
    (tmp_path / "crucible.toml").write_text('results_dir = "from-crucible-toml"\n')
    assert find_project_file(tmp_path) == tmp_path / "crucible.toml"
    assert load_settings(tmp_path, environ={})["results_dir"] == "from-crucible-toml"


def test_a_pyproject_without_tool_crucible_is_not_a_project_file(
    tmp_path: Path,
) -> None:
    start = _project(tmp_path, '[project]\nname = "x"\n')
    assert find_project_file(start) is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            '[tool.crucible]\nresult_dir = "x"\n',
            "'result_dir' is not a crucible setting",
        ),
        ("[tool.crucible.providers]\ntimeout = -1\n", "providers.timeout from file"),
        ("[tool.crucible.providers]\nmax_tokens = true\n", "whole number"),
        ("[tool.crucible\n", "cannot read the project settings"),
    ],
)
def test_bad_files_name_the_key_and_the_fix(
    tmp_path: Path, text: str, match: str
) -> None:
    start = _project(tmp_path, text)
    with pytest.raises(ConfigurationError, match=match):
        load_settings(start, environ={})


def test_bad_environment_and_unknown_explicit_keys(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match="environment \\(CRUCIBLE_PROVIDER_MAX_RETRIES\\)"
    ):
        load_settings(tmp_path, environ={"CRUCIBLE_PROVIDER_MAX_RETRIES": "lots"})
    with pytest.raises(
        ConfigurationError, match="must be a positive number, got 'soon'"
    ):
        load_settings(tmp_path, environ={"CRUCIBLE_PROVIDER_TIMEOUT": "soon"})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        load_settings(tmp_path, environ={}, nope=1)
    with pytest.raises(KeyError, match="not a crucible setting"):
        load_settings(tmp_path, environ={})["nope"]
