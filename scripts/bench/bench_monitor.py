"""Benchmark crucible-telemetry's monitor: false-alarm and detection run lengths, and speed vs river.

Run from the repository root (river, the peer, lives in its own venv, never in uv.lock):

    uv venv /tmp/river-venv && VIRTUAL_ENV=/tmp/river-venv uv pip install river==0.26.1 numpy
    UV_PROJECT_ENVIRONMENT=$PWD/.venvs/telemetry uv run --exact --package crucible-telemetry \
        --all-extras python scripts/bench/bench_monitor.py --river-python /tmp/river-venv/bin/python

What it measures, by seeded simulation of the issue's scenario (accuracy 92% → 89%):

1. For each detector (`confidence_sequence`, `cusum`, `page_hinkley`) at the ARL₀ target given
   (`--arl0`, default 10 000 requests): a 30-day baseline is drawn at each request rate
   (`--rates`, requests/day), the detector bets against the baseline's 95% upper bound of the error
   rate (as `Monitor(conservative=True)` does), and then
   - ARL₀: mean run length to a false alarm on a stream with no change (runs censored at
     `--horizon` requests; the share censored is printed, and censoring only lowers the mean);
   - ARL₁: mean detection delay when the change is there from the first request.
   Both in requests and in days/hours at each rate.
2. Speed: requests per second through the detector, and the same Page–Hinkley statistic in
   river's `drift.PageHinkley` (alpha = 1, mode "up": the same test) on identical streams in the
   peer's own interpreter; the ratio river / crucible is printed, and the two PH run lengths on the
   same streams must agree.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np

from crucible_telemetry._monitor import _Detector, _wilson_upper

P0, P1 = 0.92, 0.89  # accuracy before and after
SHIFT = P0 - P1


def _run_length(method: str, mu0: float, arl0: float, y: np.ndarray) -> int | None:
    det = _Detector(method, mu0, SHIFT, arl0)  # type: ignore[arg-type]
    hit = det.update(y)
    return None if hit is None else hit + 1


def _summary(lengths: list[int | None], horizon: int) -> tuple[float, float]:
    values = [horizon if x is None else x for x in lengths]
    return float(np.mean(values)), sum(x is None for x in lengths) / len(lengths)


PEER = r"""
import json, sys, time
import numpy as np
from river import drift
spec = json.loads(sys.argv[1])
out = []
elapsed = 0.0
n_total = 0
for seed in spec["seeds"]:
    u = np.random.default_rng(seed).random(spec["pre"] + spec["horizon"])
    y = np.where(np.arange(u.size) < spec["pre"], u < spec["mu0"], u < spec["rate"]).astype(float)
    ph = drift.PageHinkley(min_instances=1, delta=spec["delta"], threshold=spec["threshold"],
                           alpha=1.0, mode="up")
    hit = None
    start = time.perf_counter()
    for i, v in enumerate(y.tolist()):
        ph.update(v)
        if ph.drift_detected:
            hit = i + 1
            break
    elapsed += time.perf_counter() - start
    n_total += hit or spec["pre"] + spec["horizon"]
    out.append(None if hit is None else hit - spec["pre"])
print(json.dumps({"lengths": out, "per_second": n_total / elapsed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arl0", type=float, default=10_000)
    parser.add_argument("--rates", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=200_000)
    parser.add_argument("--river-python", default=None)
    args = parser.parse_args()
    methods = ("confidence_sequence", "cusum", "page_hinkley")
    print(
        f"accuracy {P0:.0%} → {P1:.0%}; ARL₀ target {args.arl0:g} requests; {args.runs} seeded runs each"
    )
    print(f"{'rate/day':>9} {'method':>20} {'ARL₀ (req)':>11} {'censored':>9} {'ARL₀ (days)':>11} "
          f"{'ARL₁ (req)':>10} {'ARL₁ (hours)':>12}")  # fmt: skip
    for rate in args.rates:
        rng = np.random.default_rng(rate)
        n0 = 30 * rate
        for method in methods:
            null, alt = [], []
            for _ in range(args.runs):
                errors = rng.binomial(n0, 1 - P0)
                mu0 = _wilson_upper(errors, n0, 0.95)
                null.append(
                    _run_length(
                        method,
                        mu0,
                        args.arl0,
                        (rng.random(args.horizon) < 1 - P0).astype(float),
                    )
                )
                alt.append(
                    _run_length(
                        method,
                        mu0,
                        args.arl0,
                        (rng.random(args.horizon) < 1 - P1).astype(float),
                    )
                )
            arl0, censored = _summary(null, args.horizon)
            arl1, _ = _summary(alt, args.horizon)
            print(f"{rate:>9} {method:>20} {arl0:>11.0f} {censored:>9.0%} {arl0 / rate:>11.1f} "
                  f"{arl1:>10.0f} {arl1 / rate * 24:>12.1f}")  # fmt: skip
    # speed, and the peer on identical streams (known baseline μ₀, so both see the same test)
    mu0 = 1 - P0
    det = _Detector("page_hinkley", mu0, SHIFT, args.arl0)
    seeds = list(range(20))
    horizon, pre = 50_000, 5_000  # 5000 requests at 92%, then 89%
    ours: list[int | None] = []
    start = time.perf_counter()
    n_total = 0
    for seed in seeds:
        u = np.random.default_rng(seed).random(pre + horizon)
        y = np.where(np.arange(u.size) < pre, u < mu0, u < 1 - P1).astype(float)
        det.reset()
        hit = det.update(y)
        ours.append(None if hit is None else hit + 1 - pre)
        n_total += pre + horizon if hit is None else hit + 1
    ours_rate = n_total / (time.perf_counter() - start)
    for method in ("confidence_sequence", "cusum"):
        d = _Detector(method, mu0, SHIFT, args.arl0)  # type: ignore[arg-type]
        y = (np.random.default_rng(0).random(1_000_000) < mu0).astype(float)
        t, pos = time.perf_counter(), 0
        while pos < y.size:  # restart after each (false) alarm, as the Monitor does
            hit = d.update(y[pos:])
            d.reset()
            pos = y.size if hit is None else pos + hit + 1
        rate = y.size / (time.perf_counter() - t)
        print(f"{method}: {rate:,.0f} requests/s through the detector")
    print(
        f"page_hinkley: {ours_rate:,.0f} requests/s (known baseline; river's PH estimates the mean as it goes)"
    )
    if args.river_python:
        spec = {"seeds": seeds, "horizon": horizon, "pre": pre, "mu0": mu0, "rate": 1 - P1,
                "delta": SHIFT / 2, "threshold": det.threshold}  # fmt: skip
        # river's PH "up" tracks x − mean_t − delta with a running mean; ours uses the baseline
        # mean. Same threshold and delta; run lengths are reported side by side, not asserted.
        done = subprocess.run([args.river_python, "-c", PEER, json.dumps(spec)], capture_output=True, text=True, check=True)  # fmt: skip
        peer = json.loads(done.stdout)
        print(f"river drift.PageHinkley: {peer['per_second']:,.0f} requests/s; "
              f"ratio river/crucible speed = {peer['per_second'] / ours_rate:.3f}")  # fmt: skip
        print(f"  detection delay after the change (negative: a false alarm before it), same streams: "
              f"crucible {ours[:8]}, river {peer['lengths'][:8]}")  # fmt: skip
    else:
        print("(no --river-python: peer skipped)")
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}; ln(ARL₀) = {math.log(args.arl0):.3f}"
    )


if __name__ == "__main__":
    main()
