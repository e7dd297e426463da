"""Benchmark crucible-datasets against peers on the same work, in the same run.

    UV_PROJECT_ENVIRONMENT=/tmp/venv-datasets uv run --package crucible-datasets --all-extras \
        python scripts/bench/bench_datasets.py [--repeat 7] [--hf-python /path/to/venv/bin/python]

1. MMLU test (14,042 rows) is served as the Hub publishes it (`cais/mmlu`, `all/test-*.parquet`)
   by a local aiohttp hub built from ../shared/datasets, downloaded once, then loaded from the
   cache: `crucible_datasets.load` (checksum verified by the file's stamp, the Arrow copy
   read, 14k `Item`s on access; also right after the download, before the stamps settle)
   against polars and pyarrow
   reading the same cached Parquet file directly, and (with --hf-python, a throwaway venv holding
   the Hugging Face `datasets` library) `datasets.load_dataset("parquet", ...)` on that file, both
   alone (HF memory-maps the Arrow copy it made on its first load) and with `.to_list()`.
   Make the venv outside the repository, e.g.
       uv venv /tmp/hf-venv --python 3.11 && uv pip install --python /tmp/hf-venv/bin/python datasets
2. `evaluate` on 14,042 free-text MMLU predictions (letter extraction, exact match + token F1).
3. pass@1 of the 164 HumanEval canonical solutions, executed in the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SHARED = Path(
    os.environ.get("CRUCIBLE_SHARED_DIR") or HERE.parents[2].parent / "shared"
)


def mmlu_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in sorted((SHARED / "datasets" / "mmlu" / "test").glob("*_test.csv")):
        subject = path.name[: -len("_test.csv")]
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader)
            rows += [
                {
                    "question": r[0],
                    "subject": subject,
                    "choices": r[1:5],
                    "answer": int(r[5]),
                }
                for r in reader
            ]
    schema = pa.schema(
        [
            ("question", pa.string()),
            ("subject", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("answer", pa.int64()),
        ]
    )
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def serve(files: dict[str, bytes], commit: str) -> tuple[str, Callable[[], None]]:
    """A minimal hub for cais/mmlu on 127.0.0.1; returns its URL and a stop function."""
    from aiohttp import web

    async def revision(request: web.Request) -> web.Response:
        siblings = [
            {
                "rfilename": p,
                "size": len(d),
                "lfs": {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)},
            }
            for p, d in files.items()
        ]
        return web.json_response({"sha": commit, "siblings": siblings})

    async def resolve(request: web.Request) -> web.Response:
        data = files[request.match_info["path"]]
        return web.Response(
            body=data,
            headers={
                "X-Repo-Commit": commit,
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            },
        )

    app = web.Application()
    app.router.add_get("/api/datasets/cais/mmlu/revision/{rev:.+}", revision)
    app.router.add_get("/datasets/cais/mmlu/resolve/{rev}/{path:.+}", resolve)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    return url, stop


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


HF_SNIPPET = """
import sys, time, statistics, tempfile
import datasets
datasets.disable_progress_bars()
path, repeat = sys.argv[1], int(sys.argv[2])
cache = tempfile.mkdtemp()
times, loads = [], []
for i in range(repeat + 1):  # the first converts the Parquet file into HF's Arrow cache
    t = time.perf_counter()
    ds = datasets.load_dataset("parquet", data_files={"test": path}, split="test", cache_dir=cache)
    loaded = time.perf_counter()
    rows = ds.to_list()
    times.append(time.perf_counter() - t)
    loads.append(loaded - t)
