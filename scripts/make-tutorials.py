"""Write the five tutorial notebooks of docs/notebooks/ from the cells below (outputs stripped).

Run `uv run python scripts/make-tutorials.py` after editing a cell; tests-integration/test_tutorials.py
executes every notebook with nbclient and checks what each one claims.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "notebooks"


def md(text: str) -> dict[str, object]:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text: str) -> dict[str, object]:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": text.strip("\n")}  # fmt: skip


TUTORIALS: dict[str, list[dict[str, object]]] = {
    "tutorial-1-harness-gsm8k": [
        md("""
# Compare two models on GSM8K with the harness

An experiment is declared once: the dataset, the conditions (models), repeats, budget. The harness
runs every condition × item × repeat, records each task durably, then analyses the grid with paired
tests and writes reports. Here the two conditions are crucible's **simulated** model profiles, so the
numbers below are simulated (every report says so); swap in `"openai:gpt-4o-mini"` and
`"anthropic:claude-3-5-haiku"` with keys exported to run it for real.

`dataset="gsm8k"` downloads the test split from the Hugging Face Hub once into the cache. Set
`CRUCIBLE_GSM8K_SOURCE` to a local `test.jsonl` to read that file instead (as CI does: no network).
"""),
        code("""
import os
import tempfile

from crucible_harness import Budget, Experiment, RunConfig, estimate, run

experiment = Experiment(
    name="gsm8k-two-models",
    hypothesis="GPT-4 solves more GSM8K problems than Llama-3-70B.",
    dataset="gsm8k",
    source=os.environ.get("CRUCIBLE_GSM8K_SOURCE"),  # None: the hub
    sample_size=120,
    conditions={"gpt-4": "sim:gpt-4", "llama-3-70b": "sim:llama-3-70b"},
    repeats=2,
    run=RunConfig(seed=11),
    budget=Budget(max_total=5.0),
)
print(estimate(experiment))  # what it will cost before anything is sent
"""),
        code("""
out = tempfile.mkdtemp()
result = run(experiment, output_dir=out, formats=("markdown", "html"))
print(result.status, f"spent ${result.spent:.2f}")
result.analysis  # the notebook view: conditions, paired comparison, effect sizes
"""),
        md("""
The comparison is treatment − baseline on the same items, with its interval and the test from one
procedure, a multiplicity-adjusted p-value, effect sizes and the minimum detectable difference:
"""),
        code("""
comparison = result.analysis.comparisons[0]
print(comparison.interpretation)
assert result.analysis.simulated_conditions == ("gpt-4", "llama-3-70b")
print((result.run_dir / "report.md").read_text()[:600])
"""),
    ],
    "tutorial-2-compare-arrays": [
        md("""
# `compare` two arrays

`crucible_bench.compare` picks the test from the data (normality, equal variances, pairing), says
why, and reports the effect size with its interval. Each function also exists on its own
(`ttest`, `mannwhitney`, `wilcoxon`, ...) and matches scipy/R to their tolerances.
"""),
        code("""
import numpy as np

import crucible_bench as cb

rng = np.random.default_rng(7)
control = rng.normal(0.80, 0.05, size=40)     # e.g. per-run accuracy of a baseline prompt
treatment = rng.normal(0.84, 0.05, size=40)   # the same with a new prompt

r = cb.compare(treatment, control, labels=("treatment", "control"))
print(r.method)
print(r.reason)
print(r.interpretation)
r
"""),
        md("Paired data (the same items under both conditions) gets a paired test:"),
        code("""
before = rng.normal(1.20, 0.30, size=30)                 # latency per item, old server
after = before - rng.normal(0.10, 0.05, size=30)         # the same items, new server
paired = cb.compare(after, before, paired=True, labels=("after", "before"))
print(paired.method, "p =", paired.pvalue)
assert paired.pvalue < 0.05
"""),
        md("Planning: how many items would a difference of 0.02 need at 80% power?"),
        code("""
print(cb.power_ttest(effect_size=0.02 / 0.05, power=0.8, alpha=0.05))
"""),
    ],
    "tutorial-3-ensemble-vs-members": [
        md("""
# An ensemble against its members

Does a majority vote of three models beat its best member, on the same items? The members are
crucible's **simulated** profiles (deterministic per seed), so the accuracies are simulated.
`evaluate_ensemble` asks every member once per item and votes, so the ensemble and the members are
compared on identical answers; McNemar's test on the discordant pairs says whether the difference is
more than chance.
"""),
        code("""
import crucible_bench as cb
from crucible_core.models import Request, SimulatedModel
from crucible_ensemble import Ensemble, evaluate_ensemble

members = [SimulatedModel(p, seed=5, virtual_time=True) for p in ("gpt-4", "claude-3", "gemini-pro")]
letters = ("A", "B", "C", "D")
items = [Request(prompt=f"question {i}", reference=letters[i % 4], kind="choice", choices=letters)
         for i in range(400)]
evaluation = evaluate_ensemble(Ensemble(members, strategy="majority"), items)
print(evaluation.accuracy())
print("cost:", evaluation.cost())
evaluation
"""),
        code("""
best = evaluation.best_member()
ens, mem = evaluation.correct("ensemble"), evaluation.correct(best)
pairs = list(zip(ens, mem, strict=True))
table = [[sum(a and b for a, b in pairs), sum(a and not b for a, b in pairs)],
         [sum(b and not a for a, b in pairs), sum(not a and not b for a, b in pairs)]]
