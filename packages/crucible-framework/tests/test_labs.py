"""The labs: their computations against independent references, their API, and their pages in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

import crucible_hedging as hedging
from crucible.labs import (
    compare_lab,
    ensemble_lab,
    hedging_lab,
    lab,
    monitor_lab,
    trace_lab,
)

pytestmark = pytest.mark.network


def _datasets() -> Path:
    env = os.environ.get("CRUCIBLE_SHARED_DIR")
    shared = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"
    return shared / "datasets"


DATA = _datasets()


@pytest.fixture(scope="module")
def data() -> Path:
    if not (DATA / "mmlu").is_dir() or not (DATA / "gsm8k").is_dir():
        pytest.fail(
            f"the shared datasets are missing at {DATA}; set CRUCIBLE_SHARED_DIR"
        )
    return DATA


# -- computations ----------------------------------------------------------------------------------
def _mcnemar_exact(a: list[bool], b: list[bool]) -> float:
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    return float(scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def test_ensemble_lab_votes_accuracy_and_test_are_what_they_claim(data: Path) -> None:
    result = ensemble_lab(strategy="majority", rho=0.3, n=120, seed=4, datasets=data)
    assert len(result.items) == 120
    assert {it["subject"] for it in result.items} <= {
        "clinical_knowledge",
        "college_medicine",
        "medical_genetics",
        "professional_medicine",
    }
    for it in result.items:  # the ensemble's answer is the plurality of the five votes
        counts = Counter(v for v in it["votes"].values() if v is not None)
        top = max(counts.values())
        assert it["answer"] in {a for a, c in counts.items() if c == top}
        assert it["correct"]["ensemble"] == (it["answer"] == it["reference"])
    summary = result.summary(80)
    for row in summary["systems"]:
        correct = [it["correct"][row["system"]] for it in result.items[:80]]
        wilson = scipy.stats.binomtest(sum(correct), 80).proportion_ci(
            0.95, method="wilson"
        )
        assert row["accuracy"] == pytest.approx(sum(correct) / 80)
        assert row["ci"] == pytest.approx([wilson.low, wilson.high])
    best = summary["best_member"]
    a = [it["correct"][best] for it in result.items[:80]]
    b = [it["correct"]["ensemble"] for it in result.items[:80]]
    assert summary["test"]["pvalue"] == pytest.approx(_mcnemar_exact(a, b))
    # the members' profiles are visible in their accuracies: gpt-4 (0.94) beats mixtral (0.70)
    full = {r["system"]: r["accuracy"] for r in result.summary()["systems"]}
    assert full["sim:gpt-4"] > full["sim:mixtral-8x7b"]


def test_ensemble_strategies_differ_as_they_should(data: Path) -> None:
    runs = {
        s: ensemble_lab(strategy=s, n=100, seed=1, datasets=data)
        for s in ("majority", "unanimous", "cascade", "weighted")
    }
    unanimous = runs["unanimous"]
    for it in unanimous.items:  # unanimous answers only when all five agree
        agree = len(set(it["votes"].values())) == 1 and len(it["votes"]) == 5
        assert (it["answer"] is not None) == agree
    cascade = runs["cascade"].summary()
    majority = runs["majority"].summary()
    assert cascade["members_called"] < 5 == majority["members_called"]
    assert cascade["systems"][0]["cost"] < majority["systems"][0]["cost"]


def test_hedging_lab_is_the_simulator(data: Path) -> None:
    lab_ = hedging_lab(policy="percentile", value=90, n=3000, seed=2, tail=0.1)
    again = hedging_lab(policy="percentile", value=90, n=3000, seed=2, tail=0.1)
    assert np.array_equal(lab_.latency, again.latency)  # seeded
    s = lab_.summary(1500)
    assert s["hedged"]["p99"] == pytest.approx(np.percentile(lab_.latency[:1500], 99))
    assert s["unhedged"]["p99"] == pytest.approx(
        np.percentile(lab_.baseline[:1500], 99)
    )
    assert s["extra_load"] == pytest.approx(lab_.hedges[:1500].sum() / 1500)
    assert sum(s["hedged"]["counts"]) == 1500
    assert s["hedged"]["p99"] < s["unhedged"]["p99"]  # hedging cuts the tail
    assert [p["value"] for p in s["sweep"]] == [50.0, 75.0, 85.0, 90.0, 95.0, 99.0]
    loads = [p["extra_load"] for p in s["sweep"]]
    assert loads == sorted(loads, reverse=True)  # waiting longer sends fewer backups
    none = hedging_lab(policy="none", n=1000).summary()
    assert none["extra_load"] == 0 and none["hedged"]["p99"] == pytest.approx(
        none["unhedged"]["p99"]
    )
    capped = hedging_lab(policy="percentile", value=50, budget=0.05, n=4000).summary()
    assert capped["report"]["budget_denied"] > 0 and capped["extra_load"] < 0.1
    own = hedging_lab(
        policy="fixed", value=0.3, samples=[0.1, 0.12, 0.2, 2.5] * 50, n=2000
    )
    assert own.source.startswith("attempt latencies resampled from 200")
    assert set(np.unique(own.baseline)) <= {0.1, 0.12, 0.2, 2.5}
    direct = hedging.simulate(
        hedging.Empirical(samples=[0.1, 0.12, 0.2, 2.5] * 50),
        hedging.Fixed(delay=0.3),
        n=2000,
        seed=0,
    )
    assert np.array_equal(direct.latency, own.latency)


def test_compare_lab_statistics_match_references(data: Path) -> None:
    import statsmodels.stats.multitest as mt
    from statsmodels.stats.power import NormalIndPower

    result = compare_lab(n=200, seed=3, datasets=data)
    s = result.summary(150)
    a = [it["a"]["correct"] for it in result.items[:150]]
    b = [it["b"]["correct"] for it in result.items[:150]]
    assert s["a"]["accuracy"] == pytest.approx(np.mean(a)) and s["b"][
        "accuracy"
    ] == pytest.approx(np.mean(b))
    assert s["accuracy"]["pvalue"] == pytest.approx(_mcnemar_exact(a, b))
    lat_a = [it["a"]["latency"] for it in result.items[:150]]
    lat_b = [it["b"]["latency"] for it in result.items[:150]]
    assert (
        "Wilcoxon" in s["latency"]["test"]
    )  # latencies are heavy-tailed: normality is rejected
    assert s["latency"]["pvalue"] == pytest.approx(
        scipy.stats.wilcoxon(lat_a, lat_b, method="approx", correction=True).pvalue,
        rel=1e-6,
    )
    holm = mt.multipletests(
        [s["accuracy"]["pvalue"], s["latency"]["pvalue"]], method="holm"
    )[1]
    assert [s["accuracy"]["pvalue_holm"], s["latency"]["pvalue_holm"]] == pytest.approx(
        list(holm)
    )
    h = NormalIndPower().solve_power(nobs1=150, alpha=0.05, power=0.8, ratio=1.0)
    assert s["mde"]["h"] == pytest.approx(h, rel=1e-4)
    assert s["a"]["cost"] == pytest.approx(150 * 0.002) and s["b"][
        "cost"
    ] == pytest.approx(150 * 0.005)
    assert (
        0.6 < np.median(lat_a) / 0.8 < 1.4
    )  # P50 latency as configured (virtual time)
    # the questions are GSM8K's, each with its reference
    assert all(
        it["id"].startswith("gsm8k/test/") and it["reference"] for it in result.items
    )


def test_trace_lab_emits_real_chains_and_the_parser_reads_them(data: Path) -> None:
    import crucible_trace as ct

    for seed in range(6):
        t = trace_lab(problem=seed, seed=seed, datasets=data)
        assert 10 <= t.text.count("<event ") <= 15
        parsed = t.parse()
        full = ct.parse_llm_output(t.text, "x")
        assert len(parsed["events"]) == len(full.chain.events) >= 8
        assert all(
            0 <= e["confidence"] <= 1
            for e in parsed["events"]
            if e["confidence"] is not None
        )
        assert any(e["alternatives"] for e in parsed["events"])
        assert parsed["events"][-1]["decision"] == f"answer {t.reference}"
        half = t.parse(len(t.text) // 2)
        assert len(half["events"]) < len(parsed["events"])
    assert (
        trace_lab(problem=2, seed=9, datasets=data).text
        == trace_lab(problem=2, seed=9, datasets=data).text
    )
    found = t.parse(query="answer")
    assert found["matches"] == sum("answer" in " ".join([e["decision"], e["reasoning"], *e["alternatives"], e["type"]]).lower()
                                   for e in found["events"])  # fmt: skip


@pytest.mark.parametrize("method", ["confidence_sequence", "cusum", "page_hinkley"])
def test_monitor_lab_alert_is_the_monitors_own_on_the_same_events(method: str) -> None:
    import datetime as dt

    import crucible_telemetry as ct

    result = monitor_lab(requests_per_day=2000, accuracy=0.89, method=method, seed=0)
    start = result.baseline_end
    assert start == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    # the store holds one scored event per request, 30 baseline days and the monitored day
    evs = ct.query_events(store=result.store)
    assert len(evs) == 31 * 2000
    correct = np.array([m["correct"] for m in evs.column("metadata")], bool)
    stamps = np.array(evs.column("timestamp_ns"))
    before = stamps < int(start.timestamp() * 1e9)
    # the monitor, run directly on the store: a baseline of the 30 days, then one poll of the day
    baseline = ct.Baseline.from_store(
        result.store, since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), until=start
    )
    assert baseline.metrics["accuracy"].value == pytest.approx(correct[before].mean())
    monitor = ct.Monitor(baseline, metrics=("accuracy",), method=method)  # type: ignore[arg-type]
    direct = monitor.poll(result.store, since=start)
    assert direct and [a.summary for a in direct] == [a.summary for a in result.alerts]
    s = result.summary()
    first = s["alerts"][0]
    assert first["summary"] == direct[0].summary
    assert first["started_at"] == direct[0].started_at.isoformat()
    assert first["ci"] == pytest.approx(list(direct[0].change_ci))
    assert (
        first["ci"][1] < 0 < first["detected_hour"] - 6
    )  # a drop, found after the slip
    assert s["delay_hours"] == pytest.approx(first["detected_hour"] - 6)
    # a normal day's accuracy: the binomial 95% range at the baseline level
    n, p = 2000, baseline.metrics["accuracy"].value
    assert s["baseline"]["band"] == pytest.approx(
        list(scipy.stats.binom.ppf([0.025, 0.975], n, p) / n)
    )
    days = stamps // (86_400 * 10**9) - stamps.min() // (86_400 * 10**9)
    assert [d["correct"] for d in s["daily"]] == [
        int(correct[days == k].sum()) for k in range(31)
    ]
    # the trace ends where the monitor's statistic ends, against its threshold
    assert s["detector"]["trace"][-1] == pytest.approx(
        [24.0, monitor.statistics()["accuracy"][0]]
    )
    assert s["detector"]["threshold"] == monitor.statistics()["accuracy"][1]
    # watching the day: by hour h only the alarms raised by then, and the day's requests so far
    early = result.summary(int(first["detected_hour"]))
    assert early["alerts"] == [] and early["next"] == []
    assert early["daily"][-1]["n"] < 2000 and len(s["next"]) == 4


@pytest.mark.parametrize("method", ["confidence_sequence", "cusum", "page_hinkley"])
def test_monitor_lab_raises_no_alert_when_nothing_changes(method: str) -> None:
    quiet = monitor_lab(requests_per_day=2000, accuracy=0.92, method=method, seed=0)
    s = quiet.summary()
    assert quiet.alerts == () and s["alerts"] == [] and s["next"] == []
    assert max(v for _, v in s["detector"]["trace"]) < s["detector"]["threshold"]
    with pytest.raises(ValueError, match="unknown method"):
        monitor_lab(method="shewhart")


# -- the server --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[Any]:
    with lab(tmp_path_factory.mktemp("lab-runs"), datasets=data) as v:
        yield v


def _base(v: Any) -> str:
    return f"http://127.0.0.1:{v.port}"


def _get(url: str, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        body = err.read().decode()
        err.close()
        return err.code, body


def _post(url: str, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method="POST", data=b"", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        body = err.read().decode()
        err.close()
        return err.code, body


def test_api_serves_prefixes_and_refuses_bad_settings(server: Any, data: Path) -> None:
    base = _base(server)
    status, d = _get(base + "/api/lab/ensemble?n=60&seed=2&upto=20&since=5")
    assert (
        status == 200
        and d["upto"] == 20
        and len(d["items"]) == 15
        and d["simulated"].startswith("Simulated")
    )
    assert (
        d["systems"] == ensemble_lab(n=60, seed=2, datasets=data).summary(20)["systems"]
    )
    for bad in ("strategy=plurality", "rho=2", "n=3", "upto=abc"):
        status, body = _get(base + "/api/lab/ensemble?" + bad)
        assert status == 400 and "must" in body, bad
    assert _get(base + "/api/lab/hedging?policy=fixed&value=-1")[0] == 400
    assert _get(base + "/api/lab/hedging?samples=1,x")[0] == 400
    assert _get(base + "/api/lab/hedging?run=nope")[0] == 404
    status, t = _get(base + "/api/lab/trace?problem=3&upto=400")
    assert (
        status == 200
        and t["upto"] == 400
        and t["text"] == trace_lab(problem=3, datasets=data).text[:400]
    )


def test_monitor_api_serves_the_day_by_the_hour_and_refuses_bad_settings(
    server: Any,
) -> None:
    base = _base(server)
    status, d = _get(base + "/api/lab/monitor?requests_per_day=2000&upto=12")
    expected = monitor_lab(requests_per_day=2000).summary(12)
    assert status == 200 and d["hours"] == 12 and d["simulated"].startswith("Simulated")
    assert d["alerts"] == json.loads(json.dumps(expected["alerts"]))
    assert d["daily"][-1]["n"] == expected["daily"][-1]["n"]
    hostile = urllib.request.quote("<img src=x onerror=alert(1)>")
    for bad in ("method=shewhart", "accuracy=1.5", "requests_per_day=10", "upto=25",
                "slip_hour=2.5", "method=" + hostile):  # fmt: skip
        status, body = _get(base + "/api/lab/monitor?" + bad)
        assert status == 400 and "must" in body, bad


def test_lab_pages_have_no_inline_script_and_build_no_html_from_data(
    server: Any,
) -> None:
    with urllib.request.urlopen(_base(server) + "/labs/ensemble", timeout=10) as r:
        shell = r.read().decode()
        csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert "<script>" not in shell and " on" not in shell.replace(" one", "")
    with urllib.request.urlopen(_base(server) + "/lab-static/labs.js", timeout=10) as r:
        js = r.read().decode()
    assert (
        "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js
    )
    assert _get(_base(server) + "/lab-static/..%2f_compute.py")[0] == 404


def test_report_run_goes_through_the_harness_and_appears_in_the_viewer(
    server: Any,
) -> None:
    base = _base(server)
    assert (
        _post(base + "/api/lab/compare/report?n=30")[0] == 403
    )  # no custom header: a cross-site form
    status, r = _post(
        base + "/api/lab/compare/report?n=30&seed=1", **{"X-Crucible-Lab": "1"}
    )
    assert status == 200 and r["run"].startswith("labs/lab-ab-gsm8k")
    assert "# lab-ab-gsm8k" in r["markdown"] and Path(r["reports"]["html"]).is_file()
    records = [
        json.loads(line)
        for line in (Path(r["run_dir"]) / "tasks.jsonl").read_text().splitlines()
    ]
    assert len(records) == 60 and {x["condition"] for x in records} == {"A", "B"}
    ab = compare_lab(n=30, seed=1, datasets=DATA)
    for x in records:  # the harness scored the same answers the lab did
        it = next(i for i in ab.items if i["id"] == x["item"])
        assert bool(x["correct"]) == it[x["condition"].lower()]["correct"]
    status, runs = _get(base + "/api/runs")
    assert r["run"] in {x["id"] for x in runs["runs"]}
    status, h = _get(
        base
        + "/api/lab/hedging?run="
        + urllib.request.quote(r["run"])
        + "&policy=fixed&value=1&n=500"
    )
    assert status == 200 and "60 observed latencies" in h["simulated"]


def test_labs_require_the_token_off_loopback(tmp_path: Path, data: Path) -> None:
    with lab(tmp_path, datasets=data, token="lab-token") as v:
        for path in (
            "/labs",
            "/labs/ensemble",
            "/lab-static/labs.js",
            "/api/lab/trace",
        ):
            assert _get(_base(v) + path)[0] == 401
        assert (
            _get(_base(v) + "/api/lab/trace?upto=10", Authorization="Bearer lab-token")[
                0
            ]
            == 200
        )


# -- the pages, in Chromium ------------------------------------------------------------------------
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        if os.environ.get("CRUCIBLE_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "CRUCIBLE_REQUIRE_BROWSER=1 but chromium or playwright is missing"
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


class Page:
    def __init__(self, browser: Any, origin: str) -> None:
        self.origin = origin
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: str) -> Any:
        self.page.goto(self.origin + path, wait_until="load")
        self.page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        return self.page

    def finish(self, pace: str = "0") -> None:
        """Run again at `pace` and wait for the whole run."""
        page = self.page
        page.select_option("select[name=speed]", pace)
        page.click("[data-testid=run]")
        page.wait_for_selector("[data-testid=progress][data-done='1']", timeout=60_000)

    def check_clean(self) -> None:
        assert self.problems == []
        assert all(u.startswith(self.origin) for u in self.requests), self.requests


@pytest.fixture
def page(browser: Any, server: Any) -> Iterator[Page]:
    p = Page(browser, _base(server))
    try:
        yield p
    finally:
        p.page.close()


def _fact(page: Any, name: str) -> str:
    return str(page.locator(f"[data-fact={name}]").first.text_content())


def test_labs_index_links_every_lab(page: Page) -> None:
    p = page.open("/labs")
    assert p.locator("[data-testid=labs] a").all_text_contents() == [
        "Ensemble reliability",
        "Hedging simulator",
        "Statistical comparison",
        "Causal trace explorer",
        "Production monitoring",
    ]
    page.check_clean()


def test_ensemble_page_watches_votes_arrive_and_switches_strategy(
    page: Page, data: Path
) -> None:
    p = page.open("/labs/ensemble?n=80&seed=5")
    assert "Simulated" in p.locator("[data-testid=simulated]").text_content()
    p.wait_for_function(
        "() => Number(document.querySelector('[data-testid=progress]').dataset.upto) >= 2",
        timeout=30_000,
    )
    p.wait_for_selector(
        "[data-testid=progress][data-done='1']", timeout=60_000
    )  # the default pace: in steps
    expected = ensemble_lab(n=80, seed=5, datasets=data).summary()
    rows = p.locator("[data-testid=systems-table] tbody tr")
    assert rows.count() == 6
    assert (
        rows.first.locator("td").nth(3).text_content()
        == f"{expected['systems'][0]['correct']}/80"
    )
    assert p.locator("[data-testid=votes] .vote-row").count() == 12
    assert p.locator("[data-testid=charts] svg").count() == 2
    p.select_option("select[name=strategy]", "cascade")
    page.finish()
    cascade = ensemble_lab(strategy="cascade", n=80, seed=5, datasets=data).summary()
    assert (
        rows.first.locator("td").nth(3).text_content()
        == f"{cascade['systems'][0]['correct']}/80"
    )
    assert "strategy=cascade" in p.url
    assert _fact(p, "pvalue") in p.locator("[data-testid=test]").text_content()
    page.check_clean()


def test_hedging_page_shows_histograms_timeline_and_the_sweep(page: Page) -> None:
    p = page.open("/labs/hedging?n=2000&policy=fixed&value=1")
    page.finish()
    expected = hedging_lab(policy="fixed", value=1.0, n=2000).summary()
    assert _fact(p, "extra_load") == f"{100 * expected['extra_load']:.1f}%"
    assert p.locator("[data-testid=charts] svg").count() == 1
    assert p.locator("[data-testid=timeline] svg rect").count() >= 20
    assert p.locator("[data-testid=sweep-table] tbody tr").count() == 7
    p.fill("textarea[name=samples]", "100 120 200 2500 110 130")
    page.finish()
    assert (
        "resampled from 6 observed"
        in p.locator("[data-testid=simulated]").text_content()
    )
    page.check_clean()


def test_compare_page_updates_the_analysis_and_generates_the_reports(
    page: Page, data: Path
) -> None:
    p = page.open("/labs/compare?n=120&seed=2")
    p.wait_for_selector("[data-testid=progress][data-done='1']", timeout=60_000)
    expected = compare_lab(n=120, seed=2, datasets=data).summary()
    cells = (
        p.locator("[data-testid=tests-table] tbody tr")
        .first.locator("td")
        .all_text_contents()
    )
    assert cells[0] == "accuracy (A − B)" and cells[3] == "McNemar's exact test"
    p_shown = cells[4]
    assert p_shown == (
        "< .001"
        if expected["accuracy"]["pvalue"] < 0.001
        else f"{expected['accuracy']['pvalue']:.3f}"
    )
    assert p.locator("[data-testid=tests-table] tbody tr").count() == 2
    assert p.locator("[data-testid=charts] svg").count() == 2
    p.click("[data-testid=report]")
    link = p.locator("[data-testid=report-run]")
    link.wait_for(timeout=120_000)
    assert "lab-ab-gsm8k" in p.locator("[data-testid=report-markdown]").text_content()
    link.click()
    p.wait_for_selector("body[data-ready='1']", timeout=30_000)
    p.wait_for_selector("[data-testid=comparisons-table]", timeout=60_000)
    assert p.locator("[data-testid=summary-table] tbody tr").count() == 2
    page.check_clean()


def test_trace_page_streams_parses_and_searches(page: Page, data: Path) -> None:
    t = trace_lab(problem=4, seed=1, datasets=data)
    p = page.open("/labs/trace?problem=4&seed=1&q=answer")
    p.wait_for_selector("[data-testid=progress][data-done='1']", timeout=60_000)
    parsed = t.parse(query="answer")
    assert p.locator("[data-testid=events] li").count() == len(parsed["events"])
    assert p.locator("[data-testid=events] li.match").count() == parsed["matches"] > 0
    assert p.locator("[data-testid=raw]").text_content() == t.text
    assert _fact(p, "warnings") == str(len(parsed["warnings"]))
    assert p.locator("[data-testid=charts] svg").count() == 1
    href = p.locator("[data-testid=open-viewer]").get_attribute("href")
    viewer = p.context.browser.new_page()
    try:
        viewer.goto(page.origin + href, wait_until="load")
        viewer.wait_for_selector("#events li", timeout=10_000)
        assert viewer.locator("#events > li").count() == len(parsed["events"])
    finally:
        viewer.close()
    page.check_clean()


def test_monitor_page_shows_the_baseline_the_detector_and_the_alert(page: Page) -> None:
    p = page.open("/labs/monitor?requests_per_day=2000&seed=0")
    assert "Simulated" in p.locator("[data-testid=simulated]").text_content()
    p.wait_for_function(
        "() => Number(document.querySelector('[data-testid=progress]').dataset.upto) >= 2",
        timeout=30_000,
    )
    p.wait_for_selector("[data-testid=progress][data-done='1']", timeout=60_000)
    expected = monitor_lab(requests_per_day=2000, seed=0).summary()
    a = expected["alerts"][0]
    alert = p.locator("[data-testid=alert]")
    assert alert.count() == 1 and "accuracy degraded" in alert.text_content()
    assert _fact(p, "change") == f"{100 * a['change']:.1f} points"
    assert _fact(p, "started") == a["started_at"][:16].replace("T", " ") + " UTC"
    assert (
        p.locator("[data-testid=evidence]").text_content()
        == "Evidence: " + a["evidence"]
    )
    assert _fact(p, "baseline") == f"{100 * expected['baseline']['accuracy']:.1f}%"
    assert p.locator("[data-testid=charts] svg").count() == 2
    assert p.locator("[data-testid=next-steps] li").count() == 4
    assert "roll back" in p.locator("[data-testid=next]").text_content()
    # no change: no alert, and the page says so
    p.fill("input[name=accuracy]", "0.92")
    page.finish()
    assert p.locator("[data-testid=no-alert]").count() == 1
    assert p.locator("[data-testid=alert]").count() == 0
    page.check_clean()


def test_monitor_page_keeps_hostile_address_text_inert(page: Page) -> None:
    hostile = urllib.request.quote("<img src=x onerror=window.__pwned=1>")
    p = page.open(f"/labs/monitor?method={hostile}&seed={hostile}&requests_per_day=500")
    p.wait_for_selector("[data-testid=progress][data-done='1']", timeout=60_000)
    assert p.evaluate("() => window.__pwned") is None
    assert p.locator("main img").count() == 0
    assert _fact(p, "baseline").endswith("%")  # the defaults ran instead
    page.check_clean()


# -- the notebooks under docs/ ---------------------------------------------------------------------
NOTEBOOKS = Path(__file__).resolve().parents[3] / "docs" / "notebooks"


@pytest.mark.parametrize(
    "name", ["lab-ensemble", "lab-hedging", "lab-compare", "lab-trace"]
)
def test_lab_notebooks_run(
    name: str, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("CRUCIBLE_DATASETS", str(data))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()  # fmt: skip
    text = "\n".join(
        str(o.get("text", ""))
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    expected = {"lab-ensemble": "members/question", "lab-hedging": "extra load", "lab-compare": "# lab-ab-gsm8k",
                "lab-trace": "events"}  # fmt: skip
    assert expected[name] in text
    assert not any(
        o.get("output_type") == "error"
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
