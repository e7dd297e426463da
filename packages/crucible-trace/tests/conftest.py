"""Shared fixtures for crucible-trace tests."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

import crucible_trace as ct
from crucible_core import events

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

HOSTILE = (
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned = 2">',
    "{{ 7*7 }} {% if true %}jinja{% endif %}",
    "</script><script>window.__pwned = 3</script>",
    "\u2028line separator\u2029 & ampersand",
    "]]> --> <!-- `code` [link](javascript:alert(1)) | pipe",
    'click"] --> X["injected',
)
"""Text that must stay inert wherever it is rendered."""


@pytest.fixture
def sample_chain() -> ct.Chain:
    """A small chain with fixed ids and times, a DAG edge, and an unknown confidence."""
    chain = ct.Chain(
        id="chain_01JBZ0000000000000000000AA",
        name="cache design",
        created_at=T0,
        metadata={"model": "sim:gpt-4"},
    )
    a = ct.create_event(
        "task_decomposed",
        "Split into storage and eviction",
        "They change for different reasons",
        confidence=0.9,
        id="evt_01JBZ0000000000000000000B1",
        timestamp=T0,
    )
    b = ct.create_event(
        "decision_made",
        "Use an LRU cache",
        "Bounded memory with good hit rates",
        alternatives=["TTL cache", "no cache"],
        confidence=0.8,
        code_section="Cache_get",
        spec_reference="§2 latency",
        parent_ids=[a.id],
        id="evt_01JBZ0000000000000000000B2",
        timestamp=T0 + dt.timedelta(seconds=2),
    )
    c = ct.create_event(
        "uncertainty_flagged",
        "Eviction under concurrent writers",
        "",
        confidence=0.4,
        parent_ids=[b.id],
        id="evt_01JBZ0000000000000000000B3",
        timestamp=T0 + dt.timedelta(seconds=5),
    )
    d = ct.create_event(
        "ambiguity_flagged",
        "Spec does not say what a miss costs",
        "No number given",
        id="evt_01JBZ0000000000000000000B4",
        timestamp=T0 + dt.timedelta(seconds=6),
    )
    return ct.add_events(chain, [a, b, c, d])


@pytest.fixture
def hostile_chain() -> ct.Chain:
    """A chain whose every text field carries injection attempts."""
    chain = ct.Chain(
        id="chain_01JBZ0000000000000000000HH",
        name=HOSTILE[0],
        created_at=T0,
    )
    evs = [
        ct.create_event(
            "decision_made" if i % 2 else "hypothesis_formed",
            text,
            HOSTILE[(i + 1) % len(HOSTILE)],
            alternatives=[HOSTILE[(i + 2) % len(HOSTILE)]],
            confidence=(i + 1) / (len(HOSTILE) + 1),
            code_section=HOSTILE[(i + 3) % len(HOSTILE)],
            spec_reference=HOSTILE[(i + 4) % len(HOSTILE)],
            timestamp=T0 + dt.timedelta(seconds=i),
        )
        for i, text in enumerate(HOSTILE)
    ]
    return ct.add_events(chain, evs)


@pytest.fixture
def captured() -> Iterator[
    list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]]
]:
    """Every crucible trace event emitted during the test."""
    seen: list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]] = []
    events.attach(
        "trace-test",
        [("crucible", "trace")],
        lambda name, m, md: seen.append((name, dict(m), dict(md))),
    )
    try:
        yield seen
    finally:
        events.detach("trace-test")


@pytest.fixture
def custom_type() -> Iterator[str]:
    """A registered custom event type, removed afterwards."""
    ct.register_event_type("test_written", description="a test was written")
    try:
        yield "test_written"
    finally:
        ct.unregister_event_type("test_written")


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


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by playwright.

    Skips when chromium is not on PATH, unless CRUCIBLE_REQUIRE_BROWSER=1 (as in CI), which makes
    its absence a failure.
    """
    executable = shutil.which("chromium")
    if executable is None:
        message = (
            "chromium is not on PATH; install it with `apt-get install -y chromium` "
            "(CI's .ci/run does)"
        )
        if os.environ.get("CRUCIBLE_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " and CRUCIBLE_REQUIRE_BROWSER=1 requires it")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
