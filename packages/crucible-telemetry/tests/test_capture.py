"""Experiments and capture: life cycle, enrichment, isolation under concurrency, bad input."""

from __future__ import annotations

import asyncio
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import crucible_telemetry as ct
from crucible_core import context, events


def test_lifecycle_and_records() -> None:
    exp = ct.start_experiment(
        "life",
        hypothesis="h",
        condition="treatment",
        tags=["a", "b"],
        metadata={"k": [1, 2], "n": None},
        sample_size=10,
    )
    assert exp.status == "running" and exp.stopped_at is None and exp.duration is None
    assert exp.id.startswith("exp_") and exp.store == "memory"
    assert ct.get_experiment(exp.id).status == "running"
    assert exp.id in {e.id for e in ct.list_experiments(status="running")}
    final = ct.stop_experiment(exp.id)
    assert final.status == "stopped" and final.stopped_at is not None
    assert final.duration is not None and final.duration >= 0
    assert (final.hypothesis, final.condition, final.tags) == (
        "h",
        "treatment",
        ("a", "b"),
    )
    assert dict(final.metadata) == {"k": [1, 2], "n": None} and final.sample_size == 10
    archived = ct.archive(exp.id)
    assert archived.status == "archived"
    assert exp.id not in {e.id for e in ct.list_experiments()}
    assert exp.id in {e.id for e in ct.list_experiments(include_archived=True)}
    assert exp.id in {e.id for e in ct.list_experiments(status="archived")}


def test_enrichment_fields(emit: Any) -> None:
    with ct.experiment("enrich", condition="control", tags=["t"]) as exp:
        with context.use(condition="treatment", repeat=2, item="q7", fold=3):
            emit.stop(
                0.25,
                model="gpt-4o",
                input_tokens=1000,
                output_tokens=500,
                cost=None,
                provider="openai",
            )
        emit.exception(0.5)
        emit.stop(0.1, cost=0.002)
        events.emit(("crucible", "hedging", "hedge", "fired"), {"delay": 0.05})
    rows = list(ct.get_events(exp.id))
    assert [r.seq for r in rows] == [0, 1, 2, 3]
    first, failed, priced, hedge = rows
    assert first.name == "crucible.llm.request.stop"
    assert first.event_id == f"{exp.id}-0" and first.experiment_id == exp.id
    assert (first.experiment_name, first.tags) == ("enrich", ("t",))
    assert (first.condition, first.repeat, first.item) == ("treatment", 2, "q7")
    assert dict(first.context) == {"fold": 3}
    assert first.latency_ms == 250.0 and first.success is True
    assert (first.model, first.provider) == ("gpt-4o", "openai")
    assert (first.prompt_tokens, first.completion_tokens) == (1000, 500)
    # no cost measurement: priced from crucible-core's table (gpt-4o: $2.50 / $10 per 1M)
    assert first.cost_usd == pytest.approx((1000 * 2.50 + 500 * 10.0) / 1e6)
    assert (
        failed.success is False
        and failed.latency_ms == 500.0
        and failed.cost_usd is None
    )
    assert failed.condition == "control" and failed.repeat is None
    assert priced.cost_usd == 0.002  # the event's own cost wins
    assert hedge.name == "crucible.hedging.hedge.fired" and hedge.success is None
    assert hedge.latency_ms is None and dict(hedge.measurements) == {"delay": 0.05}
    assert [r.timestamp_ns for r in rows] == sorted(r.timestamp_ns for r in rows)
    assert [r.monotonic_ns for r in rows] == sorted(r.monotonic_ns for r in rows)
    assert first.timestamp.tzinfo is not None


def test_only_context_events_are_captured(emit: Any) -> None:
    exp = ct.start_experiment("ctx")
    emit.stop(0.1)  # no experiment context: not this experiment's
    with ct.activate(exp):
        emit.stop(0.2)
        with context.use(experiment_id="exp_someone_else"):
            emit.stop(0.3)
    ct.stop_experiment(exp.id)
    assert ct.get_events(exp.id).column("latency_ms") == [200.0]


