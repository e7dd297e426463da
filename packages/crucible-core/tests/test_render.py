from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import polars as pl
import pytest
from inline_snapshot import snapshot

from crucible_core import config, display_options
from crucible_core.render import (
    RenderMixin,
    Table,
    View,
    format_value,
    jinja_environment,
    latex_escape,
    markdown_escape,
)


@attrs.define(frozen=True, kw_only=True)
class Result(RenderMixin):
    statistic: float
    pvalue: float
    label: str = "<b>x</b>"
    samples: np.ndarray = attrs.field(factory=lambda: np.zeros(0), eq=False)

    def _view(self) -> View:
        return View(
            title="Example test",
            facts=[("statistic", self.statistic), ("p-value", self.pvalue)],
            tables=[
                Table(
                    headers=("group", "mean"), rows=[(self.label, 1.23456), ("b", 2.0)]
                )
            ],
            notes=["A <script>alert(1)</script> note."],
        )


R = Result(statistic=2.5, pvalue=1.234e-7, samples=np.arange(5.0))


def test_text_snapshot() -> None:
    assert R.render() == snapshot("""\
Example test
════════════
statistic  2.500
p-value    1.234e-07

group     mean
────────  ─────
<b>x</b>  1.235
b         2.000

A <script>alert(1)</script> note.\
""")
    assert str(R) == R.render()


def test_html_is_escaped_and_self_contained() -> None:
    html = R._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "src=" not in html and "href=" not in html


def test_repr_short_and_numpy_safe() -> None:
    assert (
        repr(R)
        == "Result(statistic=2.500, pvalue=1.234e-07, samples=array(shape=(5,), dtype=float64))"
    )
    assert (
        repr(Result(statistic=1.0, pvalue=0.5)) == "Result(statistic=1.000, pvalue=0.5)"
    )


def test_to_dict_and_polars() -> None:
    d = Result(statistic=1.0, pvalue=0.5).to_dict()
    assert d["statistic"] == 1.0 and d["label"] == "<b>x</b>"
    df = R.to_polars()
    assert isinstance(df, pl.DataFrame) and df.columns == ["group", "mean"]


def test_bounded_by_config() -> None:
    big = View(
        title="big", tables=[Table(headers=("i",), rows=[(i,) for i in range(100)])]
    )
    from crucible_core.render import render_text

    with config(max_rows=4):
        assert display_options().max_rows == 4
        text = render_text(big)
    assert text.count("\n") < 12 and "…" in text and "99" in text
    assert display_options().max_rows == 30


def test_format_value() -> None:
    assert [
        format_value(v)
        for v in (0.5, 12345.678, 1e-12, float("nan"), True, 3, None, (0.1, 0.2))
    ] == [
        "0.5",
        "12346",
        "1e-12",
        "NaN",
        "True",
        "3",
        "—",
        "[0.1, 0.2]",
    ]


def test_escapes_neutralise_injection() -> None:
    assert latex_escape(r"50% \input{/etc/passwd} $x$ _a_") == (
        r"50\% \textbackslash{}input\{/etc/passwd\} \$x\$ \_a\_"
    )
    assert markdown_escape("[click](http://x) | <img onerror=1>\nnew row $x$") == (
        r"\[click\](http://x) \| \<img onerror=1\> new row \$x\$"
    )


def test_jinja_environment_autoescapes(tmp_path: object) -> None:
    env = jinja_environment("crucible_core", "_templates")
    out = env.get_template("_check.html").render(value="<script>x</script>")
    assert "&lt;script&gt;" in out


@attrs.define(frozen=True, kw_only=True)
class TwoTables(RenderMixin):
    def _view(self) -> View:
        return View(
            title="Two tables",
            facts=[("n", 3)],
            tables=[
                Table(
                    title="accuracy",
                    headers=("condition", "acc"),
                    rows=[("a|b", 0.5), ("c", 0.75)],
                ),
                Table(headers=("x", "y"), rows=[(1, "$\\x%")]),
            ],
        )


def test_markdown_snapshot_escapes_and_keeps_every_row() -> None:
    assert R.to_markdown() == snapshot("""\
**Example test**

|  |  |
| :--- | ---: |
| statistic | 2.500 |
| p-value | 1.234e-07 |

| group | mean |
| :--- | ---: |
| \\<b\\>x\\</b\\> | 1.235 |
| b | 2.000 |

A \\<script\\>alert(1)\\</script\\> note.
""")
    with config(max_rows=1):
        assert R.to_markdown().count("| b | 2.000 |") == 1  # papers are never elided


def test_latex_snapshot_is_booktabs_and_escaped() -> None:
    assert TwoTables().to_latex() == snapshot("""\
% Two tables (crucible)
\\begin{table}[ht]
\\centering
\\caption{Two tables}
\\begin{tabular}{lr}
\\toprule
n & 3 \\\\
\\bottomrule
\\end{tabular}
\\end{table}
\\begin{table}[ht]
\\centering
\\caption{accuracy}
\\begin{tabular}{lr}
\\toprule
condition & acc \\\\
\\midrule
a\\textbar{}b & 0.5 \\\\
c & 0.75 \\\\
\\bottomrule
\\end{tabular}
\\end{table}
\\begin{table}[ht]
\\centering
\\caption{Two tables}
\\begin{tabular}{rl}
\\toprule
x & y \\\\
\\midrule
1 & \\$\\textbackslash{}x\\% \\\\
\\bottomrule
\\end{tabular}
\\end{table}
""")


def test_latex_compiles_when_tex_is_installed(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    tex = shutil.which("pdflatex")
    if tex is None:
        if os.environ.get("CRUCIBLE_REQUIRE_TEX"):
            pytest.fail("CRUCIBLE_REQUIRE_TEX is set but pdflatex is not installed")
        pytest.skip(
            "pdflatex not installed (apt-get install texlive-latex-recommended)"
        )
    doc = (
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage[T1]{fontenc}\n"
        "\\begin{document}\n"
        + TwoTables().to_latex()
        + R.to_latex()
        + "\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc)
    out = subprocess.run(
        [tex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:]


def test_to_html_is_the_notebook_fragment() -> None:
    assert R.to_html() == R._repr_html_()


def test_to_polars_returns_every_table() -> None:
    frames = TwoTables().to_polars()
    assert isinstance(frames, dict)
    assert list(frames) == ["accuracy", "table 2"]
    assert frames["accuracy"]["acc"].to_list() == [0.5, 0.75]
    assert TwoTables().to_polars_tables()["table 2"]["y"].to_list() == ["$\\x%"]
    assert isinstance(R.to_polars(), pl.DataFrame)  # one table: one frame, as before
    assert list(R.to_polars_tables()) == ["table 1"]
