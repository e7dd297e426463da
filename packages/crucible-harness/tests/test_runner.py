from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crucible_core import context, events
from crucible_core.exceptions import RateLimitError
from crucible_core.models import SimulatedModel, build_model
from crucible_core.retry import set_testing
from crucible_harness import (
    AnalysisConfig,
    Budget,
    BudgetStopError,
    Condition,
    ConditionOutput,
    Experiment,
    ExperimentDefinitionError,
    HarnessItem,
    ResumeMismatchError,
    RunConfig,
    RunDirectoryError,
    estimate,
    load_run,
    resume,
    run,
    run_async,
    status,
)

ITEMS = [
    HarnessItem(id=f"q{i:03d}", input=f"What is {i} + {i}?", expected=str(2 * i))
    for i in range(40)
]


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    with set_testing(True):
        yield


def sim(name: str) -> SimulatedModel:
    return SimulatedModel(name, seed=3, virtual_time=True)


def sim_experiment(**kw: Any) -> Experiment:
    base: dict[str, Any] = {
        "name": "arith",
        "dataset": ITEMS,
        "conditions": [
            Condition(name="gpt4", target=sim("gpt-4")),
            Condition(name="llama", target=sim("llama-3-70b")),
        ],
        "repeats": 2,
        "run": RunConfig(max_concurrency=8, seed=5),
    }
    base.update(kw)
    return Experiment(**base)


def outcomes(records: Any) -> set[tuple[Any, ...]]:
    return {(r["key"], r["status"], r["prediction"], r["correct"]) for r in records}


def test_runs_every_task_and_records_it(tmp_path: Path) -> None:
    result = run(sim_experiment(), output_dir=tmp_path)
    assert result.status == "complete"
    assert len(result.records) == 2 * 40 * 2 and result.pending == 0
    assert len({r["key"] for r in result.records}) == len(result.records)
    lines = (result.run_dir / "tasks.jsonl").read_text().splitlines()
    assert len(lines) == len(result.records)
    first = json.loads(lines[0])
    assert {
        "key",
        "condition",
        "item",
        "repeat",
        "status",
        "prediction",
        "correct",
        "latency",
        "cost",
        "seed",
    } <= set(first)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["items"] == [i.id for i in ITEMS]
    assert manifest["experiment"]["conditions"][0]["target"] == "sim:gpt-4"
    summary = {c.name: c for c in result.analysis.conditions}
    assert summary["gpt4"].tasks == 80 and summary["gpt4"].cost_total == pytest.approx(
        80 * 0.005
    )
    assert 0.8 < summary["gpt4"].accuracy <= 1.0
    assert result.spent == pytest.approx(80 * 0.005 + 80 * 0.0002)
    status = json.loads((result.run_dir / "status.json").read_text())
    assert status["status"] == "complete" and status["pending"] == 0


def test_repeats_are_independent_draws(tmp_path: Path) -> None:
    exp = sim_experiment(
        conditions=[Condition(name="mix", target=sim("gemini-pro"))], repeats=3
    )
    result = run(exp, output_dir=tmp_path)
    latencies: dict[str, set[float]] = {}
    for r in result.records:
        latencies.setdefault(r["item"], set()).add(r["latency"])
    assert (
        sum(len(v) > 1 for v in latencies.values()) > 30
    )  # repeats are not copies of one answer


async def test_run_and_run_async_agree(tmp_path: Path) -> None:
    exp = sim_experiment()
    a = await run_async(exp, output_dir=tmp_path / "a")
    b = await asyncio.to_thread(run, exp, output_dir=tmp_path / "b")
    assert outcomes(a.records) == outcomes(b.records)
    assert [c.accuracy for c in a.analysis.conditions] == [
        c.accuracy for c in b.analysis.conditions
    ]


