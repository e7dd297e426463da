"""Fixtures: the shared real data files, and a local Hugging Face Hub serving them.

The hub runs on 127.0.0.1 in a background thread and speaks the Hub's protocol: the revision API
(`/api/datasets/<repo>/revision/<rev>` with `sha` and `siblings`, LFS SHA-256 included) and
`/datasets/<repo>/resolve/<rev>/<path>` with `X-Repo-Commit`, `ETag`, `Content-Length` and Range
requests. It converts the shared files to the formats the Hub publishes (Parquet) on the fly.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest


def shared_dir() -> Path:
    """The `shared` directory beside the repository (or `CRUCIBLE_SHARED_DIR`)."""
    env = os.environ.get("CRUCIBLE_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared"


DATA = shared_dir() / "datasets"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(
            f"the shared datasets are missing at {DATA}; set CRUCIBLE_SHARED_DIR"
        )
    return DATA


# ---------------------------------------------------------------------------------------------
# Conversion of the shared files into the Hub's published layout.


def _parquet(rows: list[dict[str, Any]], schema: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_repos(data: Path) -> dict[str, dict[str, Any]]:
    """{repo: {"revisions": {name: files}}} with files {path: bytes}, as the Hub publishes them."""
    import pyarrow as pa

    s = pa.string()
    repos: dict[str, dict[str, Any]] = {}

    gsm = {}
    for split in ("train", "test"):
        rows = [
            {"question": r["question"], "answer": r["answer"]}
            for r in _jsonl(data / "gsm8k" / f"{split}.jsonl")
        ]
        gsm[f"main/{split}-00000-of-00001.parquet"] = _parquet(
            rows, pa.schema([("question", s), ("answer", s)])
        )
    repos["openai/gsm8k"] = {"main": gsm}

    mmlu_schema = pa.schema(
        [
            ("question", s),
            ("subject", s),
            ("choices", pa.list_(s)),
            ("answer", pa.int64()),
        ]
    )
    mmlu: dict[str, bytes] = {}
    for split in ("test", "dev"):
        every: list[dict[str, Any]] = []
        for path in sorted((data / "mmlu" / split).glob(f"*_{split}.csv")):
            subject = path.name[: -len(f"_{split}.csv")]
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                next(reader)
                rows = [
                    {
                        "question": r[0],
                        "subject": subject,
                        "choices": r[1:5],
                        "answer": int(r[5]),
                    }
                    for r in reader
                ]
            mmlu[f"{subject}/{split}-00000-of-00001.parquet"] = _parquet(
                rows, mmlu_schema
            )
            every += rows
        mmlu[f"all/{split}-00000-of-00001.parquet"] = _parquet(every, mmlu_schema)
    repos["cais/mmlu"] = {"main": mmlu}

    he = _jsonl(data / "humaneval" / "HumanEval.jsonl.gz")
    he_schema = pa.schema(
        [
            (k, s)
            for k in ("task_id", "prompt", "canonical_solution", "test", "entry_point")
        ]
    )
    repos["openai/openai_humaneval"] = {
        "main": {
            "openai_humaneval/test-00000-of-00001.parquet": _parquet(he, he_schema)
        }
    }

    sf_schema = pa.schema(
        [
            ("id", pa.int32()),
            ("claim", s),
            ("evidence_doc_id", s),
            ("evidence_label", s),
            ("evidence_sentences", pa.list_(pa.int32())),
            ("cited_doc_ids", pa.list_(pa.int32())),
        ]
    )
    scifact: dict[str, bytes] = {}
    for split, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
        flat: list[dict[str, Any]] = []
        for claim in _jsonl(data / "scifact" / f"claims_{name}.jsonl"):
            base = {
                "id": claim["id"],
                "claim": claim["claim"],
                "cited_doc_ids": claim.get("cited_doc_ids", []),
            }
            evidence = claim.get("evidence") or {}
            if not evidence:
                flat.append(
                    {
                        **base,
                        "evidence_doc_id": "",
                        "evidence_label": "",
                        "evidence_sentences": [],
                    }
                )
            flat.extend(
                {
                    **base,
                    "evidence_doc_id": doc,
                    "evidence_label": ev["label"],
                    "evidence_sentences": ev["sentences"],
                }
                for doc, sets in evidence.items()
                for ev in sets
            )
        scifact[f"claims/{split}/0000.parquet"] = _parquet(flat, sf_schema)
    repos["allenai/scifact"] = {"refs/convert/parquet": scifact}

    fv_schema = pa.schema(
        [
            ("id", pa.int32()),
            ("label", s),
            ("claim", s),
            ("evidence_annotation_id", pa.int32()),
            ("evidence_id", pa.int32()),
            ("evidence_wiki_url", s),
            ("evidence_sentence_id", pa.int32()),
        ]
    )
    flat = []
    for row in _jsonl(data / "fever" / "paper_dev.jsonl"):
        for group in row["evidence"]:
            for ann, eid, page, sent in group:
                flat.append(
                    {
                        "id": row["id"],
                        "label": row["label"],
                        "claim": row["claim"],
                        "evidence_annotation_id": ann,
                        "evidence_id": -1 if eid is None else eid,
                        "evidence_wiki_url": page or "",
                        "evidence_sentence_id": -1 if sent is None else sent,
                    }
                )
    repos["fever/fever"] = {
        "refs/convert/parquet": {
            "v1.0/paper_dev/0000.parquet": _parquet(flat, fv_schema)
        }
    }
    return repos


# ---------------------------------------------------------------------------------------------
# The local hub.


def _commit_of(files: dict[str, bytes], salt: str) -> str:
    digest = hashlib.sha1(salt.encode())
    for path in sorted(files):
        digest.update(path.encode())
        digest.update(hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


class LocalHub:
    """A Hugging Face Hub on 127.0.0.1 with switches for failures, for tests."""

    def __init__(self, repos: dict[str, dict[str, dict[str, bytes]]]) -> None:
        self.original = {
            r: {rev: dict(f) for rev, f in revs.items()} for r, revs in repos.items()
        }
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[tuple[str, str], str] = {}
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self.reset()

    # -- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the original files, no failures, an empty request log."""
        self.commits.clear()
        self.refs.clear()
        for repo, revs in self.original.items():
            for rev, files in revs.items():
                self.publish(repo, rev, files)
        self.log: list[tuple[str, str, str | None]] = []
        self.abort_after: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self.statuses: dict[str, list[int]] = {}
        self.token: str | None = None
        self.no_range = False

    def publish(self, repo: str, rev: str, files: dict[str, bytes]) -> str:
        """Make `files` the content of `rev` of `repo` under a new commit; return the commit."""
        commit = _commit_of(files, f"{repo}@{rev}:{len(self.commits)}")
        self.commits[commit] = dict(files)
        self.refs[(repo, rev)] = commit
        return commit

    def files(self, repo: str, rev: str = "main") -> dict[str, bytes]:
        """The files of `rev` of `repo`."""
        return self.commits[self.refs[(repo, rev)]]

    def gets(self, fragment: str = "/resolve/") -> list[tuple[str, str, str | None]]:
        """Logged GET requests whose path contains `fragment`."""
        return [e for e in self.log if e[0] == "GET" and fragment in e[1]]

    # -- server ---------------------------------------------------------------------------
    def _lookup(self, repo: str, rev: str) -> str | None:
        if (repo, rev) in self.refs:
            return self.refs[(repo, rev)]
        if rev in self.commits and any(r == repo for (r, _), c in self.refs.items()):
            return rev
        return None

    def _authorized(self, request: Any) -> bool:
        return (
            self.token is None
            or request.headers.get("Authorization") == f"Bearer {self.token}"
        )

    async def _revision(self, request: Any) -> Any:
        from aiohttp import web

        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        rev = unquote(request.match_info["rev"])
        self.log.append((request.method, request.path, None))
        if not self._authorized(request):
            return web.json_response({"error": "Invalid credentials"}, status=401)
        commit = self._lookup(repo, rev)
        if commit is None:
            return web.json_response({"error": "Revision not found"}, status=404)
        files = self.commits[commit]
        siblings = [
            {
                "rfilename": path,
                "size": len(data),
                "blobId": hashlib.sha1(data).hexdigest(),
                "lfs": {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                },
            }
            for path, data in sorted(files.items())
        ]
        return web.json_response({"id": repo, "sha": commit, "siblings": siblings})

    async def _resolve(self, request: Any) -> Any:
        from aiohttp import web

        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        rev = unquote(request.match_info["rev"])
        path = request.match_info["path"]
        rng = request.headers.get("Range")
        self.log.append((request.method, request.path, rng))
        if not self._authorized(request):
            return web.Response(status=401)
        queued = self.statuses.get(path)
        if queued:
            return web.Response(status=queued.pop(0))
        commit = self._lookup(repo, rev)
        if commit is None or path not in self.commits[commit]:
            return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound"})
        data = self.commits[commit][path]
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        if path in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        headers = {
            "X-Repo-Commit": commit,
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        status = 200
        start = 0
        if rng and not self.no_range and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return web.Response(status=416, headers=headers)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        cut = self.abort_after.pop(path, None)
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        if cut is not None:
            await resp.write(body[:cut])
            await resp.drain()
            assert request.transport is not None
            request.transport.abort()  # a connection dropped mid-body
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp

    def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get(
            r"/api/datasets/{owner}/{name}/revision/{rev:.+}", self._revision
        )
        app.router.add_route(
            "*", r"/datasets/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve
        )
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self._runner = runner
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="local-hub", daemon=True)
        self._thread.start()
        ready.wait(30)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)


@pytest.fixture(scope="session")
def local_hub(data_dir: Path) -> Iterator[LocalHub]:
    hub = LocalHub(build_repos(data_dir))
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(
    local_hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalHub]:
    """The local hub as `HF_ENDPOINT`, a fresh cache, no offline mode, no retry waits."""
    from crucible_core.retry import set_testing

    local_hub.reset()
    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("CRUCIBLE_CACHE_DIR", str(tmp_path / "cache"))
    for var in (
        "CRUCIBLE_OFFLINE",
        "HF_HUB_OFFLINE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    with set_testing(True):
        yield local_hub
    local_hub.reset()
