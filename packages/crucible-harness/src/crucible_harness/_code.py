"""Scoring code by running it: HumanEval-style completions executed in crucible-datasets' sandbox."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import TYPE_CHECKING, Any

from crucible_harness._experiment import HarnessItem
from crucible_harness._scoring import Scorer

if TYPE_CHECKING:
    from crucible_datasets import CodeCheck

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


def _check(item: HarnessItem, prediction: Any) -> CodeCheck:
    from crucible_datasets import CodeCheck

    raw = item.metadata.get("raw_input") or {}
    prompt = item.input if isinstance(item.input, str) else str(raw.get("prompt", ""))
    entry = item.metadata.get("entry_point") or raw.get("entry_point")
    return CodeCheck(
        prompt=prompt,
        completion=_completion(item, prediction),
        test=str(item.metadata["test"]),
        entry_point=str(entry),
    )


def humaneval_scorer(*, timeout: float = 10.0) -> Scorer:
    """pass@1 of one completion: the problem's tests run against it in the sandbox.

    Each completion is scored as a [`CodeCheck`][crucible_datasets.CodeCheck]: the tests run in
    the sandbox's judge process, apart from the model-written code, so a completion can neither
    forge the verdict (exits, hooks, a token found in its own memory) nor fake a comparison.
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
        check = _check(item, prediction)
        key = hashlib.sha256(check.program().encode()).hexdigest()
        with lock:
            if key in verdicts:
                return verdicts[key]
        passed = execute(check, config=config).passed
        with lock:
            verdicts[key] = passed
        return passed

    return Scorer("pass@1", score, blocking=True)
