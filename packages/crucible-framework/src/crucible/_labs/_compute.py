"""The five labs' computations: real crucible code on simulated models and real datasets.

Each lab has a `*_lab` function that runs the whole experiment once (deterministic for its
settings and seed) and a `summary(upto)` that analyses the first `upto` items or requests, which
is how the pages "watch" a run arrive: the answers are simulated instantly, the analysis of each
prefix is the real one. Nothing here is canned: accuracies, intervals, tests and latencies are
computed from the simulated answers every time.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

__all__ = (
    "CompareLab",
    "EnsembleLab",
    "HedgingLab",
    "MEDICAL_SUBJECTS",
    "MONITOR_METHODS",
    "MEMBERS",
    "MonitorLab",
    "SIMULATED",
    "TraceLab",
    "compare_lab",
    "ensemble_lab",
    "hedging_lab",
    "monitor_lab",
    "trace_lab",
)

MEDICAL_SUBJECTS = (
    "clinical_knowledge",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)
"""MMLU's medical subjects, the ensemble lab's questions."""
MEMBERS = ("gpt-4", "claude-3", "gemini-pro", "llama-3-70b", "mixtral-8x7b")
"""The five simulated members (crucible-core profiles) of the ensemble lab."""
SIMULATED = (
    "Simulated: the answers come from crucible's SimulatedModel (each profile's accuracy, latency "
    "and price, seeded); the questions are real dataset items, and every statistic is computed "
    "from the simulated answers."
)
STRATEGIES = ("majority", "weighted", "unanimous", "cascade")
POLICIES = ("none", "fixed", "percentile", "adaptive")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _load(name: str, datasets: str | os.PathLike[str] | None, **options: Any) -> Any:
    import crucible_datasets

    source = None if datasets is None else Path(datasets) / name
    return crucible_datasets.load(name, split="test", source=source, **options)


def _pick(n_total: int, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_total, size=min(n, n_total), replace=False).tolist())


def _accuracy(
    correct: Sequence[bool], confidence_level: float = 0.95
) -> dict[str, Any]:
    from crucible_core.stats import proportion_ci

    n, k = len(correct), int(sum(correct))
    if n == 0:
        return {"n": 0, "correct": 0, "accuracy": None, "ci": [None, None]}
    ci = proportion_ci(k, n, confidence_level=confidence_level)
    return {"n": n, "correct": k, "accuracy": k / n, "ci": [ci.low, ci.high]}


def _paired_accuracy(
    a: Sequence[bool], b: Sequence[bool], labels: tuple[str, str]
) -> dict[str, Any] | None:
    """crucible-bench's paired comparison (exact McNemar, Newcombe CI) of b against a."""
    import crucible_bench as bench

    if len(a) < 2:
        return None
    try:
        r = bench.compare_accuracy(
            np.asarray(a, float), np.asarray(b, float), paired=True, labels=labels
        )
    except bench.BenchError as err:
        return {"error": str(err)}
    discordant = [int(sum(x and not y for x, y in zip(a, b, strict=True))),
                  int(sum(y and not x for x, y in zip(a, b, strict=True)))]  # fmt: skip
    return {
        "method": r.method,
        "a": labels[0],
        "b": labels[1],
        "difference": r.difference,
        "ci": list(r.confidence_interval),
        "pvalue": _finite(r.pvalue),
        "statistic": _finite(r.statistic),
        "discordant": discordant,
        "interpretation": r.interpretation,
    }


# -- 1. ensemble reliability ------------------------------------------------------------------
@attrs.define(frozen=True, kw_only=True)
class EnsembleLab:
    """Five simulated members and their ensemble on real MMLU medical questions."""

    strategy: str
    rho: float
    seed: int
    members: tuple[str, ...]
    items: tuple[dict[str, Any], ...] = attrs.field(repr=False)
    """Per question: id, subject, question, reference, votes by member, the ensemble's answer,
    consensus, members called, and who was right."""

    def summary(self, upto: int | None = None) -> dict[str, Any]:
        """The ensemble and its members over the first `upto` questions.

        Accuracy with Wilson CIs, cost and consensus, and the paired test of the ensemble against
        the best member so far.
        """
        items = self.items[: len(self.items) if upto is None else max(0, upto)]
        systems = ["ensemble", *self.members]
        rows = []
        for s in systems:
            correct = [bool(it["correct"][s]) for it in items]
            cost = float(sum(it["cost"][s] or 0.0 for it in items))
            rows.append({"system": s, **_accuracy(correct), "cost": cost,
                         "cost_per_item": cost / len(items) if items else None})  # fmt: skip
        test = None
        best = None
        if items:
            best = max(
                self.members, key=lambda m: sum(it["correct"][m] for it in items)
            )
            test = _paired_accuracy([it["correct"][best] for it in items],
                                    [it["correct"]["ensemble"] for it in items], (best, "ensemble"))  # fmt: skip
        return {
            "lab": "ensemble",
            "simulated": SIMULATED,
            "strategy": self.strategy,
            "rho": self.rho,
            "total": len(self.items),
            "upto": len(items),
            "systems": rows,
            "consensus": float(np.mean([it["consensus"] for it in items]))
            if items
            else None,
            "abstained": int(sum(it["answer"] is None for it in items)),
            "members_called": float(np.mean([it["members_called"] for it in items]))
            if items
            else None,
            "best_member": best,
            "test": test,
        }


