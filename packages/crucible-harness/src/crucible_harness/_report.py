"""Report writers: one analysis, written as Markdown, LaTeX, HTML, a notebook, JSON and raw results.

Every writer reads the same format-neutral report model built from an
[`Analysis`][crucible_harness.Analysis], so the numbers agree across formats. Text the user
controls (experiment name, description, hypothesis, condition names, item ids, predictions, error
messages) is escaped for its format: `markdown_escape`, `latex_escape` and jinja2's HTML
autoescaping. Numbers are formatted once, by one rule (`crucible_harness._numbers`: digits by
quantity, APA-style p-values), so reports do not depend on the display options of the session that
wrote them and every format shows the same digits. Every file is written atomically.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

import crucible_harness._figures as _figures
import crucible_harness._numbers as fmt
from crucible_core.exceptions import ValidationError
from crucible_core.export import atomic_write, save_records
from crucible_core.render import jinja_environment, latex_escape
from crucible_harness._analysis import effect_kind, metric_scale, unknown_cost_note

if TYPE_CHECKING:
    import jinja2

    from crucible_harness._analysis import Analysis, MetricComparison

__all__ = ("FORMATS", "write_reports")

FORMATS: Mapping[str, str] = {
    "markdown": "report.md",
    "latex": "report.tex",
    "html": "report.html",
    "notebook": "report.ipynb",
    "json": "analysis.json",
    "parquet": "results.parquet",
    "jsonl": "results.jsonl",
}
"""The report formats and the file each is written to inside the run directory."""

_EXAMPLES_PER_CONDITION = 3
_PREDICTION_CHARS = 160
_EXAMPLE_CHARS = 4000
_ERROR_CHARS = 160
_DATA_FILES = ("results.parquet", "tasks.jsonl", "results.jsonl")
# C0 and C1 control characters but tab, newline and carriage return (ESC, BEL, CSI, …)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# -- the report model --------------------------------------------------------------------------
@attrs.frozen
class Cell:
    """One table cell: user text (escaped when written) or a number already formatted."""

    text: str
    numeric: bool = False


@attrs.frozen
class ReportTable:
    """A table of the report, the same in every format."""

    key: str
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    aligns: str
    """One letter per column: `l` text, `r` number, `p` wrapped text."""

    @property
    def markdown_rule(self) -> str:
        """The delimiter row of a GitHub table, aligned per column."""
        marks = {"l": ":---", "r": "---:", "p": "---"}
        return "|" + "|".join(marks[a] for a in self.aligns) + "|"

    @property
    def latex_columns(self) -> str:
        """The tabular column specification."""
        width = 11.0 / max(1, self.aligns.count("p"))  # wrapped columns share 11 cm
        return "".join(
            f"p{{{round(min(7.0, width), 1):g}cm}}" if a == "p" else a
            for a in self.aligns
        )

    @property
    def html_classes(self) -> tuple[str, ...]:
        """A CSS class per column: `num` for numbers, `text wrap` for wrapped text, `text` otherwise."""
        classes = {"r": "num", "p": "text wrap", "l": "text"}
        return tuple(classes[a] for a in self.aligns)


def _num(
    value: float | None,
    kind: fmt.Kind,
    *,
    scale: float | None = None,
    signed: bool | None = None,
) -> Cell:
    return Cell(fmt.number(value, kind, scale=scale, signed=signed), numeric=True)


def _text(value: object, *, limit: int | None = None) -> Cell:
    s = _clean(value).replace("\r", " ").replace("\n", " ")
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return Cell(s)


def _yes_no(value: object) -> Cell:
    return Cell("yes" if value else "no", numeric=True)


def _confidence(analysis: Analysis) -> str:
    return f"{analysis.config.confidence_level:.0%}"


def _accuracy_table(analysis: Analysis) -> ReportTable:
    level = _confidence(analysis)
    rows = tuple(
        (
            _text(analysis.label(c.name)),
            _num(c.tasks, "count"),
            _num(c.completed, "count"),
            _num(c.errors, "count"),
            _num(c.items, "count"),
            _num(c.accuracy, "proportion"),
            _num(c.accuracy_ci[0], "proportion"),
            _num(c.accuracy_ci[1], "proportion"),
            _num(c.accuracy_completed, "proportion"),
        )
        for c in analysis.conditions
    )
    return ReportTable(
        key="accuracy",
        caption=f"Accuracy per condition: all attempted tasks (failures count as wrong) with {level} interval, and completed tasks only",
        headers=(
            "condition",
            "tasks",
            "completed",
            "errors",
            "items",
            "accuracy (all attempted)",
            f"{level} CI low",
            f"{level} CI high",
            "accuracy (completed only)",
        ),
        rows=rows,
        aligns="l" + "r" * 8,
    )


def _cost(value: float | None) -> Cell:
    """A dollar figure; an unknown cost (a model without a price) reads "unknown", never $0."""
    return Cell("unknown", numeric=True) if value is None else _num(value, "usd")


def _latency_cost_table(analysis: Analysis) -> ReportTable:
    rows = tuple(
        (
            _text(analysis.label(c.name)),
            _num(c.latency_p50, "seconds"),
            _num(c.latency_p95, "seconds"),
            _num(c.latency_p99, "seconds"),
            _num(c.latency_mean, "seconds"),
            _cost(c.cost_total),
            _cost(c.cost_per_query),
            _cost(c.cost_per_correct),
            _num(c.input_tokens, "tokens"),
            _num(c.output_tokens, "tokens"),
        )
        for c in analysis.conditions
    )
    return ReportTable(
        key="latency_cost",
        caption="Latency of completed tasks (seconds), cost (USD) and mean tokens per completed task"
        + (f". {note}" if (note := unknown_cost_note(analysis.conditions)) else ""),
        headers=(
            "condition",
            "p50 (s)",
            "p95 (s)",
            "p99 (s)",
            "mean (s)",
            "cost (USD)",
            "USD per query",
            "USD per correct",
            "input tokens",
            "output tokens",
        ),
        rows=rows,
        aligns="l" + "r" * 9,
    )


def _correction_text(analysis: Analysis) -> str:
    correction = analysis.config.correction
    return "not adjusted" if correction == "none" else f"adjusted with {correction}"


def _test_headers(level: str) -> tuple[str, ...]:
    """The columns of a test: the difference, its interval, p, adjusted p, verdict, procedure."""
    return (
        "difference",
        f"{level} CI low",
        f"{level} CI high",
        "p",
        "p adjusted",
        "interval at adjusted level",
        "significant",
        "test and interval",
    )


def _comparison_table(analysis: Analysis) -> ReportTable:
    level = _confidence(analysis)
    rows = tuple(
        (
            _text(c.b),
            _text(c.a),
            _num(c.n_items, "count"),
            _num(c.n_repeats, "count"),
            _num(c.accuracy_b, "proportion"),
            _num(c.accuracy_a, "proportion"),
            _num(c.difference, "difference"),
            _num(c.confidence_interval[0], "difference", signed=False),
            _num(c.confidence_interval[1], "difference", signed=False),
            _num(c.pvalue, "p"),
            _num(c.pvalue_adjusted, "p"),
            Cell(
                fmt.interval(*c.confidence_interval_adjusted, "difference"),
                numeric=True,
            ),
            _yes_no(c.significant),
            _text(c.method),
        )
        for c in analysis.comparisons
    )
    return ReportTable(
        key="comparisons",
        caption=f"Paired comparisons of accuracy, treatment minus baseline (primary family): {level} intervals "
        f"from the same procedure as p, p-values {_correction_text(analysis)} at alpha = "
        f"{fmt.number(analysis.config.alpha, 'setting')}",
        headers=(
            "treatment",
            "baseline",
            "items",
            "repeats",
            "accuracy (treatment)",
            "accuracy (baseline)",
            *_test_headers(level),
        ),
        rows=rows,
        aligns="ll" + "r" * 11 + "p",
    )


def _effects_table(analysis: Analysis) -> ReportTable:
    level = _confidence(analysis)
    rows = []
    for c in analysis.comparisons:
        for e in c.effects:
            kind = effect_kind(e.name)
            rows.append(
                (
                    _text(f"{c.b} − {c.a}"),
                    _text(e.name),
                    _num(e.estimate, kind, signed=False if kind == "ratio" else None),
                    _num(e.confidence_interval[0], kind, signed=False),
                    _num(e.confidence_interval[1], kind, signed=False),
                    _text(e.method),
                )
            )
    return ReportTable(
        key="effects",
        caption=f"Effect sizes of accuracy, treatment against baseline, with {level} intervals",
        headers=(
            "comparison",
            "effect",
            "estimate",
            f"{level} CI low",
            f"{level} CI high",
            "interval",
        ),
        rows=tuple(rows),
        aligns="llrrrp",
    )


def _metric_cells(m: MetricComparison) -> tuple[Cell, ...]:
    scale = metric_scale(m)
    return (
        _text(f"{m.b} − {m.a}"),
        _text(m.label),
        _num(m.n_items, "count"),
        _num(m.baseline, m.kind),
        _num(m.treatment, m.kind),
        _num(m.difference, m.kind, scale=scale, signed=True),
        _num(m.confidence_interval[0], m.kind, scale=scale, signed=False),
        _num(m.confidence_interval[1], m.kind, scale=scale, signed=False),
        _num(m.pvalue, "p"),
        _num(m.pvalue_adjusted, "p"),
        Cell(
            fmt.interval(*m.confidence_interval_adjusted, m.kind, scale=scale),
            numeric=True,
        ),
        _yes_no(m.significant),
        _text(m.method),
    )


def _metric_table(analysis: Analysis) -> ReportTable:
    level = _confidence(analysis)
    return ReportTable(
        key="latency_cost_comparisons",
        caption=f"Paired comparisons of latency and cost, treatment minus baseline (second family): {level} "
        f"intervals from the same procedure as p, p-values {_correction_text(analysis)} within this family",
        headers=(
            "comparison",
            "metric",
            "items",
            "baseline",
            "treatment",
            *_test_headers(level),
        ),
        rows=tuple(_metric_cells(m) for m in analysis.metric_comparisons),
        aligns="ll" + "r" * 10 + "p",
    )


def _sensitivity_table(analysis: Analysis) -> ReportTable:
    cfg = analysis.config
    power = f"{cfg.target_power:.0%} power"
    target = cfg.target_effect
    headers = [
        "comparison",
        "repeats per item",
        "items run",
        f"minimum detectable difference ({power})",
    ]
    if target is not None:
        headers += [
            f"items for {fmt.number(abs(target), 'proportion')}",
            "evaluations per condition",
        ]
    rows = []
    for c in analysis.comparisons:
        for row in c.plan:
            cells = [
                _text(f"{c.b} − {c.a}"),
                _num(row.repeats, "count"),
                _num(c.n_items, "count"),
                _num(row.mde, "proportion"),
            ]
            if target is not None:
                cells += [
                    _num(row.items_needed, "count"),
                    _num(row.evaluations, "count"),
                ]
            rows.append(tuple(cells))
    caption = (
        f"Sensitivity from the run as a pilot: the smallest accuracy difference the items run detect with {power} "
        f"at alpha = {fmt.number(cfg.alpha, 'setting')}, by repeats per item"
    )
    if target is not None:
        caption += f", and the items needed for the target difference {fmt.number(abs(target), 'proportion')}"
    return ReportTable(
        key="sensitivity",
        caption=caption,
        headers=tuple(headers),
        rows=tuple(rows),
        aligns="l" + "r" * (len(headers) - 1),
    )


def _error_table(analysis: Analysis) -> ReportTable:
    counts: Counter[tuple[str, str]] = Counter()
    example: dict[tuple[str, str], str] = {}
    for r in analysis.records:
        if r.get("status") == "ok":
            continue
        key = (str(r.get("condition")), str(r.get("error_type") or "unknown"))
        counts[key] += 1
        example.setdefault(key, str(r.get("error") or ""))
    order = {c.name: i for i, c in enumerate(analysis.conditions)}
    keys = sorted(counts, key=lambda k: (order.get(k[0], len(order)), -counts[k], k[1]))
    rows = tuple(
        (
            _text(k[0]),
            _text(k[1]),
            _num(counts[k], "count"),
            _text(example[k], limit=_ERROR_CHARS),
        )
        for k in keys
    )
    return ReportTable(
        key="errors",
        caption="Failed tasks (after retries) by condition and error type",
        headers=("condition", "error type", "tasks", "first message"),
        rows=rows,
        aligns="llrp",
    )


@attrs.frozen
class Example:
    """One incorrect answer shown in full: the answer and the reference, line breaks kept."""

    condition: str
    item: str
    repeat: int
    answer: str
    """The prediction, control characters removed, at most `_EXAMPLE_CHARS` characters."""
    reference: str | None
    """The item's expected answer as the run manifest recorded it (`None`: not recorded)."""


