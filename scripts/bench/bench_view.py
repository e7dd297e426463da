"""Benchmark `crucible view`: first render of the samples page, server memory, live-update latency.

1. Synthetic run directories of 10k and 100k tasks, laid out as the runner writes them (a manifest
   and one JSON line per task: 3 conditions × 2 repeats, answers of 20–300 characters, 5% errors).
   For each, the viewer runs as its own process (`crucible_harness.view`), and headless Chromium
   (Debian's, driven by playwright) opens the samples page: time from navigation to the first rows
   drawn (median of --repeat loads), and to a re-render after a text search and after a sort by
   latency. The server's resident memory is read from /proc after loading and after the pages.
   Peer, in the same browser on the same rows: a plain HTML table of every task (what a page that
   does not virtualise does), time to its load event.
2. Live: a writer appends tasks to a fresh run directory at 500 tasks/s (in groups every 20 ms, as
   the runner's group fsync does) while a client follows the server-sent events; the latency is from
   a task's line being written to an update that counts it.

Run:
    UV_PROJECT_ENVIRONMENT=$PWD/.venvs/harness uv run --exact --package crucible-harness --all-extras \
        --group dev python scripts/bench/bench_view.py [--sizes 10000 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
CONDITIONS = ("gpt4", "llama", "majority-5")
WORDS = [
    "the",
    "answer",
    "is",
    "because",
    "we",
    "add",
    "carry",
    "digits",
    "then",
    "check",
    "result",
    "so",
    "def",
    "return",
    "value",
]


def manifest(n_items: int, repeats: int) -> dict[str, Any]:
    return {
        "format": 1, "run_id": "run_BENCH", "fingerprint": "sha256:bench",
        "experiment": {"name": "bench", "description": "synthetic", "hypothesis": "", "dataset": f"{n_items} inline items",
                       "repeats": repeats, "conditions": [{"name": c, "kind": "model", "target": "sim", "description": ""} for c in CONDITIONS],
                       "run": {"seed": 1}, "budget": {"max_total": None, "max_per_condition": None},
                       "analysis": {"alpha": 0.05, "correction": "holm", "confidence_level": 0.95, "primary": None, "n_resamples": 2000}},
        "items": [f"item-{i}" for i in range(n_items)], "dataset": {"name": "inline", "items": n_items},
        "scorer": "exact", "created_at": "2026-01-01T00:00:00+00:00", "versions": {},
    }  # fmt: skip


def records(n_items: int, repeats: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for r in range(repeats):
        for i in range(n_items):
            for c in CONDITIONS:
                error = rng.random() < 0.05
                correct = (not error) and rng.random() < 0.7
                answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 50)))
                out.append(json.dumps({
                    "key": f"{c}\x1fitem-{i}\x1f{r}", "condition": c, "item": f"item-{i}", "repeat": r, "seed": rng.getrandbits(60),
                    "status": "error" if error else "ok", "prediction": None if error else answer, "correct": correct,
                    "score": float(correct), "latency": math.exp(rng.gauss(-0.5, 0.7)), "cost": 0.0 if error else 0.0004,
                    "input_tokens": rng.randint(50, 300), "output_tokens": rng.randint(5, 120), "metadata": {"model": c},
                    "error_type": "ProviderTimeoutError" if error else None, "error": "timed out" if error else None,
                    "attempts": 3 if error else 1, "wall_time": 0.1, "started_at": "", "finished_at": "",
                }).encode() + b"\n")  # fmt: skip
    return out


def write_run(path: Path, n_tasks: int) -> list[bytes]:
    repeats = 2
    n_items = n_tasks // (len(CONDITIONS) * repeats)
    path.mkdir(parents=True)
    lines = records(n_items, repeats)
    (path / "tasks.jsonl").write_bytes(b"".join(lines))
    (path / "manifest.json").write_text(json.dumps(manifest(n_items, repeats)))
    (path / "status.json").write_text(json.dumps({"status": "complete"}))
    return lines


def start_server(root: Path) -> tuple[subprocess.Popen[str], str, float]:
    code = ("import sys; from crucible_harness import view; v = view(sys.argv[1]); "
            "print(f'http://127.0.0.1:{v.port}', flush=True); v.wait()")  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url, time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def first_rows(page: Any, url: str) -> float:
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(".vrow:not([hidden])", timeout=60_000)
    return time.perf_counter() - started


FIRST = "() => { const r = document.querySelector('.vrow:not([hidden])'); return [r ? r.dataset.index : '', document.querySelector('[data-testid=count]').dataset.total]; }"


def rerender(page: Any, action: Any) -> float:
    """Time from a filter or sort change to rows of the new order on screen."""
    before = page.evaluate(FIRST)
    started = time.perf_counter()
    action()
    page.wait_for_function(
        f"b => JSON.stringify(({FIRST})()) !== JSON.stringify(b)",
        arg=before,
        timeout=60_000,
    )
    return time.perf_counter() - started


def static_table(path: Path, lines: list[bytes]) -> Path:
    out = path / "table.html"
    with out.open("w", encoding="utf-8") as fh:
        fh.write("<!doctype html><meta charset=utf-8><table><thead><tr><th>#<th>condition<th>item<th>repeat<th>verdict"
                 "<th>prediction<th>latency<th>cost</tr></thead><tbody>")  # fmt: skip
        for n, line in enumerate(lines):
            r = json.loads(line)
            cells = (
                n,
                r["condition"],
                r["item"],
                r["repeat"],
                r["correct"],
                (r["prediction"] or "")[:240],
                f"{r['latency']:.3f}",
                r["cost"],
            )
            fh.write("<tr>" + "".join(f"<td>{html.escape(str(c))}" for c in cells) + "</tr>")  # fmt: skip
        fh.write("</tbody></table>")
    return out


PEER_TIMEOUT = (
    120.0  # seconds: a plain table of 100k rows can take minutes in Chromium here
)


def static_load(page: Any, path: Path) -> float:
    """Seconds to load and lay out the plain table (`PEER_TIMEOUT` if it did not finish by then)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = time.perf_counter()
    try:
        page.goto(path.as_uri(), wait_until="load", timeout=PEER_TIMEOUT * 1000)
        page.evaluate(
            "document.querySelector('tbody tr:last-child').getBoundingClientRect().top"
        )  # laid out
    except PlaywrightTimeout:
        return PEER_TIMEOUT
    return time.perf_counter() - started


