"""Hedging: tail latency and extra load per policy and budget, real-time HTTP, decision overhead.

1. Simulated (discrete-event, 100k requests each): P50/P95/P99/P99.9 and extra-request rate for no
   hedging vs Fixed (at the profile's P95) vs Percentile(90/95) vs Adaptive under budgets 2%, 5%
   and 10%, on the three seed latency profiles (fast/medium/slow), independent attempts.
2. Real time: 2,000 requests (50 at a time) against a local aiohttp server that sleeps latencies
   drawn from the fast profile scaled by 1/20, without hedging and with Percentile(95) + 5% budget.
3. Decision overhead: the policy's per-request cost (delay + observe), and `Hedger.request` vs a
   bare `asyncio.wait(FIRST_COMPLETED)` implementation doing the same work on an instant callable.

    uv run --package crucible-hedging --extra http python scripts/bench/bench_hedging.py [--quick]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import numpy as np

from crucible_core.models import LATENCY_CLASSES
from crucible_hedging import (
    Adaptive,
    Fixed,
    HedgeBudget,
    Hedger,
    Outcome,
    Parametric,
    Percentile,
    simulate,
)

N = 10_000 if "--quick" in sys.argv else 100_000
BUDGETS = (0.02, 0.05, 0.10)


def _row(label: str, report: Any) -> str:
    cells = " ".join(f"{report.latency(level):8.0f}" for level in report.levels)
    return f"  {label:<34}{cells} {100 * report.extra_load:7.2f}%"


def simulated() -> None:
    print(f"1. Simulated, {N:,} requests per run (ms; extra = backups per request)")
    for name, dist in LATENCY_CLASSES.items():
        model = Parametric(distribution=dist)
        print(
            f"\n  profile {name}: P50/P95/P99 = {dist.p50 * 1000:.0f}/{dist.p95 * 1000:.0f}/"
            f"{dist.p99 * 1000:.0f} ms"
        )
        print(
            f"  {'policy':<34}{'P50':>8} {'P95':>8} {'P99':>8} {'P99.9':>8} {'extra':>8}"
        )
        started = time.perf_counter()
        # the unhedged row is the exact first-attempt latency of the very same draws
        base = simulate(model, Fixed(delay=0.0), n=N, seed=1).report
        cells = " ".join(f"{base.baseline(level):8.0f}" for level in base.levels)
        print(f"  {'no hedging':<34}{cells} {0.0:7.2f}%")
        for budget in BUDGETS:
            policies = {
                "Fixed(P95)": Fixed(delay=dist.p95),
                "Percentile(90)": Percentile(p=90),
                "Percentile(95)": Percentile(p=95),
                "Adaptive": Adaptive(max_rate=budget),
            }
            for label, policy in policies.items():
                report = simulate(
                    model, policy, n=N, seed=1, budget=HedgeBudget(ratio=budget)
                ).report
                print(_row(f"{label}, budget {budget:.0%}", report))
        print(f"  ({time.perf_counter() - started:.1f} s for this profile)")


async def real_time() -> None:
    from aiohttp import ClientSession, web

    n, concurrency, scale = 2000, 50, 1 / 20
    rng = np.random.default_rng(3)
    lat = Parametric(distribution="fast").sample(rng, n, 2) * scale

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query["d"]))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/"
    print(
        f"\n2. Real time: {n} requests, {concurrency} at a time, local aiohttp server, "
        f"fast profile x {scale:g} (ms)"
    )
    print(f"  {'policy':<34}{'P50':>8} {'P95':>8} {'P99':>8} {'P99.9':>8} {'extra':>8}")
    try:
        async with ClientSession() as session:
            for label, hedger in (
                ("no hedging", Hedger(policy=Fixed(delay=0.0), max_hedges=0)),
                (
                    "Percentile(95), budget 5%",
                    Hedger(policy=Percentile(p=95), budget=HedgeBudget(ratio=0.05)),
                ),
            ):
                gate = asyncio.Semaphore(concurrency)

                async def one(
                    i: int, hedger: Hedger = hedger, gate: Any = gate
                ) -> None:
                    calls = iter(lat[i])

                    async def fetch() -> str:
                        async with session.get(
                            url, params={"d": f"{next(calls):.6f}"}
                        ) as r:
                            return await r.text()

                    async with gate:
                        await hedger.request(fetch)

                started = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                wall = time.perf_counter() - started
                print(_row(label, hedger.report()) + f"   wall {wall:.1f} s")
    finally:
        await runner.cleanup()


def per_call_us(fn: Any, n: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - started) / n / 1000)
    return best


def overhead() -> None:
    print("\n3. Decision overhead per request (µs, best of 5)")
    rng = np.random.default_rng(0)
    samples = rng.lognormal(-0.7, 0.8, 10_000).tolist()
    outcomes = [Outcome(primary_latency=x) for x in samples]
    for label, policy in (
        ("Fixed", Fixed(delay=1.0)),
        ("Percentile(95), window 1000", Percentile(p=95)),
        ("Adaptive (amortised re-estimate)", Adaptive()),
    ):
        for o in outcomes[:5000]:
            policy.observe(o)

        def work(n: int, policy: Any = policy) -> None:
            for i in range(n):
                policy.delay(None)
                policy.observe(outcomes[i % 10_000])

        print(f"  policy {label:<40} {per_call_us(work, 20_000):6.2f} µs  (target < 5)")

    async def instant() -> int:
        return 1

    async def bare(n: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n):
            start = loop.time()
            task = loop.create_task(instant())
            done, _ = await asyncio.wait(
                {task}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
            )
            for t in done:
                t.result()
            _ = loop.time() - start

    async def ours(n: int) -> None:
        hedger = Hedger(policy=Percentile(p=95), budget=HedgeBudget(ratio=0.05))
        for _ in range(n):
            await hedger.request(instant)

    bare_us = per_call_us(lambda n: asyncio.run(bare(n)), 20_000)
    ours_us = per_call_us(lambda n: asyncio.run(ours(n)), 20_000)
    print(f"  bare asyncio.wait(FIRST_COMPLETED) request   {bare_us:6.2f} µs")
    print(
        f"  Hedger.request (Percentile(95), budget 5%)   {ours_us:6.2f} µs"
        f"  ratio {ours_us / bare_us:.2f}x, overhead {ours_us - bare_us:.2f} µs"
    )


def main() -> None:
    simulated()
    asyncio.run(real_time())
    overhead()


if __name__ == "__main__":
    main()