def test_capture_all_takes_events_without_context(emit: Any) -> None:
    everything = ct.start_experiment("all", capture="all")
    mine = ct.start_experiment("mine")
    emit.stop(0.1)
    with ct.activate(mine):
        emit.stop(0.2)
    ct.stop_experiment(everything.id)
    ct.stop_experiment(mine.id)
    assert ct.get_events(everything.id).column("latency_ms") == [100.0]
    assert ct.get_events(mine.id).column("latency_ms") == [200.0]


def test_prefixes_select_events() -> None:
    with ct.experiment("prefix", events=[("myapp", "step")]) as exp:
        events.emit(("myapp", "step", "done"), {"n": 1})
        events.emit(("myapp", "other"), {"n": 2})
        events.emit(events.LLM_REQUEST_STOP, {"duration": 1.0})
    assert ct.get_events(exp.id).column("name") == ["myapp.step.done"]
    with ct.experiment("default") as exp2:
        events.emit(("myapp", "step", "done"), {"n": 1})
        for name in events.CATALOGUE:
            events.emit(name, {})
    assert len(ct.get_events(exp2.id)) == len(events.CATALOGUE)
    with ct.experiment("every", events=[()]) as exp3:
        events.emit(("myapp", "x"), {})
        events.emit(events.LLM_REQUEST_STOP, {})
    assert len(ct.get_events(exp3.id)) == 2


def test_events_after_stop_are_not_captured(emit: Any) -> None:
    exp = ct.start_experiment("late")
    with ct.activate(exp):
        emit.stop(0.1)
        ct.stop_experiment(exp.id)
        emit.stop(0.2)
    assert ct.get_experiment(exp.id).event_count == 1


async def test_isolation_across_asyncio_tasks(emit: Any) -> None:
    counts = {f"exp{i}": 50 + 7 * i for i in range(8)}

    async def run(name: str, n: int) -> str:
        with ct.experiment(name, condition=name) as exp:
            for k in range(n):
                emit.stop(k / 1000, item=name)
                await asyncio.sleep(0)  # interleave with the other experiments
                if k % 5 == 0:
                    await asyncio.to_thread(emit.stop, 0.5, item=name)
        return exp.id

    ids = await asyncio.gather(*(run(name, n) for name, n in counts.items()))
    for exp_id, (name, n) in zip(ids, counts.items(), strict=True):
        got = ct.get_events(exp_id)
        assert len(got) == n + len(range(0, n, 5))
        assert set(got.column("condition")) == {name}
        assert {m["item"] for m in got.column("metadata")} == {name}
        assert sorted(got.column("seq")) == list(range(len(got)))


def test_isolation_across_threads(emit: Any) -> None:
    counts = {f"t{i}": 300 + 11 * i for i in range(8)}
    barrier = threading.Barrier(8)

    def run(name: str, n: int) -> str:
        with ct.experiment(name, condition=name) as exp:
            barrier.wait()
            with ThreadPoolExecutor(
                2
            ) as pool:  # nested workers carry the context by bind()
                futures = [
                    pool.submit(context.bind(emit.stop), 0.01, item=name)
                    for _ in range(n)
                ]
                for f in futures:
                    f.result()
        return exp.id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(run, counts, counts.values()))
    for exp_id, (name, n) in zip(ids, counts.items(), strict=True):
        got = ct.get_events(exp_id)
        assert len(got) == n
        assert set(got.column("condition")) == {name}
        assert {m["item"] for m in got.column("metadata")} == {name}
        assert got.column("seq") == list(range(n))  # read back in capture order


def test_many_threads_into_one_experiment_lose_nothing(emit: Any) -> None:
    with ct.experiment("shared") as exp, ThreadPoolExecutor(8) as pool:
        list(pool.map(context.bind(lambda i: emit.stop(i / 1e6)), range(20_000)))
    got = ct.get_events(exp.id)
    assert got.column("seq") == list(range(20_000))
    assert sorted(got.column("latency_ms")) == pytest.approx(
        [i / 1e3 for i in range(20_000)]
    )


