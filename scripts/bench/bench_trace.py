"""Benchmark crucible-trace: parse a 10,000-event model output and render its HTML viewer.

Peers for the parsing step, on the same text (which is kept well-formed XML so they can read it):
the stdlib's `xml.etree.ElementTree.fromstring` (a C expat parser; it fails on the first malformed
tag, where crucible-trace reads on and warns) and `html.parser.HTMLParser` (pure Python, like ours).

Run:
    UV_PROJECT_ENVIRONMENT=/tmp/venv-trace uv run --exact --package crucible-trace --all-extras \
        python scripts/bench/bench_trace.py [--events 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import html.parser
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import crucible_trace as ct

TYPES = sorted(ct.BUILTIN_EVENT_TYPES)
WORDS = [
    *("cache", "eviction", "latency", "budget", "retry", "parser", "token", "stream"),
    *("index", "lock", "queue", "shard", "replica", "schema", "migration", "timeout"),
    *("backoff", "vector", "embedding", "prompt", "sampler"),
]


def model_output(n: int, seed: int = 0) -> str:
    """A long, realistic model answer: prose, n event tags (some with entities and CDATA), code."""
    rng = random.Random(seed)
    parts = ["I will solve this step by step and record each decision.\n\n"]
    for i in range(n):
        words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
        alts = "".join(
            f"<alternative>{words(3)}</alternative>" for _ in range(rng.randint(0, 3))
        )
        reasoning = words(25)
        if i % 10 == 0:
            reasoning = f"<![CDATA[{reasoning} where a < b && List<String> is fine]]>"
        elif i % 7 == 0:
            reasoning += " &amp; keeps &lt;O(1)&gt; look-ups"
        parts.append(
            f'<event type="{rng.choice(TYPES)}">\n'
            f"  <decision>{words(6)}</decision>\n"
            f"  <alternatives>{alts}</alternatives>\n"
            f"  <reasoning>{reasoning}</reasoning>\n"
            f"  <confidence>{rng.random():.2f}</confidence>\n"
            f"  <code_section>{rng.choice(WORDS)}.{rng.choice(WORDS)}</code_section>\n"
            "</event>\n"
        )
        if i % 50 == 0:
            parts.append(f"Next I look at the {words(4)}.\n\n")
    parts.append("```python\ndef solve():\n    return 42\n```\n")
    return "".join(parts)


def check(ok: object, what: str) -> None:
    if not ok:
        raise SystemExit(f"benchmark result is wrong: {what}")


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


class _Counter(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "event":
            self.events += 1


def html_parser_count(text: str) -> int:
    p = _Counter()
    p.feed(text)
    p.close()
    return p.events


def stream(text: str, size: int) -> ct.ParseResult:
    parser = ct.StreamParser("bench")
    for i in range(0, len(text), size):
        parser.feed(text[i : i + size])
    return parser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    text = model_output(args.events)
    print(f"model output: {args.events} events, {len(text) / 1e6:.2f} MB of text")

    t_parse, result = best(lambda: ct.parse_llm_output(text, "bench"), args.repeat)
    check(isinstance(result, ct.ParseResult), "parse result")
    assert isinstance(result, ct.ParseResult)  # for the type checker
    check(
        len(result.chain) == args.events and result.ok, f"parse: {result.warnings[:3]}"
    )
    t_stream, streamed = best(lambda: stream(text, 64), args.repeat)
    check(
        isinstance(streamed, ct.ParseResult) and len(streamed.chain) == args.events,
        "stream",
    )
    wrapped = "<root>" + text.replace("```", "") + "</root>"
    t_etree, root = best(lambda: ET.fromstring(wrapped), args.repeat)
    check(
        isinstance(root, ET.Element) and len(root.findall("event")) == args.events,
        "etree",
    )
    t_html, count = best(lambda: html_parser_count(text), args.repeat)
    check(count == args.events, "html.parser")

    t_render, page = best(lambda: ct.to_html(result.chain), args.repeat)
    assert isinstance(page, str)
    t_json, doc = best(lambda: ct.to_json(result.chain), args.repeat)
    assert isinstance(doc, str)

    rows = [
        (
            "crucible_trace.parse_llm_output",
            t_parse,
            "events + warnings, linear, never raises",
        ),
        (
            "crucible_trace.StreamParser (64-char chunks)",
            t_stream,
            "same result as the whole",
        ),
        (
            "xml.etree.ElementTree.fromstring (C expat)",
            t_etree,
            "element tree only; fails on malformed",
        ),
        ("html.parser.HTMLParser (pure Python)", t_html, "tag callbacks only"),
    ]
    print(f"\nparsing (best of {args.repeat}):")
    for name, t, note in rows:
        print(
            f"  {name:<46} {t * 1000:9.1f} ms  {args.events / t:>10,.0f} events/s   {note}"
        )
    print(f"  ratio parse_llm_output / ElementTree: {t_parse / t_etree:6.2f}x")
    print(f"  ratio parse_llm_output / HTMLParser:  {t_parse / t_html:6.2f}x")
    print(f"  ratio StreamParser / parse_llm_output: {t_stream / t_parse:6.2f}x")
    print(f"\nrendering (best of {args.repeat}):")
    print(
        f"  to_html  {t_render * 1000:9.1f} ms   {len(page.encode()) / 1e6:6.2f} MB page"
    )
    print(
        f"  to_json  {t_json * 1000:9.1f} ms   {len(doc.encode()) / 1e6:6.2f} MB document"
    )
    stats = ct.statistics(result.chain)
    print(
        f"  statistics(): {stats.event_count} events, mean confidence {stats.mean_confidence:.3f}"
    )


if __name__ == "__main__":
    main()
