"""Voting overhead of crucible-ensemble, and accuracy/cost of single vs ensemble strategies.

1. Overhead per prediction for 5 members, excluding model time. "Model time" is what the members
   themselves take; here they are zero-latency models (`Instant`) whose `complete` returns a
   ready-made completion without awaiting anything. Two things are timed in the same process, on
   the same event loop, interleaved, best of several rounds:
     - direct: awaiting the 5 members' `complete(request)` one after another, in one coroutine;
     - predict: `await ensemble.predict_async(request)` (parallel execution, majority vote).
   The overhead is predict minus direct: starting the calls, collecting them, normalizing the 5
   answers, voting, building the result and emitting the events. It is set beside the asyncio
   floor, the 5 calls started as (plain, not eager) tasks, run by one loop turn and collected,
   which any concurrent execution pays on Python 3.11; the target is overhead <= 1.5x the floor.
   For scale it also prints the vote alone (normalize + majority, with the normalizer's memo and
   without), and a plain `collections.Counter` majority over the raw strings.
   On Python >= 3.12 members start as eager tasks (a call that needs no I/O never waits for the
   loop); Python 3.11 has no eager tasks, so each call is a task the loop runs once. Give other
   interpreters with `--python` to print the same table for each of them (each needs the
   workspace installed, e.g. `UV_PROJECT_ENVIRONMENT=/tmp/venv-bench-312 uv sync --python 3.12
   --package crucible-ensemble --all-extras --group bench`, then
   `--python /tmp/venv-bench-312/bin/python`); `--overhead-only` prints only this table.
2. Accuracy and cost on simulated profiles (virtual time, two-way items with a known answer):
   each single member, then majority, log-odds weighted, sequential and cascade ensembles.
3. Hedged execution (through crucible-hedging, on the members' reported latencies): gpt-4 alone
   against gpt-4 backed up by gemini-pro and mixtral-8x7b (all three "medium" latency, P50/P95/P99
   0.5/2/5 s) under a fixed delay at the P95, Percentile(95) and Adaptive with a 5% budget.

    UV_PROJECT_ENVIRONMENT=/tmp/venv-bench-all uv sync --all-packages --all-extras --group bench
    /tmp/venv-bench-all/bin/python scripts/bench/bench_ensemble.py [--python OTHER_PYTHON ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from crucible_core.models import (
    PROFILES,
    Completion,
    Request,
    SimulatedModel,
    Usage,
)
from crucible_core.stats import percentiles
from crucible_ensemble import (
    Ensemble,
    Hedged,
    evaluate_ensemble_async,
    log_odds_weights,
)
from crucible_ensemble._normalize import resolve_normalizer, resolve_reading
from crucible_ensemble._voting import Ballot, Majority
from crucible_hedging import Adaptive, Percentile

ANSWERS = ("The answer is B.", "B", "(B)", "Answer: C", "B")
REQUEST = Request(prompt="Pick one", kind="choice", choices=("A", "B", "C", "D"))
TARGET_RATIO = 1.5  # overhead <= 1.5x the asyncio floor


class Instant:
    """A member with no model time: it returns a prepared completion."""

    def __init__(self, name: str, text: str) -> None:
        self._id = f"instant:{name}"
        self._completion = Completion(
            text=text,
            usage=Usage(input_tokens=10, output_tokens=2),
            latency=0.1,
            cost=0.001,
        )

    @property
    def id(self) -> str:
        return self._id

    @property
    def provider(self) -> str:
        return "instant"

    async def complete(self, request: Request) -> Completion:
        return self._completion

    async def aclose(self) -> None:
        pass


def best_of(fn: Callable[[int], None], n: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def counter_majority(n: int) -> None:
    for _ in range(n):
        Counter(ANSWERS).most_common(1)


def vote_only(normalize: Callable[[str], str | None]) -> Callable[[int], None]:
    majority = Majority()

    def vote(n: int) -> None:
        for _ in range(n):
            ballots = [
                Ballot(member=str(i), position=i, answer=a)
                for i, text in enumerate(ANSWERS)
                if (a := normalize(text)) is not None
            ]
            majority.decide(ballots)

    return vote


def per_call_us(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]], n: int
) -> float:
    async def run() -> None:
        for _ in range(n):
            await call()

    start = time.perf_counter()
    loop.run_until_complete(run())
    return (time.perf_counter() - start) / n * 1e6


def overhead(rounds: int = 30, n: int = 2_000) -> None:
    members = [Instant(str(i), text) for i, text in enumerate(ANSWERS)]
    ensemble = Ensemble(members)

    async def direct() -> None:
        for member in members:
            await member.complete(REQUEST)

    async def tasks() -> (
        None
    ):  # the asyncio floor: 5 tasks started, run once, collected
        loop = asyncio.get_running_loop()
        started = [asyncio.Task(m.complete(REQUEST), loop=loop) for m in members]
        await asyncio.sleep(0)
        for task in started:
            task.result()

    def predict() -> Awaitable[object]:
        return ensemble.predict_async(REQUEST)

    loop = asyncio.new_event_loop()
    best = {"direct": float("inf"), "tasks": float("inf"), "predict": float("inf")}
    try:
        for _ in range(rounds):  # interleaved, so load on the machine hits all alike
            best["direct"] = min(best["direct"], per_call_us(loop, direct, n))
            best["tasks"] = min(best["tasks"], per_call_us(loop, tasks, n))
            best["predict"] = min(best["predict"], per_call_us(loop, predict, n))
    finally:
        loop.close()
    counter = best_of(counter_majority, 50_000)
    vote = best_of(vote_only(resolve_normalizer("auto", REQUEST)), 5_000)
    unmemoized = best_of(vote_only(resolve_reading("auto", REQUEST).read), 5_000)
    cost = best["predict"] - best["direct"]
    floor = best["tasks"]
    eager = "eager tasks" if sys.version_info >= (3, 12) else "tasks (no eager start)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"Overhead per prediction, 5 zero-latency members (Python "
        f"{sys.version.split()[0]}, {eager}; best of {rounds} rounds of {n}; "
        f"load average {load})"
    )
    print(f"  Counter majority (raw strings)          {counter:8.2f} µs")
    print(f"  normalize + majority vote alone         {vote:8.2f} µs")
    print(f"    the same, normalizer without memo     {unmemoized:8.2f} µs")
    print(f"  direct: await the 5 members in turn     {best['direct']:8.2f} µs")
    print(f"  asyncio floor: 5 tasks, one loop turn   {floor:8.2f} µs")
    print(f"  predict_async (parallel, majority)      {best['predict']:8.2f} µs")
    ratio = cost / floor
    print(
        f"  overhead = predict - direct             {cost:8.2f} µs   "
        f"{ratio:.2f}x the floor, target <= {TARGET_RATIO}x: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}"
    )


def two_way_items(n: int, label: str) -> list[Request]:
    """Two-way choice items whose right answer is "A"."""
    return [
        Request(prompt=f"{label} {i}", reference="A", kind="choice", choices=("A", "B"))
        for i in range(n)
    ]


async def accuracy_table() -> None:
    n = 2_000
    items = two_way_items(n, "bench item")
    names = ("gpt-4", "claude-3", "gemini-pro", "llama-3-70b", "mixtral-8x7b")
    members = [SimulatedModel(PROFILES[p], seed=42, virtual_time=True) for p in names]
    weights = log_odds_weights(
        {m.id: PROFILES[p].accuracy for m, p in zip(members, names, strict=True)}
    )
    configs = {
        "majority (parallel)": Ensemble(members),
        "weighted log-odds": Ensemble(members, strategy="weighted", weights=weights),
        "majority (sequential)": Ensemble(members, execution="sequential"),
        "majority (cascade)": Ensemble(members, execution="cascade"),
    }
    print()
    print(f"Accuracy and cost on {n} simulated two-way items (seed 42, virtual time)")
    print(
        f"  {'system':24} {'accuracy':>9} {'cost/item $':>12} {'calls/item':>11} {'p50 latency s':>14}"
    )
    first = await evaluate_ensemble_async(configs["majority (parallel)"], items)
    acc = first.accuracy()
    cost = first.cost()
    for m in first.members:
        lat = sorted(o.latency or 0 for o in first.outcomes if o.system == m)[n // 2]
        print(f"  {m:24} {acc[m]:9.4f} {cost[m] / n:12.5f} {1:11.2f} {lat:14.3f}")
    for label, ensemble in configs.items():
        results = []
        for start in range(0, n, 500):
            results += await asyncio.gather(
                *(ensemble.predict_async(r) for r in items[start : start + 500])
            )
        accuracy = sum(r.answer == "A" for r in results) / n
        spend = sum(r.cost or 0 for r in results) / n
        calls = sum(r.members_called for r in results) / n
        lat = sorted(r.latency for r in results)[n // 2]
        print(f"  {label:24} {accuracy:9.4f} {spend:12.5f} {calls:11.2f} {lat:14.3f}")


async def hedged_table() -> None:
    n = 4_000
    items = two_way_items(n, "hedged item")
    members = [
        SimulatedModel(PROFILES[p], seed=7, virtual_time=True)
        for p in ("gpt-4", "gemini-pro", "mixtral-8x7b")
    ]
    configs = {
        "gpt-4 alone": Ensemble(members[:1]),
        "Fixed(2 s), no budget": Ensemble(members, execution=Hedged(delay=2.0)),
        "Percentile(95), budget 5%": Ensemble(
            members, execution=Hedged(policy=Percentile(p=95), budget=0.05)
        ),
        "Adaptive, budget 5%": Ensemble(
            members, execution=Hedged(policy=Adaptive(max_rate=0.05), budget=0.05)
        ),
    }
    print()
    print(
        f"Hedged execution through crucible-hedging, {n} items one after another "
        "(virtual time, seed 7)"
    )
    print(
        f"  {'system':26} {'accuracy':>8} {'cost/item $':>11} {'calls/item':>10} "
        f"{'P50 s':>6} {'P95 s':>6} {'P99 s':>6} {'hedge rate':>10}"
    )
    for label, ensemble in configs.items():
        results = []
        for item in items:
            try:
                results.append(await ensemble.predict_async(item))
            except Exception:  # every member failed (simulated 500s): rare
                continue
        p50, p95, p99 = percentiles([r.latency for r in results], (50, 95, 99))
        accuracy = sum(r.answer == "A" for r in results) / n
        spend = sum(r.cost or 0 for r in results) / n
        calls = sum(r.members_called for r in results) / n
        rate = ensemble.hedger.report().hedge_rate if ensemble.hedger else 0.0
        print(
            f"  {label:26} {accuracy:8.4f} {spend:11.5f} {calls:10.3f} "
            f"{p50:6.2f} {p95:6.2f} {p99:6.2f} {rate:10.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        help="also print the overhead table under this interpreter (repeatable)",
    )
    parser.add_argument(
        "--overhead-only", action="store_true", help="print only the overhead table"
    )
    args = parser.parse_args()
    overhead()
    for python in args.python:
        print()
        sys.stdout.flush()
        subprocess.run([python, __file__, "--overhead-only"], check=True)
    if args.overhead_only:
        return
    asyncio.run(accuracy_table())
    asyncio.run(hedged_table())


if __name__ == "__main__":
    main()