def test_experiment_stops_when_block_raises(emit: Any) -> None:
    started: list[ct.TelemetryExperiment] = []

    def body() -> None:
        with ct.experiment("raises") as exp:
            started.append(exp)
            emit.stop(0.1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    assert ct.get_experiment(started[0].id).status == "stopped"
    assert ct.get_experiment(started[0].id).event_count == 1


# -- bad input -------------------------------------------------------------------------------------


def test_unknown_experiment_id() -> None:
    for call in (
        ct.get_experiment,
        ct.stop_experiment,
        ct.get_events,
        ct.calculate_metrics,
    ):
        with pytest.raises(
            ct.ExperimentNotFoundError, match="no experiment has id"
        ) as info:
            call("exp_nope")
        assert isinstance(info.value, KeyError)
        assert info.value.experiment_id == "exp_nope"
        assert "list_experiments()" in str(info.value)


def test_stopping_twice() -> None:
    exp = ct.start_experiment("twice")
    ct.stop_experiment(exp.id)
    with pytest.raises(ct.ExperimentStateError, match="not running") as info:
        ct.stop_experiment(exp.id)
    assert info.value.status == "stopped" and isinstance(info.value, RuntimeError)


def test_archive_running_is_refused() -> None:
    exp = ct.start_experiment("running")
    with pytest.raises(ct.ExperimentStateError, match="stop_experiment first"):
        ct.archive(exp.id)
    ct.stop_experiment(exp.id)
    ct.archive(exp.id)
    with pytest.raises(ct.ExperimentStateError, match="archived"):
        ct.archive(exp.id)


def test_non_serializable_metadata() -> None:
    with pytest.raises(ct.InvalidMetadataError, match=r"metadata\['when'\]") as info:
        ct.start_experiment("meta", metadata={"ok": 1, "when": object()})
    assert info.value.key == "when" and isinstance(info.value, TypeError)
    with pytest.raises(ct.InvalidMetadataError, match="keys must be strings"):
        ct.start_experiment("meta", metadata={1: "x"})  # type: ignore[dict-item]
    assert not ct.list_experiments(name="meta")  # nothing half-started


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": "x", "condition": 3}, "condition must be"),
        ({"name": "x", "tags": "abc"}, r"tags=\['abc'\]"),
        ({"name": "x", "tags": ["ok", ""]}, "tags must be"),
        ({"name": "x", "events": ("crucible", "llm")}, "wrap it in a list"),
        ({"name": "x", "events": [["crucible"]]}, "tuple of non-empty strings"),
        ({"name": "x", "events": []}, "capture nothing"),
        ({"name": "x", "capture": "some"}, "capture must be"),
        ({"name": "x", "sample_size": 0}, "sample_size must be"),
        ({"name": "x", "store": "ftp://x"}, "cannot tell which store"),
        ({"name": "x", "store": 42}, "store must be a Store"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ct.InvalidOptionError, match=match) as info:
        ct.start_experiment(**kwargs)
    assert isinstance(info.value, ValueError)


def test_naive_datetimes_are_refused() -> None:
    import datetime as dt

    with pytest.raises(ct.InvalidOptionError, match="timezone-aware"):
        ct.list_experiments(started_after=dt.datetime(2020, 1, 1))  # noqa: DTZ001
    with pytest.raises(ct.InvalidOptionError, match="timezone-aware"):
        ct.query_events(since=dt.datetime(2020, 1, 1))  # noqa: DTZ001


def test_errors_pickle_with_context() -> None:
    err = ct.ExperimentNotFoundError("gone", experiment_id="exp_1", store="memory")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ct.ExperimentNotFoundError
    assert (back.experiment_id, back.store, str(back)) == ("exp_1", "memory", "gone")
    assert issubclass(ct.StoreUnavailableError, ConnectionError)
    assert issubclass(ct.TelemetryError, ct.TelemetryError.__mro__[1])


def test_handler_never_breaks_the_emitter(emit: Any) -> None:
    with ct.experiment("odd") as exp:
        events.emit(events.LLM_REQUEST_STOP, {"duration": "slow"}, {"model": 3})
        emit.stop(0.1)
    got = ct.get_events(exp.id)
    assert got.column("latency_ms") == [None, 100.0]
    assert got.column("model") == [None, "sim:gpt-4"]
    assert "crucible-telemetry" not in events.failed_handlers()
