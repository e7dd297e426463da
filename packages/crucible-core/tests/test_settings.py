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
    assert s["providers.max_tokens"] == 4096  # DEFAULT_MAX_TOKENS
    assert s["providers.max_retries"] == 3 and s["results_dir"] == "runs"
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


# -- consumers: HTTP models take their defaults from the settings ------------------------------------
def _clear_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for s in SETTINGS.values():
        monkeypatch.delenv(s.env, raising=False)


def test_http_models_take_unset_options_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiohttp")
    from crucible_core.models import DEFAULT_RETRY, OpenAIModel

    _clear_provider_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    built_in = OpenAIModel("m", api_key="k")
    assert (built_in.timeout, built_in.max_tokens) == (60.0, 4096)
    assert built_in.retry is DEFAULT_RETRY
    (tmp_path / "crucible.toml").write_text(
        "[providers]\ntimeout = 12.5\nmax_tokens = 256\nmax_retries = 1\n",
        encoding="utf-8",
    )
    model = OpenAIModel("m", api_key="k")
    assert (model.timeout, model.max_tokens) == (12.5, 256)
    assert model.retry is not None and model.retry.attempts == 2  # one retry
    monkeypatch.setenv("CRUCIBLE_PROVIDER_TIMEOUT", "7")  # environment over the file
    assert OpenAIModel("m", api_key="k").timeout == 7.0
    explicit = OpenAIModel("m", api_key="k", timeout=3.0, max_tokens=9, retry=None)
    assert (explicit.timeout, explicit.max_tokens, explicit.retry) == (3.0, 9, None)
    # a bad value in the file names the file and the key
    (tmp_path / "crucible.toml").write_text(
        '[providers]\ntimeout = "soon"\n', encoding="utf-8"
    )
    monkeypatch.delenv("CRUCIBLE_PROVIDER_TIMEOUT")
    with pytest.raises(ConfigurationError, match=r"providers\.timeout"):
        OpenAIModel("m", api_key="k")


def test_a_settled_project_file_is_parsed_once_and_every_edit_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    real = tomllib.loads
    parsed: list[str] = []

    def counted(text: str) -> dict[str, object]:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(tomllib, "loads", counted)
    monkeypatch.setattr(
        "crucible_core._stamps.RACY_NS", 0
    )  # every file already settled
    start = _project(tmp_path, '[tool.crucible]\nresults_dir = "aaaa"\n')
    for _ in range(3):
        assert load_settings(start, environ={})["results_dir"] == "aaaa"
    assert len(parsed) == 1
    pyproject = tmp_path / "pyproject.toml"
    before = pyproject.stat()
    pyproject.write_text('[tool.crucible]\nresults_dir = "bbbb"\n')  # same size
    assert load_settings(start, environ={})["results_dir"] == "bbbb"
    import os

    pyproject.write_text('[tool.crucible]\nresults_dir = "cccc"\n')
    os.utime(pyproject, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back
    assert load_settings(start, environ={})["results_dir"] == "cccc"  # the ctime moved
    assert len(parsed) == 3

    monkeypatch.setattr("crucible_core._stamps.RACY_NS", 3600 * 10**9)
    pyproject.write_text('[tool.crucible]\nresults_dir = "dddd"\n')
    for _ in range(2):  # changed just before it was read: parsed every time, twice
        assert load_settings(start, environ={})["results_dir"] == "dddd"
    assert (
        len(parsed) == 3 + 2 * 2
    )  # (once to find the project file, once for its values)
