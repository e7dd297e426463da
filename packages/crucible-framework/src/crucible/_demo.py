"""`crucible demo`: the simulated-model showcase, until crucible-harness runs the full experiment.

Five simulated models (the profiles of the original examples) answer the same arithmetic items in
virtual time. The demo reports each model's accuracy with a Wilson interval, latency percentiles and
cost, counts the events the models emitted, and writes every answer to JSONL and a Markdown report.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import attrs

from crucible_core import events, stats
from crucible_core.exceptions import ProviderError, ValidationError
from crucible_core.export import atomic_write, save_records
from crucible_core.models import PROFILES, Request, SimulatedModel
from crucible_core.render import RenderMixin, Table, View, format_value, markdown_escape

__all__ = ("DemoReport", "run_demo")


def _items(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        op = rng.choice("+-*")
        value = a + b if op == "+" else a - b if op == "-" else a * b
        out.append((f"arith/{i:04d}", f"What is {a} {op} {b}?", str(value)))
    return out


@attrs.define(frozen=True, kw_only=True)
class DemoReport(RenderMixin):
    """What the demo measured, one row per model."""

    rows: tuple[tuple[object, ...], ...]
    """model, accuracy, CI low, CI high, p50/p95/p99 latency (ms), cost, failed, events."""
    items: int
    """Items each model answered."""
    path: Path
    """The Markdown report written."""

    HEADERS = (
        "model", "accuracy", "ci_low", "ci_high", "p50_ms", "p95_ms", "p99_ms", "cost_usd", "failed",
        "events",
    )  # fmt: skip

    def _view(self) -> View:
        return View(
            title=f"crucible demo: {len(self.rows)} simulated models × {self.items} items",
            tables=[Table(headers=self.HEADERS, rows=self.rows)],
            notes=[
                "Accuracy counts failed requests as wrong (never dropped from the denominator); "
                "95% Wilson intervals. Latencies are simulated (virtual time)."
            ],
        )


@attrs.define(frozen=True, kw_only=True)
class _Answer:
    model: str
    item: str
    answer: str | None
    correct: bool
    latency: float | None
    cost: float
    error: str | None


async def _answer_all(
    model: SimulatedModel, items: list[tuple[str, str, str]]
) -> list[_Answer]:
    async def one(item_id: str, prompt: str, reference: str) -> _Answer:
        try:
            done = await model.complete(
                Request(prompt=prompt, reference=reference, kind="number")
            )
        except ProviderError as err:  # failed for good after retries: counted as wrong
            return _Answer(model=model.id, item=item_id, answer=None, correct=False, latency=None,
                           cost=0.0, error=type(err).__name__)  # fmt: skip
        return _Answer(model=model.id, item=item_id, answer=done.text,
                       correct=done.text.strip() == reference, latency=done.latency,
                       cost=done.cost or 0.0, error=None)  # fmt: skip

    return list(await asyncio.gather(*(one(*item) for item in items)))


def run_demo(*, output_dir: Path, items: int = 100, seed: int = 0) -> DemoReport:
    """Run the showcase and write `results.jsonl` and `report.md` into `output_dir`."""
    if items < 1:
        raise ValidationError(f"--items must be at least 1, got {items}", items=items)
    questions = _items(items, seed)
    counts: dict[str, int] = {}

    def count(name: tuple[str, ...], _m: object, meta: object) -> None:
        model = str(getattr(meta, "get", lambda _k: None)("model"))
        counts[model] = counts.get(model, 0) + 1

    events.attach("crucible-demo", [("crucible", "llm")], count)
    try:
        models = [
            SimulatedModel(name, seed=seed, virtual_time=True) for name in PROFILES
        ]

        async def everything() -> list[list[_Answer]]:
            return list(
                await asyncio.gather(*(_answer_all(m, questions) for m in models))
            )

        results = asyncio.run(everything())
    finally:
        events.detach("crucible-demo")

    rows = []
    for model, answers in zip(models, results, strict=True):
        correct = sum(a.correct for a in answers)
        ci = stats.proportion_ci(correct, len(answers))
        latencies = [a.latency * 1000 for a in answers if a.latency is not None]
        p50, p95, p99 = stats.percentiles(latencies, [50, 95, 99])
        rows.append((
            model.id, ci.estimate, ci.low, ci.high, p50, p95, p99,
            sum(a.cost for a in answers),
            sum(a.error is not None for a in answers),
            sum(v for k, v in counts.items() if k in (model.id, model.profile.name)),
        ))  # fmt: skip

    output_dir.mkdir(parents=True, exist_ok=True)
    save_records(
        [attrs.asdict(a) for answers in results for a in answers],
        output_dir / "results.jsonl",
    )
    path = output_dir / "report.md"
    report = DemoReport(rows=tuple(rows), items=items, path=path)
    lines = [f"# {markdown_escape(report._view().title)}", "", "| " + " | ".join(DemoReport.HEADERS) + " |",
             "|" + "---|" * len(DemoReport.HEADERS)]  # fmt: skip
    lines += [
        "| " + " | ".join(markdown_escape(format_value(v)) for v in row) + " |"
        for row in rows
    ]
    lines += ["", report._view().notes[0], ""]
    with atomic_write(path) as fh:
        fh.write("\n".join(lines))
    return report
