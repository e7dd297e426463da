"""Hedging real HTTP requests against a local aiohttp server with injected tail latency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from crucible_hedging import Fixed, Hedger, Percentile, hedged  # noqa: E402

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


class Server:
    """Answers `/work?name=..&delay=..&status=..` after `delay` seconds; notices disconnects."""

    def __init__(self) -> None:
        self.completed: list[str] = []
        self.disconnected: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        name = request.query["name"]
        delay = float(request.query.get("delay", "0"))
        status = int(request.query.get("status", "200"))
        loop = asyncio.get_running_loop()
        end = loop.time() + delay
        try:
            while loop.time() < end:
                transport = request.transport
                if transport is None or transport.is_closing():
                    self.disconnected.append(name)
                    return web.Response(text="gone")
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            self.disconnected.append(name)
            raise
        self.completed.append(name)
        return web.Response(text=name, status=status)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.router.add_get("/work", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/work"
    try:
        yield state
    finally:
        await runner.cleanup()


def _fetcher(session: Any, url: str, plan: list[dict[str, str]]) -> Any:
    calls = iter(plan)

    async def fetch() -> str:
        params = next(calls)
        async with session.get(url, params=params) as response:
            response.raise_for_status()
            return str(await response.text())

    return fetch


async def test_loser_connection_is_really_closed(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        fetch = _fetcher(
            session,
            server.url,
            [{"name": "slow", "delay": "5"}, {"name": "fast", "delay": "0.02"}],
        )
        result = await hedged(fetch, policy=Fixed(delay=0.1))
        assert (result.value, result.winner_index, result.cancelled) == ("fast", 1, 1)
        # the server sees the slow request's connection go away long before its 5 s are up
        for _ in range(200):
            if server.disconnected:
                break
            await asyncio.sleep(0.01)
    assert server.disconnected == ["slow"]
    assert server.completed == ["fast"]


async def test_server_error_triggers_an_immediate_backup(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        fetch = _fetcher(
            session,
            server.url,
            [{"name": "broken", "status": "503"}, {"name": "ok", "delay": "0.01"}],
        )
        result = await hedged(fetch, policy=Fixed(delay=30.0))
    assert (result.value, result.winner_index) == ("ok", 1)
    assert server.completed == ["broken", "ok"]


async def test_hedged_stream_against_tail_latency(server: Server) -> None:
    """200 requests, 1 in 10 stuck for 2 s: a percentile hedge rescues the stuck ones."""
    hedger = Hedger(policy=Percentile(p=80, min_samples=20, initial_delay=0.2))
    async with aiohttp.ClientSession() as session:
        for i in range(200):
            slow = i % 10 == 9
            plan = [
                {"name": f"r{i}", "delay": "2" if slow else "0.005"},
                {"name": f"r{i}b", "delay": "0.005"},
            ]
            await hedger.request(_fetcher(session, server.url, plan))
    report = hedger.report()
    assert report.hedge_wins >= 18  # the stuck ones were won by backups
    assert (
        report.latency(99) < 1900
    )  # no request waited out its stuck 2 s first attempt
    assert report.hedge_rate <= 0.3