def bench_sizes(sizes: list[int], repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                lines = write_run(root / "runs" / "bench", n)
                proc, base, load = start_server(root / "runs")
                try:
                    rss_loaded = rss_mb(proc.pid)
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    url = f"{base}/samples/bench"
                    first_rows(page, url)  # warm the browser cache of the static files
                    times = [first_rows(page, url) for _ in range(repeat)]
                    search = rerender(
                        page,
                        lambda p=page: p.fill("input[name=q]", "carry digits then"),
                    )
                    rerender(page, lambda p=page: p.fill("input[name=q]", ""))
                    sort = rerender(
                        page,
                        lambda p=page: p.select_option("select[name=sort]", "latency"),
                    )
                    rss_after = rss_mb(proc.pid)
                    table = static_table(root, lines)
                    peer = [
                        static_load(page, table) for _ in range(max(1, repeat // 2))
                    ]
                    page.close()
                finally:
                    proc.terminate()
                    proc.wait(10)
                median = statistics.median(times)
                target = 1.0 if n <= 10_000 else 2.0
                print(
                    f"{n:>7,} tasks: server ready (scan + read) {load:.2f} s, RSS {rss_loaded:.0f} MB loaded, {rss_after:.0f} MB after the pages"
                )
                print(
                    f"          samples page first rows: median {median * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; target < {target:.0f} s: {'met' if median < target else 'MISSED'})"
                )
                print(
                    f"          search re-render {search * 1000:.0f} ms (with the 250 ms typing debounce), sort by latency {sort * 1000:.0f} ms"
                )
                peer_median = statistics.median(peer)
                bound = ">= " if peer_median >= PEER_TIMEOUT else ""
                print(f"          peer: plain HTML table of all {n:,} rows, load + layout median {bound}{peer_median * 1000:.0f} ms "
                      f"-> viewer is {bound}{peer_median / median:.1f}x faster to first rows")  # fmt: skip
        browser.close()


async def bench_live(rate: float, seconds: float) -> None:
    import aiohttp

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        n_tasks = int(rate * seconds)
        run_dir = root / "live"
        source = records(n_tasks // (len(CONDITIONS) * 2) + 1, 2)
        run_dir.mkdir(parents=True)
        (run_dir / "manifest.json").write_text(
            json.dumps(manifest(len(source) // 6, 2))
        )
        (run_dir / "tasks.jsonl").write_bytes(b"")
        proc, base, _ = start_server(root)
        written: list[tuple[int, float]] = []  # (tasks on disk, when)
        latencies: list[float] = []
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{base}/api/stream/live") as response,
            ):
                await response.content.readline()

                def writer() -> None:
                    group = max(1, int(rate * 0.02))
                    start = time.perf_counter()
                    done = 0
                    with (run_dir / "tasks.jsonl").open("ab") as fh:
                        while done < n_tasks:
                            fh.write(b"".join(source[done : done + group]))
                            fh.flush()
                            done += group
                            written.append((done, time.time()))
                            pause = start + done / rate - time.perf_counter()
                            if pause > 0:
                                time.sleep(pause)

                thread = threading.Thread(target=writer)
                thread.start()
                recorded = counted = 0
                throughput = 0.0
                while recorded < n_tasks:
                    line = await asyncio.wait_for(response.content.readline(), 30)
                    if not line.startswith(b"data: "):
                        continue
                    now = time.time()
                    payload = json.loads(line[6:])
                    recorded = payload["progress"]["recorded"]
                    # every group written since the last update is first counted by this one
                    while counted < len(written) and written[counted][0] <= recorded:
                        latencies.append(now - written[counted][1])
                        counted += 1
                    throughput = payload["progress"]["throughput"]
                thread.join()
        finally:
            proc.terminate()
            proc.wait(10)
        latencies.sort()
        q = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))]  # noqa: E731
        print(f"live: {n_tasks:,} tasks appended at {rate:.0f} tasks/s; update latency from write to event: "
              f"p50 {q(0.5) * 1000:.0f} ms, p95 {q(0.95) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
              f"(target < 1 s: {'met' if latencies[-1] < 1.0 else 'MISSED'}); throughput the server saw {throughput:.0f}/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; chromium {shutil.which('chromium')}")
    bench_sizes(args.sizes, args.repeat)
    asyncio.run(bench_live(args.rate, args.seconds))


if __name__ == "__main__":
    main()