def ensemble_lab(
    *,
    strategy: str = "majority",
    rho: float = 0.3,
    n: int = 200,
    seed: int = 0,
    datasets: str | os.PathLike[str] | None = None,
) -> EnsembleLab:
    """Five correlated simulated members answer `n` real MMLU medical questions; their ensemble votes.

    Args:
        strategy: `"majority"`, `"weighted"` (log-odds weights from the members' profile
            accuracies), `"unanimous"` (abstains unless all agree) or `"cascade"` (cheapest
            members first, stopping once two agree).
        rho: how strongly the members' errors follow a shared item difficulty (0 independent).
        n: questions, drawn with `seed` from the four subjects' test splits.
        seed: seeds the question draw and the simulated members.
        datasets: a directory holding `mmlu/` in its original layout (default: the dataset cache).
    """
    from crucible_core._async import run_sync
    from crucible_core.models import PROFILES, Request
    from crucible_ensemble import (
        Cascade,
        Ensemble,
        InsufficientResponsesError,
        evaluate_ensemble_async,
        log_odds_weights,
    )
    from crucible_ensemble.simulation import correlated

    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; use one of {list(STRATEGIES)}"
        )
    questions = []
    for subject in MEDICAL_SUBJECTS:
        questions.extend(_load("mmlu", datasets, subset=subject))
    chosen = [questions[i] for i in _pick(len(questions), n, seed)]
    requests = []
    for q in chosen:
        letters = "ABCD"[: len(q.input["choices"])]
        prompt = (
            q.input["question"]
            + "\n"
            + "\n".join(
                f"({L}) {c}" for L, c in zip(letters, q.input["choices"], strict=True)
            )
        )
        requests.append(Request(prompt=prompt + "\nAnswer with the letter.", reference=str(q.expected), kind="choice",
                                choices=tuple(letters), metadata={"id": q.id, "subject": q.input.get("subject")}))  # fmt: skip
    members = correlated(list(MEMBERS), rho=rho, seed=seed)
    names = tuple(m.id for m in members)
    options: dict[str, Any] = {}
    if strategy == "weighted":
        options["weights"] = log_odds_weights(
            {m.id: PROFILES[p].accuracy for m, p in zip(members, MEMBERS, strict=True)}
        )
    if strategy == "cascade":
        ensemble = Ensemble(members, strategy="majority", execution=Cascade())
    else:
        ensemble = Ensemble(members, strategy=strategy, **options)  # type: ignore[arg-type]

    async def run() -> tuple[Any, list[Any]]:
        evaluation = await evaluate_ensemble_async(ensemble, requests)
        results: list[Any] = []
        for r in requests:
            try:
                results.append(await ensemble.predict_async(r))
            except InsufficientResponsesError as err:
                results.append(err.context.get("result"))
        return evaluation, results

    evaluation, results = run_sync(run())
    by = {(o.item, o.system): o for o in evaluation.outcomes}
    items = []
    for q, request, result in zip(chosen, requests, results, strict=True):
        votes = {}
        if result is not None:
            votes = {m.member: m.answer for m in result.responses}
        systems = ("ensemble", *names)
        items.append({
            "id": q.id,
            "subject": q.input.get("subject"),
            "question": request.prompt,
            "reference": request.reference,
            "votes": votes,
            "answer": None if result is None or result.abstained else result.answer,
            "consensus": 0.0 if result is None else float(result.consensus),
            "members_called": 0 if result is None else int(result.members_called),
            "correct": {s: bool(by[(q.id, s)].correct) for s in systems},
            "cost": {s: by[(q.id, s)].cost for s in systems},
        })  # fmt: skip
    return EnsembleLab(
        strategy=strategy, rho=rho, seed=seed, members=names, items=tuple(items)
    )


# -- 2. hedging simulator ---------------------------------------------------------------------
@attrs.define(frozen=True, kw_only=True)
class _Mixture:
    """Attempt latencies: a base distribution, and with probability `tail` a slow one."""

    base: Any
    slow: Any
    tail: float

    def sample(
        self, rng: np.random.Generator, n: int, attempts: int
    ) -> np.ndarray[Any, Any]:
        fast = self.base.sample(rng, n, attempts)
        if self.tail <= 0:
            return fast  # type: ignore[no-any-return]
        slow = self.slow.sample(rng, n, attempts)
        return np.where(rng.random((n, attempts)) < self.tail, slow, fast)  # type: ignore[no-any-return]


def _policy(kind: str, value: float) -> Any:
    import crucible_hedging as ch

    if kind == "fixed":
        return ch.Fixed(delay=value)
    if kind == "percentile":
        return ch.Percentile(p=value)
    if kind == "adaptive":
        return ch.Adaptive(max_rate=value)
    return ch.Fixed(delay=1e9)  # "none": a backup that never fires


_SWEEP = {
    "fixed": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
    "percentile": (50.0, 75.0, 85.0, 90.0, 95.0, 99.0),
    "adaptive": (0.01, 0.02, 0.05, 0.1, 0.2, 0.3),
    "none": (),
}


