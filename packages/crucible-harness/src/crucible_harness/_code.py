"""Scoring code by running it: HumanEval-style completions executed in crucible-datasets' sandbox."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

from crucible_harness._experiment import HarnessItem
from crucible_harness._scoring import Scorer

__all__ = ("humaneval_scorer",)

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def _completion(item: HarnessItem, prediction: Any) -> str:
    text = "" if prediction is None else str(prediction)
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    prompt = (
        item.input
        if isinstance(item.input, str)
        else str(item.metadata.get("raw_input", {}).get("prompt", ""))
    )
    if prompt and text.startswith(prompt):  # the model repeated the prompt
        text = text[len(prompt) :]
    return text


def _program(item: HarnessItem, prediction: Any) -> str:
    raw = item.metadata.get("raw_input") or {}
    prompt = item.input if isinstance(item.input, str) else str(raw.get("prompt", ""))
    entry = item.metadata.get("entry_point") or raw.get("entry_point")
    return f"{prompt}{_completion(item, prediction)}\n\n{item.metadata['test']}\n\ncheck({entry})\n"


def humaneval_scorer(*, timeout: float = 10.0) -> Scorer:
    """pass@1 of one completion: the problem's tests run against it in the sandbox.

    Programs are deterministic (HumanEval's tests are), so a program already run in this run is not
    run again: repeats and ensemble members that give the same completion share one execution.
    """
    from crucible_datasets import SandboxConfig, execute

    config = SandboxConfig(timeout=timeout)
    verdicts: dict[
        str, bool
    ] = {}  # program hash -> passed: the same program is run once
    lock = threading.Lock()

    def score(item: HarnessItem, prediction: Any) -> bool | None:
        if "test" not in item.metadata:
            return None
        program = _program(item, prediction)
        key = hashlib.sha256(program.encode()).hexdigest()
        with lock:
            if key in verdicts:
                return verdicts[key]
        passed = execute(program, config=config).passed
        with lock:
            verdicts[key] = passed
        return passed

    return Scorer("pass@1", score, blocking=True)
