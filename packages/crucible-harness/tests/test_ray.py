"""The harness on a real Ray cluster (two raylets on 127.0.0.1): same records as local, exactly once,
one budget, one rate limit, secrets from the driver's environment, workers lost and resumed."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from crucible_core.models import SimulatedModel
from crucible_harness import (
    Budget,
    Condition,
    ConditionOutput,
    Experiment,
    HarnessItem,
    RayExecutor,
    RunConfig,
    resume,
    resume_async,
    run,
    run_async,
)
from crucible_harness.exceptions import ExperimentDefinitionError

pytestmark = [pytest.mark.network, pytest.mark.timeout(600)]

ITEMS = [
    HarnessItem(id=f"q{i:03d}", input=f"What is {i} + {i}?", expected=str(2 * i))
    for i in range(30)
]
# what differs between two executions of the same task: timings
TIMING = {"latency", "wall_time", "started_at", "finished_at"}


def arithmetic(item: HarnessItem, ctx: Any) -> ConditionOutput:
    """Right 70% of the time, deterministically per task seed."""
    right = random.Random(ctx.seed).random() < 0.7
    guess = item.expected if right else str(int(item.expected) + 1)
    return ConditionOutput(
        prediction=guess, cost=0.001, metadata={"seed_mod": ctx.seed % 97}
    )


def _node() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


async def slow_answer(item: HarnessItem, ctx: Any) -> ConditionOutput:
    """Takes 0.1 s; says where it ran (the node) in its metadata."""
    await asyncio.sleep(0.1)
    right = random.Random(ctx.seed).random() < 0.6
    return ConditionOutput(
        prediction=item.expected if right else "?",
        cost=0.0005,
        metadata={"node": _node() if "ray" in sys.modules else "local"},
    )


def comparable(
    records: Any, drop: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    out = [{k: v for k, v in r.items() if k not in TIMING | drop} for r in records]
    return sorted(out, key=lambda r: r["key"])


def outcomes(records: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (r["key"], r["status"], r["prediction"], r["correct"], r["cost"])
        for r in records
    )


def ray_executor(cluster: Any, **options: Any) -> RayExecutor:
    options.setdefault("num_workers", 2)
    options.setdefault(
        "resources", {"CPU": 0.5}
    )  # two fit on either node: a lost node's restart
    return RayExecutor(address=cluster.address, **options)


def node_ids(cluster: Any) -> dict[str, str]:
    """'head' / 'node2' → Ray node id."""
    out = {}
    for n in cluster.alive_nodes():
        for name in ("head", "node2"):
            if name in n["Resources"]:
                out[name] = n["NodeID"]
    return out


def attrs_evolve_run(exp: Experiment, **changes: Any) -> Experiment:
    import attrs

    return attrs.evolve(exp, run=attrs.evolve(exp.run, **changes))


def test_local_and_ray_runs_give_identical_records(
    two_nodes: Any, tmp_path: Path
) -> None:
    offset = 3

    def closure(
        item: HarnessItem, ctx: Any
    ) -> str:  # a closure over a local: cloudpickled by value
        return str(int(item.expected) + (ctx.seed + offset) % 2)

    def experiment(executor: Any) -> Experiment:
        return Experiment(
            name="same", dataset=ITEMS, repeats=2,
            conditions=[
                Condition(name="string", target="sim:gpt-4?virtual_time=true"),
                Condition(name="object", target=SimulatedModel("claude-3", seed=5, virtual_time=True)),
                Condition(name="function", target=arithmetic),
                Condition(name="closure", target=closure),
            ],
            run=RunConfig(max_concurrency=8, seed=11, executor=executor),
        )  # fmt: skip

    local = run(experiment("local"), output_dir=tmp_path / "local", formats=())
    remote = run(
        experiment(ray_executor(two_nodes, batch_size=4)),
        output_dir=tmp_path / "ray",
        formats=(),
    )
    assert local.status == remote.status == "complete"
    assert len(remote.records) == 4 * len(ITEMS) * 2
    assert comparable(remote.records) == comparable(local.records)
    accuracy = [(c.name, c.tasks, c.completed) for c in local.analysis.conditions]
    assert [
        (c.name, c.tasks, c.completed) for c in remote.analysis.conditions
    ] == accuracy
    manifest = json.loads((remote.run_dir / "manifest.json").read_text())
    assert manifest["experiment"]["run"]["executor"]["kind"] == "ray"


def test_the_budget_holds_across_workers(two_nodes: Any, tmp_path: Path) -> None:
    def paid(item: HarnessItem, ctx: Any) -> ConditionOutput:
        return ConditionOutput(
            prediction=item.expected, cost=0.01, metadata={"node": _node()}
        )

    def experiment(limit: float) -> Experiment:
        return Experiment(
            name="budget", dataset=ITEMS, budget=Budget(max_total=limit),
            conditions=[Condition(name="paid", target=paid, cost_per_task=0.01)],
            run=RunConfig(max_concurrency=8, executor=ray_executor(two_nodes, batch_size=2)),
        )  # fmt: skip

    stopped = run(experiment(0.105), output_dir=tmp_path, formats=())
    assert stopped.status == "budget"
    assert len(stopped.records) == 10 and stopped.pending == 20
    assert stopped.spent == pytest.approx(0.10) and stopped.spent <= 0.105
    finished = resume(stopped.run_dir, experiment(1.0), formats=())
    assert finished.status == "complete"
    assert (
        len({r["key"] for r in finished.records}) == len(finished.records) == len(ITEMS)
    )
    assert {r["metadata"]["node"] for r in finished.records} == set(
        node_ids(two_nodes).values()
    )


def test_the_rate_limit_is_global(two_nodes: Any, tmp_path: Path) -> None:
    def stamped(item: HarnessItem, ctx: Any) -> ConditionOutput:
        return ConditionOutput(
            prediction=item.expected, metadata={"t": time.time(), "node": _node()}
        )

    exp = Experiment(
        name="rate", dataset=ITEMS[:14], conditions=[Condition(name="stamped", target=stamped)],
        run=RunConfig(max_concurrency=8, rate_limit=4, executor=ray_executor(two_nodes, batch_size=2)),
    )  # fmt: skip
    result = run(exp, output_dir=tmp_path, formats=())
    assert result.status == "complete"
    assert {r["metadata"]["node"] for r in result.records} == set(
        node_ids(two_nodes).values()
    )
    times = sorted(r["metadata"]["t"] for r in result.records)
    # 4 requests/s for the whole cluster: any 5 consecutive calls span a second (per-worker limits
    # would let the two workers make 8 a second); 0.15 s for the grant to reach the worker
    spans = [times[i + 4] - times[i] for i in range(len(times) - 4)]
    assert min(spans) >= 0.85, spans


@pytest.fixture
def counting_server() -> Any:
    """An OpenAI-compatible server on 127.0.0.1 that counts requests in flight at once."""
    from aiohttp import web

    state: dict[str, Any] = {"in_flight": 0, "peak": 0, "requests": 0, "keys": set()}

    async def complete(request: web.Request) -> web.Response:
        state["keys"].add(request.headers.get("Authorization", ""))
        state["requests"] += 1
        state["in_flight"] += 1
        state["peak"] = max(state["peak"], state["in_flight"])
        try:
            await asyncio.sleep(0.1)
        finally:
            state["in_flight"] -= 1
        return web.json_response({
            "id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        })  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    return app, state


def test_http_model_aimd_limit_is_global_and_its_key_comes_from_the_driver(
    two_nodes: Any,
    tmp_path: Path,
    counting_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiohttp import web

    app, state = counting_server
    secret = "sk-crucible-test-" + os.urandom(8).hex()
    monkeypatch.setenv("CRUCIBLE_OPENAI_COMPATIBLE_API_KEY", secret)

    async def main() -> Any:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            exp = Experiment(
                name="aimd", dataset=ITEMS[:24],
                conditions=[Condition(name="http", target=f"openai-compatible:http://127.0.0.1:{port}/v1#m?max_concurrency=2")],
                run=RunConfig(max_concurrency=8, executor=ray_executor(two_nodes, batch_size=2, concurrency=4)),
            )  # fmt: skip
            return await run_async(exp, output_dir=tmp_path, formats=("json",))
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    assert result.status == "complete", [
        r["error"] for r in result.records if r["error"]
    ][:3]
    assert all(r["status"] == "ok" for r in result.records)
    assert state["requests"] == 24
    assert state["peak"] <= 2  # one limit of 2 for the cluster, not 2 per worker
    assert state["keys"] == {f"Bearer {secret}"}  # the workers had the driver's key ...
    for path in result.run_dir.rglob("*"):  # ... which is in no file of the run
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_a_condition_with_resources_gets_its_own_pool_and_builds_its_model_once_per_worker(
    two_nodes: Any, tmp_path: Path
) -> None:
    class LocalModel:
        """A model that is expensive to load: each instance counts the tasks it served."""

        def __init__(self) -> None:
            self.served = 0

        async def complete(self, request: Any) -> Any:
            self.served += 1
            return ConditionOutput(prediction="x", metadata={"instance": id(self), "pid": os.getpid(),
                                                             "node": _node(), "served": self.served})  # fmt: skip

    exp = Experiment(
        name="pinned", dataset=ITEMS, repeats=2,
        conditions=[Condition(name="pinned", target=LocalModel(), resources={"node2": 1}),
                    Condition(name="free", target=arithmetic)],
        run=RunConfig(max_concurrency=8, executor=ray_executor(two_nodes)),
    )  # fmt: skip
    result = run(exp, output_dir=tmp_path, formats=())
    assert result.status == "complete"
    pinned = [r for r in result.records if r["condition"] == "pinned"]
    assert {r["metadata"]["node"] for r in pinned} == {node_ids(two_nodes)["node2"]}
    hosts = {(r["metadata"]["pid"], r["metadata"]["instance"]) for r in pinned}
    assert (
        len(hosts) == 1
    )  # node2 has one "node2" resource: one worker, one model, every task
    assert max(r["metadata"]["served"] for r in pinned) == len(pinned)


def test_a_second_result_for_a_recorded_key_is_dropped_and_logged(
    two_nodes: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from collections import deque

    from crucible_harness._budget import BudgetGuard
    from crucible_harness._ray_driver import Driver, _Batch
    from crucible_harness._record import Recorder
    from crucible_harness._scoring import resolve_scorer
    from crucible_harness._store import RunStore

    items = ITEMS[:3]
    exp = Experiment(
        name="dupes", dataset=items, conditions=[Condition(name="f", target=arithmetic)],
        run=RunConfig(executor=ray_executor(two_nodes, num_workers=1)),
    )  # fmt: skip
    scorer = resolve_scorer(exp.scorer, dataset=None, items=items)
    driver = Driver(exp.run.executor, experiment=exp, items=items, targets={"f": arithmetic},
                    scorer=scorer, run_id="run-x", attribution={})  # fmt: skip
    store = RunStore.create(tmp_path / "run", {"run_id": "run-x", "fingerprint": exp.fingerprint(),
                                               "experiment": exp.describe(), "items": [i.id for i in items]})  # fmt: skip
    guard = BudgetGuard(exp.budget, ["f"])
    recorded: list[Mapping[str, Any]] = []
    recorder = Recorder(store, guard, on_recorded=recorded.append)

    async def main() -> None:
        store.start()
        try:
            queue = deque((exp.conditions[0], item, 0) for item in items)
            await driver.run(queue, guard, {"f": 0.0}, recorder, lambda: False)
            assert len(recorded) == 3
            again = dict(recorded[0])  # the same task's result, delivered a second time
            guard.try_reserve("f", 0.5)
            task = (exp.conditions[0], items[0], 0)
            with caplog.at_level("WARNING", logger="crucible_harness"):
                driver.deliver(
                    _Batch(pool=driver.pools[0], worker=0, tasks=[(task, 0.5)]),
                    [again],
                    recorder,
                )
        finally:
            await store.close()
            store.release()

    try:
        asyncio.run(main())
    finally:
        driver.close(keep=True)
    assert len(recorded) == 3 and recorder.dropped == 1
    assert (tmp_path / "run" / "tasks.jsonl").read_text().count("\n") == 3
    assert (
        guard.reserved["f"] == 0.0
    )  # the second result settled its reservation (its cost was paid)
    assert guard.spent["f"] == pytest.approx(4 * 0.001)
    assert "dropped a second result" in caplog.text


def test_a_target_that_cannot_be_pickled_is_refused_by_name(
    two_nodes: Any, tmp_path: Path
) -> None:
    import threading

    lock = threading.Lock()

    def locked(item: HarnessItem, ctx: Any) -> str:
        with lock:
            return "x"

    exp = Experiment(name="unpicklable", dataset=ITEMS[:2], conditions=[Condition(name="locked", target=locked)],
                     run=RunConfig(executor=ray_executor(two_nodes)))  # fmt: skip
    with pytest.raises(
        ExperimentDefinitionError, match="'locked' cannot be sent to Ray workers"
    ):
        run(exp, output_dir=tmp_path, formats=())


def test_resume_a_local_run_on_ray(two_nodes: Any, tmp_path: Path) -> None:
    exp = Experiment(name="mixed", dataset=ITEMS, conditions=[Condition(name="f", target=arithmetic, cost_per_task=0.001)],
                     budget=Budget(max_total=0.0155), run=RunConfig(max_concurrency=4))  # fmt: skip
    first = run(exp, output_dir=tmp_path, formats=())
    assert first.status == "budget" and len(first.records) == 15
    on_ray = attrs_evolve_run(
        attrs_evolve_budget(exp, None), executor=ray_executor(two_nodes)
    )
    rest = asyncio.run(resume_async(first.run_dir, on_ray, formats=()))
    assert rest.status == "complete" and len(rest.records) == len(ITEMS)
    whole = run(
        attrs_evolve_budget(exp, None), output_dir=tmp_path / "whole", formats=()
    )
    assert comparable(rest.records) == comparable(whole.records)


def attrs_evolve_budget(exp: Experiment, limit: float | None) -> Experiment:
    import attrs

    return attrs.evolve(exp, budget=Budget(max_total=limit))


def test_ray_executor_settings_are_checked() -> None:
    with pytest.raises(ExperimentDefinitionError, match="batch_size"):
        RayExecutor(batch_size=0)
    with pytest.raises(ExperimentDefinitionError, match="executor must be"):
        RunConfig(executor="threads")
    with pytest.raises(ExperimentDefinitionError, match="resources"):
        Condition(name="c", target="sim:gpt-4", resources={"GPU": -1})
    assert RayExecutor(env=("NOPE_NOT_SET",)).secrets() == {}


# -- losing workers and the driver (last: they kill the second node, started again on demand) -----


def test_tasks_cross_raylets_and_a_killed_worker_node_loses_nothing(
    two_nodes: Any, tmp_path: Path
) -> None:
    exp = Experiment(
        name="lose-a-node", dataset=ITEMS, repeats=4,
        conditions=[Condition(name="slow", target=slow_answer)],
        run=RunConfig(max_concurrency=8, executor=ray_executor(two_nodes, batch_size=2)),
    )  # fmt: skip
    ids = node_ids(two_nodes)
    tasks_file: list[Path] = []

    async def main() -> Any:
        job = asyncio.ensure_future(run_async(exp, output_dir=tmp_path, formats=()))
        killed_at = None
        while not job.done():
            await asyncio.sleep(0.1)
            if not tasks_file:
                tasks_file.extend(tmp_path.glob("*/tasks.jsonl"))  # noqa: ASYNC240 - a test poll
                continue
            text = tasks_file[0].read_text()
            lines = text.count("\n")
            if killed_at is None and lines >= 20 and ids["node2"] in text:
                # the second raylet has run tasks: kill it mid-run
                await asyncio.to_thread(two_nodes.kill_node)
                killed_at = lines
        assert killed_at is not None and killed_at < len(ITEMS) * 4
        return await job

    result = asyncio.run(main())
    assert result.status == "complete"
    assert (
        len({r["key"] for r in result.records}) == len(result.records) == len(ITEMS) * 4
    )
    assert {r["metadata"]["node"] for r in result.records} == {
        ids["head"],
        ids["node2"],
    }
    local = run(
        attrs_evolve_run(exp, executor="local"),
        output_dir=tmp_path / "local",
        formats=(),
    )
    assert outcomes(result.records) == outcomes(local.records)


DRIVER = """
import sys
from crucible_harness import run
from crucible_harness._ray_local import connect
import runpy

