"""The viewer's JSON API, guards and live tailing, against real run directories (aiohttp test client)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

import crucible_harness as ch
from crucible_harness._view import _loopback
from crucible_harness._view._data import SORTABLE, RunData
from crucible_harness._view._server import COOKIE, make_app

pytestmark = pytest.mark.network


def _run_dir(root: Path, prefix: str) -> Path:
    return next(
        p
        for p in sorted(root.rglob("manifest.json"))
        if p.parent.name.startswith(prefix)
    ).parent


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (run_dir / "tasks.jsonl").read_text().splitlines()
        if line
    ]


def _rid(root: Path, run_dir: Path) -> str:
    return run_dir.relative_to(root).as_posix()


@pytest.fixture
async def client(view_root: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(view_root))) as c:
        yield c


async def _get(client: TestClient[Any, Any], path: str, **params: Any) -> Any:
    response = await client.get(path, params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    return await response.json()


async def _all_rows(
    client: TestClient[Any, Any], rid: str, **params: Any
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = await _get(
            client, f"/api/samples/{rid}", offset=len(rows), limit=97, **params
        )
        rows += page["rows"]
        if len(rows) >= page["total"]:
            assert len(rows) == page["total"]
            return rows


# -- the runs list and overview -------------------------------------------------------------------
async def test_runs_lists_every_run_under_the_root(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    data = await _get(client, "/api/runs")
    ids = {r["id"] for r in data["runs"]}
    arith = _rid(view_root, _run_dir(view_root, "arith"))
    assert arith in ids and "synthetic-hostile" in ids
    assert any(i.startswith("code/humaneval-") for i in ids) and any(
        i.startswith("hostile/inject-") for i in ids
    )
    row = next(r for r in data["runs"] if r["id"] == arith)
    records = _records(_run_dir(view_root, "arith"))
    assert row["state"] == "complete" and row["recorded"] == row[
        "total"
    ] == 3 * 30 * 2 == len(records)
    assert (
        row["conditions"] == ["gpt4", "llama", "flaky"]
        and row["repeats"] == 2
        and row["items"] == 30
    )
    assert row["spent"] == pytest.approx(sum(r["cost"] for r in records))
    flaky = [r for r in records if r["condition"] == "flaky"]
    assert row["accuracy"]["flaky"] == pytest.approx(
        sum(bool(r["correct"]) for r in flaky) / len(flaky)
    )
    assert row["errors"] == sum(r["status"] != "ok" for r in records) > 0


async def test_analysis_is_the_harness_analysis(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    expected = ch.load_run(run_dir).analysis
    got = await _get(client, f"/api/analysis/{_rid(view_root, run_dir)}")
    assert [c["name"] for c in got["conditions"]] == [
        c.name for c in expected.conditions
    ]
    for mine, theirs in zip(got["conditions"], expected.conditions, strict=True):
        assert mine["accuracy"] == pytest.approx(theirs.accuracy)
        assert mine["accuracy_ci"] == pytest.approx(list(theirs.accuracy_ci))
        assert mine["latency_p95"] == pytest.approx(theirs.latency_p95)
        assert mine["cost_per_query"] == pytest.approx(theirs.cost_per_query)
    assert len(got["comparisons"]) == len(expected.comparisons) == 3
    for mine, theirs in zip(got["comparisons"], expected.comparisons, strict=True):
        assert (mine["a"], mine["b"]) == (theirs.a, theirs.b)
        assert mine["pvalue_adjusted"] == pytest.approx(theirs.pvalue_adjusted)
        assert mine["confidence_interval"] == pytest.approx(
            list(theirs.confidence_interval)
        )
    assert got["frontier"] == list(expected.frontier)
    # Cohen's d_z of per-item mean accuracy, checked by hand
    records = _records(run_dir)
    per: dict[tuple[str, str], list[float]] = {}
    for r in records:
        per.setdefault((r["condition"], r["item"]), []).append(
            float(bool(r["correct"]))
        )
    c0 = got["comparisons"][0]
    items = sorted({r["item"] for r in records})
    diff = np.array(
        [np.mean(per[(c0["b"], i)]) - np.mean(per[(c0["a"], i)]) for i in items]
    )
    assert c0["effect"]["estimate"] == pytest.approx(diff.mean() / diff.std(ddof=1))


async def test_run_info_has_progress_and_a_live_summary(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    info = await _get(client, f"/api/run/{_rid(view_root, run_dir)}")
    assert info["pending"] == 0 and info["state"] == "complete"
    by = {r["condition"]: r for r in info["summary"]}
    flaky = [r for r in _records(run_dir) if r["condition"] == "flaky"]
    assert by["flaky"]["errors"] == sum(r["status"] == "error" for r in flaky)
    low, high = by["flaky"]["ci"]
    assert low < by["flaky"]["accuracy"] < high


# -- samples: filters, search, sort, pages --------------------------------------------------------
async def test_filters_return_exactly_the_matching_records(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    rid, records = _rid(view_root, run_dir), _records(run_dir)

    async def keys(**params: Any) -> list[tuple[str, str, int]]:
        return sorted(
            (r["condition"], r["item"], r["repeat"])
            for r in await _all_rows(client, rid, **params)
        )

    def want(pred: Any) -> list[tuple[str, str, int]]:
        return sorted(
            (r["condition"], r["item"], r["repeat"]) for r in records if pred(r)
        )

    assert await keys() == want(lambda r: True)
    assert await keys(condition="llama") == want(lambda r: r["condition"] == "llama")
    assert await keys(condition="llama,flaky", outcome="incorrect") == want(
        lambda r: r["condition"] in ("llama", "flaky") and r["correct"] is False
    )
    assert await keys(outcome="correct") == want(lambda r: r["correct"] is True)
    assert await keys(outcome="error") == want(lambda r: r["status"] != "ok")
    assert await keys(error_type="ValueError") == want(
        lambda r: r["error_type"] == "ValueError"
    )
    assert await keys(q="OFF BY ONE") == want(
        lambda r: "off by one" in (r["prediction"] or "")
    )
    assert await keys(q="q02") == want(lambda r: "q02" in r["item"])
    assert (
        await keys(q="flaky failure") == []
    )  # errors are not answers; filter by error kind
    assert await keys(latency_min=0.2, latency_max=0.3) == want(
        lambda r: 0.2 <= r["latency"] <= 0.3
    )
    assert await keys(condition="nope") == []


@pytest.mark.parametrize("column", SORTABLE)
async def test_every_column_sorts(
    client: TestClient[Any, Any], view_root: Path, column: str
) -> None:
    rid = _rid(view_root, _run_dir(view_root, "arith"))
    for order in ("asc", "desc"):
        rows = await _all_rows(client, rid, sort=column, order=order)
        field = "input_tokens" if column == "input_tokens" else column
        values = [r[field] for r in rows]
        present = [v for v in values if v is not None]
        if column == "correct":
            present = [int(v) for v in present]
        assert present == sorted(present, reverse=order == "desc")
        assert (
            values[: len(present)] == [v for v in values if v is not None]
            or column == "correct"
        )


async def test_item_text_search_uses_the_dataset(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "humaneval")
    rid = _rid(view_root, run_dir)
    item = _records(run_dir)[0]["item"]
    view = await _get(client, f"/api/item/{rid}", item=item)
    assert (
        view["input"] and "def " in view["input"]
    )  # the HumanEval prompt, loaded from the dataset
    assert view["reference"]
    word = re.findall(r"def (\w+)", view["input"])[0]
    rows = await _all_rows(client, rid, q=word)
    assert {r["item"] for r in rows} == {item}


async def test_item_view_has_every_condition_and_repeat(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    view = await _get(client, f"/api/item/{_rid(view_root, run_dir)}", item="q014")
    assert list(view["conditions"]) == ["gpt4", "llama", "flaky"]
    for records in view["conditions"].values():
        assert [r["repeat"] for r in records] == [0, 1]
    flaky = view["conditions"]["flaky"]
    assert (
        flaky[0]["status"] == "error"
        and flaky[0]["error"] == "flaky failure on item q014"
    )
    assert view["input"] is None  # inline items are not stored in the run
    response = await client.get(
        f"/api/item/{_rid(view_root, run_dir)}", params={"item": "nope"}
    )
    assert response.status == 404


async def test_disagreements_are_the_discordant_items(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    rid, records = _rid(view_root, run_dir), _records(run_dir)
    acc: dict[tuple[str, str], list[float]] = {}
    for r in records:
        acc.setdefault((r["condition"], r["item"]), []).append(
            float(bool(r["correct"]))
        )
    items = sorted({r["item"] for r in records})
    mean = {k: float(np.mean(v)) for k, v in acc.items()}
    a_only = {i for i in items if mean[("gpt4", i)] > mean[("flaky", i)]}
    b_only = {i for i in items if mean[("gpt4", i)] < mean[("flaky", i)]}
    got = await _get(
        client, f"/api/disagreements/{rid}", a="gpt4", b="flaky", limit=500
    )
    assert got["pair"] == {
        "a_only": len(a_only),
        "b_only": len(b_only),
        "same": len(items) - len(a_only) - len(b_only),
    }
    assert {r["item"] for r in got["rows"]} == a_only | b_only
    one_way = await _get(
        client,
        f"/api/disagreements/{rid}",
        a="gpt4",
        b="flaky",
        direction="b",
        limit=500,
    )
    assert {r["item"] for r in one_way["rows"]} == b_only
    anywhere = await _get(client, f"/api/disagreements/{rid}", limit=500)
    assert {r["item"] for r in anywhere["rows"]} == {
        i for i in items if len({mean[(c, i)] for c in ("gpt4", "llama", "flaky")}) > 1
    }


async def test_latency_histograms_ecdfs_and_hedges(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    records = _records(run_dir)
    got = await _get(client, f"/api/latency/{_rid(view_root, run_dir)}")
    for c in got["conditions"]:
        ok = sorted(
            r["latency"]
            for r in records
            if r["condition"] == c["condition"] and r["status"] == "ok"
        )
        assert sum(c["counts"]) == c["n"] == len(ok)
        assert c["ecdf"][-1] == [pytest.approx(ok[-1]), 1.0]
        assert c["p50"] == pytest.approx(float(np.quantile(ok, 0.5)))
    hedged = [r for r in records if "timeline" in (r.get("metadata") or {})]
    assert len(got["hedges"]) == len(hedged) > 0
    assert got["hedges"][0]["attempts"][1]["outcome"] == "won"


async def test_events_are_filterable(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    rid = _rid(view_root, run_dir)
    lines = [
        json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
    ]
    got = await _get(client, f"/api/events/{rid}", limit=10)
    assert got["total"] == len(lines) and len(got["rows"]) == 10
    stops = await _get(
        client, f"/api/events/{rid}", name="crucible.harness.task.exception", limit=1000
    )
    assert (
        stops["total"]
        == sum(e["name"] == "crucible.harness.task.exception" for e in lines)
        > 0
    )
    text = await _get(client, f"/api/events/{rid}", q="q017", limit=1000)
    assert text["total"] == sum("q017" in json.dumps(e) for e in lines) > 0


# -- guards ---------------------------------------------------------------------------------------
async def test_token_is_required_everywhere(view_root: Path) -> None:
    rid = _rid(view_root, _run_dir(view_root, "arith"))
    async with TestClient(
        TestServer(make_app(view_root, token="s3cret", loopback=False))
    ) as c:
        for path in (
            "/",
            f"/samples/{rid}",
            "/api/runs",
            f"/api/samples/{rid}",
            "/static/app.js",
            "/api/stream",
        ):
            assert (await c.get(path)).status == 401, path
            assert (
                await c.get(path, headers={"Authorization": "Bearer wrong"})
            ).status == 401
        ok = await c.get("/api/runs", headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200
        first = await c.get(
            f"/samples/{rid}",
            params={"token": "s3cret", "q": "x"},
            allow_redirects=False,
        )
        assert first.status == 302
        assert (
            "token" not in first.headers["Location"]
            and "q=x" in first.headers["Location"]
        )
        cookie = first.cookies[COOKIE]
        assert (
            cookie.value == "s3cret"
            and cookie["httponly"]
            and cookie["samesite"] == "Strict"
        )
        after = await c.get("/api/runs", cookies={COOKIE: "s3cret"})
        assert after.status == 200


async def test_loopback_server_refuses_foreign_host_names(
    client: TestClient[Any, Any],
) -> None:
    assert (
        await client.get("/api/runs", headers={"Host": "evil.example:8080"})
    ).status == 421
    assert (
        await client.get("/api/runs", headers={"Host": "localhost:8080"})
    ).status == 200
    assert (await client.get("/api/runs", headers={"Host": "[::1]:8080"})).status == 200


def test_binding_off_loopback_generates_a_token() -> None:
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost")
    assert (
        not _loopback("0.0.0.0")
        and not _loopback("192.168.1.5")
        and not _loopback("example.com")
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/samples/../../../etc/passwd",
        "/api/samples/%2e%2e/%2e%2e/etc/passwd",
        "/api/samples/..%2F..%2Fetc%2Fpasswd",
        "/api/item/%2Fetc%2Fpasswd",
        "/api/run//etc",
        "/samples/%2e%2e%2f%2e%2e%2fetc",
        "/static/..%2F__init__.py",
        "/static/%2e%2e/_server.py",
        "/static/../../_data.py",
    ],
)
async def test_paths_cannot_leave_the_runs_root(
    client: TestClient[Any, Any], path: str
) -> None:
    response = await client.get(URL(path, encoded=True))
    assert response.status == 404, await response.text()
    assert "root:" not in await response.text()


async def test_headers_forbid_inline_script_and_framing(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    rid = _rid(view_root, _run_dir(view_root, "arith"))
    for path in ("/", f"/overview/{rid}", "/api/runs", "/static/app.js"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert (
            "script-src 'self'" in csp
            and "default-src 'none'" in csp
            and "unsafe" not in csp
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    shell = await (await client.get("/")).text()
    assert re.findall(r"<script[^>]*>", shell) == [
        '<script src="/static/dom.js" defer>',
        '<script src="/static/charts.js" defer>',
        '<script src="/static/app.js" defer>',
    ]
    assert not re.search(r"\son\w+=", shell) and "<style" not in shell
    js = (
        await (await client.get("/static/app.js")).text()
        + await (await client.get("/static/charts.js")).text()
        + await (await client.get("/static/dom.js")).text()
    )
    assert (
        "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js
    )
    assert (await client.get("/overview/no-such-run")).status == 404


# -- live: tailing a run directory as it is written -----------------------------------------------
def _copy_manifest(source: Path, target: Path) -> list[bytes]:
    target.mkdir(parents=True)
    shutil.copy(source / "manifest.json", target / "manifest.json")
    (target / "tasks.jsonl").write_bytes(b"")
    return (source / "tasks.jsonl").read_bytes().splitlines(keepends=True)


def test_tailing_reads_whole_lines_only_and_survives_a_repair(
    view_root: Path, tmp_path: Path
) -> None:
    lines = _copy_manifest(_run_dir(view_root, "arith"), tmp_path / "live")
    data = RunData(tmp_path / "live", "live")
    assert data.load_manifest() and data.refresh() == 0
    with (tmp_path / "live" / "tasks.jsonl").open("ab") as fh:
        fh.write(
            b"".join(lines[:10]) + lines[10][:25]
        )  # the 11th line is being written
    assert data.refresh() == 10 and data.n == 10
    assert data.state() == "running"
    with (tmp_path / "live" / "tasks.jsonl").open("ab") as fh:
        fh.write(lines[10][25:])
    assert data.refresh() == 1 and data.n == 11
    # a resume truncates the torn tail and rewrites: the viewer reads the file again
    (tmp_path / "live" / "tasks.jsonl").write_bytes(b"".join(lines[:5]))
    data.refresh()
    assert data.n == 5
    # records with fields the viewer does not know (a task key, a checksum) are fine
    extra = [
        json.dumps(
            {**json.loads(line), "task": {"k": 1}, "checksum": "sha256:00"}
        ).encode()
        + b"\n"
        for line in lines[5:8]
    ]
    with (tmp_path / "live" / "tasks.jsonl").open("ab") as fh:
        fh.write(b"".join(extra) + b"not json\n")
    assert data.refresh() == 3 and data.malformed == 1
    assert data.record(6)["checksum"] == "sha256:00"


async def test_server_sent_events_follow_a_run_being_written(
    view_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    lines = _copy_manifest(_run_dir(view_root, "arith"), root / "live-run")
    async with TestClient(TestServer(make_app(root))) as c:
        response = await c.get("/api/stream/live-run")
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def next_progress() -> dict[str, Any]:
            while True:
                line = await response.content.readline()
                if line.startswith(b"data: "):
                    return dict(json.loads(line[6:]))

        first = await asyncio.wait_for(next_progress(), 10)
        assert (
            first["progress"]["recorded"] == 0
            and first["progress"]["state"] == "running"
        )
        for k in (7, 50, 180):
            with (root / "live-run" / "tasks.jsonl").open("ab") as fh:
                fh.write(b"".join(lines[:k]))
            lines = lines[k:]
            update = await asyncio.wait_for(next_progress(), 10)
            while update["progress"]["recorded"] < {7: 7, 50: 57, 180: 180}[k]:
                update = await asyncio.wait_for(next_progress(), 10)
            assert update["progress"]["recorded"] == {7: 7, 50: 57, 180: 180}[k]
            counts = {s["condition"]: s["tasks"] for s in update["summary"]}
            assert sum(counts.values()) == update["progress"]["recorded"]
        assert update["progress"]["pending"] == 0
        samples = await _get(c, "/api/samples/live-run", limit=1)
        assert samples["total"] == 180
        response.close()


async def test_runs_stream_sees_a_new_run(view_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with TestClient(TestServer(make_app(root))) as c:
        response = await c.get("/api/stream")

        async def runs() -> list[dict[str, Any]]:
            while True:
                line = await response.content.readline()
                if line.startswith(b"data: "):
                    return list(json.loads(line[6:])["runs"])

        assert await asyncio.wait_for(runs(), 10) == []
        lines = _copy_manifest(_run_dir(view_root, "arith"), root / "new")
        with (root / "new" / "tasks.jsonl").open("ab") as fh:
            fh.write(b"".join(lines[:3]))
        found = await asyncio.wait_for(runs(), 10)
        assert [(r["id"], r["recorded"]) for r in found] == [("new", 3)]
        response.close()


# -- the notebook entry point and the CLI ----------------------------------------------------------
def test_view_serves_in_the_background_and_displays_inline(view_root: Path) -> None:
    import urllib.request

    run_dir = _run_dir(view_root, "arith")
    with ch.view(run_dir, height=500) as viewer:
        assert (
            viewer.running
            and viewer.url == f"http://127.0.0.1:{viewer.port}/overview/{run_dir.name}"
        )
        html = viewer._repr_html_()
        assert (
            f'src="{viewer.url}"' in html
            and 'height="500"' in html
            and "<script" not in html
        )
        body = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{viewer.port}/api/runs").read()
        )
        assert [r["id"] for r in body["runs"]] == [run_dir.name]
    assert not viewer.running
    with ch.view(view_root, token="t&k") as viewer:
        assert viewer.url.endswith("/?token=t%26k")
        assert "t&amp;k" not in viewer._repr_html_() and "t%26k" in viewer._repr_html_()
    with pytest.raises(ch.RunDirectoryError, match="not a directory"):
        ch.view(view_root / "missing")


def test_nan_and_missing_values_serialise_as_null(
    view_root: Path, tmp_path: Path
) -> None:
    lines = _copy_manifest(_run_dir(view_root, "arith"), tmp_path / "r")
    record = json.loads(lines[0])
    record.update(latency=None, cost=None, input_tokens=None)
    (tmp_path / "r" / "tasks.jsonl").write_text(json.dumps(record) + "\n")
    data = RunData(tmp_path / "r", "r")
    data.load_manifest()
    data.refresh()
    row = data.rows([0])[0]
    assert row["latency"] is None and row["cost"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.values())


async def test_traces_are_listed_and_served_with_a_hash_pinned_policy(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "arith")
    rid = _rid(view_root, run_dir)
    records = [
        json.loads(line)
        for line in (run_dir / "tasks.jsonl").read_text().splitlines()
        if line
    ]
    traced = sorted(
        (r["condition"], r["item"])
        for r in records
        if "trace" in (r.get("metadata") or {})
    )
    listing = await (await client.get(f"/api/traces/{rid}")).json()
    assert listing["total"] == len(traced) > 0
    assert (
        sorted((t["condition"], t["item"]) for t in listing["rows"]) == traced
    )  # both repeats
    index = listing["rows"][0]["index"]
    page = await client.get(f"/trace/{rid}?index={index}")
    csp = page.headers["Content-Security-Policy"]
    assert (
        page.status == 200
        and "script-src 'sha256-" in csp
        and "'self'" not in csp.split(";")[1]
    )
    assert "hypothesis_formed" in await page.text()
    untraced = next(
        i for i in range(len(records)) if i not in {t["index"] for t in listing["rows"]}
    )
    assert (await client.get(f"/trace/{rid}?index={untraced}")).status == 404
    assert (await client.get(f"/trace/{rid}?index=99999")).status == 404


async def test_sandbox_reruns_a_code_task_as_its_scorer_did(
    client: TestClient[Any, Any], view_root: Path
) -> None:
    run_dir = _run_dir(view_root, "humaneval")
    rid = _rid(view_root, run_dir)
    records = [
        json.loads(line)
        for line in (run_dir / "tasks.jsonl").read_text().splitlines()
        if line
    ]
    assert (
        await client.post(f"/api/sandbox/{rid}?index=0")
    ).status == 403  # no header: a cross-site form
    headers = {"X-Crucible-View": "1"}
    for index, record in enumerate(records):
        if record.get("correct") is None:
            continue
        response = await client.post(
            f"/api/sandbox/{rid}?index={index}", headers=headers
        )
        assert response.status == 200, await response.text()
        found = await response.json()
        assert found["passed"] == bool(
            record["correct"]
        )  # the same verdict, computed again
        assert found["item"] == record["item"]
        assert "def check(" in found["program"]
    arith = _rid(view_root, _run_dir(view_root, "arith"))
    assert (
        await client.post(f"/api/sandbox/{arith}?index=0", headers=headers)
    ).status == 404
    assert (
        await client.post(f"/api/sandbox/{rid}?index=99999", headers=headers)
    ).status == 404


async def test_a_run_the_sequential_rule_stopped_is_stopped_with_its_reason_and_summary(
    stopped_root: Path, tmp_path: Path
) -> None:
    run_dir = _run_dir(stopped_root, "seq")
    loaded = ch.load_run(run_dir)
    async with TestClient(TestServer(make_app(stopped_root))) as client:
        (listed,) = (await _get(client, "/api/runs"))["runs"]
        info = await _get(client, f"/api/run/{_rid(stopped_root, run_dir)}")
    for progress in (listed, info):
        assert progress["state"] == "stopped"
        assert (
            progress["reason"] == loaded.reason
            and "sequential stop after" in progress["reason"]
        )
        assert progress["finished_at"] is not None
        seq = progress["sequential"]
        assert seq["fired"] and seq["reason"] == loaded.sequential.reason
        assert (seq["items_at_stop"], seq["items_total"]) == (
            loaded.sequential.items_at_stop,
            300,
        )
        (comp,) = seq["comparisons"]
        (expected,) = loaded.sequential.comparisons
        assert (comp["a"], comp["b"], comp["decided"]) == ("weak", "strong", True)
        assert comp["confidence_interval"] == list(expected.confidence_interval)
        assert progress["sequential_error"] is None
    # a damaged summary is named, not shown as if it were one
    copy = tmp_path / "runs" / "seq"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "status.json").read_text())
    state["sequential"]["comparisons"][0]["decided"] = "yes"
    (copy / "status.json").write_text(json.dumps(state))
    async with TestClient(TestServer(make_app(tmp_path / "runs"))) as client:
        info = await _get(client, "/api/run/seq")
    assert info["state"] == "stopped" and info["sequential"] is None
    assert "status.json holds a damaged sequential summary" in info["sequential_error"]
    assert "$.comparisons[0].decided" in info["sequential_error"]