@attrs.define(frozen=True, kw_only=True)
class HedgingLab:
    """One `crucible_hedging.simulate` run, and a sweep of the policy's knob."""

    policy: str
    value: float
    source: str
    latency: np.ndarray[Any, Any] = attrs.field(repr=False)
    baseline: np.ndarray[Any, Any] = attrs.field(repr=False)
    hedges: np.ndarray[Any, Any] = attrs.field(repr=False)
    winner: np.ndarray[Any, Any] = attrs.field(repr=False)
    delay: np.ndarray[Any, Any] = attrs.field(repr=False)
    report: dict[str, Any]
    sweep: tuple[dict[str, Any], ...]

    def summary(self, upto: int | None = None, bins: int = 40) -> dict[str, Any]:
        """Histograms with and without hedging, percentiles and hedge firing over the first `upto`."""
        n = len(self.latency) if upto is None else max(0, min(upto, len(self.latency)))
        lat, base = self.latency[:n], self.baseline[:n]
        both = np.concatenate([self.latency[np.isfinite(self.latency)], self.baseline])
        edges = np.geomspace(max(both.min(), 1e-4), both.max(), bins + 1)
        out: dict[str, Any] = {"lab": "hedging", "simulated": "Simulated: " + self.source, "policy": self.policy,
                               "value": self.value, "total": len(self.latency), "upto": n,
                               "edges": edges.tolist(), "report": self.report, "sweep": list(self.sweep)}  # fmt: skip
        if n == 0:
            return out | {"hedged": None, "unhedged": None, "timeline": []}

        def stats(values: np.ndarray[Any, Any]) -> dict[str, Any]:
            ok = values[np.isfinite(values)]
            counts, _ = np.histogram(np.clip(ok, edges[0], edges[-1]), bins=edges)
            q = np.percentile(ok, [50, 95, 99]) if ok.size else [math.nan] * 3
            return {"counts": counts.tolist(), "p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2]),
                    "failed": int((~np.isfinite(values)).sum())}  # fmt: skip

        fired = self.hedges[:n] > 0
        timeline = []
        for i in range(max(0, n - 20), n):
            end = (
                float(self.latency[i])
                if math.isfinite(self.latency[i])
                else float(self.baseline[i])
            )
            attempts = [{"index": 0, "start_ms": 0.0, "end_ms": 1000 * min(float(self.baseline[i]), end),
                         "outcome": "won" if self.winner[i] == 0 else "cancelled"}]  # fmt: skip
            if self.hedges[i] > 0 and math.isfinite(self.delay[i]):
                attempts.append({"index": 1, "start_ms": 1000 * float(self.delay[i]), "end_ms": 1000 * end,
                                 "outcome": "won" if self.winner[i] >= 1 else "cancelled"})  # fmt: skip
            timeline.append({"label": f"request {i + 1}", "attempts": attempts})
        return out | {
            "hedged": stats(lat),
            "unhedged": stats(base),
            "hedge_rate": float(fired.mean()),
            "extra_load": float(self.hedges[:n].sum() / n),
            "backup_wins": int((self.winner[:n] >= 1).sum()),
            "timeline": timeline,
        }


def hedging_lab(
    *,
    policy: str = "percentile",
    value: float | None = None,
    p50: float = 0.5,
    p95: float = 2.0,
    p99: float = 5.0,
    tail: float = 0.1,
    samples: Sequence[float] | None = None,
    budget: float | None = None,
    n: int = 5000,
    seed: int = 0,
) -> HedgingLab:
    """Hedged requests in crucible-hedging's discrete-event simulator, and a sweep of the policy.

    Args:
        policy: `"none"`, `"fixed"` (`value` = delay in s), `"percentile"` (`value` = the
            percentile of observed latency to wait) or `"adaptive"` (`value` = its target hedge rate).
        value: the policy's knob (defaults: 1.0 s, P95, 5%).
        p50: the attempt latency's median (seconds).
        p95: its 95th percentile.
        p99: its 99th percentile.
        tail: share of attempts served by a slow replica (latencies of the `"slow"` class, 1/4/8 s).
        samples: your own latencies (seconds, e.g. from telemetry) instead of the distribution.
        budget: the most backups per request on average (a `HedgeBudget` ratio), or none.
        n: requests simulated.
        seed: seeds every draw.
    """
    import crucible_hedging as ch
    from crucible_core.models import LatencyDistribution

    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {list(POLICIES)}")
    value = (
        {"fixed": 1.0, "percentile": 95.0, "adaptive": 0.05, "none": 0.0}[policy]
        if value is None
        else value
    )
    if samples is not None and len(samples):
        model: Any = ch.Empirical(samples=np.asarray(samples, float))
        source = f"attempt latencies resampled from {len(samples)} observed latencies (your telemetry)."
    else:
        base = ch.Parametric(
            distribution=LatencyDistribution(p50=p50, p95=p95, p99=p99)
        )
        model = _Mixture(base=base, slow=ch.Parametric(distribution="slow"), tail=tail)
        source = (f"attempt latencies from a heavy-tailed distribution (P50 {p50:g} s, P95 {p95:g} s, "
                  f"P99 {p99:g} s) with {tail:.0%} of attempts on a slow replica (1/4/8 s).")  # fmt: skip
    spend = None if budget is None else ch.HedgeBudget(ratio=budget)

    def one(kind: str, knob: float, count: int) -> Any:
        return ch.simulate(model, _policy(kind, knob), n=count, seed=seed, budget=spend)

    result = one(policy, value, n)
    r = result.report
    report = {
        "policy": r.policy, "requests": r.requests, "failed": r.failed, "hedges_fired": r.hedges_fired,
        "hedge_wins": r.hedge_wins, "budget_denied": r.budget_denied, "hedge_rate": r.hedge_rate,
        "extra_load": r.extra_load, "levels": list(r.levels), "latency_ms": list(r.latency_ms),
        "baseline_ms": list(r.baseline_ms), "p99_reduction": _finite(r.reduction(99.0)) if 99.0 in r.levels else None,
    }  # fmt: skip
    sweep = []
    for knob in _SWEEP[policy]:
        s = one(policy, knob, min(n, 4000)).report
        sweep.append({"value": knob, "extra_load": s.extra_load, "p99_ms": s.latency(99.0),
                      "baseline_p99_ms": s.baseline(99.0), "p99_reduction": _finite(s.reduction(99.0))})  # fmt: skip
    return HedgingLab(policy=policy, value=value, source=source, latency=result.latency, baseline=result.baseline,
                      hedges=result.hedges, winner=result.winner, delay=result.delay, report=report,
                      sweep=tuple(sweep))  # fmt: skip


