"""The report writers: every format written, parsed back, compiled, executed or rendered."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from inline_snapshot import snapshot

from crucible_core.exceptions import ValidationError
from crucible_core.serde import converter
from crucible_harness import _figures
from crucible_harness._analysis import Analysis, analyse
from crucible_harness._report import FORMATS, build_model, write_reports

ALL_FORMATS = tuple(FORMATS)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


# -- helpers: parsing the reports back ---------------------------------------------------------
def _cells(line: str) -> list[str]:
    """The cells of one GitHub table row, unescaped."""
    inner = line.strip()[1:-1]
    return [re.sub(r"\\(.)", r"\1", c).strip() for c in re.split(r"(?<!\\)\|", inner)]


def markdown_tables(text: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table under a `### caption` heading: caption → (headers, rows)."""
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    caption = None
    # fenced blocks (answers shown in full) are verbatim text, never tables
    lines = re.sub(r"^(`{3,})\n.*?\n\1$", "", text, flags=re.S | re.M).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### "):
            caption = re.sub(r"\\(.)", r"\1", line[4:])
        elif line.startswith("|") and caption is not None:
            headers = _cells(line)
            assert re.fullmatch(r"\|(:?-+:?\|)+", lines[i + 1]), lines[i + 1]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                assert len(rows[-1]) == len(headers), lines[i]
                i += 1
            tables[caption] = (headers, rows)
            caption = None
            continue
        i += 1
    return tables


def table_by_prefix(tables: dict[str, Any], prefix: str) -> Any:
    (found,) = [v for k, v in tables.items() if k.startswith(prefix)]
    return found


def number(text: str) -> float | None:
    if text == "—":
        return None
    if text == "< .001":
        return 0.0
    return float(text)  # also "NaN", "inf", ".014", "+0.120"


def same_number(text: str, value: object) -> bool:
    """The cell shows `value` rounded to the digits it prints (and nothing else)."""
    if value is None:
        return text == "—"
    assert isinstance(value, int | float)
    if text == "< .001":
        return value < 0.001
    parsed = number(text)
    assert parsed is not None
    if math.isnan(value):
        return math.isnan(parsed)
    if math.isinf(value):
        return parsed == value
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(parsed - value) <= 0.5 * 10**-decimals * (1 + 1e-9) + 1e-15


class _HTMLCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_html(text: str) -> _HTMLCollector:
    collector = _HTMLCollector()
    collector.feed(text)
    collector.close()
    return collector


_TEX_ESCAPED = {"$": r"\$", "%": r"\%", "#": r"\#", "_": r"\_", "&": r"\&"}


def check_latex_syntax(tex: str, *, n_tables: int) -> None:
    """Balanced braces and environments, booktabs rules, no unescaped special character in text."""
    body = "\n".join(
        line for line in tex.splitlines() if not line.lstrip().startswith("%")
    )
    stripped = re.sub(r"\\[{}$%#_&]", "", body)  # escaped characters are text
    depth = 0
    for ch in stripped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a closing brace without an opening one"
    assert depth == 0, "unbalanced braces"
    stack: list[str] = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", stripped):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, (
                f"\\end{{{env}}} does not close the open environment"
            )
    assert not stack, f"environments left open: {stack}"
    assert body.count(r"\begin{document}") == 1 and body.rstrip().endswith(
        r"\end{document}"
    )
    # Every results table has its three booktabs rules, and no vertical rules or \hline.
    assert body.count(r"\begin{table}") == n_tables
    assert (
        body.count(r"\toprule") == body.count(r"\bottomrule") == n_tables + 2
    )  # + facts + reproducibility
    assert body.count(r"\midrule") >= n_tables
    assert r"\hline" not in body
    # Outside the commands the template writes, special characters only appear escaped.
    text = re.sub(r"\\(begin|end)\{tabular\}(\[b\])?(\{[^}]*\})?", "", stripped)
    text = re.sub(r"\\resizebox\{\\linewidth\}\{!\}", "", text)
    assert not re.search(r"[$#^~]", text), re.search(r".{0,40}[$#^~].{0,40}", text)
    assert "_" not in text
    for bad in (
        r"\input",
        r"\include",
        r"\write",
        r"\openin",
        r"\openout",
        r"\catcode",
        r"\csname",
        r"\immediate",
    ):
        assert bad not in body


# -- contract: formats, paths, errors ----------------------------------------------------------
def test_writes_every_format_and_returns_the_paths(
    analysis: Analysis, tmp_path: Path
) -> None:
    paths = write_reports(analysis, tmp_path / "run", formats=ALL_FORMATS)
    assert list(paths) == list(ALL_FORMATS)
    for fmt, path in paths.items():
        assert path == tmp_path / "run" / FORMATS[fmt]
        assert path.stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        FORMATS.values()
    )  # no temporary files


def test_unknown_format_is_an_error_listing_the_valid_ones(
    analysis: Analysis, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="unknown report format") as info:
        write_reports(analysis, tmp_path, formats=["markdown", "pdf", "docx"])
    message = str(info.value)
    assert "'pdf'" in message and "'docx'" in message
    for fmt in FORMATS:
        assert repr(fmt) in message
    assert isinstance(info.value, ValueError)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the valid format


def test_a_bare_string_of_formats_is_an_error(
    analysis: Analysis, tmp_path: Path
) -> None:
    with pytest.raises(
        ValidationError, match=r"sequence of format names such as \['html'\]"
    ):
        write_reports(analysis, tmp_path, formats="html")


def test_no_formats_writes_nothing_and_duplicates_are_written_once(
    analysis: Analysis, tmp_path: Path
) -> None:
    assert write_reports(analysis, tmp_path, formats=()) == {}
    assert list(tmp_path.iterdir()) == []
    paths = write_reports(analysis, tmp_path, formats=["json", "json"])
    assert list(paths) == ["json"]


