"""crucible-harness on Ray against the local (asyncio) executor on the same tasks.

Starts a real two-node Ray cluster on 127.0.0.1 (head + a second raylet process), then:

1. Throughput: N tasks of a condition that awaits 200 ms (a simulated provider latency), the same
   tasks in flight in total, run by the local executor, by Ray with two workers on one node, and by
   Ray with two workers spread over the two nodes. Tasks/s and ratio to local.
2. Per-task overhead of the Ray path: N zero-latency tasks, local vs Ray (2 workers);
   added ms/task = (Ray wall − local wall) / N (target: ≤ 2 ms/task).
3. Scale note: the tasks/s a 700k-call grid needs to finish in an hour, and how many workers that
   takes at the per-worker rate measured in (1).

    uv run --all-packages --all-extras python scripts/bench/bench_ray.py [--tasks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from typing import Any

from crucible_harness import (
    Condition,
    ConditionOutput,
    Experiment,
    HarnessItem,
    RayExecutor,
    RunConfig,
    run_async,
)
from crucible_harness._ray_local import LocalRayCluster

LATENCY = 0.2


def items(n: int) -> list[HarnessItem]:
    return [
        HarnessItem(id=f"q{i:06d}", input=str(i), expected=str(2 * i)) for i in range(n)
    ]


async def provider(item: HarnessItem, ctx: Any) -> ConditionOutput:
    await asyncio.sleep(LATENCY)
    return ConditionOutput(prediction=item.expected, latency=LATENCY)


def instant(item: HarnessItem, ctx: Any) -> str:
    return str(item.expected)


def experiment(n: int, target: Any, in_flight: int, executor: Any) -> Experiment:
    return Experiment(
        name="bench-ray", dataset=items(n), conditions=[Condition(name="c", target=target)], scorer="exact",
        run=RunConfig(max_concurrency=in_flight, timeout=None, retries=0, executor=executor),
    )  # fmt: skip


async def timed(exp: Experiment) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = await run_async(exp, output_dir=out, formats=())
        took = time.perf_counter() - start
    assert result.status == "complete", result.status
    assert len(result.records) == len(exp.items)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument(
        "--in-flight", type=int, default=1000, help="tasks in flight in total"
    )
    parser.add_argument("--batch", type=int, default=64, help="tasks per Ray call")
    args = parser.parse_args()
    n = args.tasks

    cluster = LocalRayCluster().start()
    try:
        one_node = RayExecutor(address=cluster.address, num_workers=2, resources={"CPU": 0.5, "head": 0.5},
                               batch_size=args.batch)  # fmt: skip
        two_nodes = RayExecutor(address=cluster.address, num_workers=2, resources={"CPU": 0.5},
                                batch_size=args.batch)  # fmt: skip
        # warm: start the worker processes once (a driver keeps them between runs)
        asyncio.run(timed(experiment(200, instant, 64, one_node)))
        asyncio.run(timed(experiment(200, instant, 64, two_nodes)))

        ideal = n * LATENCY / args.in_flight
        print(f"1. throughput, {n} tasks of {LATENCY * 1000:.0f} ms, {args.in_flight} in flight "
              f"(ideal {ideal:.2f} s, {n / ideal:.0f} tasks/s)")  # fmt: skip
        local = asyncio.run(timed(experiment(n, provider, args.in_flight, "local")))
        print(f"   local                 {local:7.2f} s  {n / local:7.0f} tasks/s")
        rates = {}
        for name, ex in (
            ("ray, 1 node, 2 workers", one_node),
            ("ray, 2 nodes, 2 workers", two_nodes),
        ):
            took = asyncio.run(timed(experiment(n, provider, args.in_flight, ex)))
            rates[name] = n / took
            print(
                f"   {name:22s}{took:7.2f} s  {n / took:7.0f} tasks/s  ratio to local {local / took:.2f}"
            )

        print(
            f"2. per-task overhead, {n} zero-latency tasks, {args.in_flight} in flight"
        )
        local0 = asyncio.run(timed(experiment(n, instant, args.in_flight, "local")))
        ray0 = asyncio.run(timed(experiment(n, instant, args.in_flight, two_nodes)))
        added = (ray0 - local0) / n * 1000
        print(f"   local {local0 / n * 1000:.3f} ms/task, ray {ray0 / n * 1000:.3f} ms/task: "
              f"added {added:.3f} ms/task (target <= 2 ms), ratio {ray0 / local0:.2f}")  # fmt: skip

        per_worker = rates["ray, 2 nodes, 2 workers"] / 2
        need = 700_000 / 3600
        print("3. scale: 700k calls in an hour need "
              f"{need:.0f} tasks/s; at {per_worker:.0f} tasks/s per worker ({args.in_flight // 2} in flight "
              f"each, {LATENCY * 1000:.0f} ms latency) that is {math.ceil(need / per_worker)} worker(s); "
              f"the bound is in-flight requests: {need * LATENCY:.0f} at {LATENCY * 1000:.0f} ms")  # fmt: skip
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
