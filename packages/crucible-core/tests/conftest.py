"""Fixtures for crucible-core's tests: captured events, retry testing mode, a scripted HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import settings

from crucible_core import events
from crucible_core.retry import set_testing

# Speed is measured by scripts/bench, never by a test: no per-example deadline (CI machines are
# shared and a loaded one turned a Parquet round trip into a DeadlineExceeded failure).
settings.register_profile("crucible-core", deadline=None)
settings.load_profile("crucible-core")


@pytest.fixture(autouse=True)
def _retry_testing_mode() -> Iterator[None]:
    """Retries happen without waiting in every test (a test can opt out with set_testing(False))."""
    with set_testing(True):
        yield


class CapturedEvents:
    """Events seen by a handler attached to ("crucible", "llm")."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]] = []

    def __call__(
        self,
        name: tuple[str, ...],
        measurements: Mapping[str, float],
        metadata: Mapping[str, Any],
    ) -> None:
        self.items.append((name, dict(measurements), dict(metadata)))

    def named(self, suffix: str) -> list[tuple[dict[str, float], dict[str, Any]]]:
        return [(m, md) for n, m, md in self.items if n[-1] == suffix]

    @property
    def kinds(self) -> list[str]:
        return [n[-1] for n, _, _ in self.items]


@pytest.fixture
def llm_events() -> Iterator[CapturedEvents]:
    captured = CapturedEvents()
    events.attach("test-llm-events", [("crucible", "llm")], captured)
    try:
        yield captured
    finally:
        events.detach("test-llm-events")


class ScriptedServer:
    """A local aiohttp server answering each request with the next scripted reply.

    `reply(...)` queues a reply; the last one repeats when the queue runs dry. `hang=True` keeps the
    request open until the test ends, and records in `disconnected` when the client goes away.
    """

    def __init__(self) -> None:
        self.url = ""
        self.script: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.disconnected = asyncio.Event()
        self.body_started = asyncio.Event()
        self.release = asyncio.Event()
        self.handlers_cancelled = 0

    def reply(
        self,
        *,
        status: int = 200,
        json: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        hang: bool = False,
        partial: bool = False,
        delay: float = 0.0,
        sse: list[tuple[str | None, Any]] | None = None,
        sse_gap: float = 0.0,
    ) -> None:
        """Queue a reply; `partial=True` sends the headers and half a body, then hangs.

        `sse=[(event, data), ...]` streams server-sent events (`data` is JSON-encoded unless it
        is a string), `sse_gap` seconds apart.
        """
        self.script.append(
            {"status": status, "json": json, "text": text, "headers": dict(headers or {}),
             "hang": hang, "partial": partial, "delay": delay, "sse": sse, "sse_gap": sse_gap}
        )  # fmt: skip

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        self.requests.append(
            {"method": request.method, "path": request.path, "query": dict(request.query),
             "headers": dict(request.headers), "body": body}
        )  # fmt: skip
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        try:
            if step["partial"]:
                response = web.StreamResponse(
                    status=200, headers={"content-type": "application/json"}
                )
                response.content_length = 1000
                await response.prepare(request)
                await response.write(b'{"choices": [')
                self.body_started.set()
                await self.release.wait()
                return response
            if step["hang"]:
                await self.release.wait()
            elif step["delay"]:
                await asyncio.sleep(step["delay"])
        except asyncio.CancelledError:
            self.handlers_cancelled += 1
            self.disconnected.set()
            raise
        if step["sse"] is not None:
            import json as _json

            response = web.StreamResponse(
                status=step["status"], headers={"content-type": "text/event-stream"}
            )
            await response.prepare(request)
            for event, data in step["sse"]:
                if step["sse_gap"]:
                    await asyncio.sleep(step["sse_gap"])
                payload = data if isinstance(data, str) else _json.dumps(data)
                head = f"event: {event}\n" if event else ""
                await response.write(f"{head}data: {payload}\n\n".encode())
            await response.write_eof()
            return response
        if step["json"] is not None:
            return web.json_response(
                step["json"], status=step["status"], headers=step["headers"]
            )
        return web.Response(
            text=step["text"] or "", status=step["status"], headers=step["headers"],
            content_type="application/json",
        )  # fmt: skip


@pytest.fixture
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    pytest.importorskip("aiohttp")
    from aiohttp import web

    server = ScriptedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


_TIMED_SERVER = r"""
# A minimal HTTP/1.1 keep-alive server on asyncio.Protocol: it answers every POST after a fixed
# delay and, like nginx's $request_time, times each request from its first byte read to its last
# byte written. GET /stats returns the count and the durations.
import asyncio, json, sys, time

delay = float(sys.argv[1])
count = 0
durations = []
BODY = json.dumps({
    "id": "c", "object": "chat.completion", "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}).encode()


def response(body):
    head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer, self.first = transport, b"", None

    def data_received(self, data):
        global count
        if self.first is None:
            self.first = time.monotonic()
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            first, self.first = self.first, (time.monotonic() if self.buffer else None)
            if head.startswith("get /stats"):
                stats = json.dumps({"count": count, "durations": durations}).encode()
                self.transport.write(response(stats))
                continue
            count += 1
            asyncio.get_running_loop().call_later(delay, self.answer, first)

    def answer(self, first):
        if not self.transport.is_closing():
            self.transport.write(response(BODY))
            durations.append(time.monotonic() - first)


async def main():
    server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class TimedServer:
    """An OpenAI-compatible server in its own process that takes a fixed time per request.

    It records each request's server-side duration (handler start to response ready), so tests
    compare crucible's latency with the server's own timing without sharing a CPU-bound loop.
    """

    def __init__(self, delay: float) -> None:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-c", _TIMED_SERVER, str(delay)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/v1"

    def stats(self) -> dict[str, Any]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.base}/stats", timeout=10) as response:
            return dict(json.loads(response.read()))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def timed_server() -> Iterator[Any]:
    """`timed_server(delay)` starts a `TimedServer`; all are stopped at the end of the test."""
    pytest.importorskip("aiohttp")
    started: list[TimedServer] = []

    def start(delay: float) -> TimedServer:
        server = TimedServer(delay)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