def test_failures_are_recorded_and_counted_as_wrong(tmp_path: Path) -> None:
    def flaky(item: HarnessItem, ctx: Any) -> str:
        if int(item.id[1:]) % 4 == 0:
            raise ValueError(f"cannot answer {item.id}")
        return str(item.expected)

    result = run(
        sim_experiment(conditions={"flaky": flaky}, repeats=1), output_dir=tmp_path
    )
    errors = [r for r in result.records if r["status"] == "error"]
    assert (
        len(errors) == 10
        and errors[0]["error_type"] == "ValueError"
        and "cannot answer" in errors[0]["error"]
    )
    (s,) = result.analysis.conditions
    assert s.errors == 10 and s.completed == 30
    assert s.accuracy == pytest.approx(0.75)  # all attempted: failures count as wrong
    assert s.accuracy_completed == pytest.approx(1.0)


def test_transient_errors_are_retried_and_timeouts_recorded(tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    async def rate_limited(item: HarnessItem, ctx: Any) -> ConditionOutput:
        seen[item.id] = seen.get(item.id, 0) + 1
        if seen[item.id] == 1:
            raise RateLimitError("429", retry_after=0.0)
        return ConditionOutput(prediction=item.expected, cost=0.001, latency=0.2)

    async def slow(item: HarnessItem, ctx: Any) -> str:
        if item.id == "q001":
            await asyncio.sleep(5)
        return str(item.expected)

    exp = sim_experiment(conditions={"retried": rate_limited, "slow": slow}, repeats=1,
                         run=RunConfig(max_concurrency=8, timeout=0.2, retries=1))  # fmt: skip
    result = run(exp, output_dir=tmp_path)
    retried = [r for r in result.records if r["condition"] == "retried"]
    assert all(
        r["status"] == "ok" and r["attempts"] == 2 and r["latency"] == 0.2
        for r in retried
    )
    (timed_out,) = [r for r in result.records if r["status"] == "error"]
    assert (
        timed_out["item"] == "q001"
        and timed_out["error_type"] == "ProviderTimeoutError"
    )
    assert (
        timed_out["attempts"] == 2
    )  # the timeout is transient: retried once, then recorded


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limit=st.floats(min_value=0.0, max_value=0.5),
    per_condition=st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.3)),
    concurrency=st.integers(min_value=1, max_value=32),
)
def test_budget_never_exceeded_under_concurrency(tmp_path_factory: pytest.TempPathFactory, limit: float,
                                                 per_condition: float | None, concurrency: int) -> None:  # fmt: skip
    async def costly(item: HarnessItem, ctx: Any) -> ConditionOutput:
        await asyncio.sleep(0.001 * (int(item.id[1:]) % 3))
        return ConditionOutput(
            prediction=item.expected, cost=0.01 + 0.01 * (int(item.id[1:]) % 2)
        )

    exp = sim_experiment(
        conditions=[Condition(name="a", target=costly, cost_per_task=0.02), Condition(name="b", target=costly, cost_per_task=0.02)],
        repeats=1, budget=Budget(max_total=limit, max_per_condition=per_condition),
        run=RunConfig(max_concurrency=concurrency),
    )  # fmt: skip
    result = run(exp, output_dir=tmp_path_factory.mktemp("budget"))
    assert result.spent <= limit + 1e-9
    for name in ("a", "b"):
        spent = sum(r["cost"] for r in result.records if r["condition"] == name)
        assert per_condition is None or spent <= per_condition + 1e-9
    if result.pending:
        assert result.status == "budget"


def test_budget_stop_then_resume_with_more_budget_completes(tmp_path: Path) -> None:
    exp = sim_experiment(budget=Budget(max_total=0.1))
    first = run(exp, output_dir=tmp_path)
    assert first.status == "budget" and first.pending > 0 and first.spent <= 0.1
    with pytest.raises(BudgetStopError, match="resume"):
        run(exp, resume=first.run_dir, on_budget="raise")
    final = resume(first.run_dir, sim_experiment(budget=Budget(max_total=10.0)))
    assert final.status == "complete" and final.pending == 0
    full = run(sim_experiment(), output_dir=tmp_path / "uninterrupted")
    assert outcomes(final.records) == outcomes(full.records)


