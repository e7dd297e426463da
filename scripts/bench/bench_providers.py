"""Benchmark crucible's HTTP model layer against the official `openai` SDK on the same server and load.

    UV_PROJECT_ENVIRONMENT=$PWD/.venvs/core uv run --locked --package crucible-core --all-extras \
        python scripts/bench/bench_providers.py [--openai-python PATH] [--requests N]

The peer is the official `openai` SDK in its own venv (never in uv.lock): `--openai-python`, else
`$CRUCIBLE_SDK_PYTHON`, else the venv `scripts/real-servers.sh install` makes
(`~/.cache/crucible-ci/real-servers/sdk/bin/python`), else the running interpreter if it has
`openai`; with none of these the peer's column says "(skipped)".

One local server process (a minimal HTTP/1.1 keep-alive server on asyncio, so that the server is
never the bottleneck) speaks OpenAI's `/v1/chat/completions`, plain JSON or server-sent events,
and counts the requests it receives. Each client runs in its own process, one after the other,
against that server:

1. client overhead per request: one request at a time against an instant server, wall time per
   request and client CPU per request;
2. sustained requests/s with 1, 64 and 512 requests in flight against an instant server;
3. streaming: the server sends the first token after 50 ms and the rest 50 ms later. Wall time of
   a streamed request over the server's 100 ms (the same measurement for both clients), and the
   time to first token each client reports minus the server's 50 ms (crucible's is the one it
   records on the Completion; the SDK's is timed around its iterator, as a user of it would).

After each client the server's count is compared with the calls the client made: every call is
exactly one request on the wire (a re-send would show).

crucible runs `OpenAIModel.complete` (retries, limiter, events, cost, all on); the peer runs
`AsyncOpenAI().chat.completions.create` with its defaults except a connection pool as large as
crucible's, so that neither reconnects. The ratio is crucible / peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

SERVER = r"""
import asyncio, json, sys, time

BODY = json.dumps({
    "id": "c", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}).encode()
FIRST_TOKEN = 0.05
COUNT = 0