connect(sys.argv[1])
make = runpy.run_path(sys.argv[2])["make"]
run(make(sys.argv[1]), output_dir=sys.argv[3], formats=())
"""

EXPERIMENT = """
import asyncio, random
from crucible_harness import Condition, ConditionOutput, Experiment, HarnessItem, RayExecutor, RunConfig

ITEMS = [HarnessItem(id=f"q{i:03d}", input=str(i), expected=str(2 * i)) for i in range(30)]

async def answer(item, ctx):
    await asyncio.sleep(0.1)
    right = random.Random(ctx.seed).random() < 0.6
    return ConditionOutput(prediction=item.expected if right else "?", cost=0.0005)

def make(address):
    executor = "local" if address == "local" else RayExecutor(
        address=address, num_workers=2, resources={"CPU": 0.5}, batch_size=2)
    return Experiment(name="killed", dataset=ITEMS, repeats=4,
                      conditions=[Condition(name="a", target=answer), Condition(name="b", target="sim:gpt-4")],
                      run=RunConfig(max_concurrency=8, seed=3, executor=executor))
"""


@pytest.mark.parametrize("kill", ["driver", "driver and worker node"])
def test_killed_driver_resumes_to_the_uninterrupted_result_set(
    two_nodes: Any, tmp_path: Path, kill: str
) -> None:
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "exp.py").write_text(textwrap.dedent(EXPERIMENT))
    out = tmp_path / "runs"
    with (tmp_path / "driver.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(tmp_path / "driver.py"), two_nodes.address, str(tmp_path / "exp.py"), str(out)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while True:
            files = list(out.glob("*/tasks.jsonl"))
            if files and files[0].read_bytes().count(b"\n") >= 40:
                break
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(
            proc.pid, signal.SIGKILL
        )  # mid-run: tasks in flight, a group write maybe half done
        if kill != "driver":
            two_nodes.kill_node()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    import runpy

    make = runpy.run_path(str(tmp_path / "exp.py"))["make"]
    total = 2 * 30 * 4
    recorded_before = files[0].read_bytes().count(b"\n")
    assert recorded_before < total
    resumed = resume(files[0].parent, make(two_nodes.address), formats=())
    assert resumed.status == "complete"
    keys = [r["key"] for r in resumed.records]
    assert len(keys) == len(set(keys)) == total
    uninterrupted = run(make("local"), output_dir=tmp_path / "local", formats=())
    assert outcomes(resumed.records) == outcomes(uninterrupted.records)