def test_resume_refuses_another_experiment_and_foreign_dirs(tmp_path: Path) -> None:
    first = run(sim_experiment(budget=Budget(max_total=0.05)), output_dir=tmp_path)
    with pytest.raises(ResumeMismatchError, match="different experiment definition"):
        resume(first.run_dir, sim_experiment(repeats=3))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirectoryError, match="not a crucible run directory"):
        resume(tmp_path / "empty", sim_experiment())
    from crucible_harness._store import RunStore

    with pytest.raises(RunDirectoryError, match="not empty"):
        RunStore.create(first.run_dir, {})


def test_status_reads_a_run_directory_cheaply(tmp_path: Path) -> None:
    first = run(sim_experiment(budget=Budget(max_total=0.1)), output_dir=tmp_path)
    progress = status(first.run_dir)
    assert progress.status == "budget" and progress.recorded == len(first.records)
    assert progress.pending == 160 - progress.recorded and progress.errors == 0
    assert progress.spent == pytest.approx(first.spent)
    assert sum(progress.by_condition.values()) == progress.recorded
    (first.run_dir / "status.json").unlink()  # as after a SIGKILL in the first session
    # no process holds the run's lock: it was killed, not running
    assert status(first.run_dir).status == "interrupted"
    assert "Run run_" in progress.render()


def test_analysis_intervals_and_frontiers(tmp_path: Path) -> None:
    exp = sim_experiment(
        conditions=[
            Condition(name=n, target=sim(n))
            for n in ("gpt-4", "claude-3", "llama-3-70b")
        ],
        repeats=3,
    )
    analysis = run(exp, output_dir=tmp_path).analysis
    for c in analysis.conditions:
        low, high = c.cost_per_query_ci
        assert low - 1e-12 <= c.cost_per_query <= high + 1e-12
        p_low, p_high = (
            c.latency_p99_ci
        )  # n = 120: the upper end of a P99 interval is beyond the data
        assert p_low <= c.latency_p99 and math.isnan(p_high)
    assert set(analysis.frontier_latency) >= set(analysis.frontier) - {"gpt-4"}
    assert (
        "claude-3" in analysis.frontier_latency
    )  # fast, cheaper than gpt-4, nearly as accurate


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    first = run(sim_experiment(budget=Budget(max_total=0.1)), output_dir=tmp_path)
    tasks = first.run_dir / "tasks.jsonl"
    good = tasks.read_bytes()
    tasks.write_bytes(good + b'{"key": "gpt4\\u001fq0')  # a write cut short by SIGKILL
    again = load_run(first.run_dir)
    assert len(again.records) == len(first.records)
    final = resume(first.run_dir, sim_experiment())
    assert final.status == "complete"
    assert all(
        line.startswith(b"{") and line.endswith(b"}")
        for line in tasks.read_bytes().splitlines()
    )


def test_damage_in_the_middle_is_an_error(tmp_path: Path) -> None:
    first = run(sim_experiment(budget=Budget(max_total=0.1)), output_dir=tmp_path)
    tasks = first.run_dir / "tasks.jsonl"
    lines = tasks.read_bytes().splitlines(keepends=True)
    lines[1] = b"garbage\n"
    tasks.write_bytes(b"".join(lines))
    with pytest.raises(
        RunDirectoryError, match=r"line 2: not valid JSON.*`crucible repair "
    ):
        load_run(first.run_dir)


