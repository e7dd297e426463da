"""Early stopping for runs: schedule items in a seeded random order, watch the comparisons, stop.

The runner asks [`SequentialMonitor`][crucible_harness._sequential.SequentialMonitor] for the task
order, hands it every finished record, and stops sending tasks when it says the stopping rule
holds. Items enter the statistics in *scheduled* order (a finished item waits for the ones
scheduled before it), so completion timing cannot leak into the sequence.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from crucible_core.render import RenderMixin, Table, View
from crucible_harness._experiment import AnalysisConfig, EarlyStopping, HarnessItem

__all__ = ("SequentialComparison", "SequentialMonitor", "SequentialStop", "family")


def family(conditions: Sequence[str], config: AnalysisConfig) -> list[tuple[str, str]]:
    """The comparisons (baseline, treatment) the analysis makes, in its order."""
    if config.primary is not None:
        return [config.primary]
    if config.baseline is not None:
        return [(config.baseline, c) for c in conditions if c != config.baseline]
    return [(a, b) for i, a in enumerate(conditions) for b in conditions[i + 1 :]]


@attrs.define(frozen=True, kw_only=True)
class SequentialComparison:
    """One comparison's sequential state when the run stopped (treatment − baseline)."""

    a: str
    """Baseline condition."""
    b: str
    """Treatment condition."""
    n: int
    """Items in the statistics."""
    difference: float
    """Mean per-item accuracy difference b − a."""
    confidence_interval: tuple[float, float]
    """Anytime-valid interval (confidence sequence) or repeated confidence interval (O'Brien–Fleming)."""
    pvalue: float
    """Anytime p-value (confidence sequence) or the nominal p-value at the last look."""
    decided: bool
    """The difference is significant under the family's sequential test."""
    futile: bool
    """The interval lies within ±futility_margin."""


@attrs.define(frozen=True, kw_only=True)
class SequentialStop(RenderMixin):
    """The stopping rule of a sequential run, whether and when it fired, and each comparison."""

    method: str
    """`"confidence_sequence"` or `"obrien_fleming"`."""
    rule: str
    """The stopping rule in words."""
    fired: bool
    """Whether the run stopped early."""
    items_at_stop: int
    """Items complete (all conditions and repeats) when it stopped or finished."""
    items_total: int
    """Items scheduled."""
    looks: tuple[int, ...]
    """Item counts at which the rule was checked (O'Brien–Fleming); empty for the CS (every item)."""
    comparisons: tuple[SequentialComparison, ...]
    """Each comparison's state."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequentialStop:
        """Read back what [`to_dict`][crucible_core.render.RenderMixin.to_dict] wrote.

        Raises:
            SerializationError: a field is missing or does not hold what `to_dict` writes (a
                string where a bool belongs, a three-number interval), named by its path.
        """
        import cattrs

        from crucible_core.exceptions import SerializationError
        from crucible_core.serde import converter

        if not isinstance(data, Mapping):
            raise SerializationError(
                f"a sequential summary is a JSON object, not {type(data).__name__}",
                target=cls.__name__,
            )
        try:
            value = converter.structure(dict(data), cls)
        except Exception as err:
            detail = (
                "; ".join(cattrs.transform_error(err))
                if isinstance(err, cattrs.BaseValidationError)
                else str(err)
            )
            raise SerializationError(
                f"not a sequential summary: {detail}", target=cls.__name__
            ) from err
        # the converter coerces ("no" reads as True, 1.5 as 1): what it read must write back as given
        wrong = _differences(value.to_dict(), data, "$")
        if wrong:
            raise SerializationError(
                f"not a sequential summary: {'; '.join(wrong[:5])}", target=cls.__name__
            )
        return value

    @property
    def reason(self) -> str:
        """Why the run stopped (or that it did not)."""
        if not self.fired:
            return f"sequential rule ({self.rule}) did not fire; all {self.items_total} items ran"
        return f"sequential stop after {self.items_at_stop} of {self.items_total} items: {self.rule}"

    @property
    def interpretation(self) -> str:
        """The rule, when it fired, and what the intervals are."""
        kind = (
            "anytime-valid confidence sequences (valid at this data-dependent stop)"
            if self.method == "confidence_sequence"
            else "repeated confidence intervals of the group-sequential design"
        )
        return (
            f"{self.reason}. The intervals below are {kind}; the fixed-n analysis of a sequentially "
            "stopped run is not adjusted for the stopping rule and is shown for reference only."
        )

    def _view(self) -> View:
        rows = [
            (
                f"{c.b} − {c.a}",
                c.n,
                c.difference,
                c.confidence_interval,
                c.pvalue,
                c.decided,
                c.futile,
            )
            for c in self.comparisons
        ]
        return View(
            title=f"Sequential stopping ({self.method})",
            facts=[("rule", self.rule), ("fired", self.fired), ("items", f"{self.items_at_stop} of {self.items_total}")],
            tables=[Table(title="Sequential comparisons", headers=("comparison", "items", "difference", "interval", "p", "decided", "futile"), rows=rows)],
            notes=[self.interpretation],
        )  # fmt: skip


def _differences(written: Any, given: Any, path: str) -> list[str]:
    """Where `given` differs from `written` (the unstructured form of what was read from it)."""
    if isinstance(written, dict):
        if not isinstance(given, Mapping):
            return [f"{path} must be an object, not {given!r}"]
        return [
            d
            for k, v in written.items()
            for d in _differences(v, given.get(k), f"{path}.{k}")
        ]
    if isinstance(written, list | tuple):
        if not isinstance(given, list | tuple) or len(given) != len(written):
            return [f"{path} must be a list of {len(written)}, not {given!r}"]
        return [
            d
            for i, (w, g) in enumerate(zip(written, given, strict=True))
            for d in _differences(w, g, f"{path}[{i}]")
        ]
    if isinstance(written, bool) or isinstance(given, bool):
        same = type(written) is type(given) and written == given
    else:
        same = type(written) is type(given) or (
            isinstance(written, float) and isinstance(given, int)
        )
        same = same and written == given
    return [] if same else [f"{path} must be a {type(written).__name__}, not {given!r}"]


@functools.lru_cache(maxsize=64)
def _design(information: tuple[float, ...], alpha: float) -> Any:
    """The O'Brien–Fleming design of these looks (solving it takes tens of milliseconds)."""
    from crucible_bench import group_sequential_design

    return group_sequential_design(list(information), alpha=alpha)


