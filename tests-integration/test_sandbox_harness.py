"""Forged verdicts and escapes through the harness end to end.

A `raise SystemExit(0)` condition scores 0 where the honest one scores 1; and crucible-datasets'
whole attack catalogue (`packages/crucible-datasets/tests/test_sandbox.py`: escapes, forgeries,
a token hunt, signals to the harness itself), given as the completions of a condition, is
contained and scores 0, while a watched directory outside stays unchanged, a decoy process and
the harness survive, and the harness's API key is nowhere in the run's output.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import crucible_datasets as cd
from crucible_harness import Condition, Experiment, HarnessItem, RunConfig, run

ROOT = Path(__file__).resolve().parents[1]


def _attack_catalogue() -> ModuleType:
    path = ROOT / "packages" / "crucible-datasets" / "tests" / "test_sandbox.py"
    spec = importlib.util.spec_from_file_location("_sandbox_attacks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CATALOGUE = _attack_catalogue()
world = (
    CATALOGUE.world
)  # the watched directory, decoy, socket, fake key and SIGUSR1 watch


def _items(n: int) -> list[HarnessItem]:
    ds = cd.load("humaneval")
    return [
        HarnessItem(
            id=i.id,
            input=i.input["prompt"],
            expected=i.expected,
            metadata={
                "test": i.metadata["test"],
                "entry_point": i.metadata["entry_point"],
            },
        )
        for i in ds.items[:n]
    ]


def _accuracy(
    items: list[HarnessItem],
    targets: dict[str, Callable[[HarnessItem, Any], str]],
    output: Path,
    formats: tuple[str, ...] | None = (),
) -> dict[str, float]:
    """Each condition's pass@1 accuracy from a harness run scored in the sandbox."""
    exp = Experiment(
        name="sandbox",
        dataset=items,
        conditions=[Condition(name=k, target=v) for k, v in targets.items()],
        scorer="pass@1",
        run=RunConfig(max_concurrency=2),
    )
    extra = {} if formats is None else {"formats": formats}
    result = run(exp, output_dir=output, **extra)
    return {c.name: c.accuracy for c in result.analysis.conditions}


def test_systemexit_condition_scores_zero_through_the_harness(tmp_path: Path) -> None:
    items = _items(8)

    def honest(item: HarnessItem, ctx: Any) -> str:
        return str(item.expected)

    def forger(item: HarnessItem, ctx: Any) -> str:
        return "    raise SystemExit(0)\n"

    def exiter(item: HarnessItem, ctx: Any) -> str:
        return "    import os\n    os._exit(0)\n"

    accuracy = _accuracy(
        items, {"honest": honest, "systemexit": forger, "os_exit": exiter}, tmp_path
    )
    assert accuracy == {"honest": 1.0, "systemexit": 0.0, "os_exit": 0.0}


def test_the_attack_catalogue_scores_zero_through_the_harness(
    tmp_path: Path, world: dict[str, Any]
) -> None:
    catalogue = CATALOGUE
    names = sorted(catalogue.ATTACKS)
    items = _items(len(names))
    attack = {
        item.id: "import os\n" + catalogue.ATTACKS[name].format(**world["fmt"])
        for item, name in zip(items, names, strict=True)
    }
    before = catalogue._snapshot(world["watch"])

    def honest(item: HarnessItem, ctx: Any) -> str:
        return str(item.expected)

    def at_load(
        item: HarnessItem, ctx: Any
    ) -> str:  # a wrong answer; the attack on import
        return "    return None\n" + attack[item.id] + "\n"

    def in_call(
        item: HarnessItem, ctx: Any
    ) -> str:  # the attack each time the tests call
        return textwrap.indent(attack[item.id], "    ") + "\n    return None\n"

    output = tmp_path / "run"
    targets = {"honest": honest, "attack_at_load": at_load, "attack_in_call": in_call}
    accuracy = _accuracy(items, targets, output, formats=None)
    assert accuracy == {"honest": 1.0, "attack_at_load": 0.0, "attack_in_call": 0.0}
    assert catalogue._snapshot(world["watch"]) == before, (
        "the watched directory changed"
    )
    assert world["decoy"].poll() is None, "the decoy process was killed"
    assert world["signals"] == [], "a completion signalled the harness"
    for listener in (world["server"], world["unix"]):  # TCP and abstract unix sockets
        with pytest.raises(BlockingIOError):
            listener.accept()
    written = [p for p in output.rglob("*") if p.is_file()]
    assert written, "the run wrote no output to check"
    key = catalogue.FAKE_KEY.encode()
    assert not [p for p in written if key in p.read_bytes()]
