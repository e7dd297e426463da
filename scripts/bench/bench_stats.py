"""Benchmark crucible-bench against scipy.stats and pingouin on identical inputs, in one run.

Run from the repository root:

    UV_PROJECT_ENVIRONMENT=/tmp/venv-bench uv run --package crucible-bench --all-extras \
        python scripts/bench/bench_stats.py

Each timing is the best of several repeats (after a warm-up call, so lazy imports are excluded);
ratios are crucible / peer (below 1 means crucible is faster). Targets (issue 3): within 1.5× of raw
scipy, faster than pingouin, bootstrap of 10 000 × 1000 under 100 ms.

r × c Fisher (issue 17) is timed against R's own FEXACT (Mehta–Patel network algorithm, ACM 643)
through the `fexact` package at R's default workspace (200 000), on tables R handles with it; scipy
has no r × c Fisher test. `fexact` is a benchmark-only peer, installed into the benchmark's
environment by hand (`VIRTUAL_ENV=/tmp/venv-bench uv pip install fexact`); without it those rows
are skipped. `--no-fisher` skips them too.
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
    parser.add_argument(
        "--no-fisher", action="store_true", help="skip the r x c Fisher rows"
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
    if not args.no_fisher:
        fisher_rxc(repeat=max(1, min(args.repeat, 3)))


def fisher_rxc(*, repeat: int) -> None:
    """r × c Fisher p-values and timings: crucible's network algorithm against R's FEXACT."""
    try:
        import fexact
    except ImportError:
        print(
            "\nr x c Fisher: skipped (install the peer: `uv pip install fexact` into this env)"
        )
        return
    rng = np.random.default_rng(5)
    tables = {
        "Agresti 4x4 job satisfaction (n=96)": np.array(
            [[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]]
        ),
        "2x5 (n=60)": rng.multinomial(60, [0.1] * 10).reshape(2, 5),
        "3x4 (n=80)": rng.multinomial(80, [1 / 12] * 12).reshape(3, 4),
        "2x3 (n=300)": rng.multinomial(300, [1 / 6] * 6).reshape(2, 3),
    }
    print(
        f"\n{'r x c Fisher (R FEXACT, workspace 200000)':42s} {'crucible':>11s} "
        f"{'FEXACT':>11s} {'vs FEXACT':>9s} {'|p - p_R|':>10s}"
    )
    for name, table in tables.items():
        t = table.astype(np.int64)
        ours = cb.fisher_exact(t).pvalue
        ref = float(fexact.fexact(t))
        a = best_of(lambda t=t: cb.fisher_exact(t), repeat=repeat, number=1)
        b = best_of(lambda t=t: fexact.fexact(t), repeat=repeat, number=1)
        print(
            f"{name:42s} {a * 1e3:9.3f}ms {b * 1e3:9.3f}ms {a / b:8.1f}x "
            f"{abs(ours - ref):10.1e}"
        )


if __name__ == "__main__":
    main()
