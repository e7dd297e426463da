"""Stores that cannot be reached fail with a clear error after a bounded wait."""

from __future__ import annotations

import socket

import pytest

import crucible_telemetry as ct


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_unreachable_postgres_raises_after_retry_timeout() -> None:
    url = f"postgresql://user:secret@127.0.0.1:{_closed_port()}/db"
    with pytest.raises(ct.StoreUnavailableError, match="could not be reached") as info:
        ct.PostgresStore(url, retry_timeout=0.5)
    err = info.value
    assert "secret" not in str(err) and "secret" not in err.store
    assert err.waited >= 0.5 and isinstance(err, ConnectionError)


def test_bad_postgres_url() -> None:
    with pytest.raises(ct.InvalidOptionError, match="connection URL"):
        ct.PostgresStore("")