def _example_text(value: object) -> str:
    s = (
        _CONTROL.sub(" ", str(value))
        .replace("\r\n", "\n")
        .replace("\r", "\n")
        .expandtabs(4)
    )
    return s if len(s) <= _EXAMPLE_CHARS else s[: _EXAMPLE_CHARS - 1] + "…"


def _incorrect_examples(analysis: Analysis) -> tuple[Example, ...]:
    references = analysis.manifest.get("references") or {}
    shown: Counter[str] = Counter()
    out = []
    for r in analysis.records:
        name = str(r.get("condition"))
        if r.get("status") != "ok" or r.get("correct") is not False:
            continue
        if shown[name] >= _EXAMPLES_PER_CONDITION:
            continue
        shown[name] += 1
        item = str(r.get("item"))
        reference = references.get(item) if isinstance(references, Mapping) else None
        out.append(
            Example(
                condition=name,
                item=item,
                repeat=int(r.get("repeat") or 0),
                answer=_example_text(r.get("prediction")),
                reference=None if reference is None else _example_text(reference),
            )
        )
    order = {c.name: i for i, c in enumerate(analysis.conditions)}
    out.sort(key=lambda e: order.get(e.condition, len(order)))
    return tuple(out)


def _examples_table(examples: Sequence[Example]) -> ReportTable:
    rows = tuple(
        (
            _text(e.condition),
            _text(e.item),
            _num(e.repeat, "count"),
            _text("—" if e.reference is None else e.reference, limit=_PREDICTION_CHARS),
            _text(e.answer, limit=_PREDICTION_CHARS),
        )
        for e in examples
    )
    return ReportTable(
        key="examples",
        caption=f"Examples of incorrect answers (at most {_EXAMPLES_PER_CONDITION} per condition; in full below)",
        headers=("condition", "item", "repeat", "expected", "prediction"),
        rows=rows,
        aligns="llrpp",
    )