class SequentialMonitor:
    """The sequential statistics of a run's comparison family, fed finished task records."""

    def __init__(
        self,
        settings: EarlyStopping,
        config: AnalysisConfig,
        conditions: Sequence[str],
        items: Sequence[HarnessItem],
        repeats: int,
        seed: int,
    ) -> None:
        from crucible_bench import ConfidenceSequence

        self.settings = settings
        self.alpha = config.alpha
        self.conditions = list(conditions)
        self.repeats = repeats
        self.pairs = family(self.conditions, config)
        rng = np.random.default_rng([seed, 0x5E9])
        self.order = [items[i].id for i in rng.permutation(len(items))]
        self._position = {item: k for k, item in enumerate(self.order)}
        self._per_item = len(self.conditions) * repeats
        self._outcomes: dict[str, dict[str, list[float]]] = {}
        self._complete: set[str] = set()
        self._fed = 0  # items of `order` already in the statistics
        self._diffs: dict[tuple[str, str], list[float]] = {p: [] for p in self.pairs}
        self._cs = {
            p: ConfidenceSequence(
                bounds=(-1.0, 1.0), null=0.0, confidence_level=1 - self.alpha
            )
            for p in self.pairs
        }
        m = max(1, len(self.pairs))
        k = min(settings.looks, len(items))
        self.looks = tuple(
            sorted({math.ceil(j * len(items) / k) for j in range(1, k + 1)})
        )
        self._design = (
            _design(tuple(n / len(items) for n in self.looks), self.alpha / m)
            if settings.method == "obrien_fleming"
            else None
        )
        self._last_look = -1
        self._state: dict[tuple[str, str], SequentialComparison] = {}
        self.fired = False

    def schedule(self) -> list[str]:
        """Item ids in the seeded random order the runner should follow."""
        return list(self.order)

    @property
    def rule(self) -> str:
        """The stopping rule in words."""
        what = {
            "decided": "every comparison decided",
            "futile": f"every comparison futile (|difference| < {self.settings.futility_margin:g})",
            "both": f"every comparison decided or futile (margin {self.settings.futility_margin:g})",
        }[self.settings.stop]
        how = (
            f"betting confidence sequences, Holm across {len(self.pairs)} comparison(s), α = {self.alpha:g}"
            if self.settings.method == "confidence_sequence"
            else f"O'Brien–Fleming (Lan–DeMets), looks at {list(self.looks)} items, α = {self.alpha:g} "
            f"(Bonferroni over {len(self.pairs)})"
        )
        return f"{what}; {how}; at least {self.settings.min_items} items"

    def observe(self, record: Mapping[str, Any]) -> bool:
        """Take one finished record; True when the run should stop now."""
        item = str(record["item"])
        if item not in self._position:
            return self.fired
        per = self._outcomes.setdefault(item, {})
        per.setdefault(str(record["condition"]), []).append(
            float(bool(record.get("correct")))
        )
        if sum(len(v) for v in per.values()) >= self._per_item:
            self._complete.add(item)
        grew = False
        while self._fed < len(self.order) and self.order[self._fed] in self._complete:
            outcomes = self._outcomes[self.order[self._fed]]
            for a, b in self.pairs:
                d = float(
                    np.mean(outcomes.get(b, [0.0])) - np.mean(outcomes.get(a, [0.0]))
                )
                self._diffs[(a, b)].append(d)
                if self._design is None:
                    self._cs[(a, b)].update(d)
            self._fed += 1
            grew = True
        if grew and not self.fired:
            self._evaluate()
        return self.fired

    def _evaluate(self) -> None:
        from crucible_bench import adjust_pvalues

        n = self._fed
        margin = self.settings.futility_margin
        if self._design is None:
            pvals = adjust_pvalues(
                [self._cs[p].pvalue for p in self.pairs], method="holm"
            )
            for p, p_adj in zip(self.pairs, pvals, strict=True):
                cs = self._cs[p]
                lo, hi = cs.interval
                self._state[p] = SequentialComparison(
                    a=p[0], b=p[1], n=n, difference=cs.estimate, confidence_interval=(lo, hi),
                    pvalue=cs.pvalue, decided=bool(p_adj <= self.alpha), futile=bool(-margin < lo and hi < margin),
                )  # fmt: skip
        else:
            if n not in self.looks:
                return
            look = self.looks.index(n)
            bound = self._design.boundaries[look]
            from scipy.special import ndtr

            for p in self.pairs:
                d = np.asarray(self._diffs[p])
                mean = float(d.mean())
                se = (
                    float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.inf
                )
                z = (
                    mean / se
                    if se > 0
                    else (math.copysign(math.inf, mean) if mean else 0.0)
                )
                half = bound * se if se > 0 else 0.0
                lo, hi = max(-1.0, mean - half), min(1.0, mean + half)
                self._state[p] = SequentialComparison(
                    a=p[0], b=p[1], n=n, difference=mean, confidence_interval=(lo, hi),
                    pvalue=float(2 * ndtr(-abs(z))), decided=bool(abs(z) >= bound),
                    futile=bool(-margin < lo and hi < margin),
                )  # fmt: skip
        if n < self.settings.min_items or len(self._state) < len(self.pairs):
            return
        states = [self._state[p] for p in self.pairs]
        stop = self.settings.stop
        if stop == "decided":
            done = all(s.decided for s in states)
        elif stop == "futile":
            done = all(s.futile for s in states)
        else:
            done = all(s.decided or s.futile for s in states)
        if done and n < len(self.order):
            self.fired = True

    def summary_size(self) -> int:
        """An upper bound on the bytes of `summary().to_dict()` as JSON (space `status.json` reserves)."""
        from crucible_core.serde import dumps

        x = -2.2250738585072014e-308  # the longest repr a number in [-1, 1] has
        widest = attrs.evolve(
            self.summary(),
            comparisons=tuple(
                SequentialComparison(a=a, b=b, n=len(self.order), difference=x, confidence_interval=(x, x),
                                     pvalue=x, decided=False, futile=False)
                for a, b in self.pairs
            ),
        )  # fmt: skip
        return len(dumps(widest.to_dict()))

    def summary(self) -> SequentialStop:
        """The rule, whether it fired, and each comparison's latest state."""
        return SequentialStop(
            method=self.settings.method,
            rule=self.rule,
            fired=self.fired,
            items_at_stop=self._fed,
            items_total=len(self.order),
            looks=self.looks if self._design is not None else (),
            comparisons=tuple(self._state[p] for p in self.pairs if p in self._state),
        )
