"""PostgreSQL against a real server: schema on first use, restarts lose nothing, bounded waits."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import crucible_telemetry as ct

pytestmark = pytest.mark.postgres

CLUSTER = ("15", "main")


def _pg_ctl(action: str) -> None:
    if shutil.which("pg_ctlcluster") is None:
        pytest.skip(
            "pg_ctlcluster is not installed, so the server cannot be restarted here"
        )
    subprocess.run(["pg_ctlcluster", *CLUSTER, action], check=True, timeout=120)


@pytest.fixture
def pg(postgres_url: str, postgres_schema: str) -> Iterator[ct.PostgresStore]:
    store = ct.PostgresStore(
        postgres_url, schema=postgres_schema, flush_interval=0.02, retry_timeout=90
    )
    yield store
    if _down():
        _pg_ctl("start")
    store.close()


def _down() -> bool:
    out = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    ).stdout
    return any(
        line.split()[:2] == list(CLUSTER) and "down" in line
        for line in out.splitlines()
    )


def test_schema_is_created_on_first_use(
    pg: ct.PostgresStore, postgres_url: str
) -> None:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (pg.schema,),
            )
        }
    assert {"crucible_telemetry_events", "crucible_telemetry_experiments"} <= tables
    assert ":crucible@" not in pg.description  # the password is never shown
    assert "crucible@127.0.0.1" in pg.description


def test_server_stopped_and_started_during_capture_loses_nothing(
    pg: ct.PostgresStore, emit: Any
) -> None:
    exp = ct.start_experiment("outage", store=pg)
    with ct.activate(exp):
        for i in range(300):
            emit.stop(i / 1000)
        pg.flush()
        _pg_ctl("stop")
        for i in range(300, 700):
            emit.stop(i / 1000)
        time.sleep(0.3)  # the writer tries, fails and keeps the batch
        assert pg.pending() == 400
        with pytest.raises(ct.StoreUnavailableError, match="still buffered") as info:
            pg.flush(timeout=0.5)
        assert info.value.pending == 400 and isinstance(info.value, ConnectionError)
        _pg_ctl("start")
        for i in range(700, 1000):
            emit.stop(i / 1000)
    final = ct.stop_experiment(exp.id)
    assert final.event_count == 1000 and pg.pending() == 0
    got = ct.get_events(exp.id, store=pg)
    assert got.column("seq") == list(range(1000))
    assert got.column("latency_ms") == pytest.approx([float(i) for i in range(1000)])


def test_restart_while_threads_emit_loses_nothing(
    pg: ct.PostgresStore, emit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crucible.telemetry")
    exp = ct.start_experiment("restart", store=pg)
    stop = threading.Event()
    counts = [0, 0, 0]

    def worker(k: int) -> None:
        with ct.activate(exp, condition=f"w{k}"):
            while not stop.is_set():
                emit.stop(0.001)
                counts[k] += 1
                time.sleep(0.001)  # a steady trickle, through the restart

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    _pg_ctl("restart")
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    final = ct.stop_experiment(exp.id)
    assert "is unreachable" in caplog.text  # the outage really hit buffered events
    assert final.event_count == sum(counts) > 0
    got = ct.get_events(exp.id, store=pg)
    assert got.column("seq") == list(range(sum(counts)))
    per = {f"w{k}": n for k, n in enumerate(counts)}
    assert {c: got.column("condition").count(c) for c in per} == per


def test_two_stores_share_one_database(
    postgres_url: str, postgres_schema: str, emit: Any
) -> None:
    first = ct.PostgresStore(postgres_url, schema=postgres_schema)
    second = ct.PostgresStore(postgres_url, schema=postgres_schema)
    with ct.experiment("shared", store=first, tags=["team"]) as exp:
        emit.stop(0.5)
    assert [e.id for e in ct.list_experiments(tag="team", store=second)] == [exp.id]
    assert ct.get_events(exp.id, store=second).column("latency_ms") == [500.0]
    first.close()
    second.close()


def test_bad_schema_name(postgres_url: str) -> None:
    with pytest.raises(ct.InvalidOptionError, match="identifier"):
        ct.PostgresStore(postgres_url, schema="x; DROP TABLE y")