def test_progress_display_shows_tasks_errors_and_spend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(sim_experiment(repeats=1), output_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "80/80" in err and "errors 0" in err and "$0.2080" in err


def test_unknown_report_format_is_refused_before_running(tmp_path: Path) -> None:
    with pytest.raises(
        ExperimentDefinitionError, match=r"unknown report format\(s\) \['pdf'\]"
    ):
        run(sim_experiment(), output_dir=tmp_path, formats=("markdown", "pdf"))
    with pytest.raises(ExperimentDefinitionError, match="not the string"):
        run(sim_experiment(), output_dir=tmp_path, formats="html")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_estimate_dry_run_and_confirm(tmp_path: Path) -> None:
    exp = sim_experiment(budget=Budget(max_total=0.2))
    est = estimate(exp)
    assert est.tasks == 160
    assert est.cost == {
        "gpt4": pytest.approx(80 * 0.005),
        "llama": pytest.approx(80 * 0.0002),
    }
    assert est.within_budget is False and est.seconds is not None and est.seconds > 0
    assert "Estimate: 160 tasks" in est.render()
    dry = run(exp, output_dir=tmp_path, dry_run=True)
    assert dry.status == "dry-run" and not list(tmp_path.iterdir())
    declined = run(
        exp, output_dir=tmp_path / "d", confirm=lambda e: e.within_budget is not False
    )
    assert declined.status == "declined" and declined.records == ()


def test_events_carry_the_task_context(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def handler(name: tuple[str, ...], m: Any, md: Any) -> None:
        ctx = context.current()
        seen.append((name[-1], ctx.experiment_id, ctx.condition))

    events.attach(
        "harness-test",
        [("crucible", "harness", "task"), ("crucible", "llm", "request", "stop")],
        handler,
    )
    try:
        result = run(sim_experiment(repeats=1), output_dir=tmp_path)
    finally:
        events.detach("harness-test")
    stops = [s for s in seen if s[0] == "stop"]
    assert len(stops) == 2 * 80  # one llm stop and one task stop per task
    assert {s[1] for s in stops} == {result.run_id}
    assert {s[2] for s in stops} == {"gpt4", "llama"}
    saved = [
        json.loads(line)
        for line in (result.run_dir / "events.jsonl").read_text().splitlines()
    ]
    names = [e["name"] for e in saved]
    assert (
        names.count("crucible.harness.task.stop") == 80
        and names.count("crucible.llm.request.stop") == 80
    )
    assert (
        names[0] == "crucible.harness.run.start"
        and names[-1] == "crucible.harness.run.stop"
    )
    assert {
        e["condition"] for e in saved if e["name"] == "crucible.llm.request.stop"
    } == {"gpt4", "llama"}


def test_analysis_compares_pairs_with_correction(tmp_path: Path) -> None:
    exp = sim_experiment(
        analysis=AnalysisConfig(correction="bonferroni", n_resamples=500)
    )
    result = run(exp, output_dir=tmp_path)
    (cmp,) = result.analysis.comparisons
    assert (cmp.a, cmp.b) == ("gpt4", "llama")
    acc = {c.name: c.accuracy for c in result.analysis.conditions}
    assert cmp.difference == pytest.approx(acc["llama"] - acc["gpt4"])
    assert cmp.confidence_interval[0] <= cmp.difference <= cmp.confidence_interval[1]
    assert cmp.pvalue_adjusted == pytest.approx(
        cmp.pvalue
    )  # one comparison: nothing to adjust
    assert "bonferroni-adjusted" in cmp.interpretation
    for c in result.analysis.conditions:
        assert c.accuracy_ci[0] <= c.accuracy <= c.accuracy_ci[1]
    reread = load_run(result.run_dir)
    assert [c.accuracy for c in reread.analysis.conditions] == [
        c.accuracy for c in result.analysis.conditions
    ]


# -- a 429 storm from a local OpenAI-compatible server ---------------------------------------------


@contextlib.asynccontextmanager
async def _chat_server(
    chat: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A local OpenAI-compatible server answering chat completions with `chat`; its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


@pytest.fixture
async def storm_server() -> Any:
    calls = {"n": 0, "429": 0}

    async def chat(request: web.Request) -> web.Response:
        calls["n"] += 1
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        if calls["n"] % 5 == 0:  # 20% of calls
            calls["429"] += 1
            return web.json_response(
                {"error": {"message": "slow down"}},
                status=429,
                headers={"Retry-After": "0"},
            )
        number = prompt.split()[2]
        return web.json_response({
            "id": f"c{calls['n']}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": str(2 * int(number))}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        })  # fmt: skip

    async with _chat_server(chat) as base_url:
        yield base_url, calls


async def test_429_storm_completes_without_aborting(
    storm_server: Any, tmp_path: Path
) -> None:
    base_url, calls = storm_server
    model = build_model(f"openai-compatible:{base_url}#local-model", api_key="test-key")
    exp = sim_experiment(
        conditions=[Condition(name="local", target=model)],
        repeats=2,
        run=RunConfig(max_concurrency=16, retries=3),
    )
    result = await run_async(exp, output_dir=tmp_path)
    # a model object passed as a target is closed with the run (it reopens when used again)
    assert model._sessions == {}  # type: ignore[attr-defined]
    assert result.status == "complete"
    assert all(r["status"] == "ok" for r in result.records)
    assert result.analysis.conditions[0].accuracy == 1.0
    assert calls["429"] >= 10


def test_estimate_needs_no_api_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from crucible_core.exceptions import ConfigurationError

    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    exp = sim_experiment(
        conditions={
            "mini": "openai:gpt-4o-mini",
            "haiku": "anthropic:claude-3-5-haiku",
        },
        repeats=1,
    )
    est = estimate(exp)  # sends nothing, so it needs no key
    assert est.tasks == 2 * len(ITEMS)
    assert est.cost["mini"] is not None and est.cost["haiku"] is not None
    assert 0 < est.cost["mini"] < est.cost["haiku"]  # priced from the names
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        run(exp, output_dir=tmp_path)  # running does need it, and says which variable
    assert list(tmp_path.iterdir()) == []  # refused before a run directory was made


# -- a budget with an HTTP model whose answers are longer than a guess ------------------------------


@pytest.fixture
async def long_answer_server() -> Any:
    """An OpenAI-compatible server answering 1500 output tokens (under the 2048 `max_tokens`)."""

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        assert body["max_tokens"] == 2048
        return web.json_response({
            "id": "c", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1500, "total_tokens": 1512},
        })  # fmt: skip

    async with _chat_server(chat) as base_url:
        yield base_url


@pytest.mark.parametrize("concurrency", [1, 16, 64])
async def test_an_http_models_reservation_is_its_worst_case_so_the_budget_holds(
    long_answer_server: str, tmp_path: Path, concurrency: int
) -> None:
    # gpt-4o-mini's price: each answer costs $0.0009018, more than a 512-token guess ($0.00031),
    # less than the 2048-token worst case ($0.00123) that must be reserved.
    model = build_model(
        f"openai-compatible:{long_answer_server}#gpt-4o-mini",
        max_tokens=2048,
        stream=False,
    )
    exp = sim_experiment(
        conditions=[Condition(name="mini", target=model)],
        run=RunConfig(max_concurrency=concurrency, retries=0),
        budget=Budget(max_total=0.01),
    )
    try:
        result = await run_async(exp, output_dir=tmp_path, formats=())
    finally:
        await model.aclose()
    assert result.status == "budget"
    assert all(r["cost"] == pytest.approx(0.0009018) for r in result.records)
    assert result.spent <= 0.01


def test_run_directories_go_to_the_results_dir_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRUCIBLE_RESULTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crucible.toml").write_text('results_dir = "experiments/out"\n')
    result = run(sim_experiment(repeats=1), formats=())
    assert result.run_dir.parent == Path("experiments/out")
    assert (tmp_path / result.run_dir / "manifest.json").is_file()
    monkeypatch.setenv("CRUCIBLE_RESULTS_DIR", str(tmp_path / "env-runs"))
    again = run(sim_experiment(repeats=1), formats=())
    assert again.run_dir.parent == tmp_path / "env-runs"
