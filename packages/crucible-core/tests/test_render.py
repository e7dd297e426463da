from __future__ import annotations

import attrs
import numpy as np
import polars as pl
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