def test_reports_overwrite_an_earlier_report(
    analysis: Analysis, small_analysis: Analysis, tmp_path: Path
) -> None:
    write_reports(analysis, tmp_path, formats=["markdown"])
    write_reports(small_analysis, tmp_path, formats=["markdown"])
    assert (
        (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# tiny\\_test")
    )


# -- Markdown ----------------------------------------------------------------------------------
def test_markdown_tables_parse_back_to_the_analysis(
    analysis: Analysis, tmp_path: Path
) -> None:
    text = write_reports(analysis, tmp_path, formats=["markdown"])[
        "markdown"
    ].read_text(encoding="utf-8")
    tables = markdown_tables(text)
    headers, rows = table_by_prefix(tables, "Accuracy per condition")
    assert headers[5:9] == [
        "accuracy (all attempted)",
        "95% CI low",
        "95% CI high",
        "accuracy (completed only)",
    ]
    assert [r[0] for r in rows] == [analysis.label(c.name) for c in analysis.conditions]
    for row, c in zip(rows, analysis.conditions, strict=True):
        assert [int(x) for x in row[1:5]] == [c.tasks, c.completed, c.errors, c.items]
        assert same_number(row[5], c.accuracy) and same_number(
            row[8], c.accuracy_completed
        )
        assert same_number(row[6], c.accuracy_ci[0]) and same_number(
            row[7], c.accuracy_ci[1]
        )
    # the all-attempted and completed-only estimates differ when tasks failed
    assert any(c.errors for c in analysis.conditions)
    assert any(row[5] != row[8] for row in rows)

    _, rows = table_by_prefix(tables, "Latency of completed tasks")
    for row, c in zip(rows, analysis.conditions, strict=True):
        values = (
            c.latency_p50,
            c.latency_p95,
            c.latency_p99,
            c.latency_mean,
            c.cost_total,
            c.cost_per_query,
            c.cost_per_correct,
            c.input_tokens,
            c.output_tokens,
        )
        assert all(same_number(t, v) for t, v in zip(row[1:], values, strict=True)), row

    _, rows = table_by_prefix(tables, "Paired comparisons of accuracy")
    assert len(rows) == len(analysis.comparisons) == 3
    for row, cmp in zip(rows, analysis.comparisons, strict=True):
        assert row[:2] == [cmp.b, cmp.a]
        assert int(row[2]) == cmp.n_items
        compared = (
            cmp.n_repeats,
            cmp.accuracy_b,
            cmp.accuracy_a,
            cmp.difference,
            *cmp.confidence_interval,
            cmp.pvalue,
            cmp.pvalue_adjusted,
        )
        assert all(
            same_number(t, v) for t, v in zip(row[3:11], compared, strict=True)
        ), row
        ends = row[11].strip("[]").split(", ")
        assert all(
            same_number(t, v)
            for t, v in zip(ends, cmp.confidence_interval_adjusted, strict=True)
        ), row
        assert row[12] == ("yes" if cmp.significant else "no")
        assert row[13] == cmp.method

    _, rows = table_by_prefix(tables, "Effect sizes of accuracy")
    effects = [(c, e) for c in analysis.comparisons for e in c.effects]
    assert len(rows) == len(effects) == 3 * 4  # RD, OR, h and d_z (repeats)
    for row, (c, e) in zip(rows, effects, strict=True):
        assert row[:2] == [f"{c.b} − {c.a}", e.name]
        assert all(
            same_number(t, v)
            for t, v in zip(row[2:5], (e.estimate, *e.confidence_interval), strict=True)
        ), row

    _, rows = table_by_prefix(tables, "Paired comparisons of latency and cost")
    assert len(rows) == len(analysis.metric_comparisons) == 3 * 4
    for row, m in zip(rows, analysis.metric_comparisons, strict=True):
        assert row[:3] == [f"{m.b} − {m.a}", m.label, str(m.n_items)]
        values = (m.baseline, m.treatment, m.difference, *m.confidence_interval)
        assert all(same_number(t, v) for t, v in zip(row[3:8], values, strict=True))
        assert same_number(row[8], m.pvalue) and same_number(row[9], m.pvalue_adjusted)

    _, rows = table_by_prefix(tables, "Sensitivity from the run as a pilot")
    plans = [(c, p) for c in analysis.comparisons for p in c.plan]
    assert len(rows) == len(plans) > 0
    for row, (c, p) in zip(rows, plans, strict=True):
        assert [int(row[1]), int(row[2])] == [p.repeats, c.n_items]
        assert same_number(row[3], p.mde)

    _, rows = table_by_prefix(tables, "Failed tasks")
    failed = [r for r in analysis.records if r["status"] != "ok"]
    assert sum(int(r[2]) for r in rows) == len(failed) > 0
    assert analysis.methods_text().split(".")[0] in text
    assert "7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544" in text  # dataset revision
    assert "0123456789abcdef0123456789abcdef01234567" in text  # git commit


def test_markdown_renders_as_github_tables(analysis: Analysis, tmp_path: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    text = write_reports(analysis, tmp_path, formats=["markdown"])[
        "markdown"
    ].read_text(encoding="utf-8")
    html = (
        markdown_it.MarkdownIt("commonmark", {"html": True})
        .enable("table")
        .render(text)
    )
    parsed = parse_html(html)
    tables = list(parsed.tables.values())
    assert (
        len(tables) == len(build_model(analysis).tables) + 3
    )  # + facts, reproducibility, versions
    accuracy = next(t for t in tables if t[0][:1] == ["condition"] and "tasks" in t[0])
    assert [r[0] for r in accuracy[1:]] == [
        analysis.label(c.name) for c in analysis.conditions
    ]


# -- LaTeX -------------------------------------------------------------------------------------
def _tex_engines() -> list[tuple[str, list[str]]]:
    flags = ["-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error"]
    found = [
        (name, [name, *flags, "report.tex"])
        for name in ("pdflatex", "lualatex", "xelatex")
        if shutil.which(name)
    ]
    if shutil.which("tectonic"):
        found.append(("tectonic", ["tectonic", "--untrusted", "report.tex"]))
    return found


def compile_latex(tex_path: Path) -> list[str]:
    """Compile with every TeX engine installed; the names of the engines that did."""
    engines = _tex_engines()
    if not engines:
        if _env_flag("CRUCIBLE_REQUIRE_TEX"):
            pytest.fail(
                "CRUCIBLE_REQUIRE_TEX is set but no TeX engine (pdflatex, lualatex, xelatex, tectonic) is installed"
            )
        pytest.skip(
            "no TeX engine installed (pdflatex, lualatex, xelatex or tectonic); the syntax check still ran"
        )
    for name, command in engines:
        work = tex_path.parent / f"compile-{name}"
        work.mkdir()
        shutil.copy(tex_path, work / "report.tex")
        done = subprocess.run(
            command,
            cwd=work,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=240,
            check=False,
        )
        log = (
            (work / "report.log").read_text(errors="replace")
            if (work / "report.log").exists()
            else done.stdout
        )
        assert done.returncode == 0, (
            f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
        assert (work / "report.pdf").stat().st_size > 1000
        assert "/etc/passwd" not in log
        assert "Undefined control sequence" not in log
    return [name for name, _ in engines]


def test_latex_is_a_standalone_booktabs_document(
    analysis: Analysis, tmp_path: Path
) -> None:
    tex = write_reports(analysis, tmp_path, formats=["latex"])["latex"].read_text(
        encoding="utf-8"
    )
    check_latex_syntax(tex, n_tables=len(build_model(analysis).tables))
    assert r"\usepackage{booktabs}" in tex and tex.startswith("% report.tex")
    for c in analysis.conditions:
        row = next(
            line
            for line in tex.splitlines()
            if line.startswith("{}" + analysis.label(c.name) + " & " + str(c.tasks))
        )
        cells = [x.strip() for x in row.removesuffix(r"\\").strip().split(" & ")]
        assert same_number(cells[5], c.accuracy) and same_number(
            cells[8], c.accuracy_completed
        )


def test_latex_compiles(analysis: Analysis, tmp_path: Path) -> None:
    path = write_reports(analysis, tmp_path, formats=["latex"])["latex"]
    assert compile_latex(path)


def test_latex_compiles_with_any_unicode_in_user_text(tmp_path: Path, kit: Any) -> None:
    unicode = kit.build_analysis(
        {
            "modèle-α": (0.6, 1.0, 0.01),
            "模型 🙂": (0.7, 1.0, 0.02),
            "naïve – “quoted” ≤ ∑": (0.5, 1.0, 0.01),
        },
        n_items=8,
        repeats=1,
        manifest_options={
            "name": "Überprüfung ✓",
            "description": "Ünïcödé: ½ · ¿ ⟨x⟩ \u0007 bell",
        },
    )
    path = write_reports(unicode, tmp_path, formats=["latex"])["latex"]
    tex = path.read_text(encoding="utf-8")
    assert r"\DeclareUnicodeCharacter{6A21}{\texttt{[U+6A21]}}" in tex
    assert "\u0007" not in tex
    check_latex_syntax(tex, n_tables=len(build_model(unicode).tables))
    compile_latex(path)


# -- HTML --------------------------------------------------------------------------------------
def test_html_is_self_contained_with_tables_and_figures(
    analysis: Analysis, tmp_path: Path
) -> None:
    text = write_reports(analysis, tmp_path, formats=["html"])["html"].read_text(
        encoding="utf-8"
    )
    parsed = parse_html(text)
    tags = [t for t, _ in parsed.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert tags.count("svg") == 3
    csp = next(
        a["content"]
        for t, a in parsed.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None and "default-src 'none'" in csp
    for _, attrs in parsed.tags:
        for key in ("src", "href"):
            assert key not in attrs or str(attrs[key]).startswith("data:")
    rows = parsed.tables["table-accuracy"]
    assert [r[0] for r in rows[1:]] == [
        analysis.label(c.name) for c in analysis.conditions
    ]
    for row, c in zip(rows[1:], analysis.conditions, strict=True):
        assert same_number(row[5], c.accuracy) and same_number(
            row[8], c.accuracy_completed
        )
    assert {
        "table-accuracy",
        "table-latency_cost",
        "table-comparisons",
        "table-errors",
        "table-examples",
        "table-reproducibility",
        "table-versions",
    } <= set(parsed.tables)


# -- the figures -------------------------------------------------------------------------------
def test_figures_are_well_formed_svg_with_escaped_labels(kit: Any) -> None:
    names = list(kit.hostile_conditions)
    svgs = [
        _figures.accuracy_figure(
            names, [0.5, math.nan, 0.7], [0.4, math.nan, 0.6], [0.6, math.nan, 0.8]
        ),
        _figures.latency_figure(
            names, [0.5, 1.0, math.nan], [1.0, 2.0, math.nan], [2.0, 4.0, math.nan]
        ),
        _figures.cost_figure(
            names, [0.01, 0.02, 0.015], [0.5, 0.7, 0.4], frontier=names[:2]
        ),
    ]
    for svg in svgs:
        root = ET.fromstring(svg)  # well-formed XML although every label holds markup
        texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
        assert set(names) & set(texts)
        assert not [
            el
            for el in root.iter()
            if el.tag.endswith(("script", "img", "foreignObject"))
        ]
    accuracy = ET.fromstring(svgs[0])
    assert (
        len(accuracy.findall("{http://www.w3.org/2000/svg}rect")) == 2
    )  # no bar for the NaN condition
    cost = ET.fromstring(svgs[2])
    fills = [c.get("fill") for c in cost.iter("{http://www.w3.org/2000/svg}circle")]
    assert fills == ["#54a24b", "#54a24b", "#fff"]  # frontier points filled
    assert len(cost.findall("{http://www.w3.org/2000/svg}polyline")) == 1


# -- JSON, Parquet, JSONL ----------------------------------------------------------------------
def _strict_json(text: str) -> Any:
    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_json_holds_the_analysis_and_the_manifest(
    analysis: Analysis, tmp_path: Path
) -> None:
    data = _strict_json(
        write_reports(analysis, tmp_path, formats=["json"])["json"].read_text(
            encoding="utf-8"
        )
    )
    assert data["manifest"] == _strict_json(json.dumps(dict(analysis.manifest)))
    assert data["methods"] == analysis.methods_text()
    assert data["n_records"] == len(analysis.records) and "records" not in data
    assert [c["name"] for c in data["conditions"]] == [
        c.name for c in analysis.conditions
    ]
    for got, c in zip(data["conditions"], analysis.conditions, strict=True):
        assert (
            got["accuracy"] == c.accuracy
            and got["accuracy_completed"] == c.accuracy_completed
        )
        assert got["accuracy_ci"] == list(c.accuracy_ci)
    for got, cmp in zip(data["comparisons"], analysis.comparisons, strict=True):
        assert (got["a"], got["b"], got["pvalue_adjusted"]) == (
            cmp.a,
            cmp.b,
            cmp.pvalue_adjusted,
        )
    assert data["config"]["correction"] == analysis.config.correction
    assert data["summary"]["headers"] == list(Analysis.SUMMARY_HEADERS)


def test_json_writes_non_finite_numbers_as_strings(tmp_path: Path, kit: Any) -> None:
    never = kit.build_analysis(
        {"never": (0.0, 1.0, 0.01), "always": (1.0, 1.0, 0.01)},
        n_items=5,
        repeats=1,
        record_options={"error_rate": 0.0},
    )
    assert math.isinf(never.conditions[0].cost_per_correct)
    data = _strict_json(
        write_reports(never, tmp_path, formats=["json"])["json"].read_text(
            encoding="utf-8"
        )
    )
    assert (
        data["conditions"][0]["cost_per_correct"] == "Infinity"
    )  # the crucible-core convention
    assert (
        converter.structure(data["conditions"][0]["cost_per_correct"], float)
        == math.inf
    )


def test_parquet_and_jsonl_hold_one_row_per_task(
    analysis: Analysis, tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    paths = write_reports(analysis, tmp_path, formats=["parquet", "jsonl"])
    lines = paths["jsonl"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(json.dumps(dict(r))) for r in analysis.records
    ]
    table = pq.read_table(paths["parquet"])
    assert table.num_rows == len(analysis.records)
    rows = table.to_pylist()
    for row, record in zip(rows, analysis.records, strict=True):
        assert (
            row["key"],
            row["condition"],
            row["item"],
            row["status"],
            row["correct"],
        ) == (
            record["key"],
            record["condition"],
            record["item"],
            record["status"],
            record["correct"],
        )
        assert row["latency"] == record["latency"]
        assert (
            json.loads(row["metadata"]) == record["metadata"]
        )  # nested values as JSON text


# -- the notebook ------------------------------------------------------------------------------
def _nbclient() -> Any:
    try:
        import nbclient
        import nbformat
    except ImportError:
        if _env_flag("CRUCIBLE_REQUIRE_NOTEBOOK"):
            raise
        pytest.skip(
            "nbclient/nbformat are not installed (set CRUCIBLE_REQUIRE_NOTEBOOK=1 to make this an error)"
        )
    return nbclient, nbformat


def execute_notebook(path: Path) -> Any:
    nbclient, nbformat = _nbclient()
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    client = nbclient.NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def _outputs(notebook: Any) -> str:
    return "\n".join(
        str(o.get("text", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )


def test_notebook_reproduces_the_numbers_from_tasks_jsonl(
    analysis: Analysis, tmp_path: Path, kit: Any
) -> None:
    run_dir = kit.write_run_dir(analysis, tmp_path / "run")
    with (run_dir / "tasks.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(
            '{"key": "torn-last-li'
        )  # a killed run leaves a torn last line; the notebook skips it
    paths = write_reports(analysis, run_dir, formats=["notebook"])
    assert list(paths) == ["notebook"]  # tasks.jsonl is there, so no extra results file
    notebook = execute_notebook(paths["notebook"])
    out = _outputs(notebook)
    assert (
        f"All {len(analysis.conditions)} condition summaries match the report." in out
    )
    assert "Intervals and p-values recomputed from the records match the report." in out


def test_notebook_reads_results_parquet(analysis: Analysis, tmp_path: Path) -> None:
    paths = write_reports(analysis, tmp_path, formats=["parquet", "notebook"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "report.ipynb",
        "results.parquet",
    ]
    out = _outputs(execute_notebook(paths["notebook"]))
    assert "condition summaries match the report" in out


def test_notebook_checks_fail_when_the_records_disagree(
    analysis: Analysis, tmp_path: Path, kit: Any
) -> None:
    nbclient, _ = _nbclient()
    run_dir = kit.write_run_dir(analysis, tmp_path / "run")
    path = write_reports(analysis, run_dir, formats=["notebook"])["notebook"]
    records = [
        json.loads(line)
        for line in (run_dir / "tasks.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    flipped = next(r for r in records if r["status"] == "ok")
    flipped["correct"] = not flipped["correct"]
    (run_dir / "tasks.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    with pytest.raises(
        nbclient.exceptions.CellExecutionError, match="numbers differ from the report"
    ):
        execute_notebook(path)


def test_notebook_without_records_in_the_directory_writes_them(
    analysis: Analysis, tmp_path: Path
) -> None:
    paths = write_reports(analysis, tmp_path, formats=["notebook"])
    assert list(paths) == ["notebook", "jsonl"]
    assert len(paths["jsonl"].read_text(encoding="utf-8").splitlines()) == len(
        analysis.records
    )


# -- hostile text, every format ----------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_reports(
    hostile_analysis: Analysis, tmp_path_factory: pytest.TempPathFactory, kit: Any
) -> dict[str, Path]:
    run_dir = kit.write_run_dir(hostile_analysis, tmp_path_factory.mktemp("hostile"))
    return write_reports(hostile_analysis, run_dir, formats=ALL_FORMATS)


def test_hostile_text_is_inert_in_markdown(
    hostile_analysis: Analysis, hostile_reports: dict[str, Path], kit: Any
) -> None:
    text = hostile_reports["markdown"].read_text(encoding="utf-8")
    # every angle bracket escaped, outside the fenced blocks of the answers shown in full (which
    # CommonMark shows verbatim: the rendering below proves them inert)
    outside = re.sub(r"^(`{3,})\n.*?\n\1$", "", text, flags=re.S | re.M)
    assert "Incorrect answers in full" in text and outside != text
    assert not re.search(r"(?<!\\)[<>]", outside)
    tables = markdown_tables(text)
    _, rows = table_by_prefix(tables, "Accuracy per condition")
    assert [r[0] for r in rows] == [
        f"{name} (simulated)" for name in kit.hostile_conditions
    ]  # "| --- |" stayed inside its cell
    _, examples = table_by_prefix(tables, "Examples of incorrect answers")
    assert {r[4] for r in examples} <= set(kit.payloads) | {"ok"}
    assert {r[4] for r in examples} & set(kit.payloads)
    markdown_it = pytest.importorskip("markdown_it")
    html = (
        markdown_it.MarkdownIt("commonmark", {"html": True})
        .enable("table")
        .render(text)
    )
    tags = {t for t, _ in parse_html(html).tags}
    assert not tags & {"script", "img", "a"}
    assert text.startswith("# exp \\<script\\>")


def test_hostile_text_is_inert_in_latex(
    hostile_analysis: Analysis, hostile_reports: dict[str, Path]
) -> None:
    tex = hostile_reports["latex"].read_text(encoding="utf-8")
    check_latex_syntax(tex, n_tables=len(build_model(hostile_analysis).tables))
    assert r"\textbackslash{}input\{/etc/passwd\}" in tex
    assert (
        r"\$x\$ \% \# \_ \& \textasciitilde{} \textasciicircum{} \textbar{} --- \textbar{}"
        in tex
    )
    compile_latex(hostile_reports["latex"])


def test_hostile_text_is_inert_in_html(
    hostile_analysis: Analysis, hostile_reports: dict[str, Path], kit: Any
) -> None:
    text = hostile_reports["html"].read_text(encoding="utf-8")
    parsed = parse_html(text)
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "img", "iframe", "object", "embed"}
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert [r[0] for r in parsed.tables["table-accuracy"][1:]] == [
        f"{name} (simulated)" for name in kit.hostile_conditions
    ]
    assert {r[4] for r in parsed.tables["table-examples"][1:]} & set(kit.payloads)


def test_hostile_text_round_trips_in_json(
    hostile_analysis: Analysis, hostile_reports: dict[str, Path], kit: Any
) -> None:
    data = _strict_json(hostile_reports["json"].read_text(encoding="utf-8"))
    assert [c["name"] for c in data["conditions"]] == list(kit.hostile_conditions)
    assert (
        data["manifest"]["experiment"]["description"]
        == hostile_analysis.manifest["experiment"]["description"]
    )


def test_hostile_text_is_inert_in_the_notebook(
    hostile_reports: dict[str, Path],
) -> None:
    raw = json.loads(hostile_reports["notebook"].read_text(encoding="utf-8"))
    markdown = "\n".join(
        c["source"] for c in raw["cells"] if c["cell_type"] == "markdown"
    )
    assert "\\<script\\>" in markdown
    assert not re.search(r"(?<!\\)[<>]", markdown)
    out = _outputs(
        execute_notebook(hostile_reports["notebook"])
    )  # names with quotes and backslashes in code
    assert "condition summaries match the report" in out


# -- the HTML in a real browser ----------------------------------------------------------------
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        if _env_flag("CRUCIBLE_REQUIRE_BROWSER"):
            pytest.fail(
                "CRUCIBLE_REQUIRE_BROWSER is set but chromium or playwright is missing"
            )
        pytest.skip(
            "headless Chromium (Debian's `chromium`) or the playwright package is missing"
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_in_browser(browser: Any, path: Path) -> tuple[Any, dict[str, list[str]]]:
    seen: dict[str, list[str]] = {
        "console": [],
        "errors": [],
        "requests": [],
        "failed": [],
        "dialogs": [],
    }
    page = browser.new_page()
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def _check_clean(path: Path, seen: dict[str, list[str]]) -> None:
    assert (
        seen["console"] == []
        and seen["errors"] == []
        and seen["failed"] == []
        and seen["dialogs"] == []
    )
    assert seen["requests"] == [path.as_uri()]  # the page itself and nothing else


@pytest.mark.browser
def test_html_renders_in_chromium(
    browser: Any, analysis: Analysis, tmp_path: Path
) -> None:
    path = write_reports(analysis, tmp_path, formats=["html"])["html"]
    page, seen = open_in_browser(browser, path)
    try:
        _check_clean(path, seen)
        assert page.locator("svg").count() == 3
        for figure in ("accuracy", "latency", "cost"):
            box = page.locator(f"#figure-{figure} svg").bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
        cells = page.locator(
            "#table-accuracy tbody tr td:first-child"
        ).all_text_contents()
        assert cells == [analysis.label(c.name) for c in analysis.conditions]
        assert page.locator("table.results").count() == len(
            build_model(analysis).tables
        )
        assert page.title() == "humaneval-reliability: experiment report"
    finally:
        page.close()


@pytest.mark.browser
def test_hostile_html_stays_inert_in_chromium(
    browser: Any, hostile_reports: dict[str, Path], kit: Any
) -> None:
    path = hostile_reports["html"]
    page, seen = open_in_browser(browser, path)
    try:
        _check_clean(path, seen)
        assert page.locator("script, img, iframe").count() == 0
        cells = page.locator(
            "#table-accuracy tbody tr td:first-child"
        ).all_text_contents()
        assert cells == [f"{n} (simulated)" for n in kit.hostile_conditions]  # as text
        assert page.locator("h1").text_content() == f"exp {kit.payloads[0]}"
        labels = page.locator("#figure-accuracy svg text").all_text_contents()
        assert set(kit.hostile_conditions) <= set(labels)
    finally:
        page.close()


# -- snapshots ---------------------------------------------------------------------------------
def _report_text(analysis: Analysis, tmp_path: Path, fmt: str) -> str:
    return write_reports(analysis, tmp_path, formats=[fmt])[fmt].read_text(
        encoding="utf-8"
    )


def test_markdown_snapshot(small_analysis: Analysis, tmp_path: Path) -> None:
    assert _report_text(small_analysis, tmp_path, "markdown") == snapshot("""\
# tiny\\_test

A 50% & 100% check.

**Simulated models: every condition used crucible's simulated model profiles, not a real provider. Their accuracy, latency and cost are simulated, not measurements of any real model.**

| field | value |
|:---|:---|
| run | run\\_01JCRUCIBLETEST |
| created | 2025-01-01T00:00:00+00:00 |
| author | A. Researcher |
| version | 1.0 |
| tags | reliability, code |
| dataset | humaneval |
| items | 6 |
| repeats | 1 |
| conditions | 2 |
| simulated conditions | baseline, treatment |
| tasks recorded | 12 |
| scorer | humaneval-exec |

## Results

### Accuracy per condition: all attempted tasks (failures count as wrong) with 95% interval, and completed tasks only

| condition | tasks | completed | errors | items | accuracy (all attempted) | 95% CI low | 95% CI high | accuracy (completed only) |
|:---|---:|---:|---:|---:|---:|---:|---:|---:|
| baseline (simulated) | 6 | 5 | 1 | 6 | 0.500 | 0.188 | 0.812 | 0.600 |
| treatment (simulated) | 6 | 5 | 1 | 6 | 0.833 | 0.436 | 0.970 | 1.000 |

### Latency of completed tasks (seconds), cost (USD) and mean tokens per completed task

| condition | p50 (s) | p95 (s) | p99 (s) | mean (s) | cost (USD) | USD per query | USD per correct | input tokens | output tokens |
|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| baseline (simulated) | 0.700 | 0.960 | 0.992 | 0.720 | 0.0210 | 0.00350 | 0.00700 | 100 | 12.2 |
| treatment (simulated) | 0.700 | 0.960 | 0.992 | 0.720 | 0.0210 | 0.00350 | 0.00420 | 100 | 12.2 |

### Paired comparisons of accuracy, treatment minus baseline (primary family): 95% intervals from the same procedure as p, p-values adjusted with holm at alpha = 0.05

| treatment | baseline | items | repeats | accuracy (treatment) | accuracy (baseline) | difference | 95% CI low | 95% CI high | p | p adjusted | interval at adjusted level | significant | test and interval |
|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
| treatment | baseline | 6 | 1 | 0.833 | 0.500 | +0.333 | -0.187 | 0.700 | .157 | .157 | \\[-0.187, 0.700\\] | no | McNemar's test (asymptotic, no continuity correction) with Tango's score interval |

### Effect sizes of accuracy, treatment against baseline, with 95% intervals

| comparison | effect | estimate | 95% CI low | 95% CI high | interval |
|:---|:---|---:|---:|---:|---|
| treatment − baseline | risk difference | +0.333 | -0.187 | 0.700 | the test's interval (Tango's score interval) |
| treatment − baseline | odds ratio | 5.00 | 1.00 | inf | percentile cluster bootstrap over items (log scale) |
| treatment − baseline | Cohen's h | +0.73 | 0.00 | 1.91 | percentile cluster bootstrap over items |

### Paired comparisons of latency and cost, treatment minus baseline (second family): 95% intervals from the same procedure as p, p-values adjusted with holm within this family

| comparison | metric | items | baseline | treatment | difference | 95% CI low | 95% CI high | p | p adjusted | interval at adjusted level | significant | test and interval |
|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
| treatment − baseline | per-item mean latency (s) | 5 | 0.720 | 0.720 | 0.000 | 0.000 | 0.000 | 1.000 | 1.000 | \\[0.000, 0.000\\] | no | paired t-test on per-item means (df = 4) with its t interval |
| treatment − baseline | P95 latency (s) | 5 | 0.960 | 0.960 | 0.000 | 0.000 | 0.000 | 1.000 | 1.000 | \\[0.000, 0.000\\] | no | paired cluster bootstrap over items (B = 2000) with its percentile interval; fewer than 10 latencies per condition lie above P95, so its interval is rough |
| treatment − baseline | P99 latency (s) | 5 | 0.992 | 0.992 | 0.000 | 0.000 | 0.000 | 1.000 | 1.000 | \\[0.000, 0.000\\] | no | paired cluster bootstrap over items (B = 2000) with its percentile interval; fewer than 10 latencies per condition lie above P99, so its interval is rough |
| treatment − baseline | per-item mean cost per task (USD) | 6 | 0.00350 | 0.00350 | 0.00000 | 0.00000 | 0.00000 | 1.000 | 1.000 | \\[0.00000, 0.00000\\] | no | paired t-test on per-item means (df = 5) with its t interval |

### Sensitivity from the run as a pilot: the smallest accuracy difference the items run detect with 80% power at alpha = 0.05, by repeats per item

| comparison | repeats per item | items run | minimum detectable difference (80% power) |
|:---|---:|---:|---:|
| treatment − baseline | 1 | 6 | 0.741 |

### Failed tasks (after retries) by condition and error type

| condition | error type | tasks | first message |
|:---|:---|---:|---|
| baseline | ProviderTimeoutError | 1 | task took longer than 30 s |
| treatment | ProviderTimeoutError | 1 | task took longer than 30 s |

### Examples of incorrect answers (at most 3 per condition; in full below)

| condition | item | repeat | expected | prediction |
|:---|:---|---:|---|---|
| baseline | q1 | 0 | — | 41 |
| baseline | q2 | 0 | — | 41 |

### Incorrect answers in full

#### baseline, item q1, repeat 0

Expected: not recorded.

Answer:

```
41
```

#### baseline, item q2, repeat 0

Expected: not recorded.

Answer:

```
41
```

## Interpretation

- treatment − baseline: accuracy 0.833 vs 0.500, difference +0.333 (95% CI \\[-0.187, 0.700\\]) over 6 items × 1 repeat(s); McNemar's test (asymptotic, no continuity correction) with Tango's score interval, p = .157, holm-adjusted p = .157: not significant at α = 0.05. Effects (95% CI): odds ratio 5.00 \\[1.00, inf\\]; Cohen's h +0.73 \\[0.00, 1.91\\]. Minimum detectable difference at 80% power: 0.741 (d\\_z = 1.43).

**Cost–accuracy frontier** (no other condition is both cheaper and more accurate): treatment.

## Methods

Simulated models: every condition used crucible's simulated model profiles, not a real provider. Their accuracy, latency and cost are simulated, not measurements of any real model. Each of 2 conditions answered 6 items 1 time(s) (seed 42; scorer humaneval-exec). Failed tasks (after retries) count as incorrect. Records are put in task order (condition, item, repeat) before any resampling, so results do not depend on the order tasks completed. Accuracy intervals per condition are 95% cluster-bootstrap intervals over items (Wilson score intervals with a single repeat). Each comparison is treatment − baseline on the items both answered. Accuracy with one repeat: McNemar's asymptotic test without continuity correction, with Tango's score interval of the paired risk difference, which inverts it; with repeats: a paired t-test on per-item mean accuracies with its t interval. The interval and the p-value come from the same procedure, so an interval excludes zero exactly when p \\< 0.05. Effect sizes: the risk difference (with the test's interval), the odds ratio and Cohen's h of the two accuracies (percentile cluster-bootstrap intervals over items), and with repeats d\\_z of the per-item mean accuracies (noncentral-t interval). Latency and cost: paired t-tests on per-item mean latency (completed tasks) and per-item mean cost, with t intervals, and the differences of P95 and P99 latency with a paired cluster bootstrap over items (B = 2000; percentile interval and the bootstrap p-value 2·min(\\#θ\\* ≤ 0 + 1, \\#θ\\* ≥ 0 + 1)/(B + 1), which agree). Families: the 1 accuracy comparison(s) form the primary family and the 4 latency and cost comparison(s) a declared second family; p-values were adjusted with the holm method within each family; significance at α = 0.05. The CI columns are unadjusted; each comparison also gives its procedure's interval at the level the correction implies (1 − α·p/p\\_adjusted), which excludes zero exactly when the comparison is significant (simultaneous intervals for Bonferroni). Sensitivity: the minimum detectable difference is the smallest accuracy difference a paired t-test on per-item means detects with 80% power at α = 0.05 with the items and repeats run, from the run's between-item and within-item (repeat) variance as a pilot; no power is computed at the observed effect (Hoenig & Heisey 2001). Code at git commit 0123456789abcdef0123456789abcdef01234567. Software: python 3.12.0, crucible-core 0.1.0, crucible-harness 0.1.0, crucible-bench 0.1.0, numpy 2.1.0.

## Reproducibility

| field | value |
|:---|:---|
| run id | run\\_01JCRUCIBLETEST |
| experiment fingerprint | sha256:0123456789abcdef |
| random seed | 42 |
| dataset name | openai\\_humaneval |
| dataset revision | 7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544 |
| dataset checksum | sha256:9f3b1a2c |
| git commit | 0123456789abcdef0123456789abcdef01234567 |
| analysis | alpha 0.05, correction holm, confidence level 95%, 2000 bootstrap resamples, target power 80% |

| software | version |
|:---|:---|
| python | 3.12.0 |
| crucible-core | 0.1.0 |
| crucible-harness | 0.1.0 |
| crucible-bench | 0.1.0 |
| numpy | 2.1.0 |

""")


def test_latex_snapshot(small_analysis: Analysis, tmp_path: Path) -> None:
    assert _report_text(small_analysis, tmp_path, "latex") == snapshot("""\
% report.tex: written by crucible-harness. Compiles with pdflatex, lualatex, xelatex or tectonic.
\\documentclass[10pt]{article}
\\usepackage[margin=2cm]{geometry}
\\usepackage{booktabs}
\\usepackage{graphicx}
\\ifdefined\\directlua\\else\\ifdefined\\XeTeXversion\\else
% pdfLaTeX: replacements for the characters of this document its fonts do not have.

\\fi\\fi
\\newsavebox{\\cruciblebox}
\\setlength{\\tabcolsep}{4pt}
\\title{tiny\\_test}
\\author{A. Researcher}
\\date{}
\\begin{document}
\\maketitle

A 50\\% \\& 100\\% check.

\\begin{center}\\fbox{\\parbox{0.9\\linewidth}{\\textbf{Simulated models: every condition used crucible's simulated model profiles, not a real provider. Their accuracy, latency and cost are simulated, not measurements of any real model.}}}\\end{center}


\\begin{center}
\\small
\\begin{tabular}{ll}
\\toprule
{}run & run\\_01JCRUCIBLETEST \\\\
{}created & 2025-01-01T00:00:00+00:00 \\\\
{}author & A. Researcher \\\\
{}version & 1.0 \\\\
{}tags & reliability, code \\\\
{}dataset & humaneval \\\\
{}items & 6 \\\\
{}repeats & 1 \\\\
{}conditions & 2 \\\\
{}simulated conditions & baseline, treatment \\\\
{}tasks recorded & 12 \\\\
{}scorer & humaneval-exec \\\\
\\bottomrule
\\end{tabular}
\\end{center}

\\section{Results}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Accuracy per condition: all attempted tasks (failures count as wrong) with 95\\% interval, and completed tasks only}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{lrrrrrrrr}
\\toprule
{}condition & tasks & completed & errors & items & \\begin{tabular}[b]{@{}c@{}}accuracy\\\\(all\\\\attempted)\\end{tabular} & 95\\% CI low & 95\\% CI high & \\begin{tabular}[b]{@{}c@{}}accuracy\\\\(completed\\\\only)\\end{tabular} \\\\
\\midrule
{}baseline (simulated) & 6 & 5 & 1 & 6 & 0.500 & 0.188 & 0.812 & 0.600 \\\\
{}treatment (simulated) & 6 & 5 & 1 & 6 & 0.833 & 0.436 & 0.970 & 1.000 \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Latency of completed tasks (seconds), cost (USD) and mean tokens per completed task}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{lrrrrrrrrr}
\\toprule
{}condition & p50 (s) & p95 (s) & p99 (s) & mean (s) & cost (USD) & \\begin{tabular}[b]{@{}c@{}}USD per\\\\query\\end{tabular} & \\begin{tabular}[b]{@{}c@{}}USD per\\\\correct\\end{tabular} & input tokens & \\begin{tabular}[b]{@{}c@{}}output\\\\tokens\\end{tabular} \\\\
\\midrule
{}baseline (simulated) & 0.700 & 0.960 & 0.992 & 0.720 & 0.0210 & 0.00350 & 0.00700 & 100 & 12.2 \\\\
{}treatment (simulated) & 0.700 & 0.960 & 0.992 & 0.720 & 0.0210 & 0.00350 & 0.00420 & 100 & 12.2 \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Paired comparisons of accuracy, treatment minus baseline (primary family): 95\\% intervals from the same procedure as p, p-values adjusted with holm at alpha = 0.05}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{llrrrrrrrrrrrp{7cm}}
\\toprule
{}treatment & baseline & items & repeats & \\begin{tabular}[b]{@{}c@{}}accuracy\\\\(treatment)\\end{tabular} & \\begin{tabular}[b]{@{}c@{}}accuracy\\\\(baseline)\\end{tabular} & difference & 95\\% CI low & 95\\% CI high & p & p adjusted & \\begin{tabular}[b]{@{}c@{}}interval at\\\\adjusted\\\\level\\end{tabular} & significant & \\begin{tabular}[b]{@{}c@{}}test and\\\\interval\\end{tabular} \\\\
\\midrule
{}treatment & baseline & 6 & 1 & 0.833 & 0.500 & +0.333 & -0.187 & 0.700 & .157 & .157 & [-0.187, 0.700] & no & McNemar's test (asymptotic, no continuity correction) with Tango's score interval \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Effect sizes of accuracy, treatment against baseline, with 95\\% intervals}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{llrrrp{7cm}}
\\toprule
{}comparison & effect & estimate & 95\\% CI low & 95\\% CI high & interval \\\\
\\midrule
{}treatment \\ensuremath{-} baseline & risk difference & +0.333 & -0.187 & 0.700 & the test's interval (Tango's score interval) \\\\
{}treatment \\ensuremath{-} baseline & odds ratio & 5.00 & 1.00 & inf & percentile cluster bootstrap over items (log scale) \\\\
{}treatment \\ensuremath{-} baseline & Cohen's h & +0.73 & 0.00 & 1.91 & percentile cluster bootstrap over items \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Paired comparisons of latency and cost, treatment minus baseline (second family): 95\\% intervals from the same procedure as p, p-values adjusted with holm within this family}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{llrrrrrrrrrrp{7cm}}
\\toprule
{}comparison & metric & items & baseline & treatment & difference & 95\\% CI low & 95\\% CI high & p & p adjusted & \\begin{tabular}[b]{@{}c@{}}interval at\\\\adjusted\\\\level\\end{tabular} & significant & \\begin{tabular}[b]{@{}c@{}}test and\\\\interval\\end{tabular} \\\\
\\midrule
{}treatment \\ensuremath{-} baseline & per-item mean latency (s) & 5 & 0.720 & 0.720 & 0.000 & 0.000 & 0.000 & 1.000 & 1.000 & [0.000, 0.000] & no & paired t-test on per-item means (df = 4) with its t interval \\\\
{}treatment \\ensuremath{-} baseline & P95 latency (s) & 5 & 0.960 & 0.960 & 0.000 & 0.000 & 0.000 & 1.000 & 1.000 & [0.000, 0.000] & no & paired cluster bootstrap over items (B = 2000) with its percentile interval; fewer than 10 latencies per condition lie above P95, so its interval is rough \\\\
{}treatment \\ensuremath{-} baseline & P99 latency (s) & 5 & 0.992 & 0.992 & 0.000 & 0.000 & 0.000 & 1.000 & 1.000 & [0.000, 0.000] & no & paired cluster bootstrap over items (B = 2000) with its percentile interval; fewer than 10 latencies per condition lie above P99, so its interval is rough \\\\
{}treatment \\ensuremath{-} baseline & per-item mean cost per task (USD) & 6 & 0.00350 & 0.00350 & 0.00000 & 0.00000 & 0.00000 & 1.000 & 1.000 & [0.00000, 0.00000] & no & paired t-test on per-item means (df = 5) with its t interval \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Sensitivity from the run as a pilot: the smallest accuracy difference the items run detect with 80\\% power at alpha = 0.05, by repeats per item}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{lrrr}
\\toprule
{}comparison & \\begin{tabular}[b]{@{}c@{}}repeats per\\\\item\\end{tabular} & items run & \\begin{tabular}[b]{@{}c@{}}minimum\\\\detectable\\\\difference\\\\(80\\% power)\\end{tabular} \\\\
\\midrule
{}treatment \\ensuremath{-} baseline & 1 & 6 & 0.741 \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Failed tasks (after retries) by condition and error type}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{llrp{7cm}}
\\toprule
{}condition & error type & tasks & \\begin{tabular}[b]{@{}c@{}}first\\\\message\\end{tabular} \\\\
\\midrule
{}baseline & ProviderTimeoutError & 1 & task took longer than 30 s \\\\
{}treatment & ProviderTimeoutError & 1 & task took longer than 30 s \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\begin{table}[htbp]
\\centering
\\footnotesize
\\caption{Examples of incorrect answers (at most 3 per condition; in full below)}
\\begin{lrbox}{\\cruciblebox}
\\begin{tabular}{llrp{5.5cm}p{5.5cm}}
\\toprule
{}condition & item & repeat & expected & prediction \\\\
\\midrule
{}baseline & q1 & 0 & \\textemdash{} & 41 \\\\
{}baseline & q2 & 0 & \\textemdash{} & 41 \\\\
\\bottomrule
\\end{tabular}
\\end{lrbox}
\\ifdim\\wd\\cruciblebox>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox{\\cruciblebox}}\\else\\usebox{\\cruciblebox}\\fi
\\end{table}

\\subsection*{Incorrect answers in full}

\\paragraph{baseline, item q1, repeat 0}
Expected:
not recorded.

Answer:
\\begin{flushleft}\\ttfamily\\footnotesize
41
\\end{flushleft}

\\paragraph{baseline, item q2, repeat 0}
Expected:
not recorded.

Answer:
\\begin{flushleft}\\ttfamily\\footnotesize
41
\\end{flushleft}


\\subsection*{Interpretation}
\\begin{itemize}
\\item treatment \\ensuremath{-} baseline: accuracy 0.833 vs 0.500, difference +0.333 (95\\% CI [-0.187, 0.700]) over 6 items \\ensuremath{\\times} 1 repeat(s); McNemar's test (asymptotic, no continuity correction) with Tango's score interval, p = .157, holm-adjusted p = .157: not significant at \\ensuremath{\\alpha} = 0.05. Effects (95\\% CI): odds ratio 5.00 [1.00, inf]; Cohen's h +0.73 [0.00, 1.91]. Minimum detectable difference at 80\\% power: 0.741 (d\\_z = 1.43).
\\end{itemize}

\\paragraph{Cost--accuracy frontier.} No other condition is both cheaper and more accurate than treatment.

\\section{Methods}
Simulated models: every condition used crucible's simulated model profiles, not a real provider. Their accuracy, latency and cost are simulated, not measurements of any real model. Each of 2 conditions answered 6 items 1 time(s) (seed 42; scorer humaneval-exec). Failed tasks (after retries) count as incorrect. Records are put in task order (condition, item, repeat) before any resampling, so results do not depend on the order tasks completed. Accuracy intervals per condition are 95\\% cluster-bootstrap intervals over items (Wilson score intervals with a single repeat). Each comparison is treatment \\ensuremath{-} baseline on the items both answered. Accuracy with one repeat: McNemar's asymptotic test without continuity correction, with Tango's score interval of the paired risk difference, which inverts it; with repeats: a paired t-test on per-item mean accuracies with its t interval. The interval and the p-value come from the same procedure, so an interval excludes zero exactly when p \\textless{} 0.05. Effect sizes: the risk difference (with the test's interval), the odds ratio and Cohen's h of the two accuracies (percentile cluster-bootstrap intervals over items), and with repeats d\\_z of the per-item mean accuracies (noncentral-t interval). Latency and cost: paired t-tests on per-item mean latency (completed tasks) and per-item mean cost, with t intervals, and the differences of P95 and P99 latency with a paired cluster bootstrap over items (B = 2000; percentile interval and the bootstrap p-value 2\\ensuremath{\\cdot}min(\\#\\ensuremath{\\theta}* \\ensuremath{\\leq} 0 + 1, \\#\\ensuremath{\\theta}* \\ensuremath{\\geq} 0 + 1)/(B + 1), which agree). Families: the 1 accuracy comparison(s) form the primary family and the 4 latency and cost comparison(s) a declared second family; p-values were adjusted with the holm method within each family; significance at \\ensuremath{\\alpha} = 0.05. The CI columns are unadjusted; each comparison also gives its procedure's interval at the level the correction implies (1 \\ensuremath{-} \\ensuremath{\\alpha}\\ensuremath{\\cdot}p/p\\_adjusted), which excludes zero exactly when the comparison is significant (simultaneous intervals for Bonferroni). Sensitivity: the minimum detectable difference is the smallest accuracy difference a paired t-test on per-item means detects with 80\\% power at \\ensuremath{\\alpha} = 0.05 with the items and repeats run, from the run's between-item and within-item (repeat) variance as a pilot; no power is computed at the observed effect (Hoenig \\& Heisey 2001). Code at git commit 0123456789abcdef0123456789abcdef01234567. Software: python 3.12.0, crucible-core 0.1.0, crucible-harness 0.1.0, crucible-bench 0.1.0, numpy 2.1.0.

\\section{Reproducibility}
\\begin{center}
\\small
\\begin{tabular}{lp{11cm}}
\\toprule
{}run id & run\\_01JCRUCIBLETEST \\\\
{}experiment fingerprint & sha256:0123456789abcdef \\\\
{}random seed & 42 \\\\
{}dataset name & openai\\_humaneval \\\\
{}dataset revision & 7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544 \\\\
{}dataset checksum & sha256:9f3b1a2c \\\\
{}git commit & 0123456789abcdef0123456789abcdef01234567 \\\\
{}analysis & alpha 0.05, correction holm, confidence level 95\\%, 2000 bootstrap resamples, target power 80\\% \\\\
\\midrule
{}python & 3.12.0 \\\\
{}crucible-core & 0.1.0 \\\\
{}crucible-harness & 0.1.0 \\\\
{}crucible-bench & 0.1.0 \\\\
{}numpy & 2.1.0 \\\\
\\bottomrule
\\end{tabular}
\\end{center}
\\end{document}
""")


# -- incorrect answers in full (#18): the reference beside the answer, code kept as code -------------
CODE_ANSWER = (
    "def f(x):\n"
    "    ```\n"
    "    s = r'\\end{flushleft}\\end{document}' + '</code></pre><script>alert(1)</script>'\n"
    "\treturn " + "x" * 150 + "\n"
)


def _code_analysis(kit: Any) -> Analysis:
    analysis = kit.build_analysis(kit.profiles, n_items=12, repeats=1)
    records = [dict(r) for r in analysis.records]
    for r in records:
        if r["status"] == "ok" and r["correct"] is False:
            r["prediction"] = CODE_ANSWER
    manifest = dict(analysis.manifest)
    manifest["references"] = {i: f"    return x + 1  # {i}" for i in manifest["items"]}
    return analyse(records, conditions=[c.name for c in analysis.conditions],
                   config=analysis.config, manifest=manifest)  # fmt: skip


def test_incorrect_answers_show_the_reference_and_code_as_code(
    tmp_path: Path, kit: Any
) -> None:
    analysis = _code_analysis(kit)
    examples = build_model(analysis).examples
    assert examples and all(e.answer == CODE_ANSWER.expandtabs(4) for e in examples)
    assert all(e.reference == f"    return x + 1  # {e.item}" for e in examples)
    paths = write_reports(analysis, tmp_path, formats=["markdown", "html", "latex"])
    # Markdown: one fenced block per text, the fence longer than the answer's ``` run
    md = paths["markdown"].read_text(encoding="utf-8")
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").parse(md)
    fences = [t.content.rstrip("\n") for t in tokens if t.type == "fence"]
    assert fences.count(CODE_ANSWER.expandtabs(4).rstrip("\n")) == len(examples)
    assert sum(f.startswith("    return x + 1") for f in fences) == len(examples)
    _, rows = table_by_prefix(markdown_tables(md), "Examples of incorrect answers")
    assert all(r[3].startswith("return x + 1") for r in rows)  # the expected column
    # HTML: <pre><code>, escaped, lines kept
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count('<pre class="answer"><code>def f(x):\n') == len(examples)
    assert "<script>" not in html and "&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;" in html
    # LaTeX: the listing cannot be closed by its content and the long token can break
    tex = paths["latex"].read_text(encoding="utf-8")
    check_latex_syntax(tex, n_tables=len(build_model(analysis).tables))
    assert r"\textbackslash{}end" in tex  # escaped: the content closes no environment
    assert ("x" * 12 + r"\allowbreak{}" + "x" * 12) in tex
    assert r"\hphantom{xxxx}return\ " in tex  # indentation kept, the tab expanded
    compile_latex(paths["latex"])


def test_examples_without_recorded_references_say_so(
    analysis: Analysis, tmp_path: Path
) -> None:
    assert "references" not in analysis.manifest
    md = write_reports(analysis, tmp_path, formats=["markdown"])["markdown"].read_text(
        encoding="utf-8"
    )
    assert "Expected: not recorded." in md
    _, rows = table_by_prefix(markdown_tables(md), "Examples of incorrect answers")
    assert {r[3] for r in rows} == {"—"}