test = cb.mcnemar(table)
print(f"ensemble vs {best}: table {table}")
print(test.interpretation if hasattr(test, "interpretation") else test)
"""),
    ],
    "tutorial-4-hedging-your-latencies": [
        md("""
# Hedging on your own latency data

Hedging sends a backup request when the first is slow. Whether it pays depends on *your* latency
distribution, so simulate it on observed latencies before you deploy. The latencies below are a
**simulated stand-in** written to `latencies.csv`; point `PATH` at a CSV of your own (one
`latency_s` column, seconds), e.g. exported from crucible-telemetry or a harness run's
`results.parquet`.
"""),
        code("""
import numpy as np
import polars as pl

rng = np.random.default_rng(3)
fast = rng.lognormal(np.log(0.4), 0.3, size=9_500)
slow = rng.lognormal(np.log(4.0), 0.5, size=500)           # a 5% slow tail
pl.DataFrame({"latency_s": np.concatenate([fast, slow])}).write_csv("latencies.csv")
PATH = "latencies.csv"
"""),
        code("""
from crucible_hedging import Empirical, Fixed, Percentile, simulate

observed = pl.read_csv(PATH)["latency_s"].to_numpy()
model = Empirical(samples=observed)
for policy in (Fixed(delay=1.0), Percentile(p=90), Percentile(p=95)):
    report = simulate(model, policy, n=20_000, seed=1, budget=0.1).report
    print(f"{policy!r:32} P99 reduction {report.reduction(99):.0%}")
report
"""),
        md("""
If attempts of one request are correlated (a slow backend slows both), hedging helps less; the
simulator models that with `correlation=`:
"""),
        code("""
correlated = simulate(Empirical(samples=observed, correlation=0.9), Percentile(p=95), n=20_000, seed=1).report
print(f"P99 reduction with correlated attempts: {correlated.reduction(99):.0%}")
"""),
    ],
    "tutorial-5-reasoning-trace": [
        md("""
# Parse and view a reasoning trace

Ask a model to tag its reasoning with `<event>` elements; `parse_llm_output` reads them into a
chain (robust to fences, `85%` confidences, unclosed tags; every problem is a warning, nothing is
guessed silently), and the viewer renders the chain as one self-contained HTML page.
"""),
        code("""
import crucible_trace as ct

output = '''Let me plan this.
```xml
<event type="task_decomposed">
  <decision>Split the cache into a map and a list</decision>
  <reasoning>Each gives one O(1) part</reasoning>
  <confidence>90%</confidence>
</event>
<event type="decision_made">
  <decision>Use a dict plus a doubly linked list</decision>
  <alternatives>OrderedDict, heap</alternatives>
  <reasoning>O(1) get and put; List<Node> stays readable</reasoning>
  <confidence>0.8</confidence>
</event>
<event type="decision_made">
  <decision>Skip thread safety</decision>
  <reasoning>Single-threaded caller</reasoning>
  <confidence>likely</confidence>
</event>
```'''
result = ct.parse_llm_output(output, "lru cache")
for w in result.warnings:
    print("warning:", w)
chain = result.chain
ct.statistics(chain)
"""),
        code("""
print([e.decision for e in ct.find_decision_points(chain)])
print([e.decision for e in ct.find_low_confidence(chain, 0.85)])
"""),
        code("""
from pathlib import Path

from IPython.display import HTML

page = ct.to_html(result)          # self-contained: inline CSS/JS, escaped text, parse warnings shown
Path("trace.html").write_text(page, encoding="utf-8")
HTML(page)
"""),
    ],
    "quickstart-real-provider": [
        md("""
# Quickstart with a real provider

The notebook form of `docs/guides/quickstart-real-provider.md`. Install with the HTTP extra,
export `OPENAI_API_KEY` (and `OPENAI_BASE_URL` for a proxy or another compatible server) before
starting Jupyter. Estimating sends nothing and needs no key; running calls the provider and spends
money, within the budget.
"""),
        code("""
import tempfile

from crucible_harness import Budget, Experiment, HarnessItem, RunConfig, estimate, run

items = [
    HarnessItem(id=f"sum-{a}-{b}", input=f"What is {a} + {b}? Answer with the number only.",
                expected=str(a + b))
    for a, b in [(17, 25), (123, 456), (999, 1), (48, 52), (7, 8), (250, 750), (33, 66), (12, 30)]
]
experiment = Experiment(
    name="mini-vs-4o",
    hypothesis="gpt-4o is no more accurate than gpt-4o-mini on two-number sums.",
    dataset=items,
    conditions={"mini": "openai:gpt-4o-mini", "4o": "openai:gpt-4o"},
    repeats=3,
    run=RunConfig(max_concurrency=8, seed=1),
    budget=Budget(max_total=0.50),
)
print(estimate(experiment))
"""),
        code("""
result = run(experiment, output_dir=tempfile.mkdtemp(), formats=("markdown", "html"))
print(result.status, f"spent ${result.spent:.4f}")
print(result.analysis.comparisons[0].interpretation)
result.analysis
"""),
    ],
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cells in TUTORIALS.items():
        notebook = {
            "cells": cells,
            "metadata": {
                "kernelspec": {
                    "display_name": "Python 3",
                    "language": "python",
                    "name": "python3",
                },
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        for i, cell in enumerate(cells):
            cell["id"] = f"{name[:10]}-{i}"
        path = OUT / f"{name}.ipynb"
        path.write_text(
            json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(path.relative_to(OUT.parents[1]))


if __name__ == "__main__":
    main()
