"""crucible-harness overhead and concurrency, against inspect_ai on the same items.

1. Overhead per task: N tasks through `run_async` with a zero-latency simulated model
   (`SimulatedModel(virtual_time=True)`), durable task log and telemetry capture on, versus
   inspect_ai running the same N samples through its `mockllm/model` provider.
2. Concurrency efficiency: 5,120 tasks of a condition that awaits 200 ms, 512 in flight;
   ideal = tasks / 512 × 0.2 s; efficiency = ideal / measured.
3. Scaling: the overhead run of (1) at 1k, 10k and 100k tasks, each size in a fresh subprocess
   so its peak memory is its own: wall and CPU time per task and peak RSS added per task
   (VmHWM minus the RSS after the items were built, over the task count; each process first does
   a 200-task warm-up run so that imports are not counted), then reading the run back with every report (`load_run(formats=markdown/html/json)`) per task. inspect_ai (tuned)
   runs the same sizes; a size whose estimate from the next smaller one exceeds
   `--peer-limit` seconds is not run for it, and the output says so. A flat row is the target.
   "(cyclic GC)" is the part of the wall time the garbage collector ran: CPython makes a full
   pass each time the objects alive grow by a quarter, so its share per task rises with the
   task count towards a constant (about five passes over each live object), then stays there.

inspect_ai's mockllm counts tokens with tiktoken, which downloads an encoding on first use and
fails without a network; this script gives it an offline count (len(text) // 4) instead.

    uv run --all-packages --group bench python scripts/bench/bench_harness.py [--tasks 10000]
        [--scaling 1000,10000,100000] [--scaling-repeat 1] [--peer-limit 600]
        [--only overhead|concurrency|scaling]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
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


def inspect_task(n: int) -> Any:
    """inspect_ai's task over the same N items (None when inspect_ai is not installed)."""
    try:
        from inspect_ai import Task
        from inspect_ai.dataset import Sample
        from inspect_ai.model._model import ModelAPI
        from inspect_ai.scorer import match
        from inspect_ai.solver import generate
    except ImportError:
        return None

    async def offline_count(self: Any, text: str) -> int:  # no tiktoken download
        return max(1, len(text) // 4)

    ModelAPI.count_text_tokens = offline_count  # type: ignore[method-assign]
    return Task(dataset=[Sample(input=f"What is {i} + {i}?", target=str(2 * i)) for i in range(n)],
                solver=generate(), scorer=match())  # fmt: skip


def inspect_run(task: Any, *, tuned: bool) -> float:
    """Seconds inspect_ai takes to evaluate `task` with its `mockllm/model` provider."""
    from inspect_ai import eval as inspect_eval

    options: dict[str, Any] = {"display": "none", "log_dir": tempfile.mkdtemp()}
    if tuned:
        options.update(max_connections=512, max_samples=512, log_realtime=False)
    start = time.perf_counter()
    logs = inspect_eval(task, model="mockllm/model", **options)
    took = time.perf_counter() - start
    if logs[0].status != "success":
        raise RuntimeError(f"inspect_ai failed: {logs[0].error}")
    return took


def inspect_overhead(n: int, *, tuned: bool) -> float | None:
    task = inspect_task(n)
    return None if task is None else inspect_run(task, tuned=tuned)


def _rss_kb(field: str) -> int:
    """`VmRSS` or `VmHWM` (peak) of this process, in KiB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the peak


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_WARM = 200  # tasks of the warm-up run before each measured one
_REPORTS = ("markdown", "html", "json")


class _GcClock:
    """Seconds the cyclic garbage collector runs (all generations) until `stop`."""

    def __init__(self) -> None:
        import gc

        self.seconds, self._started = 0.0, 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def stop(self) -> None:
        import gc

        gc.callbacks.remove(self._tick)


def _child(who: str, n: int) -> dict[str, Any]:
    """One scaling point, measured in this (fresh) process."""
    import gc

    if who == "crucible":
        from crucible_harness import load_run

        def experiment(size: int) -> Experiment:
            return Experiment(name="scaling", dataset=items(size), scorer="number",
                              conditions=[Condition(name="sim", target=SimulatedModel("gpt-4", virtual_time=True, retry=None))],
                              run=RunConfig(max_concurrency=512, timeout=None, retries=0))  # fmt: skip

        with tempfile.TemporaryDirectory() as out:
            # a warm-up run pays the lazy imports (analysis, reports), as a second run would
            warm = asyncio.run(run_async(experiment(_WARM), output_dir=out, formats=()))
            load_run(warm.run_dir, formats=_REPORTS)
            del warm
            exp = experiment(n)
            gc.collect()
            collecting = _GcClock()
            base, cpu, start = _rss_kb("VmRSS"), _cpu(), time.perf_counter()
            result = asyncio.run(run_async(exp, output_dir=out, formats=()))
            wall, cpu = time.perf_counter() - start, _cpu() - cpu
            peak = _rss_kb("VmHWM")
            collecting.stop()
            assert len(result.records) == n
            assert result.status == "complete"
            run_dir = result.run_dir
            del result
            gc.collect()
            start = time.perf_counter()
            back = load_run(run_dir, formats=_REPORTS)
            reports = time.perf_counter() - start
            assert len(back.records) == n
            assert sorted(back.reports) == sorted(_REPORTS)
        return {"wall": wall, "cpu": cpu, "base_kb": base, "peak_kb": peak, "reports": reports,
                "gc": collecting.seconds}  # fmt: skip
    os.environ.setdefault("INSPECT_LOG_LEVEL", "error")
    inspect_overhead(_WARM, tuned=True)  # the warm-up, as for crucible
    # its samples are built before the baseline, like crucible's items
    task = inspect_task(n)
    gc.collect()
    base, cpu = _rss_kb("VmRSS"), _cpu()
    wall = inspect_run(task, tuned=True)
    return {
        "wall": wall,
        "cpu": _cpu() - cpu,
        "base_kb": base,
        "peak_kb": _rss_kb("VmHWM"),
    }


def _point(who: str, n: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", who, str(n)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def _best(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Of repeated points, the least of each measure (the machine is shared: noise only adds)."""
    return {k: min(p[k] for p in points) for k in points[0]} | {
        "peak_kb": min(p["peak_kb"] - p["base_kb"] for p in points),
        "base_kb": 0,
    }


def scaling(sizes: list[int], *, peer_limit: float, repeat: int = 1) -> None:
    """Per-task cost and peak memory per task at each size (each in a fresh process)."""
    try:
        import inspect_ai  # noqa: F401

        peer = True
    except ImportError:
        peer = False
    print(
        "  scaling (zero-latency sim, 512 in flight, durable log + events; one fresh process per size"
        + (f", crucible the least of {repeat}" if repeat > 1 else "")
        + "):"
    )
    print(
        "    who        tasks   wall µs/task   CPU µs/task   (cyclic GC)   peak RSS KiB/task   load_run+3 reports µs/task"
    )
    rows: dict[str, dict[int, dict[str, Any]]] = {"crucible": {}, "inspect_ai": {}}
    for who in ("crucible", "inspect_ai"):
        if who == "inspect_ai" and not peer:
            print(
                "    inspect_ai not installed: `uv run --all-packages --group bench python scripts/bench/bench_harness.py`"
            )
            break
        previous: tuple[int, float] | None = None
        for n in sizes:
            if who == "inspect_ai" and previous is not None:
                estimate = previous[1] / previous[0] * n
                if estimate > peer_limit:
                    print(f"    {who:<10} {n:>6}   not run: {estimate:.0f} s estimated from its {previous[0]}-task"
                          f" per-task cost exceeds --peer-limit {peer_limit:.0f} s")  # fmt: skip
                    continue
            p = _best(
                [_point(who, n) for _ in range(repeat if who == "crucible" else 1)]
            )
            rows[who][n] = p
            previous = (n, p["wall"])
            reports = (
                f"{p['reports'] / n * 1e6:12.1f}" if "reports" in p else f"{'-':>12}"
            )
            collected = f"{p['gc'] / n * 1e6:11.1f}" if "gc" in p else f"{'-':>11}"
            print(f"    {who:<10} {n:>6}   {p['wall'] / n * 1e6:12.1f}   {p['cpu'] / n * 1e6:11.1f}   {collected}"
                  f"   {(p['peak_kb'] - p['base_kb']) / n:17.2f}   {reports}", flush=True)  # fmt: skip
    ours = rows["crucible"]
    if len(ours) >= 2:
        lo, hi = min(ours), max(ours)

        def per(p: dict[str, Any], key: str) -> float:
            return (p["peak_kb"] - p["base_kb"]) if key == "mem" else p[key]

        growth = {
            k: (per(ours[hi], k) / hi) / (per(ours[lo], k) / lo)
            for k in ("wall", "cpu", "mem", "reports")
        }
        print(f"    crucible {hi // lo}x the tasks: per-task wall ×{growth['wall']:.2f}, CPU ×{growth['cpu']:.2f},"
              f" peak RSS/task ×{growth['mem']:.2f}, load_run+reports ×{growth['reports']:.2f} (flat = 1.00)")  # fmt: skip
    for n in sorted(set(ours) & set(rows["inspect_ai"])):
        c, i = ours[n], rows["inspect_ai"][n]
        print(f"    at {n} tasks: inspect_ai / crucible wall {i['wall'] / c['wall']:.1f}x, CPU {i['cpu'] / c['cpu']:.1f}x,"
              f" peak RSS added {(i['peak_kb'] - i['base_kb']) / max(1, c['peak_kb'] - c['base_kb']):.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency-tasks", type=int, default=5_120)
    parser.add_argument(
        "--scaling", default="1000,10000,100000", help="task counts, comma-separated"
    )
    parser.add_argument("--scaling-repeat", type=int, default=1,
                        help="fresh processes per crucible size; the least of each measure is shown")  # fmt: skip
    parser.add_argument("--peer-limit", type=float, default=600.0,
                        help="seconds: skip an inspect_ai scaling size estimated to take longer")  # fmt: skip
    parser.add_argument("--only", choices=("overhead", "concurrency", "scaling"))
    parser.add_argument(
        "--child", nargs=2, metavar=("WHO", "TASKS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], int(args.child[1]))))
        return
    n = args.tasks
    os.environ.setdefault("INSPECT_LOG_LEVEL", "error")

    print(f"harness benchmark, {os.cpu_count()} CPUs")
    if args.only in (None, "overhead"):
        overhead(n)
    if args.only in (None, "concurrency"):
        concurrency(args.concurrency_tasks)
    if args.only in (None, "scaling"):
        scaling(
            [int(s) for s in args.scaling.split(",")],
            peer_limit=args.peer_limit,
            repeat=args.scaling_repeat,
        )


def overhead(n: int) -> None:
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
    print(
        f"  overhead target ≤ 1 ms/task: {'met' if c_time / n <= 0.001 else 'NOT met'}"
    )


def concurrency(m: int) -> None:
    in_flight, latency = 512, 0.2
    span, wall = asyncio.run(crucible_concurrency(m, in_flight, latency))
    ideal = m / in_flight * latency
    print(f"  concurrency: {m} tasks × {latency * 1000:.0f} ms at {in_flight} in flight: execution {span:.2f} s"
          f" (whole run_async incl. analysis {wall:.2f} s), ideal {ideal:.2f} s,"
          f" efficiency {ideal / span:.2f} (target ≥ 0.9; {ideal / wall:.2f} counting analysis)")  # fmt: skip


if __name__ == "__main__":
    main()