# -- 3. statistical comparison ----------------------------------------------------------------
@attrs.define(frozen=True, kw_only=True)
class CompareLab:
    """Two simulated models answering the same real GSM8K problems."""

    settings: dict[str, Any]
    items: tuple[dict[str, Any], ...] = attrs.field(repr=False)

    def summary(
        self, upto: int | None = None, *, alpha: float = 0.05
    ) -> dict[str, Any]:
        """The paired analysis of the first `upto` problems.

        Accuracy (McNemar, Newcombe CI, Cohen's h), latency (crucible-bench's paired `compare`),
        Holm-corrected p-values, and the minimal detectable difference.
        """
        import crucible_bench as bench

        items = self.items[: len(self.items) if upto is None else max(0, upto)]
        n = len(items)
        a = [it["a"]["correct"] for it in items]
        b = [it["b"]["correct"] for it in items]
        out: dict[str, Any] = {"lab": "compare", "simulated": SIMULATED, "settings": self.settings,
                               "total": len(self.items), "upto": n, "alpha": alpha}  # fmt: skip
        for side, xs in (("a", a), ("b", b)):
            costs = [it[side]["cost"] or 0.0 for it in items]
            lats = [it[side]["latency"] for it in items]
            out[side] = {**_accuracy(xs), "cost": float(sum(costs)),
                         "latency_p50": float(np.median(lats)) if lats else None}  # fmt: skip
        accuracy = _paired_accuracy(a, b, ("A", "B"))
        out["accuracy"] = accuracy
        latency: dict[str, Any] | None = None
        if n >= 3:
            try:
                r = bench.compare([it["a"]["latency"] for it in items], [it["b"]["latency"] for it in items],
                                  paired=True, labels=("A", "B"), alpha=alpha)  # fmt: skip
                latency = {"test": r.method, "reason": r.reason, "pvalue": _finite(r.pvalue), "statistic": _finite(r.statistic),
                           "estimate": _finite(r.estimate), "ci": [_finite(v) for v in r.confidence_interval],
                           "effect": r.effect_size.name, "effect_size": _finite(r.effect_size.estimate),
                           "interpretation": r.interpretation}  # fmt: skip
            except bench.BenchError as err:
                latency = {"error": str(err)}
        out["latency"] = latency
        ps: list[float] = [
            float(t["pvalue"])
            for t in (accuracy, latency)
            if t and t.get("pvalue") is not None
        ]
        if ps:
            adjusted = bench.adjust_pvalues(ps, method="holm").tolist()
            k = 0
            for t in (accuracy, latency):
                if t and t.get("pvalue") is not None:
                    t["pvalue_holm"] = adjusted[k]
                    t["significant"] = adjusted[k] < alpha
                    k += 1
        if n >= 2 and accuracy is not None and "error" not in accuracy:
            pa, pb = out["a"]["accuracy"], out["b"]["accuracy"]
            h = bench.cohens_h(pb, pa)
            accuracy["cohens_h"] = _finite(h.estimate)
            accuracy["cohens_h_interpretation"] = h.interpretation
            need = bench.power_proportions(n=n, power=0.8, alpha=alpha).effect_size
            target = (
                math.sin(min(math.pi / 2, math.asin(math.sqrt(pa)) + need / 2)) ** 2
            )
            out["mde"] = {"h": need, "difference": target - pa, "power": 0.8, "n": n,
                          "method": "two-proportion z-test power (Cohen's h, R pwr.2p.test) at this n; "
                                    "the paired McNemar test is at least as powerful when errors are correlated"}  # fmt: skip
        return out

    def report(self, output_dir: str | Path = "runs") -> dict[str, Any]:
        """Record this A/B as a crucible-harness run under `output_dir`, analysed and reported.

        Each condition replays the lab's simulated answers (text, cost, latency) for its problem,
        so the run is exactly the one the lab showed; the harness scores the answers itself and
        writes the Markdown and HTML reports.

        Returns:
            `run_dir`, the report paths by format, and the Markdown report's text.
        """
        from crucible_harness import (
            Condition,
            ConditionOutput,
            Experiment,
            HarnessItem,
            RunConfig,
            run,
        )

        by_id = {it["id"]: it for it in self.items}

        def replay(side: str) -> Any:
            def answer(item: Any, _: Any) -> Any:
                found = by_id[str(item.id)][side]
                return ConditionOutput(
                    prediction=found["answer"],
                    cost=found["cost"],
                    latency=found["latency"],
                )

            return answer

        s = self.settings

        def describe(side: str) -> str:
            return f"accuracy {s['acc_' + side]:g}, ${s['price_' + side]:g}/query, P50 {s['latency_' + side]:g} s"

        experiment = Experiment(
            name="lab-ab-gsm8k", run=RunConfig(seed=int(s["seed"]), max_concurrency=16),
            dataset=[HarnessItem(id=it["id"], input=it["question"], expected=it["reference"]) for it in self.items],
            description=(f"Statistical comparison lab: A ({describe('a')}) against B ({describe('b')}) on "
                         f"{len(self.items)} GSM8K problems, error correlation {s['rho']:g}. {SIMULATED}"),
            conditions=[Condition(name="A", target=replay("a")), Condition(name="B", target=replay("b"))],
        )  # fmt: skip
        result = run(
            experiment, output_dir=Path(output_dir), formats=("markdown", "html")
        )
        markdown = result.reports.get("markdown")
        return {"run_dir": str(result.run_dir), "reports": {k: str(v) for k, v in result.reports.items()},
                "markdown": None if markdown is None else Path(markdown).read_text(encoding="utf-8")}  # fmt: skip


