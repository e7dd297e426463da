"""Experiments without `store=` go to the store the `telemetry.store` setting names."""

from __future__ import annotations

from pathlib import Path

import pytest

import crucible_telemetry as tel
from crucible_core import events
from crucible_telemetry import _capture


def test_the_default_store_follows_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRUCIBLE_TELEMETRY_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert isinstance(tel.default_store(), tel.MemoryStore)  # built in: "memory"
    db = tmp_path / "telemetry.db"
    (tmp_path / "crucible.toml").write_text(f'[telemetry]\nstore = "{db}"\n')
    try:
        store = tel.default_store()
        assert (
            isinstance(store, tel.SQLiteStore) and store is tel.default_store()
        )  # opened once
        with tel.experiment("from-setting") as exp:
            events.emit(
                ("crucible", "llm", "request", "stop"),
                {"duration": 1.0},
                {"model": "m"},
            )
        tel.flush()
        assert db.is_file()
        reopened = tel.open_store(db)
        assert [e.name for e in reopened.experiments()] == ["from-setting"]
        assert len(tel.get_events(exp.id, store=reopened)) == 1
        reopened.close()
    finally:
        opened = _capture._opened.pop(str(db), None)
        if opened is not None:
            opened.close()