@attrs.frozen
class ReportModel:
    """Everything a report shows, format-neutral: user text raw, numbers formatted."""

    title: str
    author: str
    description: str
    hypothesis: str
    notice: str
    """The simulated-models warning (`Analysis.simulated_notice`), or `""`."""
    facts: tuple[tuple[str, str], ...]
    tables: tuple[ReportTable, ...]
    interpretations: tuple[str, ...]
    frontier: tuple[str, ...]
    examples: tuple[Example, ...]
    """The incorrect answers of the examples table, in full (code keeps its lines)."""
    methods: str
    reproducibility: tuple[tuple[str, str], ...]
    versions: tuple[tuple[str, str], ...]

    def table(self, key: str) -> ReportTable:
        """The table named `key`."""
        return next(t for t in self.tables if t.key == key)


def _describe(value: object) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(_describe(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in value.items())
    if isinstance(value, float):
        return fmt.number(value, "setting")
    return str(value)


def _dataset_facts(dataset: object) -> list[tuple[str, str]]:
    if isinstance(dataset, Mapping):
        return [(f"dataset {k}", _describe(v)) for k, v in dataset.items()]
    return [("dataset", _describe(dataset))]


def _analysis_settings(analysis: Analysis) -> str:
    cfg = analysis.config
    parts = [
        f"alpha {fmt.number(cfg.alpha, 'setting')}",
        f"correction {cfg.correction}",
        f"confidence level {cfg.confidence_level:.0%}",
        f"{cfg.n_resamples} bootstrap resamples",
        f"target power {cfg.target_power:.0%}",
    ]
    if cfg.primary:
        parts.append(f"primary comparison {cfg.primary[1]} − {cfg.primary[0]}")
    elif cfg.baseline is not None:
        parts.append(f"baseline {cfg.baseline}")
    if cfg.target_effect is not None:
        parts.append(
            f"target difference {fmt.number(abs(cfg.target_effect), 'proportion')}"
        )
    return ", ".join(parts)


_STATUS_LABELS = {
    "complete": "complete",
    "stopped": "stopped early by the sequential rule",
    "budget": "budget-stopped",
    "failed": "failed",
    "interrupted": "interrupted",
    "running": "running (not finished)",
}


def run_status_text(manifest: Mapping[str, Any]) -> str | None:
    """`"budget-stopped: 25 of 100 tasks pending"`, or `None` when the run's state is unknown.

    A run the sequential rule stopped early is finished: its tasks not run were not needed.
    """
    state = manifest.get("run_state")
    if not isinstance(state, Mapping) or state.get("status") not in _STATUS_LABELS:
        return None
    text = _STATUS_LABELS[str(state["status"])]
    pending = sum((state.get("pending") or {}).values())
    if pending:
        left = "not needed" if state["status"] == "stopped" else "pending"
        text += f": {pending} of {state.get('tasks')} tasks {left}"
    if state.get("reason"):
        text += f" ({state['reason']})"
    return text


def _counts(analysis: Analysis) -> tuple[str, str]:
    """(items, tasks recorded): what the analysis used, against what the run planned."""
    manifest = analysis.manifest
    state = manifest.get("run_state")
    state = state if isinstance(state, Mapping) else {}
    used = len({r.get("item") for r in analysis.records})
    planned = manifest.get("items")
    items = str(used)
    if isinstance(planned, list | tuple) and len(planned) != used:
        items = f"{used} of {len(planned)} (the analysis covers the items with recorded tasks)"
    tasks = str(len(analysis.records))
    if isinstance(state.get("tasks"), int) and state["tasks"] != len(analysis.records):
        tasks = f"{len(analysis.records)} of {state['tasks']}"
    return items, tasks


def _progress_table(analysis: Analysis) -> ReportTable | None:
    """Recorded and pending tasks and items covered per condition, for a run that is not whole."""
    state = analysis.manifest.get("run_state")
    if not isinstance(state, Mapping) or not any((state.get("pending") or {}).values()):
        return None
    rows = []
    for name, pending in state["pending"].items():
        mine = [r for r in analysis.records if r.get("condition") == name]
        rows.append(
            (
                _text(name),
                _num(len(mine), "count"),
                _num(int(pending), "count"),
                _num(len({r.get("item") for r in mine}), "count"),
            )
        )
    caption = (
        "Run progress: the sequential rule stopped the run early, and every number below covers "
        "the tasks recorded (the sequential intervals are valid at this stop; the fixed-n ones are "
        "for reference only)"
        if state.get("status") == "stopped"
        else "Run progress: the run is not complete, and every number below covers only the "
        "tasks recorded"
    )
    return ReportTable(
        key="progress",
        caption=caption,
        headers=("condition", "tasks recorded", "tasks pending", "items covered"),
        rows=tuple(rows),
        aligns="lrrr",
    )


def build_model(analysis: Analysis) -> ReportModel:
    """The report model of an analysis (shared by every text format)."""
    manifest = analysis.manifest
    exp: Mapping[str, Any] = manifest.get("experiment") or {}
    run: Mapping[str, Any] = exp.get("run") or {}
    status = run_status_text(manifest)
    items, tasks = _counts(analysis)
    facts = [
        ("run", _describe(manifest.get("run_id"))),
        *([("status", status)] if status is not None else []),
        ("created", _describe(manifest.get("created_at"))),
        ("author", _describe(exp.get("author"))),
        ("version", _describe(exp.get("version"))),
        ("tags", _describe(exp.get("tags"))),
        ("dataset", _describe(exp.get("dataset"))),
        ("items", items),
        ("repeats", _describe(exp.get("repeats", 1))),
        ("conditions", str(len(analysis.conditions))),
        *(
            [("simulated conditions", ", ".join(analysis.simulated_conditions))]
            if analysis.simulated_conditions
            else []
        ),
        ("tasks recorded", tasks),
        ("scorer", _describe(manifest.get("scorer"))),
    ]
    reproducibility = [
        ("run id", _describe(manifest.get("run_id"))),
        ("experiment fingerprint", _describe(manifest.get("fingerprint"))),
        ("random seed", _describe(run.get("seed"))),
        *_dataset_facts(manifest.get("dataset")),
        ("git commit", _describe(manifest.get("git_commit"))),
        ("analysis", _analysis_settings(analysis)),
    ]
    versions = tuple(
        (str(k), str(v)) for k, v in (manifest.get("versions") or {}).items()
    )
    progress = _progress_table(analysis)
    tables = [
        *([progress] if progress is not None else []),
        _accuracy_table(analysis),
        _latency_cost_table(analysis),
    ]
    if analysis.comparisons:
        tables.append(_comparison_table(analysis))
        tables.append(_effects_table(analysis))
    if analysis.metric_comparisons:
        tables.append(_metric_table(analysis))
    sensitivity = _sensitivity_table(analysis) if analysis.comparisons else None
    if sensitivity is not None and sensitivity.rows:
        tables.append(sensitivity)
    errors = _error_table(analysis)
    if errors.rows:
        tables.append(errors)
    examples = _incorrect_examples(analysis)
    if examples:
        tables.append(_examples_table(examples))
    return ReportModel(
        title=_clean(exp.get("name") or "run"),
        author=_clean(exp.get("author") or ""),
        description=_clean(exp.get("description") or ""),
        hypothesis=_clean(exp.get("hypothesis") or ""),
        notice=analysis.simulated_notice,
        facts=tuple((k, _clean(v)) for k, v in facts),
        tables=tuple(tables),
        interpretations=tuple(_clean(c.interpretation) for c in analysis.comparisons),
        frontier=tuple(_clean(f) for f in analysis.frontier),
        examples=examples,
        methods=_clean(analysis.methods_text()),
        reproducibility=tuple((k, _clean(v)) for k, v in reproducibility),
        versions=tuple((_clean(k), _clean(v)) for k, v in versions),
    )


def _clean(value: object) -> str:
    """User text with control characters (ESC, BEL, …) as spaces; tab and newlines kept."""
    return _CONTROL.sub(" ", str(value))


# -- text formats ------------------------------------------------------------------------------
def _environment() -> jinja2.Environment:
    return jinja_environment("crucible_harness", "templates")


# pdfLaTeX reads UTF-8 but only knows the characters of its font encodings; for any other character
# in the document the preamble declares a replacement (LuaLaTeX and XeLaTeX need none).
_TEX_KNOWN = {
    "—": r"\textemdash{}",
    "–": r"\textendash{}",
    "−": r"\ensuremath{-}",
    "…": r"\ldots{}",
    "×": r"\ensuremath{\times}",
    "±": r"\ensuremath{\pm}",
    "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}",
    "α": r"\ensuremath{\alpha}",
    "β": r"\ensuremath{\beta}",
    "σ": r"\ensuremath{\sigma}",
    "θ": r"\ensuremath{\theta}",
    "δ": r"\ensuremath{\delta}",
    "·": r"\ensuremath{\cdot}",
    "μ": r"\ensuremath{\mu}",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
}


_TEX_KNOWN_RE = re.compile("|".join(map(re.escape, _TEX_KNOWN)))


def _tex_text(value: object) -> str:
    """User text for LaTeX: escaped, control characters removed, common symbols as LaTeX commands."""
    escaped = latex_escape(_CONTROL.sub(" ", str(value)))
    return _TEX_KNOWN_RE.sub(lambda m: _TEX_KNOWN[m.group(0)], escaped)


_TEX_CHUNK = 12
_LONG_TOKEN = re.compile(rf"\S{{{2 * _TEX_CHUNK},}}")


def _tex_breakable(value: object) -> str:
    """`_tex_text` for wrapped table cells: tokens of 24+ characters get a break point every 12."""
    text = _CONTROL.sub(" ", str(value))
    out, last = [], 0
    for m in _LONG_TOKEN.finditer(text):
        out.append(_tex_text(text[last : m.start()]))
        token = m.group(0)
        chunks = [token[i : i + _TEX_CHUNK] for i in range(0, len(token), _TEX_CHUNK)]
        out.append(r"\allowbreak{}".join(_tex_text(c) for c in chunks))
        last = m.end()
    out.append(_tex_text(text[last:]))
    return "".join(out)


def _tex_listing(value: object) -> str:
    """Text as a verbatim-safe listing: every character escaped, so nothing can end the block.

    Lines and indentation are kept; long lines break at every 12th character of a long token.
    """
    lines = []
    for line in str(value).split("\n"):
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        words = [_tex_breakable(w) for w in body.split(" ")]
        pad = rf"\hphantom{{{'x' * indent}}}" if indent else ""  # monospace: exact
        lines.append(pad + r"\ ".join(words) if body else r"\mbox{}")
    return "\\\\\n".join(lines)


def _tex_header(value: object) -> str:
    """A column header, broken over lines of about 12 characters (a nested tabular)."""
    lines: list[str] = []
    for word in str(value).split():
        if lines and len(lines[-1]) + 1 + len(word) <= 12:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) <= 1:
        return _tex_text(value)
    return (
        r"\begin{tabular}[b]{@{}c@{}}"
        + r"\\".join(_tex_text(line) for line in lines)
        + r"\end{tabular}"
    )