def _gsm8k_requests(
    n: int, seed: int, datasets: str | os.PathLike[str] | None
) -> list[Any]:
    from crucible_core.models import Request

    problems = list(_load("gsm8k", datasets))
    return [Request(prompt=problems[i].input["question"], reference=str(problems[i].expected), kind="number",
                    metadata={"id": problems[i].id}) for i in _pick(len(problems), n, seed)]  # fmt: skip


def _profile(name: str, accuracy: float, price: float, latency: float) -> Any:
    from crucible_core.models import LatencyDistribution, Profile

    return Profile(name=name, accuracy=accuracy, price_per_query=price, error_rate=0.0,
                   latency=LatencyDistribution(p50=latency, p95=2.5 * latency, p99=5 * latency))  # fmt: skip


def _compare_models(settings: Mapping[str, Any]) -> tuple[Any, Any]:
    """The lab's two simulated models (A and B) for `settings`."""
    from crucible_core.models import SimulatedModel

    return tuple(
        SimulatedModel(_profile(f"model-{side.lower()}", settings[f"acc_{side.lower()}"], settings[f"price_{side.lower()}"],
                                settings[f"latency_{side.lower()}"]), seed=settings["seed"] * 7 + k, virtual_time=True,
                       correlation=settings["rho"], difficulty_seed=settings["seed"])
        for k, side in enumerate("AB")
    )  # type: ignore[return-value]  # fmt: skip


def compare_lab(
    *,
    acc_a: float = 0.87,
    price_a: float = 0.002,
    latency_a: float = 0.8,
    acc_b: float = 0.91,
    price_b: float = 0.005,
    latency_b: float = 0.6,
    rho: float = 0.5,
    n: int = 300,
    seed: int = 0,
    datasets: str | os.PathLike[str] | None = None,
) -> CompareLab:
    """A/B on GSM8K: two simulated models (accuracy, USD per query, P50 latency in s) on `n` real problems.

    `rho` makes both models miss the same hard problems (the paired design's advantage).
    Latencies follow a heavy tail with P95 = 2.5 × P50 and P99 = 5 × P50.
    """
    from crucible_core._async import run_sync

    settings = {"acc_a": acc_a, "price_a": price_a, "latency_a": latency_a, "acc_b": acc_b, "price_b": price_b,
                "latency_b": latency_b, "rho": rho, "n": n, "seed": seed}  # fmt: skip
    models = _compare_models(settings)
    requests = _gsm8k_requests(n, seed, datasets)

    async def run() -> list[list[Any]]:
        return [[await m.complete(r) for m in models] for r in requests]

    completions = run_sync(run())
    number = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
    items = []
    for r, pair in zip(requests, completions, strict=True):
        row: dict[str, Any] = {
            "id": r.metadata["id"],
            "question": r.prompt,
            "reference": r.reference,
        }
        for side, c in zip("ab", pair, strict=True):
            found = number.findall(c.text or "")
            answer = found[-1].replace(",", "") if found else None
            row[side] = {"answer": c.text, "correct": answer is not None and float(answer) == float(r.reference),
                         "cost": c.cost, "latency": c.latency}  # fmt: skip
        items.append(row)
    return CompareLab(settings=settings, items=tuple(items))


# -- 4. causal trace explorer -----------------------------------------------------------------
_STEPS: tuple[tuple[str, str, list[str]], ...] = (
    ("task_decomposed", "split the problem into the quantities given and the quantity asked",
     ["solve it in one expression", "work backwards from the question"]),
    ("constraint_identified", "the answer must be a single number in the question's unit",
     ["a range of values"]),
    ("hypothesis_formed", "the quantities combine by {op}", ["they combine by {alt}"]),
    ("alternative_considered", "treat {x} as a rate per item", ["treat {x} as a total"]),
    ("constraint_evaluated", "{x} and {y} are in the same unit", ["convert {y} first"]),
    ("pattern_applied", "a running total, step by step", ["a proportion", "an equation in one unknown"]),
    ("uncertainty_flagged", "the text may count {y} twice", []),
    ("alternative_rejected", "do not subtract {y} from {x}", ["subtract {y} from {x}"]),
    ("decision_made", "compute {x} {sym} {y} first", ["compute with {z} first"]),
    ("confidence_updated", "the partial result is consistent with the question", []),
    ("ambiguity_flagged", "'each' could refer to {x} or to {z}", ["read it as {z}"]),
    ("decision_made", "use the partial result with {z}", ["ignore {z}"]),
    ("constraint_evaluated", "the result is positive and whole", ["round it"]),
    ("hypothesis_formed", "the final answer is {answer}", ["the final answer is {wrong}"]),
    ("decision_made", "answer {answer}", ["answer {wrong}"]),
)  # fmt: skip


