"""Plain-text and HTML views of results, shared by every package.

A result describes itself once as a [`View`][crucible_core.render.View] (title, tables, notes); the text
`render()`, the notebook `_repr_html_` and the records behind `to_polars()` all come from it. HTML is
built with every value escaped, inline CSS, no JavaScript, and bounded by the display options.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np

from crucible_core._config import display_options
from crucible_core._optional import import_optional

if TYPE_CHECKING:
    import jinja2
    import polars

__all__ = (
    "RenderMixin",
    "Table",
    "View",
    "format_value",
    "jinja_environment",
    "render_html",
    "render_latex",
    "render_markdown",
    "render_text",
    "repr_without_defaults",
)

Cell = object


def _strs(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _rows(rows: Iterable[Iterable[Cell]]) -> tuple[tuple[Cell, ...], ...]:
    return tuple(tuple(r) for r in rows)


def _facts(facts: Iterable[tuple[str, Cell]]) -> tuple[tuple[str, Cell], ...]:
    return tuple((str(k), v) for k, v in facts)


def _tables(tables: Iterable[Table]) -> tuple[Table, ...]:
    return tuple(tables)


@attrs.define(frozen=True, kw_only=True)
class Table:
    """One table of a view: column headers and rows of cells (any value; formatted when shown)."""

    headers: tuple[str, ...] = attrs.field(converter=_strs)
    """Column names."""
    rows: tuple[tuple[Cell, ...], ...] = attrs.field(converter=_rows)
    """Rows, each as long as `headers`."""
    title: str | None = None
    """Shown above the table."""

    def records(self) -> list[dict[str, Cell]]:
        """The rows as dicts keyed by header."""
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


@attrs.define(frozen=True, kw_only=True)
class View:
    """What a result shows: a title, key/value facts, tables, and notes (e.g. an interpretation)."""

    title: str
    """The heading, e.g. `"Welch's t-test"`."""
    facts: tuple[tuple[str, Cell], ...] = attrs.field(default=(), converter=_facts)
    """Label/value pairs shown first."""
    tables: tuple[Table, ...] = attrs.field(default=(), converter=_tables)
    """Tables shown after the facts."""
    notes: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    """Sentences shown last."""


def format_value(value: object, *, precision: int | None = None) -> str:
    """Format one cell: floats to `precision` significant digits, tiny p-values in scientific form."""
    digits = display_options().precision if precision is None else precision
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if abs(x) >= 1:
            if abs(x) >= 1e15:
                return f"{x:.{max(digits - 1, 0)}e}"
            decimals = max(digits - math.floor(math.log10(abs(x))) - 1, 0)
            return f"{x:.{decimals}f}"
        return f"{x:.{digits}g}"
    if isinstance(value, tuple | list) and len(value) == 2:
        return f"[{format_value(value[0], precision=digits)}, {format_value(value[1], precision=digits)}]"
    if value is None:
        return "—"
    return str(value)


def _bounded(rows: Sequence[Sequence[str]], limit: int) -> list[list[str]]:
    if len(rows) <= limit:
        return [list(r) for r in rows]
    head = limit // 2 + limit % 2
    tail = limit // 2
    width = len(rows[0])
    return (
        [list(r) for r in rows[:head]]
        + [["…"] * width]
        + [list(r) for r in rows[-tail:] if tail]
    )


def _cells(table: Table) -> tuple[list[str], list[list[str]]]:
    opts = display_options()
    headers = list(table.headers)
    rows = [[format_value(c) for c in row] for row in table.rows]
    if len(headers) > opts.max_cols:
        keep = opts.max_cols
        headers = [*headers[:keep], "…"]
        rows = [[*r[:keep], "…"] for r in rows]
    return headers, _bounded(rows, opts.max_rows) if rows else []


def _text_table(table: Table) -> list[str]:
    headers, rows = _cells(table)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
        for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [table.title] if table.title else []
    out += [line.rstrip(), "  ".join("─" * w for w in widths)]
    for r in rows:
        out.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    return out


def render_text(view: View) -> str:
    """The plain-text form of a view (what `str(result)` and `result.render()` give)."""
    out = [view.title, "═" * max(len(view.title), 8)]
    if view.facts:
        width = max(len(k) for k, _ in view.facts)
        out += [f"{k.ljust(width)}  {format_value(v)}" for k, v in view.facts]
    for table in view.tables:
        out.append("")
        out += _text_table(table)
    if view.notes:
        out.append("")
        out += list(view.notes)
    return "\n".join(out)


_CSS = (
    "<style>.crucible-view{font-family:system-ui,sans-serif;font-size:13px}"
    ".crucible-view table{border-collapse:collapse;margin:4px 0}"
    ".crucible-view th,.crucible-view td{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
    ".crucible-view th:first-child,.crucible-view td:first-child{text-align:left}"
    ".crucible-view caption{text-align:left;font-weight:600}"
    ".crucible-view p{margin:4px 0}</style>"
)


def _html_table(table: Table) -> str:
    headers, rows = _cells(table)
    e = html.escape
    parts = ["<table>"]
    if table.title:
        parts.append(f"<caption>{e(table.title)}</caption>")
    parts.append(
        "<thead><tr>"
        + "".join(f"<th>{e(h)}</th>" for h in headers)
        + "</tr></thead><tbody>"
    )
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
    parts.append("</tbody></table>")
    return "".join(parts)


def render_html(view: View) -> str:
    """The notebook HTML of a view: self-contained, escaped, bounded by the display options."""
    e = html.escape
    parts = [f'<div class="crucible-view">{_CSS}<strong>{e(view.title)}</strong>']
    if view.facts:
        parts.append(
            _html_table(Table(headers=("", ""), rows=view.facts)).replace(
                "<thead><tr><th></th><th></th></tr></thead>", ""
            )
        )
    parts += [_html_table(t) for t in view.tables]
    parts += [f"<p>{e(n)}</p>" for n in view.notes]
    parts.append("</div>")
    return "".join(parts)


def _all_cells(table: Table) -> tuple[list[str], list[list[str]]]:
    """Every header and row, formatted: a paper table is never elided."""
    return list(table.headers), [[format_value(c) for c in row] for row in table.rows]


def _is_number(cell: object) -> bool:
    return isinstance(cell, int | float | np.integer | np.floating) and not isinstance(
        cell, bool | np.bool_
    )


def _md_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]
) -> list[str]:
    from crucible_core._escape import markdown_escape

    out = ["| " + " | ".join(markdown_escape(h) for h in headers) + " |"]
    out.append("| " + " | ".join("---:" if n else ":---" for n in numeric) + " |")
    out += ["| " + " | ".join(markdown_escape(c) for c in r) + " |" for r in rows]
    return out


def _numeric_columns(table: Table) -> list[bool]:
    width = len(table.headers)
    return [
        bool(table.rows) and all(_is_number(r[i]) or r[i] is None for r in table.rows)
        for i in range(width)
    ]


def render_markdown(view: View) -> str:
    """The view as Markdown to paste into a paper or a README: pipe tables, every row, escaped.

    Numeric columns are right-aligned; text from results (labels, model output) is escaped so it
    can add no link, emphasis, HTML or table row.
    """
    from crucible_core._escape import markdown_escape

    out = [f"**{markdown_escape(view.title)}**"]
    if view.facts:
        out += [
            "",
            *_md_table(
                ("", ""), [(k, format_value(v)) for k, v in view.facts], (False, True)
            ),
        ]
    for table in view.tables:
        headers, rows = _all_cells(table)
        out.append("")
        if table.title:
            out += [f"*{markdown_escape(table.title)}*", ""]
        out += _md_table(headers, rows, _numeric_columns(table))
    for note in view.notes:
        out += ["", markdown_escape(note)]
    return "\n".join(out) + "\n"


def _latex_tabular(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[bool],
    *,
    header: bool = True,
) -> list[str]:
    from crucible_core._escape import latex_escape

    spec = "".join("r" if n else "l" for n in numeric)
    out = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    if header:
        out += [" & ".join(latex_escape(h) for h in headers) + " \\\\", "\\midrule"]
    out += [" & ".join(latex_escape(c) for c in r) + " \\\\" for r in rows]
    out += ["\\bottomrule", "\\end{tabular}"]
    return out


def render_latex(view: View) -> str:
    """The view as LaTeX (booktabs): one `table` float per table, facts as a two-column table.

    Needs the booktabs package in the preamble. Every text cell is escaped, so a label or a model
    answer cannot inject a command, math or a comment.
    """
    from crucible_core._escape import latex_escape

    out = [f"% {latex_escape(view.title)} (crucible)"]
    if view.facts:
        out += [
            "\\begin{table}[ht]",
            "\\centering",
            f"\\caption{{{latex_escape(view.title)}}}",
        ]
        out += _latex_tabular(
            ("", ""),
            [(k, format_value(v)) for k, v in view.facts],
            (False, True),
            header=False,
        )
        out += ["\\end{table}"]
    for table in view.tables:
        headers, rows = _all_cells(table)
        caption = table.title or view.title
        out += [
            "\\begin{table}[ht]",
            "\\centering",
            f"\\caption{{{latex_escape(caption)}}}",
        ]
        out += _latex_tabular(headers, rows, _numeric_columns(table))
        out += ["\\end{table}"]
    if view.notes:
        out += ["", *(latex_escape(n) + "\n" for n in view.notes)]
    return "\n".join(out) + "\n"


def repr_without_defaults(obj: object, *, limit: int = 6) -> str:
    """A short repr of an attrs instance: only fields that differ from their defaults, at most `limit`.

    Never raises on numpy arrays or other values whose `==` is not a bool.
    """
    cls = type(obj)
    shown: list[str] = []
    if not attrs.has(cls):
        return object.__repr__(obj)
    for field in attrs.fields(cls):
        if not field.repr or field.name.startswith("_"):
            continue
        value = getattr(obj, field.name)
        default = field.default
        factory = getattr(default, "factory", None)  # an attrs.Factory default
        if callable(factory):
            default = (
                attrs.NOTHING if getattr(default, "takes_self", False) else factory()
            )
        try:
            if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
                same = bool(np.array_equal(value, default))
            else:
                same = bool(value == default)
        except Exception:  # arrays and odd types compare oddly; then show the value
            same = False
        if same:
            continue
        if isinstance(value, np.ndarray):
            text = f"array(shape={value.shape}, dtype={value.dtype})"
        elif isinstance(value, float | np.floating):
            text = format_value(value)
        else:
            text = repr(value)
            if len(text) > 60:
                text = text[:57] + "..."
        shown.append(f"{field.name}={text}")
        if len(shown) >= limit:
            shown.append("...")
            break
    return f"{cls.__name__}({', '.join(shown)})"


class RenderMixin:
    """Gives an attrs result its views from one `_view()` method.

    Subclasses implement `_view()`; they get `render()`, `__str__`, `_repr_html_`, a short `__repr__`,
    `to_markdown()`, `to_latex()` (booktabs) and `to_html()` to paste into a paper, `to_dict()`
    (through the crucible-core converter) and `to_polars()` (every table the result holds).
    """

    __slots__ = ()
    _repr_limit: ClassVar[int] = 6

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # attrs builds a slotted class with its generated `__repr__` already in the class dict;
        # put ours back so results keep the short repr without every class saying `repr=False`.
        super().__init_subclass__(**kwargs)
        generated = cls.__dict__.get("__repr__")
        code = getattr(generated, "__code__", None)
        if code is not None and code.co_filename.startswith("<attrs generated"):
            cls.__repr__ = RenderMixin.__repr__  # type: ignore[method-assign]

    def _view(self) -> View:
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def render(self) -> str:
        """The plain-text view (also `str(result)`)."""
        return render_text(self._view())

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return repr_without_defaults(self, limit=self._repr_limit)

    def _repr_html_(self) -> str:
        return render_html(self._view())

    def to_markdown(self) -> str:
        """Markdown to paste into a paper or README: every table in full (never elided), escaped."""
        return render_markdown(self._view())

    def to_latex(self) -> str:
        """LaTeX tables (needs the booktabs package), every text cell escaped."""
        return render_latex(self._view())

    def to_html(self) -> str:
        """A self-contained, escaped HTML fragment (inline CSS, no script): what a notebook shows."""
        return render_html(self._view())

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-ready values (the crucible-core converter's unstructured form)."""
        from crucible_core.serde import converter

        out: dict[str, Any] = converter.unstructure(self)
        return out

    def to_polars(self) -> polars.DataFrame | dict[str, polars.DataFrame]:
        """Every table the result holds, as polars (needs the `polars` extra).

        One DataFrame when the result has one table (or only facts: one row of them); a dict of
        DataFrames keyed by table title (`"table 2"` for an untitled second table) when it has
        several. [`to_polars_tables`][crucible_core.render.RenderMixin.to_polars_tables] always
        gives the dict.
        """
        frames = self.to_polars_tables()
        if len(frames) == 1:
            return next(iter(frames.values()))
        return frames

    def to_polars_tables(self) -> dict[str, polars.DataFrame]:
        """Every table of the result by title, as polars DataFrames; facts alone as `"facts"`."""
        pl = import_optional("polars", extra="polars")
        view = self._view()
        if not view.tables:
            return {"facts": pl.DataFrame({k: [v] for k, v in view.facts})}
        return {
            name: pl.DataFrame(t.records())
            for name, t in _named_tables(view.tables).items()
        }


def _named_tables(tables: Sequence[Table]) -> dict[str, Table]:
    named: dict[str, Table] = {}
    for i, t in enumerate(tables, start=1):
        name = t.title or f"table {i}"
        while name in named:
            name = f"{name} ({i})"
        named[name] = t
    return named


def jinja_environment(package: str, directory: str = "templates") -> jinja2.Environment:
    """The one jinja2 environment for templates shipped in `package` (autoescaping on for HTML/XML).

    Needs the `jinja2` extra. Templates ending in `.html`, `.htm` or `.xml` are escaped; others are
    not and must escape through filters (`latex_escape`, `md_escape` are registered).
    """
    jinja = import_optional("jinja2", extra="jinja2")
    env = jinja.Environment(
        loader=jinja.PackageLoader(package, directory),
        autoescape=jinja.select_autoescape(["html", "htm", "xml"]),
        undefined=jinja.StrictUndefined,
        keep_trailing_newline=True,
    )
    from crucible_core._escape import latex_escape, markdown_escape

    env.filters["latex_escape"] = latex_escape
    env.filters["md_escape"] = markdown_escape
    env.filters["fmt"] = format_value
    return env  # type: ignore[no-any-return]