def _unicode_declarations(text: str) -> list[str]:
    out = []
    for ch in sorted({c for c in text if ord(c) > 0x7F}):
        code = f"{ord(ch):04X}"
        if 0xA0 <= ord(ch) <= 0x17F and ch not in "×±·":
            continue  # Latin-1 and Latin Extended-A: the default encodings cover them
        replacement = _TEX_KNOWN.get(ch, rf"\texttt{{[U+{code}]}}")
        out.append(rf"\DeclareUnicodeCharacter{{{code}}}{{{replacement}}}")
    return out


def _md_fence(text: str) -> str:
    """A fence of backticks longer than any run of backticks in `text` (so it cannot close early)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(analysis: Analysis) -> str:
    """The Markdown report (GitHub tables)."""
    env = _environment().overlay()
    env.filters["md_fence"] = _md_fence
    return env.get_template("report.md.j2").render(r=build_model(analysis))


def render_latex(analysis: Analysis) -> str:
    """The LaTeX report: a standalone article with booktabs tables."""
    env = _environment().overlay()
    env.filters["tex"] = _tex_text
    env.filters["tex_header"] = _tex_header
    env.filters["tex_wrap"] = _tex_breakable
    env.filters["tex_listing"] = _tex_listing
    body = env.get_template("report.tex.j2").render(
        r=build_model(analysis), unicode="%UNICODE%"
    )
    declarations = "\n".join(_unicode_declarations(body))
    return body.replace("%UNICODE%", declarations, 1)


def render_html(analysis: Analysis) -> str:
    """The HTML report: self-contained, inline CSS and SVG figures, no JavaScript."""
    import markupsafe

    names = [c.name for c in analysis.conditions]
    figures = {
        "accuracy": _figures.accuracy_figure(
            names,
            [c.accuracy for c in analysis.conditions],
            [c.accuracy_ci[0] for c in analysis.conditions],
            [c.accuracy_ci[1] for c in analysis.conditions],
        ),
        "latency": _figures.latency_figure(
            names,
            [c.latency_p50 for c in analysis.conditions],
            [c.latency_p95 for c in analysis.conditions],
            [c.latency_p99 for c in analysis.conditions],
        ),
        "cost": _figures.cost_figure(
            names,
            [c.cost_per_query for c in analysis.conditions],
            [c.accuracy for c in analysis.conditions],
            frontier=analysis.frontier,
        ),
    }
    # The figures escape every label themselves (see _figures); mark them safe for autoescaping.
    safe = {k: markupsafe.Markup(v) for k, v in figures.items()}
    return (
        _environment()
        .get_template("report.html")
        .render(r=build_model(analysis), figures=safe)
    )


# -- data formats ------------------------------------------------------------------------------
def analysis_data(analysis: Analysis) -> dict[str, Any]:
    """`analysis.json`: the analysis as plain data (records excluded), methods text and manifest.

    Non-finite numbers follow the crucible-core convention: the strings `"NaN"`, `"Infinity"` and
    `"-Infinity"`, so the file is strict JSON and reads back exactly through the core converter.
    """
    data = analysis.to_dict()
    data.pop("records", None)
    data = {
        "format": 1,
        "run_id": analysis.manifest.get("run_id"),
        "experiment": (analysis.manifest.get("experiment") or {}).get("name"),
        "n_records": len(analysis.records),
        "run_state": analysis.manifest.get("run_state"),
        "status": run_status_text(analysis.manifest),
        "summary": {
            "headers": list(analysis.SUMMARY_HEADERS),
            "rows": [list(r) for r in analysis.summary_rows()],
        },
        **data,
        "methods": analysis.methods_text(),
    }
    from crucible_core.serde import dumps, loads

    # Through the crucible converter, so numpy scalars and non-finite floats become plain JSON values.
    plain: dict[str, Any] = loads(dumps(data))
    return plain


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _table_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows for Parquet: nested values as JSON text, a column mixing kinds of value as text."""
    from crucible_core.serde import dumps

    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r))

    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int | float):
            return "number"
        if isinstance(v, str):
            return "str"
        return "nested" if isinstance(v, Mapping | list | tuple) else type(v).__name__

    out: list[dict[str, Any]] = [{} for _ in records]
    for name in names:
        values = [r.get(name) for r in records]
        kinds = {kind(v) for v in values if v is not None}
        for row, v in zip(out, values, strict=True):
            if v is None:
                row[name] = None
            elif kinds == {"nested"}:
                row[name] = dumps(v).decode()
            elif len(kinds) > 1:
                row[name] = dumps(v).decode() if kind(v) == "nested" else str(v)
            elif kinds == {"number"}:
                row[name] = float(v) if any(isinstance(x, float) for x in values) else v
            else:
                row[name] = v
    return out