@attrs.define(frozen=True, kw_only=True)
class TraceLab:
    """A simulated reasoning model's output with crucible-trace tags, for one real GSM8K problem."""

    problem: str
    problem_id: str
    reference: str
    seed: int
    text: str = attrs.field(repr=False)
    """The whole simulated output: prose with `<event>` tags (some of them malformed, as real ones are)."""

    def parse(self, upto: int | None = None, *, query: str = "") -> dict[str, Any]:
        """crucible-trace's parser on the first `upto` characters, with its statistics and a search."""
        import crucible_trace as ct

        text = self.text[: len(self.text) if upto is None else max(0, upto)]
        parsed = ct.parse_llm_output(text, f"trace of {self.problem_id}")
        events = parsed.chain.events
        needle = query.strip().lower()
        rows = []
        for k, e in enumerate(events):
            blob = " ".join([e.type, e.decision, e.reasoning, *e.alternatives]).lower()
            rows.append({"position": k + 1, "type": e.type, "decision": e.decision, "reasoning": e.reasoning,
                         "alternatives": list(e.alternatives), "confidence": e.confidence,
                         "match": bool(needle) and needle in blob})  # fmt: skip
        stats = ct.statistics(parsed.chain) if events else None
        low = ct.find_low_confidence(parsed.chain, threshold=0.6) if events else ()
        return {
            "lab": "trace",
            "simulated": "Simulated: a seeded reasoning simulator writes the output (10-15 steps with alternatives "
                         "and confidences) for a real GSM8K problem; crucible-trace parses it as it would a model's.",
            "problem": self.problem, "problem_id": self.problem_id, "reference": self.reference,
            "length": len(self.text), "upto": len(text), "text": text,
            "events": rows, "matches": sum(r["match"] for r in rows),
            "warnings": [{"message": w.message, "line": w.line, "column": w.column, "snippet": w.snippet}
                         for w in parsed.warnings],
            "statistics": None if stats is None else {"events": stats.event_count, "by_type": stats.counts_by_type, "decision_points": stats.decision_points,
                                                       "mean_confidence": _finite(stats.mean_confidence),
                                                       "low_confidence": len(low)},
        }  # fmt: skip

    def chain_result(self) -> Any:
        """The whole output parsed (a `ParseResult`, for `crucible_trace.to_html`)."""
        import crucible_trace as ct

        return ct.parse_llm_output(self.text, f"trace of {self.problem_id}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def trace_lab(
    *, problem: int = 0, seed: int = 0, datasets: str | os.PathLike[str] | None = None
) -> TraceLab:
    """A seeded simulated model reasons about GSM8K test problem `problem`, emitting crucible-trace tags.

    It writes 10 to 15 steps (chosen and ordered by `seed`), each an `<event>` with a decision,
    alternatives, reasoning and a confidence that wanders as a real model's does, with prose between
    the tags; one step in six is cut short or misses its closing tag, so the parser's warnings show.
    """
    problems = list(_load("gsm8k", datasets))
    item = problems[problem % len(problems)]
    question: str = item.input["question"]
    reference = str(item.expected)
    rng = np.random.default_rng([seed, problem])
    numbers = re.findall(r"\d+(?:\.\d+)?", question) or ["1", "2", "3"]
    x, y, z = (numbers * 3)[:3]
    op, alt, sym = (
        ("addition and subtraction", "multiplication", "+")
        if rng.random() < 0.5
        else ("multiplication", "division", "*")
    )
    wrong = str(int(float(reference)) + int(rng.integers(1, 9)))  # fmt: skip
    steps = int(rng.integers(10, 16))
    order = [
        *sorted(rng.choice(len(_STEPS) - 2, size=steps - 2, replace=False).tolist()),
        len(_STEPS) - 2,
        len(_STEPS) - 1,
    ]
    confidence = 0.55 + 0.2 * rng.random()
    parts = [f"Let me work through this problem.\n\n{question}\n"]
    values = {
        "x": x,
        "y": y,
        "z": z,
        "op": op,
        "alt": alt,
        "sym": sym,
        "answer": reference,
        "wrong": wrong,
    }
    for k, index in enumerate(order):
        kind, decision, alternatives = _STEPS[index]
        # confidence reverts to a level that rises as the work progresses, and dips where the model
        # flags a doubt
        target = (
            0.6
            + 0.3 * k / max(1, len(order) - 1)
            - (0.3 if kind.endswith("flagged") else 0.0)
        )
        confidence = float(
            np.clip(0.5 * confidence + 0.5 * target + rng.normal(0, 0.07), 0.05, 0.99)
        )
        body = [f"  <decision>{_escape(decision.format(**values))}</decision>"]
        if alternatives:
            body.append(
                "  <alternatives>"
                + "".join(
                    f"<alternative>{_escape(a.format(**values))}</alternative>"
                    for a in alternatives
                )
                + "</alternatives>"
            )
        body.append(
            f"  <reasoning>{_escape(_reasoning(kind, values, rng))}</reasoning>"
        )
        body.append(f"  <confidence>{confidence:.2f}</confidence>")
        tag = f'<event type="{kind}">\n' + "\n".join(body) + "\n</event>"
        if k not in (0, len(order) - 1) and rng.random() < 1 / 6:  # a real model's slip
            tag = (
                tag.replace("</reasoning>", "")
                if rng.random() < 0.5
                else tag.replace("\n</event>", "")
            )
        parts.append(f"Step {k + 1}. " + _prose(kind, rng) + "\n" + tag + "\n")
    parts.append(f"\nThe answer is {reference}.\n")
    return TraceLab(problem=question, problem_id=item.id, reference=reference, seed=seed, text="\n".join(parts))  # fmt: skip


def _reasoning(kind: str, values: Mapping[str, str], rng: np.random.Generator) -> str:
    reasons = {
        "task_decomposed": "smaller steps are easier to check one at a time",
        "constraint_identified": "the question asks for one amount",
        "hypothesis_formed": "the wording ('total', 'left', 'each') points that way",
        "alternative_considered": f"{values['x']} appears next to 'each' in the text",
        "constraint_evaluated": "mixing units would make the sum meaningless",
        "pattern_applied": "it mirrors how the problem tells the story",
        "uncertainty_flagged": "the second mention might be the same objects",
        "alternative_rejected": "that would count the same quantity twice",
        "decision_made": "it follows the order of events in the problem",
        "confidence_updated": "the intermediate value is in a plausible range",
        "ambiguity_flagged": "both readings are grammatical",
    }
    return reasons.get(kind, "it fits the problem") + (
        "" if rng.random() < 0.7 else "; checked once more"
    )


