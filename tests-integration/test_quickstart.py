"""The real-provider quickstart works as written (#18): its `my_experiment.py`, `crucible estimate`
without a key, `crucible run`, the report; and the quickstart notebook.

The provider is a local server speaking OpenAI's chat-completions wire protocol (streaming and
not), reached the way a user reaches a proxy: `OPENAI_BASE_URL`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guides" / "quickstart-real-provider.md"
NOTEBOOK = ROOT / "docs" / "notebooks" / "quickstart-real-provider.ipynb"
KEY = "sk-quickstart-test-key-0123456789"


def _answer(model: str, prompt: str) -> str:
    a, b = (int(x) for x in re.findall(r"\d+", prompt)[:2])
    # the small model gets the large sums wrong: the comparison has something to find
    return str(a + b + (1 if model == "gpt-4o-mini" and a + b >= 500 else 0))


@pytest.fixture(scope="module")
def openai_server() -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"requests": 0, "auth": set()}

    async def chat(request: web.Request) -> web.StreamResponse:
        seen["requests"] += 1
        seen["auth"].add(request.headers.get("Authorization"))
        body = await request.json()
        text = _answer(body["model"], body["messages"][-1]["content"])
        usage = {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}
        if not body.get("stream"):
            return web.json_response({
                "id": "c1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": usage,
            })  # fmt: skip
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = [
            {
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": text}}
                ]
            },
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": usage},
        ]
        for chunk in chunks:
            payload = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": body["model"],
                **chunk,
            }
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    seen["base_url"] = f"http://127.0.0.1:{state['port']}/v1"
    yield seen
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(extra)
    return env


def _experiment_file(tmp_path: Path) -> Path:
    text = GUIDE.read_text(encoding="utf-8")
    block = re.search(r'^```py title="my_experiment.py"\n(.*?)^```', text, re.S | re.M)
    assert block, "the quickstart lost its my_experiment.py block"
    path = tmp_path / "my_experiment.py"
    path.write_text(block.group(1), encoding="utf-8")
    return path


def test_the_quickstart_runs_as_written(
    openai_server: dict[str, Any], tmp_path: Path
) -> None:
    experiment = _experiment_file(tmp_path)
    crucible = [sys.executable, "-m", "crucible"]
    # estimate: no key at all, nothing sent
    before = openai_server["requests"]
    est = subprocess.run([*crucible, "estimate", str(experiment)], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert est.returncode == 0, est.stderr
    assert re.search(r"estimated cost \(USD\)\s+0\.\d+", est.stdout), est.stdout
    assert openai_server["requests"] == before
    # run: the key and the base URL from the environment, as the guide says
    env = _env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=openai_server["base_url"])
    done = subprocess.run(
        [*crucible, "run", str(experiment), "--output", "runs", "--yes", "--quiet",
         "--format", "markdown", "html", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert openai_server["requests"] - before == 8 * 2 * 3  # one request per task
    assert openai_server["auth"] == {f"Bearer {KEY}"}
    (run_dir,) = (tmp_path / "runs").iterdir()
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "mini-vs-4o" in report and "imulated" not in report  # real models, no notice
    analysis = json.loads((run_dir / "analysis.json").read_text(encoding="utf-8"))
    accuracy = {c["name"]: c["accuracy"] for c in analysis["conditions"]}
    assert accuracy == {"mini": pytest.approx(5 / 8), "4o": 1.0}
    for name in (
        "tasks.jsonl",
        "events.jsonl",
        "report.md",
        "report.html",
        "analysis.json",
    ):
        assert KEY not in (run_dir / name).read_text(encoding="utf-8")


def test_the_quickstart_notebook_runs(
    openai_server: dict[str, Any], tmp_path: Path
) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    saved = dict(os.environ)
    try:  # the kernel inherits the environment
        os.environ.clear()
        os.environ.update(
            _env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=openai_server["base_url"])
        )
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = "\n".join(
        out.get("text", "")
        for cell in notebook.cells
        for out in cell.get("outputs", [])
    )
    assert "estimated cost" in text and "complete" in text
    assert "gpt-4o − gpt-4o-mini" in text or "4o − mini" in text
