"""Every result renders as text and escaped HTML, has a short repr, and serializes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import crucible_bench as cb
from crucible_core.serde import from_json, to_json

X = [5.1, 4.9, 5.6, 5.8, 6.0, 5.2]
Y = [4.1, 4.4, 4.0, 4.8, 4.3, 4.6]
Z = [6.1, 6.4, 6.0, 5.8, 6.3, 6.9]

RESULTS = {
    "ttest": lambda: cb.ttest(X, Y),
    "mann_whitney": lambda: cb.mann_whitney(X, Y),
    "wilcoxon": lambda: cb.wilcoxon(X, Y),
    "anova": lambda: cb.anova_oneway(X, Y, Z),
    "kruskal": lambda: cb.kruskal(X, Y, Z),
    "friedman": lambda: cb.friedman(np.column_stack([X, Y, Z])),
    "rm_anova": lambda: cb.rm_anova(np.column_stack([X, Y, Z])),
    "twoway": lambda: cb.anova_twoway(X + Y, list("aaabbb") * 2, list("xy") * 6),
    "chi2": lambda: cb.chi2_independence([[10, 20], [30, 25]]),
    "fisher": lambda: cb.fisher_exact([[3, 1], [1, 3]]),
    "mcnemar": lambda: cb.mcnemar([[10, 5], [1, 10]]),
    "shapiro": lambda: cb.shapiro(X),
    "effect": lambda: cb.cohens_d(X, Y),
    "power": lambda: cb.power_ttest(effect_size=0.5, n=20),
    "bootstrap": lambda: cb.bootstrap_ci(X, n_resamples=1000, rng=1),
    "pearson": lambda: cb.pearson(X, Y),
    "compare": lambda: cb.compare(X, Y),
    "compare_groups": lambda: cb.compare_groups({"x": X, "y": Y, "z": Z}),
    "accuracy": lambda: cb.compare_accuracy([1, 1, 0, 1, 1, 0], [0, 1, 0, 0, 1, 0]),
    "plan": lambda: cb.plan_sample_size(X, Y),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_views(name):
    r = RESULTS[name]()
    text = r.render()
    assert text == str(r)
    assert text.splitlines()[0]
    html = r._repr_html_()
    assert html.startswith('<div class="crucible-view">')
    assert "<script" not in html
    short = repr(r)
    assert short.startswith(type(r).__name__ + "(")
    assert len(short) < 400
    d = r.to_dict()
    assert isinstance(d, dict)
    json.loads(to_json(r))
    assert r.interpretation


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_json_round_trip(name):
    r = RESULTS[name]()
    text = to_json(r)
    back = from_json(text, type(r))
    assert type(back) is type(r)
    assert to_json(back) == text


def test_html_escapes_labels():
    r = cb.compare(X, Y, labels=("<b>base</b>", "new & improved"))
    html = r._repr_html_()
    assert "<b>base</b>" not in html
    assert "&lt;b&gt;base&lt;/b&gt;" in html


def test_to_polars_gives_every_table():
    pytest.importorskip("polars")
    result = cb.compare_groups({"x": X, "y": Y, "z": Z})
    frames = result.to_polars()
    assert isinstance(frames, dict) and len(frames) == len(result._view().tables) > 1
    pairwise = [f for f in frames.values() if "p (holm)" in f.columns]
    assert len(pairwise) == 1 and pairwise[0].height == 3
    assert result.to_polars_tables().keys() == frames.keys()


def test_interpretation_states_the_apa_line():
    r = cb.ttest(X, Y)
    assert r.interpretation.startswith("Welch's two-sample t-test: t(")
    assert "95% CI [" in r.interpretation
    assert "p < .001" in r.interpretation or "p = ." in r.interpretation


def test_rm_anova_effect_lookup():
    r = cb.rm_anova(np.column_stack([X, Y, Z]))
    assert r.effect("within") is r.effects[0]
    with pytest.raises(KeyError, match="effects are"):
        r.effect("nope")


def test_ttest_text_view_snapshot():
    from inline_snapshot import snapshot

    assert cb.ttest(X, Y).render() == snapshot(
        "Welch's two-sample t-test\n═════════════════════════\nt               4.961\ndf              8.930\np-value         0.0007974\nalternative     two-sided\nestimate        1.067\nstandard error  0.215\n95% CI          [0.5797, 1.554]\nCohen's d       2.864\nHedges' g       2.643\nn               12\n\nWelch's two-sample t-test: t(8.93) = 4.96, p < .001 (two-sided); mean difference = 1.07, 95% CI [0.580, 1.55]; Cohen's d = 2.86 (large), Hedges' g = 2.64."
    )
    assert repr(cb.ttest(X, Y)) == snapshot(
        "TtestResult(method=\"Welch's two-sample t-test\", statistic=4.961, pvalue=0.0007974, df=8.930, alternative='two-sided', n=12, ...)"
    )


def test_accuracy_text_view_snapshot():
    from inline_snapshot import snapshot

    r = cb.compare_accuracy([1, 1, 0, 1, 1, 0], [0, 1, 0, 0, 1, 0])
    assert r.render() == snapshot(
        "Accuracy comparison\n═══════════════════\ntest                McNemar's exact test\naccuracy a          0.6667\naccuracy b          0.3333\ndifference (a − b)  0.3333\n95% CI              [-0.03334, 0.5699]\nstatistic           0.5\np-value             0.5\nitems               6, 6\nrepeats per item    1, 1\n\na accuracy 0.667 vs b 0.333: difference 0.333, 95% CI [−0.0333, 0.570]; McNemar's exact test, p = .500 (not significant at α = 0.05); a right and b wrong on 2 items, the reverse on 0."
    )
