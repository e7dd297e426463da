"""The HTML viewer: escaping, self-containment, and (in headless Chromium) inert data and filters."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

import crucible_trace as ct


def embedded(html: str) -> tuple[str, str]:
    """The JSON data element's text and the inline script's text."""
    data = re.search(
        r'<script type="application/json" id="trace-data">(.*?)</script>', html, re.S
    )
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert data is not None and script is not None
    return data.group(1), script.group(1)


def test_data_is_escaped_json(hostile_chain: ct.Chain) -> None:
    html = ct.to_html(hostile_chain)
    data, _ = embedded(html)
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        assert ch not in data
    assert json.loads(data)["events"][0]["decision"] == hostile_chain.events[0].decision
    # exactly two script elements: the inert JSON and our own script
    assert len(re.findall(r"<script", html)) == 2
    assert "onerror=" not in html.replace(
        "onerror=\\", ""
    )  # only inside JSON strings, escaped
    assert "{{" not in html.replace(
        "{{ 7*7 }}", ""
    )  # template syntax in data stays data
    assert (
        html.count("&lt;script&gt;window.__pwned = 1&lt;/script&gt;") == 2
    )  # <title>, <h1>


def test_page_is_self_contained(sample_chain: ct.Chain) -> None:
    html = ct.to_html(sample_chain)
    assert not re.search(r"(src|href)\s*=", html)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    _, script = embedded(html)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html
    assert "default-src 'none'" in html


def test_open_visualization_writes_and_opens(
    tmp_path: Path, sample_chain: ct.Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or False)
    path = ct.open_visualization(sample_chain, path=tmp_path / "v.html")
    assert path.read_text(encoding="utf-8") == ct.to_html(sample_chain)
    assert opened == [path.resolve().as_uri()]
    quiet = ct.open_visualization(sample_chain, open_browser=False)
    assert quiet.name == f"{sample_chain.id}.html"
    assert quiet.is_file()
    assert len(opened) == 1


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page()
    console: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    return page, console, requests


@pytest.mark.browser
def test_hostile_data_stays_inert_in_chromium(
    chromium: Any, tmp_path: Path, hostile_chain: ct.Chain
) -> None:
    path = ct.export(hostile_chain, tmp_path / "hostile.html")
    page, console, requests = _open(chromium, path)
    try:
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img").count() == 0
        assert page.locator("li.event").count() == len(hostile_chain.events)
        texts = page.locator("li.event .decision").all_text_contents()
        assert texts == [
            e.decision for e in hostile_chain.events
        ]  # shown verbatim, as text
        assert "{{ 7*7 }}" in page.text_content("body")
        assert "49" not in page.locator("li.event").all_text_contents()[2]
        assert page.title().startswith("<script>")
        assert requests == [path.as_uri()]  # nothing but the page itself
        assert console == []  # no CSP violation, no error
    finally:
        page.close()


@pytest.mark.browser
def test_filters_work_in_chromium(
    chromium: Any, tmp_path: Path, sample_chain: ct.Chain
) -> None:
    path = ct.export(sample_chain, tmp_path / "sample.html")
    page, console, _ = _open(chromium, path)
    try:
        visible = lambda: page.locator("li.event:visible .decision").all_text_contents()  # noqa: E731
        assert len(visible()) == 4
        assert page.text_content("#shown-count") == "4 of 4 events"
        page.fill("#search", "lru")
        assert visible() == ["Use an LRU cache"]
        page.fill("#search", "TTL")  # alternatives are searched too
        assert visible() == ["Use an LRU cache"]
        page.fill("#search", "")
        page.select_option("#type-filter", "uncertainty_flagged")
        assert visible() == ["Eviction under concurrent writers"]
        page.select_option("#type-filter", "")
        page.locator("#min-confidence").fill("0.85")
        assert visible() == ["Split into storage and eviction"]
        assert page.text_content("#shown-count") == "1 of 4 events"
        # the confidence chart draws the line and one marker per visible event with a confidence
        assert page.locator("#chart circle").count() == 1
        assert page.locator("#chart polyline").count() == 1
        assert console == []
    finally:
        page.close()


_BROKEN_OUTPUT = (
    '<event type="decision_made" confidence="0.9"><decision>Use a cache</decision></event>\n'
    '<event type="no_such_type"><decision>x</decision></event>\n'
    '<event type="decision_made" confidence="banana"><decision>Evict <b>LRU</b></decision></event>\n'
)


def test_parse_warnings_are_listed_and_escaped() -> None:
    result = ct.parse_llm_output(_BROKEN_OUTPUT, "broken")
    assert result.warnings, "the fixture must produce parse warnings"
    html = ct.to_html(result)
    assert 'id="warnings"' in html
    assert f'<b id="warning-count">{len(result.warnings)}</b>' in html
    for warning in result.warnings:
        assert f"line {warning.line}, column {warning.column}" in html
    assert "<b>LRU</b>" not in html.split('id="warnings"')[1].split("</section>")[0]
    assert 'id="warnings"' not in ct.to_html(
        result.chain
    )  # a clean chain shows no list


@pytest.mark.browser
def test_confidence_chart_has_axes_and_labels(
    chromium: Any, tmp_path: Path, sample_chain: ct.Chain
) -> None:
    path = ct.export(sample_chain, tmp_path / "axes.html")
    page, console, _ = _open(chromium, path)
    try:
        labels = page.locator("#chart text.axis-label").all_text_contents()
        assert labels == ["event (in order)", "confidence"]
        ticks = page.locator("#chart text.tick").all_text_contents()
        assert ticks == ["0.0", "0.5", "1.0", "1", str(len(sample_chain.events))]
        assert page.locator("#chart line.axis").count() == 2
        titles = page.locator("#chart circle title").all_text_contents()
        assert all(t.startswith("#") and "confidence" in t for t in titles)
        assert console == []
    finally:
        page.close()


@pytest.mark.browser
def test_parse_warnings_show_in_chromium(chromium: Any, tmp_path: Path) -> None:
    result = ct.parse_llm_output(_BROKEN_OUTPUT, "broken")
    path = tmp_path / "warnings.html"
    path.write_text(ct.to_html(result), encoding="utf-8")
    page, console, _ = _open(chromium, path)
    try:
        items = page.locator("#warnings li").all_text_contents()
        assert len(items) == len(result.warnings)
        assert page.locator("#warnings b").count() == 0  # model text stays text
        assert console == []
    finally:
        page.close()
