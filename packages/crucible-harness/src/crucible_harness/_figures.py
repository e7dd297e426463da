"""Inline SVG figures for the HTML report: no plotting library, no external resources, all text escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence

import crucible_harness._numbers as fmt
from crucible_core.render import html_escape

__all__ = ("accuracy_figure", "cost_figure", "latency_figure")

_W, _ROW, _LEFT, _RIGHT = 640, 28, 150, 70


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _frame(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        f'role="img" aria-label="{html_escape(title)}" font-family="system-ui,sans-serif" font-size="12">'
        f"<title>{html_escape(title)}</title>{''.join(body)}</svg>"
    )


def accuracy_figure(
    names: Sequence[str],
    accuracy: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
) -> str:
    """Horizontal bars of accuracy (0–1) with confidence-interval whiskers."""
    span = _W - _LEFT - _RIGHT
    body = []
    for i, (n, a, lo, hi) in enumerate(zip(names, accuracy, low, high, strict=True)):
        y = 10 + i * _ROW
        body.append(
            f'<text x="{_LEFT - 8}" y="{y + 14}" text-anchor="end">{html_escape(n)}</text>'
        )
        if math.isfinite(a):
            body.append(
                f'<rect x="{_LEFT}" y="{y + 4}" width="{span * a:.1f}" height="14" fill="#4c78a8"/>'
            )
            if math.isfinite(lo) and math.isfinite(hi):
                body.append(
                    f'<line x1="{_LEFT + span * lo:.1f}" x2="{_LEFT + span * hi:.1f}" y1="{y + 11}" y2="{y + 11}" stroke="#222" stroke-width="2"/>'
                )
            body.append(
                f'<text x="{_LEFT + span + 6}" y="{y + 15}">{html_escape(fmt.number(a, "proportion"))}</text>'
            )
    bottom = 10 + len(names) * _ROW
    grid = []  # drawn first, under the bars
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _LEFT + span * tick
        grid.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="6" y2="{bottom + 2}" stroke="#ccc" stroke-width="1"/>'
        )
        grid.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="10" fill="#555">{tick:g}</text>'
        )
    return _frame(bottom + 20, "Accuracy with confidence intervals", grid + body)


def latency_figure(
    names: Sequence[str],
    p50: Sequence[float],
    p95: Sequence[float],
    p99: Sequence[float],
) -> str:
    """Latency percentiles per condition on a log scale: p50 dot, p95 and p99 ticks."""
    values = _finite([*p50, *p95, *p99])
    values = [v for v in values if v > 0]
    lo, hi = (min(values), max(values)) if values else (0.001, 1.0)
    lo, hi = math.log10(lo) - 0.1, math.log10(hi) + 0.1
    span = _W - _LEFT - _RIGHT

    def x(v: float) -> float:
        return _LEFT + span * (math.log10(v) - lo) / (hi - lo)

    body = []
    for i, n in enumerate(names):
        y = 10 + i * _ROW
        body.append(
            f'<text x="{_LEFT - 8}" y="{y + 14}" text-anchor="end">{html_escape(n)}</text>'
        )
        a, b, c = p50[i], p95[i], p99[i]
        if all(math.isfinite(v) and v > 0 for v in (a, b, c)):
            body.append(
                f'<line x1="{x(a):.1f}" x2="{x(c):.1f}" y1="{y + 11}" y2="{y + 11}" stroke="#999" stroke-width="2"/>'
            )
            body.append(f'<circle cx="{x(a):.1f}" cy="{y + 11}" r="5" fill="#4c78a8"/>')
            body.append(
                f'<rect x="{x(b) - 1:.1f}" y="{y + 4}" width="3" height="14" fill="#f58518"/>'
            )
            body.append(
                f'<rect x="{x(c) - 1:.1f}" y="{y + 4}" width="3" height="14" fill="#e45756"/>'
            )
            body.append(
                f'<text x="{_LEFT + span + 6}" y="{y + 15}">{html_escape(fmt.number(c, "seconds"))} s</text>'
            )
    body.append(
        f'<text x="{_LEFT}" y="{20 + len(names) * _ROW}" fill="#555">● p50  ▮ p95 (orange)  ▮ p99 (red), seconds, log scale</text>'
    )
    return _frame(30 + len(names) * _ROW, "Latency percentiles", body)


def cost_figure(
    names: Sequence[str],
    cost: Sequence[float | None],
    accuracy: Sequence[float],
    *,
    frontier: Sequence[str] = (),
) -> str:
    """Cost per query against accuracy, one labelled point per condition.

    Conditions named in `frontier` (the cost–accuracy Pareto frontier) are drawn filled and joined
    by a line; the others are drawn hollow.
    """
    pts = [
        (n, c, a)
        for n, c, a in zip(names, cost, accuracy, strict=True)
        if c is not None
        and math.isfinite(c)
        and math.isfinite(a)  # unknown cost: no point
    ]
    height, pad = 260, 40
    cs = [p[1] for p in pts] or [0.0, 1.0]
    accs = [p[2] for p in pts] or [0.0, 1.0]
    c_lo, c_hi = min(cs), max(cs)
    a_lo, a_hi = min(accs), max(accs)
    c_hi = c_hi if c_hi > c_lo else c_lo + 1e-9
    a_hi = a_hi if a_hi > a_lo else a_lo + 1e-9

    def xy(c: float, a: float) -> tuple[float, float]:
        px = pad + 20 + (_W - 2 * pad - 140) * (c - c_lo) / (c_hi - c_lo)
        py = height - pad - 20 - (height - 2 * pad - 30) * (a - a_lo) / (a_hi - a_lo)
        return px, py

    body = [f'<line x1="{pad}" y1="{height - pad}" x2="{_W - pad}" y2="{height - pad}" stroke="#888"/>',
            f'<line x1="{pad}" y1="{pad / 2}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
            f'<text x="{_W / 2}" y="{height - 8}" text-anchor="middle">cost per query (USD)</text>',
            f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" text-anchor="middle">accuracy</text>']  # fmt: skip
    if pts:
        (x0, y0), (x1, y1) = xy(c_lo, a_lo), xy(c_hi, a_hi)
        body += [f'<text x="{x0:.1f}" y="{height - pad + 14}" text-anchor="middle" fill="#555">{html_escape(fmt.number(c_lo, "usd"))}</text>',
                 f'<text x="{x1:.1f}" y="{height - pad + 14}" text-anchor="middle" fill="#555">{html_escape(fmt.number(c_hi, "usd"))}</text>',
                 f'<text x="{pad - 3}" y="{y0 + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{html_escape(fmt.number(a_lo, "proportion"))}</text>',
                 f'<text x="{pad - 3}" y="{y1 + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{html_escape(fmt.number(a_hi, "proportion"))}</text>']  # fmt: skip
    on_frontier = sorted((p for p in pts if p[0] in set(frontier)), key=lambda p: p[1])
    if len(on_frontier) > 1:
        path = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (xy(c, a) for _, c, a in on_frontier)
        )
        body.append(
            f'<polyline points="{path}" fill="none" stroke="#54a24b" stroke-dasharray="4 3"/>'
        )
    for n, c, a in pts:
        px, py = xy(c, a)
        fill = "#54a24b" if n in set(frontier) else "#fff"
        body.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{fill}" stroke="#54a24b" stroke-width="2"/>'
        )
        body.append(f'<text x="{px + 8:.1f}" y="{py + 4:.1f}">{html_escape(n)}</text>')
    return _frame(height, "Cost per query against accuracy", body)