def _prose(kind: str, rng: np.random.Generator) -> str:
    openers = ("Thinking about it,", "Next,", "Now", "Looking again,", "So")
    return f"{openers[int(rng.integers(len(openers)))]} {kind.replace('_', ' ')}."


# -- 5. production monitoring -----------------------------------------------------------------
MONITOR_METHODS = ("confidence_sequence", "cusum", "page_hinkley")
_DAY_NS = 86_400 * 10**9
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Day 1 of the simulated service (a fixed date, so a setting and seed give the same page)."""
_STATISTIC = {
    "confidence_sequence": "log e-value (mixture Shiryaev–Roberts)",
    "cusum": "CUSUM log-likelihood ratio",
    "page_hinkley": "Page–Hinkley statistic",
}


def _hours(ns: int, start_ns: int) -> float:
    return (ns - start_ns) / 3.6e12


@attrs.define(frozen=True, kw_only=True)
class MonitorLab:
    """A simulated service's 30-day baseline and one degrading day, watched by crucible's `Monitor`."""

    settings: dict[str, Any]
    store: Any = attrs.field(repr=False)
    """The `crucible_telemetry.MemoryStore` holding every request's event."""
    experiment: str
    """The telemetry experiment the service's events are in."""
    baseline: Any = attrs.field(repr=False)
    """The `crucible_telemetry.Baseline` of the 30 days."""
    alerts: tuple[Any, ...] = attrs.field(repr=False)
    """The `crucible_telemetry.Alert`s the monitor raised on the monitored day."""
    daily: tuple[dict[str, Any], ...] = attrs.field(repr=False)
    trace: tuple[tuple[float, float], ...] = attrs.field(repr=False)
    """(hour of the monitored day, detector statistic), at every 15-minute poll and at each alarm."""
    threshold: float

    @property
    def baseline_end(self) -> dt.datetime:
        """The end of the baseline period: the start of the monitored day."""
        return _EPOCH + dt.timedelta(days=int(self.settings["days"]))

    def summary(self, upto: float | None = None) -> dict[str, Any]:
        """The page's data when the monitored day has run `upto` hours (default: all 24).

        The alerts are those the monitor had raised by then (it is online: what it raised by hour h
        does not depend on the events after h).
        """
        from scipy.stats import binom

        hours = 24.0 if upto is None else max(0.0, min(24.0, float(upto)))
        s = self.settings
        mb = self.baseline.metrics["accuracy"]
        n = int(s["requests_per_day"])
        lo, hi = binom.ppf([0.025, 0.975], n, mb.value) / n
        start = int(self.baseline_end.timestamp() * 1e9)
        alerts = []
        for a in self.alerts:
            at = _hours(int(a.detected_at.timestamp() * 1e9), start)
            if at > hours:
                continue
            alerts.append({
                "metric": a.metric, "method": a.method, "baseline": a.baseline_value, "current": a.current_value,
                "change": a.change, "ci": list(a.change_ci), "confidence_level": a.confidence_level,
                "started_at": a.started_at.isoformat(), "detected_at": a.detected_at.isoformat(),
                "started_hour": _hours(int(a.started_at.timestamp() * 1e9), start), "detected_hour": at,
                "n_since_change": a.n_since_change, "statistic": a.statistic, "threshold": a.threshold,
                "arl0": a.arl0, "evidence": a.evidence, "summary": a.summary, "recommendation": a.recommendation,
            })  # fmt: skip
        days = int(s["days"])
        daily = [d for d in self.daily if d["day"] <= days]
        today = next(d for d in self.daily if d["day"] == days + 1)
        cut = start + int(hours * 3.6e12)
        day_ok = [ok for t, ok in today["requests"] if t < cut]
        daily.append(
            {
                "day": days + 1,
                "date": today["date"],
                **_accuracy(day_ok),
                "monitored": True,
            }
        )
        first = alerts[0] if alerts else None
        slip = float(s["slip_hour"])
        return {
            "lab": "monitor",
            "simulated": (
                f"Simulated: a seeded service answers {n} requests a day, each right with probability "
                f"{s['baseline_accuracy']:.0%} for {days} days, then from {slip:g}:00 on day {days + 1} with "
                f"probability {s['accuracy']:.0%}. Every request is a real telemetry event in a MemoryStore; "
                "the baseline, the detector and the alert are crucible-telemetry's own."
            ),
            "settings": s, "hours": hours, "total_hours": 24.0,
            "baseline": {"accuracy": mb.value, "n": mb.n, "bad_rate_upper": mb.bad_rate_upper, "band": [float(lo), float(hi)],
                         "start": self.baseline.start.isoformat() if self.baseline.start else None,
                         "end": self.baseline.end.isoformat() if self.baseline.end else None,
                         "interpretation": self.baseline.interpretation},
            "daily": [{k: v for k, v in d.items() if k != "requests"} for d in daily],
            "detector": {"method": s["method"], "statistic": _STATISTIC[s["method"]], "threshold": self.threshold,
                         "arl0": float(s["arl0"]), "trace": [[h, v] for h, v in self.trace if h <= hours]},
            "alerts": alerts,
            "slip_hour": slip,
            "delay_hours": None if first is None or first["detected_hour"] < slip else first["detected_hour"] - slip,
            "next": _next_steps(first, s) if first else [],
        }  # fmt: skip


