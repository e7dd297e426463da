"""crucible-harness overhead and concurrency, against inspect_ai on the same items.

1. Overhead per task: N tasks through `run_async` with a zero-latency simulated model
   (`SimulatedModel(virtual_time=True)`), durable task log and telemetry capture on, versus
   inspect_ai running the same N samples through its `mockllm/model` provider.
2. Concurrency efficiency: 5,120 tasks of a condition that awaits 200 ms, 512 in flight;
   ideal = tasks / 512 × 0.2 s; efficiency = ideal / measured.

inspect_ai's mockllm counts tokens with tiktoken, which downloads an encoding on first use and
fails without a network; this script gives it an offline count (len(text) // 4) instead.

    uv run --group bench python scripts/bench/bench_harness.py [--tasks 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

from crucible_core.models import SimulatedModel
from crucible_harness import Condition, Experiment, HarnessItem, RunConfig, run_async


def items(n: int) -> list[HarnessItem]:
    return [
        HarnessItem(id=f"q{i:06d}", input=f"What is {i} + {i}?", expected=str(2 * i))
        for i in range(n)
    ]


async def crucible_overhead(n: int, concurrency: int) -> float:
    exp = Experiment(
        name="overhead",
        dataset=items(n),
        conditions=[
            Condition(
                name="sim",
                target=SimulatedModel("gpt-4", virtual_time=True, retry=None),
            )
        ],
        scorer="number",
        run=RunConfig(max_concurrency=concurrency, timeout=None, retries=0),
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = await run_async(exp, output_dir=out, formats=())
        took = time.perf_counter() - start
    assert len(result.records) == n
    return took


async def crucible_concurrency(
    n: int, in_flight: int, latency: float
) -> tuple[float, float]:
    """(execution span from the first task's start to the last task's end, whole run_async wall time)."""
    import datetime as dt

    async def wait(item: HarnessItem, ctx: Any) -> str:
        await asyncio.sleep(latency)
        return str(item.expected)

    exp = Experiment(name="concurrency", dataset=items(n), conditions={"sleep": wait}, scorer="number",
                     run=RunConfig(max_concurrency=in_flight, timeout=None, retries=0))  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = await run_async(exp, output_dir=out, formats=())
        wall = time.perf_counter() - start
    first = min(dt.datetime.fromisoformat(r["started_at"]) for r in result.records)
    last = max(dt.datetime.fromisoformat(r["finished_at"]) for r in result.records)
    return (last - first).total_seconds(), wall


def inspect_overhead(n: int, *, tuned: bool) -> float | None:
    try:
        from inspect_ai import Task
        from inspect_ai import eval as inspect_eval
        from inspect_ai.dataset import Sample
        from inspect_ai.model._model import ModelAPI
        from inspect_ai.scorer import match
        from inspect_ai.solver import generate
    except ImportError:
        return None

    async def offline_count(self: Any, text: str) -> int:  # no tiktoken download
        return max(1, len(text) // 4)

    ModelAPI.count_text_tokens = offline_count  # type: ignore[method-assign]
    task = Task(dataset=[Sample(input=f"What is {i} + {i}?", target=str(2 * i)) for i in range(n)],
                solver=generate(), scorer=match())  # fmt: skip
    options: dict[str, Any] = {"display": "none", "log_dir": tempfile.mkdtemp()}
    if tuned:
        options.update(max_connections=512, max_samples=512, log_realtime=False)
    start = time.perf_counter()
    logs = inspect_eval(task, model="mockllm/model", **options)
    took = time.perf_counter() - start
    if logs[0].status != "success":
        raise RuntimeError(f"inspect_ai failed: {logs[0].error}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency-tasks", type=int, default=5_120)
    args = parser.parse_args()
    n = args.tasks
    os.environ.setdefault("INSPECT_LOG_LEVEL", "error")

    print(f"harness benchmark, {os.cpu_count()} CPUs")
    c_time = asyncio.run(crucible_overhead(n, concurrency=512))
    print(
        f"  crucible  run_async, {n} tasks, zero-latency sim, durable log + events   {c_time:7.2f} s  {c_time / n * 1000:6.3f} ms/task"
    )
    tuned = inspect_overhead(n, tuned=True)
    default = inspect_overhead(n, tuned=False)
    if tuned is None or default is None:
        print(
            "  inspect_ai not installed: `uv run --group bench python scripts/bench/bench_harness.py`"
        )
    else:
        print(
            f"  inspect_ai mockllm/model, tuned (512 connections/samples, no realtime log)  {tuned:7.2f} s  {tuned / n * 1000:6.3f} ms/task"
        )
        print(
            f"  inspect_ai mockllm/model, default flags                                     {default:7.2f} s  {default / n * 1000:6.3f} ms/task"
        )
        print(f"  ratio inspect_ai (tuned) / crucible   = {tuned / c_time:5.1f}x")
        print(f"  ratio inspect_ai (default) / crucible = {default / c_time:5.1f}x")

    m, in_flight, latency = args.concurrency_tasks, 512, 0.2
    span, wall = asyncio.run(crucible_concurrency(m, in_flight, latency))
    ideal = m / in_flight * latency
    print(f"  concurrency: {m} tasks × {latency * 1000:.0f} ms at {in_flight} in flight: execution {span:.2f} s"
          f" (whole run_async incl. analysis {wall:.2f} s), ideal {ideal:.2f} s,"
          f" efficiency {ideal / span:.2f} (target ≥ 0.9; {ideal / wall:.2f} counting analysis)")  # fmt: skip
    print(
        f"  overhead target ≤ 1 ms/task: {'met' if c_time / n <= 0.001 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