# -- the notebook ------------------------------------------------------------------------------
def _markdown_cell(index: int, text: str) -> dict[str, Any]:
    return {
        "cell_type": "markdown",
        "id": f"cell-{index}",
        "metadata": {},
        "source": text,
    }


def _code_cell(index: int, code: str) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": f"cell-{index}",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": code,
    }


_NB_LOAD = '''\
import json
import math
from pathlib import Path

import polars as pl

RUN_DIR = Path()  # the directory holding this notebook and the run's records
COLUMNS = {
    "condition": pl.String, "item": pl.String, "repeat": pl.Int64, "status": pl.String,
    "correct": pl.Boolean, "latency": pl.Float64, "cost": pl.Float64,
    "input_tokens": pl.Float64, "output_tokens": pl.Float64,
}


def load_records(run_dir: Path) -> pl.DataFrame:
    """The run's task records: results.parquet, else tasks.jsonl (or results.jsonl)."""
    if (run_dir / "results.parquet").exists():
        frame = pl.read_parquet(run_dir / "results.parquet")
        return frame.select([pl.col(k).cast(t) if k in frame.columns else pl.lit(None, t).alias(k) for k, t in COLUMNS.items()])
    path = run_dir / "tasks.jsonl" if (run_dir / "tasks.jsonl").exists() else run_dir / "results.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # a torn last line of a killed run: that task was not recorded
                continue
            raise
        rows.append({k: record.get(k) for k in COLUMNS})
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


records = load_records(RUN_DIR)
records.head()
'''