def _next_steps(alert: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    lo, hi = alert["ci"]
    return [
        f"Confirm it offline: run the model of day {int(settings['days'])} and today's against each "
        "other on a fixed evaluation set with the harness (a paired A/B, as in the Statistical "
        f"comparison lab); the monitor's estimate is {alert['change'] * 100:+.1f} points "
        f"({alert['confidence_level'] * 100:g}% CI {lo * 100:+.1f} to {hi * 100:+.1f}).",
        f"Look at what changed around {alert['started_at'][11:16]} UTC (the estimated start): a "
        "deployment, a prompt or model version, the provider, the input mix.",
        "If the inputs did not change, roll back to the last good version; if they did, retrain "
        "or re-tune on the new traffic.",
        "Once fixed, take a new baseline (e.g. `crucible monitor --baseline 30d`), so the monitor "
        "compares with what is normal now.",
    ]


def monitor_lab(
    *,
    requests_per_day: int = 2000,
    accuracy: float = 0.89,
    method: str = "confidence_sequence",
    seed: int = 0,
    baseline_accuracy: float = 0.92,
    slip_hour: float = 6.0,
    days: int = 30,
    arl0: float = 10_000,
) -> MonitorLab:
    """A seeded service writes `days` days of telemetry, then slips; crucible's `Monitor` watches.

    Each request is a `crucible.harness.task.stop` event carrying `correct` (the metric
    `accuracy`), at a uniformly random time of its day, written into a `MemoryStore` with the
    simulated day's timestamp. The baseline is `Baseline.from_store` over the first `days` days; a
    `Monitor` with `method` and `arl0` then reads day `days + 1` as a production monitor polls
    (every 15 minutes of the day), from which the detector's trace is taken.

    Args:
        requests_per_day: requests a day.
        accuracy: the share right from `slip_hour` of the monitored day on (set it to
            `baseline_accuracy` for a day with no change).
        method: `"confidence_sequence"`, `"cusum"` or `"page_hinkley"` (see `crucible_telemetry.Monitor`).
        seed: seeds every request's time and outcome.
        baseline_accuracy: the share right during the baseline and before the slip.
        slip_hour: the hour (0-24) of the monitored day at which accuracy changes.
        days: days in the baseline.
        arl0: the monitor's average run length to a false alarm, in requests.
    """
    import crucible_telemetry as ct
    from crucible_core import context
    from crucible_core import events as core_events

    if method not in MONITOR_METHODS:
        raise ValueError(
            f"unknown method {method!r}; use one of {list(MONITOR_METHODS)}"
        )
    settings = {"requests_per_day": requests_per_day, "accuracy": accuracy, "method": method, "seed": seed,
                "baseline_accuracy": baseline_accuracy, "slip_hour": slip_hour, "days": days, "arl0": arl0}  # fmt: skip
    rng = np.random.default_rng(seed)
    store = ct.MemoryStore()
    epoch = int(_EPOCH.timestamp() * 1e9)
    slip_ns = epoch + days * _DAY_NS + int(slip_hour * 3.6e12)
    daily: list[dict[str, Any]] = []
    with ct.experiment(
        "simulated service", tags=("lab", "monitoring"), store=store
    ) as exp:
        # the service's requests go into the experiment's sink as capture writes them, but stamped
        # with the simulated day instead of the wall clock (30 days cannot pass in a request)
        ctx = context.current()
        sink = store.writer(exp)
        sink.contexts[id(ctx)] = ctx
        rows: list[Any] = []
        seq = 0
        for d in range(days + 1):
            ts = (
                np.sort(rng.integers(0, _DAY_NS, requests_per_day))
                + epoch
                + d * _DAY_NS
            )
            p = np.where(ts >= slip_ns, accuracy, baseline_accuracy)
            ok = rng.random(requests_per_day) < p
            duration = rng.lognormal(math.log(0.6), 0.4, requests_per_day)
            for t, c, du in zip(
                ts.tolist(), ok.tolist(), duration.tolist(), strict=True
            ):
                rows.extend((seq, t, t, core_events.HARNESS_TASK_STOP, {"duration": du}, {"correct": c}, id(ctx)))  # fmt: skip
                seq += 1
            daily.append({"day": d + 1, "date": (_EPOCH + dt.timedelta(days=d)).date().isoformat(),
                          **_accuracy(ok.tolist()), "requests": list(zip(ts.tolist(), ok.tolist(), strict=True))})  # fmt: skip
        sink.rows.extend(rows)
    end = _EPOCH + dt.timedelta(days=days)
    baseline = ct.Baseline.from_store(
        store, since=_EPOCH, until=end, experiment="simulated service"
    )
    monitor = ct.Monitor(baseline, metrics=("accuracy",), method=method, arl0=arl0)  # type: ignore[arg-type]
    today = ct.query_events(experiment="simulated service", since=end, store=store)
    stamps = today.columns["timestamp_ns"]
    start = int(end.timestamp() * 1e9)
    trace: list[tuple[float, float]] = [(0.0, 0.0)]
    lo = 0
    for k in range(1, 97):  # a poll every 15 minutes
        cut = start + k * _DAY_NS // 96
        hi = lo
        while hi < len(stamps) and stamps[hi] < cut:
            hi += 1
        raised = monitor.update(
            ct.Events(columns={c: v[lo:hi] for c, v in today.columns.items()})
        )
        trace.extend(
            (_hours(int(a.detected_at.timestamp() * 1e9), start), a.statistic)
            for a in raised
        )
        trace.append((k / 4, monitor.statistics()["accuracy"][0]))
        lo = hi
    for entry in daily:
        if entry["day"] <= days:
            del entry["requests"]
    return MonitorLab(settings=settings, store=store, experiment=exp.id, baseline=baseline,
                      alerts=tuple(monitor.alerts), daily=tuple(daily), trace=tuple(trace),
                      threshold=monitor.statistics()["accuracy"][1])  # fmt: skip
