"""Shared fixtures and helpers for crucible-telemetry's tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import crucible_telemetry as ct
from crucible_core import events
from crucible_telemetry import _capture

POSTGRES_ENV = "CRUCIBLE_TEST_POSTGRES_DSN"
HOW_TO = (
    f"set {POSTGRES_ENV}=postgresql://crucible:crucible@127.0.0.1:5432/crucible_test "
    "(a running PostgreSQL; .ci/run starts one) to run the PostgreSQL tests"
)


def _postgres_dsn() -> str:
    """The test server's DSN; skip (or fail under CRUCIBLE_REQUIRE_POSTGRES=1) without one."""
    dsn = os.environ.get(POSTGRES_ENV)
    if not dsn:
        if os.environ.get("CRUCIBLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"CRUCIBLE_REQUIRE_POSTGRES=1 but {POSTGRES_ENV} is unset: {HOW_TO}"
            )
        pytest.skip(HOW_TO)
    return dsn


@pytest.fixture(autouse=True)
def _no_leaked_experiments() -> Iterator[None]:
    """Every test must stop the experiments it starts; fail the test that leaks one."""
    yield
    leaked = list(_capture._live)
    for exp_id in leaked:
        ct.stop_experiment(exp_id)
    assert not leaked, f"the test left experiments running: {leaked}"
    assert "crucible-telemetry" not in events.attached()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ct.Store]:
    """Each kind of store, fresh."""
    made: ct.Store
    if request.param == "memory":
        made = ct.MemoryStore()
    elif request.param == "sqlite":
        made = ct.SQLiteStore(tmp_path / "telemetry.db", flush_interval=0.02)
    else:
        drop_schema(_postgres_dsn(), pg_schema(request))
        made = ct.PostgresStore(
            _postgres_dsn(),
            flush_interval=0.02,
            retry_timeout=20,
            schema=pg_schema(request),
        )
    yield made
    made.close()
    if request.param == "postgres":
        drop_schema(_postgres_dsn(), pg_schema(request))


def pg_schema(request: pytest.FixtureRequest) -> str:
    """A schema name unique to the test (PostgreSQL tests never see each other's tables)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    return f"t_{os.getpid()}_{digest}"


def drop_schema(dsn: str, schema: str) -> None:
    """Drop a test's schema and its tables."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def postgres_schema(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    """A fresh schema for the test's PostgreSQL store, dropped afterwards."""
    schema = pg_schema(request)
    drop_schema(postgres_url, schema)
    yield schema
    drop_schema(postgres_url, schema)


@pytest.fixture
def postgres_url() -> str:
    """The test server's URL (skips, or fails under CRUCIBLE_REQUIRE_POSTGRES=1, without one)."""
    return _postgres_dsn()


class Emitter:
    """Emits events shaped like crucible-core's model events."""

    @staticmethod
    def stop(
        duration: float,
        *,
        model: str = "sim:gpt-4",
        input_tokens: int = 10,
        output_tokens: int = 5,
        cost: float | None = 0.001,
        **metadata: Any,
    ) -> None:
        """Emit one `crucible.llm.request.stop`."""
        _llm_stop(
            duration,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
            **metadata,
        )

    @staticmethod
    def exception(duration: float, *, model: str = "sim:gpt-4") -> None:
        """Emit one `crucible.llm.request.exception`."""
        _llm_exception(duration, model=model)


@pytest.fixture
def emit() -> Emitter:
    """Helpers emitting model events."""
    return Emitter()


def _llm_stop(
    duration: float,
    *,
    model: str = "sim:gpt-4",
    input_tokens: int = 10,
    output_tokens: int = 5,
    cost: float | None = 0.001,
    **metadata: Any,
) -> None:
    """Emit one `crucible.llm.request.stop` as crucible-core's models do."""
    measurements: dict[str, float] = {
        "duration": duration,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
    }
    if cost is not None:
        measurements["cost"] = cost
    events.emit(
        events.LLM_REQUEST_STOP,
        measurements,
        {"model": model, "provider": "sim", **metadata},
    )


def _llm_exception(duration: float, *, model: str = "sim:gpt-4") -> None:
    """Emit one `crucible.llm.request.exception`."""
    events.emit(
        events.LLM_REQUEST_EXCEPTION,
        {"duration": duration},
        {
            "model": model,
            "provider": "sim",
            "error_type": "RateLimitError",
            "error": "429",
        },
    )