_NB_SUMMARY = """\
ok = pl.col("status") == "ok"
order = pl.DataFrame({"condition": CONDITIONS, "order": list(range(len(CONDITIONS)))})
per_item = (
    records.filter(pl.col("correct").is_not_null())
    .group_by("condition", "item")
    .agg(pl.col("correct").cast(pl.Float64).mean().alias("item_accuracy"))
    .group_by("condition")
    .agg(pl.col("item_accuracy").mean().alias("accuracy"))
)
latency = pl.col("latency").filter(ok & pl.col("latency").is_not_null())
summary = (
    records.group_by("condition")
    .agg(
        tasks=pl.len(),
        completed=ok.sum(),
        errors=(~ok).sum(),
        items=pl.col("item").n_unique(),
        accuracy_completed=pl.col("correct").filter(ok & pl.col("correct").is_not_null()).cast(pl.Float64).mean(),
        latency_p50=latency.quantile(0.50, interpolation="linear"),
        latency_p95=latency.quantile(0.95, interpolation="linear"),
        latency_p99=latency.quantile(0.99, interpolation="linear"),
        latency_mean=latency.mean(),
        # an unknown cost (null) is left out, never counted as $0
        cost_total=pl.when(pl.col("cost").count() > 0).then(pl.col("cost").sum()),
        n_costed=pl.col("cost").count(),
        n_correct=(pl.col("correct").fill_null(False) & pl.col("cost").is_not_null()).sum(),
        input_tokens=pl.col("input_tokens").filter(ok).fill_null(0.0).mean(),
        output_tokens=pl.col("output_tokens").filter(ok).fill_null(0.0).mean(),
    )
    .join(per_item, on="condition", how="left")
    .join(order, on="condition", how="inner")
    .sort("order")
    .with_columns(
        cost_per_query=pl.col("cost_total") / pl.col("n_costed"),
        cost_per_correct=pl.when(pl.col("cost_total").is_null())
        .then(None)
        .when(pl.col("n_correct") > 0)
        .then(pl.col("cost_total") / pl.col("n_correct"))
        .otherwise(float("inf")),
    )
    .drop("order", "n_correct", "n_costed")
)
summary
"""

