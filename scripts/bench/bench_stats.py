"""Benchmark crucible-bench against scipy.stats and pingouin on identical inputs, in one run.

Run from the repository root:

    UV_PROJECT_ENVIRONMENT=/tmp/venv-bench uv run --package crucible-bench --all-extras \
        python scripts/bench/bench_stats.py

Each timing is the best of several repeats (after a warm-up call, so lazy imports are excluded);
ratios are crucible / peer (below 1 means crucible is faster). Targets (issue 3): within 1.5× of raw
scipy, faster than pingouin, bootstrap of 10 000 × 1000 under 100 ms.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import crucible_bench as cb


def best_of(fn: Callable[[], Any], *, repeat: int, number: int) -> float:
    fn()  # warm-up: lazy imports, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--n", type=int, default=100, help="observations per group for the tests"
    )
    args = parser.parse_args()

    import pandas as pd
    import pingouin as pg
    from scipy import stats

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(12345)
    x = rng.normal(0.0, 1.0, args.n)
    y = rng.normal(0.3, 1.3, args.n)
    z = rng.normal(0.1, 1.0, args.n)
    long = pd.DataFrame(
        {"v": np.concatenate([x, y, z]), "g": np.repeat(["x", "y", "z"], args.n)}
    )
    boot_data = rng.normal(0.0, 1.0, 1000)

    cases: list[tuple[str, dict[str, Callable[[], Any]], int]] = [
        (
            f"Welch t-test (n={args.n}+{args.n})",
            {
                "crucible": lambda: cb.ttest(x, y),
                "scipy": lambda: stats.ttest_ind(x, y, equal_var=False),
                "pingouin": lambda: pg.ttest(x, y, correction=True),
            },
            200,
        ),
        (
            f"Mann-Whitney U (n={args.n}+{args.n})",
            {
                "crucible": lambda: cb.mann_whitney(x, y),
                "scipy": lambda: stats.mannwhitneyu(x, y, method="asymptotic"),
                "pingouin": lambda: pg.mwu(x, y),
            },
            200,
        ),
        (
            f"one-way ANOVA (3 x {args.n})",
            {
                "crucible": lambda: cb.anova_oneway(x, y, z),
                "scipy": lambda: stats.f_oneway(x, y, z),
                "pingouin": lambda: pg.anova(data=long, dv="v", between="g"),
            },
            200,
        ),
        (
            "bootstrap BCa CI of the mean (n=1000, 10 000 resamples)",
            {
                "crucible": lambda: cb.bootstrap_ci(
                    boot_data, "mean", n_resamples=10_000, rng=1
                ),
                "scipy": lambda: stats.bootstrap(
                    (boot_data,), np.mean, n_resamples=10_000, method="BCa", rng=1
                ),
                "pingouin": lambda: pg.compute_bootci(
                    boot_data, func="mean", n_boot=10_000, method="bca", seed=1
                ),
            },
            1,
        ),
    ]

    print(
        f"{'case':58s} {'crucible':>11s} {'scipy':>11s} {'pingouin':>11s} {'vs scipy':>9s} {'vs pingouin':>11s}"
    )
    for name, fns, number in cases:
        t = {k: best_of(f, repeat=args.repeat, number=number) for k, f in fns.items()}
        print(
            f"{name:58s} {t['crucible'] * 1e3:9.3f}ms {t['scipy'] * 1e3:9.3f}ms "
            f"{t['pingouin'] * 1e3:9.3f}ms {t['crucible'] / t['scipy']:8.2f}x "
            f"{t['crucible'] / t['pingouin']:10.2f}x"
        )


if __name__ == "__main__":
    main()
