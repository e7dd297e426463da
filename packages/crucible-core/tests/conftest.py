"""Fixtures for crucible-core's tests: captured events, retry testing mode, a scripted HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from crucible_core import events
from crucible_core.retry import set_testing


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


class TimedServer:
    """An OpenAI-compatible server on its own thread and loop that takes a fixed time per request.

    It records each request's server-side duration, so tests compare crucible's latency with
    the server's own timing without the two sharing an event loop.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.url = ""
        self.count = 0
        self.durations: list[float] = []

    async def handle(self, request: Any) -> Any:
        import time

        from aiohttp import web

        started = time.monotonic()
        self.count += 1
        await request.read()
        await asyncio.sleep(self.delay)
        body = {
            "id": f"c{self.count}", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }  # fmt: skip
        response = web.json_response(body)
        self.durations.append(time.monotonic() - started)
        return response


@pytest.fixture
def timed_server() -> Iterator[Any]:
    """`timed_server(delay)` starts a `TimedServer` on a background thread."""
    pytest.importorskip("aiohttp")
    import threading

    from aiohttp import web

    started: list[tuple[TimedServer, asyncio.AbstractEventLoop, Any]] = []

    def start(delay: float) -> TimedServer:
        server = TimedServer(delay)
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        async def setup() -> Any:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", server.handle)
            runner = web.AppRunner(app, backlog=1024)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
            return runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            runner = loop.run_until_complete(setup())
            started.append((server, loop, runner))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ready.wait(10)
        server._thread = thread  # type: ignore[attr-defined]
        return server

    yield start
    for server, loop, _ in started:
        loop.call_soon_threadsafe(loop.stop)
        server._thread.join(10)  # type: ignore[attr-defined]