_NB_CHECK = '''\
def same(a, b):
    """Equal as reported: both missing (NaN, None), or equal to 1e-9 relative."""
    missing = lambda x: x is None or (isinstance(x, float) and math.isnan(x))
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


mismatches = [
    (row["condition"], metric, row[metric], EXPECTED[row["condition"]][metric])
    for row in summary.iter_rows(named=True)
    for metric in EXPECTED[row["condition"]]
    if not same(row[metric], EXPECTED[row["condition"]][metric])
]
assert len(summary) == len(EXPECTED), f"conditions in the records: {summary['condition'].to_list()}"
assert not mismatches, f"numbers differ from the report: {mismatches}"
print(f"All {len(EXPECTED)} condition summaries match the report.")
'''

_NB_REANALYSE = """\
try:
    from crucible_harness._analysis import analyse
    from crucible_harness._experiment import AnalysisConfig
except ImportError:  # the notebook's polars part needs only polars
    print("Install crucible-harness to recompute the intervals and tests: pip install crucible-harness")
else:
    config = AnalysisConfig(**{k: tuple(v) if k == "primary" and v else v for k, v in CONFIG.items()})
    again = analyse(records.to_dicts(), conditions=CONDITIONS, config=config, manifest=MANIFEST)
    for c in again.conditions:
        assert same(c.accuracy_ci[0], INTERVALS[c.name][0]) and same(c.accuracy_ci[1], INTERVALS[c.name][1]), c.name
    for c, (a, b, p, p_adjusted) in zip(again.comparisons, COMPARISONS, strict=True):
        assert (c.a, c.b) == (a, b) and same(c.pvalue, p) and same(c.pvalue_adjusted, p_adjusted), (a, b)
    for m, (a, b, metric, p, p_adjusted) in zip(again.metric_comparisons, METRICS, strict=True):
        assert (m.a, m.b, m.metric) == (a, b, metric) and same(m.pvalue, p) and same(m.pvalue_adjusted, p_adjusted), (a, b, metric)
    print("Intervals and p-values recomputed from the records match the report.")
    display(again)
"""

_SUMMARY_METRICS = (
    "tasks",
    "completed",
    "errors",
    "items",
    "accuracy",
    "accuracy_completed",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "latency_mean",
    "cost_total",
    "cost_per_query",
    "cost_per_correct",
    "input_tokens",
    "output_tokens",
)


def _literal(value: Any) -> str:
    """Python source that evaluates to `value` (JSON data; NaN and infinity kept)."""
    return f"json.loads({json.dumps(value, ensure_ascii=False, allow_nan=True)!r})"