print(statistics.median(times[1:]), len(rows), statistics.median(loads[1:]), datasets.__version__)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--hf-python", default=os.environ.get("HF_DATASETS_PYTHON"))
    args = parser.parse_args()

    import polars as pl
    import pyarrow.parquet as pq

    import crucible_datasets as cd
    from crucible_core._stamps import RACY_NS

    path = "all/test-00000-of-00001.parquet"
    files = {path: mmlu_parquet()}
    url, stop = serve(files, "c" * 40)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HF_ENDPOINT"] = url
        os.environ["CRUCIBLE_CACHE_DIR"] = cache
        try:
            start = time.perf_counter()
            ds = cd.load("mmlu", split="test")
            cold = time.perf_counter() - start
            cached = Path(cache) / "files" / "cais--mmlu" / ("c" * 40) / path
            # Within RACY_NS of being written a file's stamp cannot vouch for it, so these loads
            # hash the Parquet file and its Arrow copy every time; a later session does not.
            fresh, _ = timed(
                lambda: cd.load("mmlu", split="test", offline=True), args.repeat
            )
            time.sleep(max(0.0, RACY_NS / 1e9 + 0.2 - (time.perf_counter() - start)))
            cd.load("mmlu", split="test", offline=True)  # stamps both files
            ours, ds = timed(
                lambda: cd.load("mmlu", split="test", offline=True), args.repeat
            )
            ours_items, _ = timed(
                lambda: cd.load("mmlu", split="test", offline=True).items, args.repeat
            )
            polars_t, frame = timed(lambda: pl.read_parquet(cached), args.repeat)
            polars_rows, _ = timed(
                lambda: pl.read_parquet(cached).to_dicts(), args.repeat
            )
            arrow_t, _ = timed(lambda: pq.read_table(cached).to_pylist(), args.repeat)
        finally:
            stop()
        print(
            f"MMLU test: {len(ds)} items, parquet {cached.stat().st_size / 1e6:.1f} MB"
        )
        print(
            f"  first load (download + verify + parse)     {cold * 1e3:8.1f} ms"
            "   (and write the Arrow copy)"
        )
        print(
            f"  {f'load again within {RACY_NS / 1e9:.0f} s of the download':<43}{fresh * 1e3:8.1f} ms"
            "   (not settled: both files hashed)"
        )
        print(
            f"  crucible_datasets.load from cache          {ours * 1e3:8.1f} ms"
            "   (stamps trusted, Arrow copy read; Items made on access)"
        )
        print(f"  {f'load + make all {len(ds)} Items':<43}{ours_items * 1e3:8.1f} ms")
        print(
            f"  polars.read_parquet (DataFrame)            {polars_t * 1e3:8.1f} ms"
            f"   ratio crucible/polars = {ours / polars_t:.1f}x"
        )
        print(
            f"  polars.read_parquet().to_dicts()           {polars_rows * 1e3:8.1f} ms"
            f"   ratio crucible/polars-rows = {ours / polars_rows:.2f}x"
        )
        print(
            f"  pyarrow read_table().to_pylist()           {arrow_t * 1e3:8.1f} ms"
            f"   ratio crucible/pyarrow-rows = {ours / arrow_t:.2f}x"
        )
        if args.hf_python:
            out = subprocess.run(
                [args.hf_python, "-c", HF_SNIPPET, str(cached), str(args.repeat)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
            ).stdout.split()
            hf, hf_load = float(out[0]), float(out[2])
            print(
                f"  HF datasets {out[3]} load_dataset('parquet')  {hf_load * 1e3:8.1f} ms"
                f"   (memory-maps the Arrow copy it made on the first load; rows made on access)"
            )
            print(
                f"  HF datasets load_dataset().to_list()       {hf * 1e3:8.1f} ms   ({out[1]} rows, offline)"
            )
            print(
                f"  ratio crucible load / HF load_dataset().to_list() = {ours / hf:.2f}x (target <= 0.33);"
                f" with every Item made {ours_items / hf:.2f}x; lazy load to lazy load"
                f" {ours / hf_load:.2f}x"
            )
        else:
            print(
                "  HF datasets: skipped (pass --hf-python pointing at a venv with `datasets`)"
            )
        assert frame.height == len(ds)

    # 2. evaluate 14k free-text predictions
    preds = {}
    for k, item in enumerate(ds):
        letter = (
            item.expected
            if k % 10 < 7
            else "ABCD"[("ABCD".index(item.expected) + 1) % 4]
        )
        preds[item.id] = f"Reasoning about it... The answer is ({letter})."
    ev_t, result = timed(
        lambda: cd.evaluate(preds, dataset=ds, metrics=("exact_match", "f1")),
        max(1, args.repeat // 2),
    )
    print(
        f"evaluate {len(preds)} MMLU predictions (extract + EM + F1 + CIs): {ev_t * 1e3:.1f} ms"
        f"  ({len(preds) / ev_t:,.0f} items/s), accuracy {result.accuracy:.4f}"
    )

    # 3. HumanEval pass@1, canonical solutions, sandboxed
    he = cd.load("humaneval")
    start = time.perf_counter()
    res = cd.evaluate({i.id: i.expected for i in he}, dataset=he)
    he_t = time.perf_counter() - start
    print(
        f"HumanEval pass@1 on 164 canonical solutions: {res.accuracy:.3f} in {he_t:.1f} s "
        f"({164 / he_t:.1f} programs/s, {os.cpu_count()} CPUs)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