def chunk(delta, finish=None, usage=None):
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def frame(data):
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        global COUNT
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
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            if head.startswith("get /count"):
                answer = str(COUNT).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                                     + f"content-length: {len(answer)}\r\n\r\n".encode() + answer)
                continue
            COUNT += 1
            if b'"stream":true' in body.replace(b" ", b""):
                asyncio.get_running_loop().create_task(self.stream())
            else:
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(BODY)}\r\n\r\n".encode() + BODY)

    async def stream(self):
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
        await asyncio.sleep(FIRST_TOKEN)
        self.transport.write(frame(chunk({"role": "assistant", "content": "o"})))
        await asyncio.sleep(FIRST_TOKEN)
        self.transport.write(frame(chunk({"content": "k"}, finish="stop")))
        self.transport.write(frame(chunk(None, usage={"prompt_tokens": 3,
                             "completion_tokens": 1, "total_tokens": 4})))
        self.transport.write(frame(b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def main():
    server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

FIRST_TOKEN = 0.05
KEY = "sk-bench-0000000000000000"


# --- one client, in its own process ----------------------------------------------------------------


def _client(kind: str, url: str) -> tuple[Any, Any]:
    """`(call(prompt, stream) -> (text, ttft), close)` for crucible or the openai SDK."""
    if kind == "crucible":
        from crucible_core.models import OpenAIModel, Request

        models: dict[bool, Any] = {}

        async def call(prompt: str, *, stream: bool) -> tuple[str, float | None]:
            model = models.get(stream)
            if model is None:
                model = models[stream] = OpenAIModel(
                    "m", base_url=url, api_key=KEY, stream=stream, timeout=120
                )
            completion = await model.complete(Request(prompt=prompt, max_tokens=16))
            return completion.text, completion.time_to_first_token

        async def close() -> None:
            for model in models.values():
                await model.aclose()

        return call, close

    from openai import AsyncOpenAI

    try:  # the SDK's own HTTP client (httpx2 in openai 3.x, httpx before), keeping every
        import httpx2 as httpx  # connection alive as crucible does, so neither reconnects
    except ImportError:
        import httpx
    client = AsyncOpenAI(
        base_url=url,
        api_key=KEY,
        http_client=httpx.AsyncClient(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        ),
    )

    async def call_sdk(prompt: str, *, stream: bool) -> tuple[str, float | None]:
        messages = [{"role": "user", "content": prompt}]
        if not stream:
            response = await client.chat.completions.create(
                model="m", messages=messages, max_completion_tokens=16
            )
            return response.choices[0].message.content or "", None
        started = time.perf_counter()
        first: float | None = None
        text = ""
        async for chunk in await client.chat.completions.create(
            model="m",
            messages=messages,
            max_completion_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        ):
            for choice in chunk.choices:
                if choice.delta.content:
                    first = first or time.perf_counter() - started
                    text += choice.delta.content
        return text, first

    async def close_sdk() -> None:
        await client.close()

    return call_sdk, close_sdk


async def _measure(kind: str, url: str, requests: int) -> dict[str, Any]:
    call, close = _client(kind, url)
    out: dict[str, Any] = {}
    calls = 0
    try:
        for _ in range(20):  # warm up: connections, imports, first-call costs
            await call("warm", stream=False)
        calls += 20
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(requests):
            await call(f"q{i}", stream=False)
        out["overhead_us"] = (time.perf_counter() - wall) / requests * 1e6
        out["cpu_us"] = (time.process_time() - cpu) / requests * 1e6
        calls += requests
        for in_flight in (1, 64, 512):
            total = max(requests, 4 * in_flight)
            queue = iter(range(total))

            async def worker(queue: Iterator[int] = queue) -> None:
                for i in queue:
                    text, _ = await call(f"q{i}", stream=False)
                    assert text == "ok"

            wall = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            out[f"rps_{in_flight}"] = total / (time.perf_counter() - wall)
            calls += total
        ttfts, walls = [], []
        for i in range(40):
            started = time.perf_counter()
            text, ttft = await call(f"s{i}", stream=True)
            walls.append(time.perf_counter() - started)
            assert text == "ok", text
            assert ttft is not None, "no time to first token"
            ttfts.append(ttft)
        calls += 40
        out["stream_over_ms"] = (statistics.median(walls) - 2 * FIRST_TOKEN) * 1e3
        out["ttft_over_ms"] = (statistics.median(ttfts) - FIRST_TOKEN) * 1e3
    finally:
        await close()
    out["calls"] = calls
    return out


# --- the run -------------------------------------------------------------------------------------


def _served(url: str) -> int:
    """How many completions the server has received so far."""
    with urllib.request.urlopen(
        url.removesuffix("/v1") + "/count", timeout=10
    ) as answer:
        return int(answer.read())


def _run_client(python: str, kind: str, url: str, requests: int) -> dict[str, Any]:
    before = _served(url)
    done = subprocess.run(
        [
            python,
            str(HERE),
            "--worker",
            kind,
            "--url",
            url,
            "--requests",
            str(requests),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} client failed:\n{done.stderr[-3000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["served"] = _served(url) - before
    return result


def _peer_python(given: str | None) -> str | None:
    """The interpreter holding the `openai` SDK (see the module docstring), or None."""
    if given:
        return given
    venv = Path.home() / ".cache/crucible-ci/real-servers/sdk/bin/python"
    for candidate in (os.environ.get("CRUCIBLE_SDK_PYTHON"), str(venv)):
        if candidate and Path(candidate).is_file():
            return candidate
    try:
        import openai  # noqa: F401
    except ImportError:
        return None
    return sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--openai-python", help="a python with the `openai` SDK installed"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = asyncio.run(_measure(args.worker, args.url, args.requests))
        sys.stdout.write(json.dumps(result) + "\n")
        return
    peer_python = _peer_python(args.openai_python)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        ours = _run_client(sys.executable, "crucible", url, args.requests)
        peer = (
            _run_client(peer_python, "openai", url, args.requests)
            if peer_python
            else None
        )
    finally:
        server.terminate()
        server.wait(10)
    rows = [
        ("client wall time per request, 1 in flight (us)", "overhead_us", "lower"),
        ("client CPU per request, 1 in flight (us)", "cpu_us", "lower"),
        ("requests/s, 1 in flight", "rps_1", "higher"),
        ("requests/s, 64 in flight", "rps_64", "higher"),
        ("requests/s, 512 in flight", "rps_512", "higher"),
        (
            "streaming: request wall time over the server's 100 ms (ms)",
            "stream_over_ms",
            "lower",
        ),
        (
            "streaming: time to first token over the server's 50 ms (ms)",
            "ttft_over_ms",
            "lower",
        ),
    ]
    lines = [
        f"{'':62} {'crucible':>10} {'openai SDK':>11} {'ratio':>7}",
    ]
    for label, key, better in rows:
        mine = ours[key]
        theirs = peer[key] if peer else None
        ratio = f"{mine / theirs:7.2f}" if theirs else "      -"
        shown = f"{theirs:11.1f}" if theirs is not None else f"{'(skipped)':>11}"
        lines.append(f"{label:62} {mine:10.1f} {shown} {ratio}  ({better} is better)")
    for name, result in (("crucible", ours), ("openai SDK", peer)):
        if result is not None:
            lines.append(
                f"{name}: {result['calls']} calls, the server received {result['served']} "
                "requests"
                + ("" if result["calls"] == result["served"] else "  (MISMATCH)")
            )
    lines.append(
        "ratio = crucible / openai SDK; crucible's time to first token is the one it records on "
        "the Completion (from the first byte sent), the SDK's is timed around its iterator."
    )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