def render_notebook(analysis: Analysis) -> str:
    """`report.ipynb`: nbformat v4 cells that load the records with polars and reproduce the numbers."""
    from crucible_core.render import markdown_escape

    model = build_model(analysis)
    expected = {
        c.name: {m: getattr(c, m) for m in _SUMMARY_METRICS}
        for c in analysis.conditions
    }
    intervals = {c.name: list(c.accuracy_ci) for c in analysis.conditions}
    comparisons = [
        [c.a, c.b, c.pvalue, c.pvalue_adjusted] for c in analysis.comparisons
    ]
    metrics = [
        [m.a, m.b, m.metric, m.pvalue, m.pvalue_adjusted]
        for m in analysis.metric_comparisons
    ]
    config = attrs.asdict(analysis.config)
    seed = ((analysis.manifest.get("experiment") or {}).get("run") or {}).get("seed", 0)
    manifest = {"experiment": {"run": {"seed": seed}}}
    intro = [f"# {markdown_escape(model.title)}: reproducing the report", ""]
    if model.notice:
        intro += [f"**{markdown_escape(model.notice)}**", ""]
    status = run_status_text(analysis.manifest)
    state = analysis.manifest.get("run_state")
    stopped = isinstance(state, Mapping) and state.get("status") == "stopped"
    if status is not None and not status.startswith("complete"):
        intro += [
            f"**Run status: {markdown_escape(status)}.** Every number covers only the tasks "
            + (
                "recorded; the run is finished (resuming it sends nothing more)."
                if stopped
                else "recorded; resume the run to finish it."
            ),
            "",
        ]
    if model.description:
        intro += [markdown_escape(model.description), ""]
    intro += [
        "This notebook loads the run's task records from this directory with polars (`results.parquet`, "
        "else `tasks.jsonl`), recomputes every per-condition number of the report and checks it against the "
        "values the report printed; with crucible-harness installed it also recomputes the intervals and "
        "the corrected tests.",
        "",
        f"**Methods.** {markdown_escape(model.methods)}",
    ]
    if model.interpretations:
        intro += ["", "**Comparisons** (as the report states them):", ""]
        intro += [f"- {markdown_escape(line)}" for line in model.interpretations]
    data = "\n".join(
        [
            f"CONDITIONS = {_literal([c.name for c in analysis.conditions])}",
            f"EXPECTED = {_literal(expected)}",
            f"INTERVALS = {_literal(intervals)}",
            f"COMPARISONS = {_literal(comparisons)}",
            f"METRICS = {_literal(metrics)}",
            f"CONFIG = {_literal(config)}",
            f"MANIFEST = {_literal(manifest)}",
        ]
    )
    cells = [
        _markdown_cell(0, "\n".join(intro)),
        _code_cell(1, _NB_LOAD.rstrip("\n")),
        _markdown_cell(
            2, "The numbers as the report printed them (written with the report):"
        ),
        _code_cell(3, "import json\n\n" + data),
        _markdown_cell(4, "## Per-condition summary from the records"),
        _code_cell(5, _NB_SUMMARY.rstrip("\n")),
        _code_cell(6, _NB_CHECK.rstrip("\n")),
        _markdown_cell(7, "## Intervals and corrected tests"),
        _code_cell(8, _NB_REANALYSE.rstrip("\n")),
    ]
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
    return json.dumps(notebook, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# -- writing -----------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> Path:
    with atomic_write(path) as fh:
        fh.write(text)
    return path


def _check_formats(formats: Sequence[str]) -> list[str]:
    valid = ", ".join(repr(f) for f in FORMATS)
    if isinstance(formats, str):
        raise ValidationError(
            f"`formats` must be a sequence of format names such as [{formats!r}], got the string {formats!r}; "
            f"valid formats: {valid}",
            formats=formats,
        )
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValidationError(
            f"unknown report format(s) {', '.join(repr(f) for f in unknown)}; valid formats: {valid}",
            formats=list(formats),
        )
    return list(dict.fromkeys(formats))


def write_reports(
    analysis: Analysis, run_dir: str | Path, *, formats: Sequence[str]
) -> dict[str, Path]:
    """Write the reports of an analysis into its run directory.

    Args:
        analysis: the analysis to report.
        run_dir: the directory to write into (created if missing).
        formats: any of `"markdown"` (report.md), `"latex"` (report.tex), `"html"` (report.html),
            `"notebook"` (report.ipynb), `"json"` (analysis.json), `"parquet"` (results.parquet)
            and `"jsonl"` (results.jsonl). The notebook reads the run's records from the same
            directory; when none of results.parquet, tasks.jsonl or results.jsonl is there,
            results.jsonl is written too (and returned under `"jsonl"`).

    Returns:
        The path written for each format, keyed by format.

    Raises:
        ValidationError: if a format is unknown (nothing is written then).
    """
    wanted = _check_formats(formats)
    directory = Path(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # The notebook reads the records from its own directory; make sure they are there.
    has_data = any(f in wanted for f in ("jsonl", "parquet")) or any(
        (directory / name).exists() for name in _DATA_FILES
    )
    if "notebook" in wanted and not has_data:
        wanted.append("jsonl")
    writers: dict[str, Callable[[Path], Path]] = {
        "markdown": lambda p: _write_text(p, render_markdown(analysis)),
        "latex": lambda p: _write_text(p, render_latex(analysis)),
        "html": lambda p: _write_text(p, render_html(analysis)),
        "notebook": lambda p: _write_text(p, render_notebook(analysis)),
        "json": lambda p: _write_text(p, _json_text(analysis_data(analysis))),
        "parquet": lambda p: save_records(
            _table_records(analysis.records), p, format="parquet"
        ),
        "jsonl": lambda p: save_records(
            [dict(r) for r in analysis.records], p, format="jsonl"
        ),
    }
    return {fmt: writers[fmt](directory / FORMATS[fmt]) for fmt in wanted}
