"""The cache root follows the project settings: `cache_dir=` > CRUCIBLE_CACHE_DIR > file > XDG."""

from __future__ import annotations

from pathlib import Path

import pytest

import crucible_datasets
from crucible_datasets._cache import cache_root


def test_the_cache_root_comes_from_the_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.delenv("CRUCIBLE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert cache_root() == tmp_path / "xdg" / "crucible" / "datasets"  # built in
    (tmp_path / "crucible.toml").write_text(f'cache_dir = "{tmp_path / "from-file"}"\n')
    assert cache_root() == tmp_path / "from-file"
    monkeypatch.setenv("CRUCIBLE_CACHE_DIR", str(tmp_path / "from-env"))
    assert cache_root() == tmp_path / "from-env"  # the environment over the file
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    # a real load with a local source leaves the cache alone; the listing reads the same root
    crucible_datasets.load("gsm8k", source=data_dir / "gsm8k" / "test.jsonl")
    assert crucible_datasets.list_cached().root == str(tmp_path / "from-env")
