"""The official SDKs as oracles: crucible sends what `openai`, `anthropic` and `google-genai` send.

One recording server on 127.0.0.1 (aiohttp, speaking each provider's wire protocol) receives the
same request from crucible and from the official SDK, run in its own virtual environment
(`CRUCIBLE_SDK_PYTHON`, made by `scripts/real-servers.sh install`; never in uv.lock). The test
compares what arrived: method and path, the headers the protocol needs (the key, the API version,
the content type; `user-agent` and the SDKs' `x-stainless-*` telemetry aside), and the JSON body
field by field. Then the server misbehaves (429 and 503 with each form of `Retry-After`, a
`Retry-After` beyond what a client should wait, an error that is not retried, a slow answer) and
the test compares how many requests each client sent and how long each waited between them.

Where the two legitimately differ, the test says so and checks what the protocol allows: the
Anthropic SDK (2.x) sends its key as `Authorization: Bearer`, crucible as `x-api-key`, and the
SDK's own header check accepts either; crucible sends `"stream": false` where the SDK omits the
field (the API's default).

Without the SDKs' venv these tests skip, naming the command that makes it; with
`CRUCIBLE_REQUIRE_REAL_SERVERS=1` (set by `.ci/run`) they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip("aiohttp")

from aiohttp import web

from crucible_core.exceptions import (
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
)
from crucible_core.models import (
    AnthropicModel,
    GeminiModel,
    OpenAIModel,
    Request,
)
from crucible_core.retry import is_transient, retry

pytestmark = pytest.mark.network

KEY = "sk-oracle-0123456789abcdef"


def _sdk_python() -> Path:
    home = Path(
        os.environ.get("CRUCIBLE_REAL_SERVERS_HOME")
        or Path.home() / ".cache" / "crucible-ci" / "real-servers"
    )
    python = Path(
        os.environ.get("CRUCIBLE_SDK_PYTHON") or home / "sdk" / "bin" / "python"
    )
    if not python.is_file():
        reason = (
            f"the official SDKs' venv is missing ({python}); make it with "
            "`scripts/real-servers.sh install` or point CRUCIBLE_SDK_PYTHON at a Python with "
            "openai, anthropic and google-genai"
        )
        if os.environ.get("CRUCIBLE_REQUIRE_REAL_SERVERS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return python


# --- the recording server --------------------------------------------------------------------------

OPENAI_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
ANTHROPIC_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "ok"}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 3,
        "candidatesTokenCount": 1,
        "totalTokenCount": 4,
    },
    "modelVersion": "g",
}


def _sse(events: list[tuple[str | None, dict[str, Any]]], *, done: bool) -> bytes:
    out = b""
    for name, data in events:
        if name:
            out += f"event: {name}\n".encode()
        out += b"data: " + json.dumps(data).encode() + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def _openai_stream() -> bytes:
    head = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
    }
    return _sse(
        [
            (
                None,
                {
                    **head,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": "o"},
                            "finish_reason": None,
                        }
                    ],
                },
            ),
            (
                None,
                {
                    **head,
                    "choices": [
                        {"index": 0, "delta": {"content": "k"}, "finish_reason": "stop"}
                    ],
                },
            ),
            (None, {**head, "choices": [], "usage": OPENAI_ANSWER["usage"]}),
        ],
        done=True,
    )


def _anthropic_stream() -> bytes:
    message = {**ANTHROPIC_ANSWER, "content": [], "stop_reason": None}
    return _sse(
        [
            ("message_start", {"type": "message_start", "message": message}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "ok"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 1},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ],
        done=False,
    )


def _gemini_stream() -> bytes:
    return _sse([(None, GEMINI_ANSWER)], done=False)


@attrs.define
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float


@attrs.define
class Fault:
    """One scripted answer: `status` with `headers` and a JSON error body, after `delay` s."""

    status: int = 200
    headers: dict[str, str] = attrs.Factory(dict)
    delay: float = 0.0


@attrs.define
class Recorder:
    """What the server received, and the faults it answers the next requests with."""

    url: str = ""
    received: list[Received] = attrs.Factory(list)
    faults: list[Fault] = attrs.Factory(list)

    def reset(self, *faults: Fault) -> None:
        self.received.clear()
        self.faults[:] = list(faults)

    def gaps(self) -> list[float]:
        return [
            b.at - a.at for a, b in zip(self.received, self.received[1:], strict=False)
        ]


async def _answer(recorder: Recorder, request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    recorder.received.append(
        Received(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=json.loads(raw) if raw else None,
            at=time.monotonic(),
        )
    )
    fault = recorder.faults.pop(0) if recorder.faults else Fault()
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status != 200:
        body = {"error": {"message": f"scripted {fault.status}", "type": "scripted"}}
        return web.json_response(body, status=fault.status, headers=fault.headers)
    path = request.path
    stream = (
        isinstance(body := recorder.received[-1].body, dict) and body.get("stream")
    ) or ("streamGenerateContent" in path)
    if not stream:
        answer = (
            OPENAI_ANSWER
            if path.endswith("/chat/completions")
            else ANTHROPIC_ANSWER
            if path.endswith("/messages")
            else GEMINI_ANSWER
        )
        return web.json_response(answer)
    data = (
        _openai_stream()
        if path.endswith("/chat/completions")
        else _anthropic_stream()
        if path.endswith("/messages")
        else _gemini_stream()
    )
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(data)
    await response.write_eof()
    return response


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _answer(recorder, request)

    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder.url = f"http://127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        await runner.cleanup()


# --- the SDK side, in its own interpreter ----------------------------------------------------------

SDK_WORKER = r"""
import json, sys, time

def call(spec):
    kind, kwargs = spec["sdk"], spec["kwargs"]
    if kind == "gemini":
        from google import genai
        from google.genai import types
        client = genai.Client(api_key=spec["key"], http_options=types.HttpOptions(
            base_url=spec["base_url"], api_version=spec["api_version"]))
        config = types.GenerateContentConfig(**kwargs.pop("config"))
        if kwargs.pop("stream"):
            return "".join(c.text or "" for c in client.models.generate_content_stream(
                config=config, **kwargs))
        return client.models.generate_content(config=config, **kwargs).text
    import anthropic, openai
    options = {"base_url": spec["base_url"], "api_key": spec["key"],
               "max_retries": spec["max_retries"]}
    if spec.get("timeout"):
        options["timeout"] = spec["timeout"]
    if kind == "anthropic":
        with anthropic.Anthropic(**options) as client:
            answer = client.messages.create(**kwargs)
            if kwargs.get("stream"):
                return "".join(e.delta.text for e in answer if e.type == "content_block_delta")
            return answer.content[0].text
    with openai.OpenAI(**options) as client:
        answer = client.chat.completions.create(**kwargs)
        if kwargs.get("stream"):
            return "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        return answer.choices[0].message.content

import openai, anthropic, google.genai  # once, before the first request is timed
print("ready", flush=True)
for line in sys.stdin:
    started = time.monotonic()
    try:
        out = {"text": call(json.loads(line)), "error": None}
    except Exception as err:
        out = {"text": None, "error": type(err).__name__}
    out["elapsed"] = time.monotonic() - started
    print(json.dumps(out), flush=True)
"""


class SDK:
    """The official SDKs in their own interpreter, one call per line (imported once)."""

    def __init__(self, python: Path) -> None:
        self._process = subprocess.Popen(
            [str(python), "-c", SDK_WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        ready = self._process.stdout.readline()
        assert ready.strip() == "ready", f"the SDK worker did not start: {ready!r}"

    def _call(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(spec) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, "the SDK worker died"
        return dict(json.loads(line))

    async def __call__(self, **spec: Any) -> dict[str, Any]:
        # in a thread, so that the recording server on this loop answers meanwhile
        return await asyncio.to_thread(self._call, spec)

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(30)
        self._process.stdout.close()


@pytest.fixture(scope="module")
def sdk() -> Iterator[SDK]:
    worker = SDK(_sdk_python())
    try:
        yield worker
    finally:
        worker.close()


# --- the same request from both ---------------------------------------------------------------------

# Headers each wire protocol needs; the rest (user-agent, SDK telemetry, accept-encoding, ...)
# is each client's own business.
_WIRE_HEADERS = {
    "openai": ("content-type", "authorization"),
    "anthropic": ("content-type", "anthropic-version"),
    "gemini": ("content-type", "x-goog-api-key"),
}


def _credential(headers: dict[str, str]) -> str | None:
    """The key a request carries, in any header the Anthropic SDK itself accepts."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    return headers.get("authorization", "").removeprefix("Bearer ") or None


def _same_request(
    provider: str, ours: Received, theirs: Received, *, stream: bool
) -> None:
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.query == theirs.query
    for name in _WIRE_HEADERS[provider]:
        assert (
            ours.headers.get(name, "").split(";")[0]
            == theirs.headers.get(name, "").split(";")[0]
        ), name
    if provider == "anthropic":
        assert _credential(ours.headers) == _credential(theirs.headers) == KEY
    body = dict(ours.body)
    if not stream and body.get("stream") is False and "stream" not in theirs.body:
        del body["stream"]  # the API's default, which the SDK leaves out
    assert body == theirs.body


OPENAI_OPTIONS = {
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": ["x"],
    "seed": 3,
    "logprobs": True,
    "top_logprobs": 2,
}


def _cases() -> list[tuple[str, bool, Callable[[str], Any], Request, dict[str, Any]]]:
    """(provider, stream, crucible model from the base URL, crucible request, SDK spec)."""
    conversation = Request(
        messages=(
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "and 3+3?"},
        ),
        system="Be brief.",
        max_tokens=16,
    )
    cases: list[tuple[str, bool, Callable[[str], Any], Request, dict[str, Any]]] = []
    for stream in (False, True):
        sdk_stream = (
            {"stream": True, "stream_options": {"include_usage": True}}
            if stream
            else {}
        )
        cases += [
            (
                "openai",
                stream,
                lambda url, s=stream: OpenAIModel(
                    "gpt-4o-mini", base_url=f"{url}/v1", api_key=KEY, stream=s
                ),
                Request(
                    prompt="hi",
                    system="S",
                    max_tokens=16,
                    response_format="json",
                    stop=("x",),
                    **{k: v for k, v in OPENAI_OPTIONS.items() if k != "stop"},
                ),
                {
                    "sdk": "openai",
                    "kwargs": {
                        "model": "gpt-4o-mini",
                        "messages": [
                            {"role": "system", "content": "S"},
                            {"role": "user", "content": "hi"},
                        ],
                        "max_completion_tokens": 16,
                        "response_format": {"type": "json_object"},
                        **OPENAI_OPTIONS,
                        **sdk_stream,
                    },
                },
            ),
            (
                "openai",
                stream,
                lambda url, s=stream: OpenAIModel(
                    "local-model",
                    provider="openai-compatible",
                    base_url=f"{url}/v1",
                    api_key=KEY,
                    stream=s,
                ),
                conversation,
                {
                    "sdk": "openai",
                    "kwargs": {
                        "model": "local-model",
                        "messages": [
                            {"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "2+2?"},
                            {"role": "assistant", "content": "4"},
                            {"role": "user", "content": "and 3+3?"},
                        ],
                        "max_tokens": 16,
                        **sdk_stream,
                    },
                },
            ),
            (
                "anthropic",
                stream,
                lambda url, s=stream: AnthropicModel(
                    "claude-3-5-haiku", base_url=url, api_key=KEY, stream=s
                ),
                attrs.evolve(conversation, stop=("STOP",)),
                {
                    "sdk": "anthropic",
                    "kwargs": {
                        "model": "claude-3-5-haiku-latest",
                        "max_tokens": 16,
                        "system": "Be brief.",
                        "messages": [
                            {"role": "user", "content": "2+2?"},
                            {"role": "assistant", "content": "4"},
                            {"role": "user", "content": "and 3+3?"},
                        ],
                        "stop_sequences": ["STOP"],
                        **({"stream": True} if stream else {}),
                    },
                },
            ),
            (
                "gemini",
                stream,
                lambda url, s=stream: GeminiModel(
                    "gemini-2.0-flash", base_url=url, api_key=KEY, stream=s
                ),
                Request(
                    prompt="hi",
                    system="S",
                    max_tokens=16,
                    temperature=0.5,
                    top_p=0.9,
                    stop=("x",),
                    seed=3,
                    response_format="json",
                ),
                {
                    "sdk": "gemini",
                    "api_version": "v1beta",
                    "kwargs": {
                        "model": "gemini-2.0-flash",
                        "contents": "hi",
                        "stream": stream,
                        "config": {
                            "system_instruction": "S",
                            "temperature": 0.5,
                            "top_p": 0.9,
                            "max_output_tokens": 16,
                            "stop_sequences": ["x"],
                            "seed": 3,
                            "response_mime_type": "application/json",
                        },
                    },
                },
            ),
        ]
    return cases


CASES = _cases()


@pytest.mark.parametrize(
    ("provider", "stream", "build", "request_", "spec"),
    CASES,
    ids=[
        f"{c[0]}-{'compatible-' if 'local' in str(c[4]) else ''}{'stream' if c[1] else 'json'}"
        for c in CASES
    ],
)
async def test_crucible_sends_what_the_sdk_sends(
    server: Recorder,
    sdk: SDK,
    provider: str,
    stream: bool,
    build: Callable[[str], Any],
    request_: Request,
    spec: dict[str, Any],
) -> None:
    base = server.url + ("/v1" if provider == "openai" else "")
    theirs = await sdk(base_url=base, key=KEY, max_retries=0, **spec)
    assert theirs["error"] is None and theirs["text"] == "ok", theirs
    async with build(server.url) as model:
        completion = await model.complete(request_)
    assert completion.text == "ok"
    assert len(server.received) == 2
    sdk_request, our_request = server.received
    _same_request(provider, our_request, sdk_request, stream=stream)


# --- retries and timeouts --------------------------------------------------------------------------


def _retrying(attempts: int) -> Any:
    """crucible's policy with the SDK's attempt cap (`max_retries + 1`) and short backoff."""
    return retry(
        on=is_transient,
        attempts=attempts,
        timeout=120.0,
        wait_initial=0.05,
        wait_max=0.2,
        wait_jitter=0.05,
        full_jitter=True,
    )


def _openai_pair(url: str, **options: Any) -> tuple[OpenAIModel, dict[str, Any]]:
    model = OpenAIModel(
        "gpt-4o-mini", base_url=f"{url}/v1", api_key=KEY, stream=False, **options
    )
    spec = {
        "sdk": "openai",
        "base_url": f"{url}/v1",
        "key": KEY,
        "kwargs": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 16,
        },
    }
    return model, spec


def _anthropic_pair(url: str, **options: Any) -> tuple[AnthropicModel, dict[str, Any]]:
    model = AnthropicModel(
        "claude-3-5-haiku", base_url=url, api_key=KEY, stream=False, **options
    )
    spec = {
        "sdk": "anthropic",
        "base_url": url,
        "key": KEY,
        "kwargs": {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }
    return model, spec


PAIRS = {"openai": _openai_pair, "anthropic": _anthropic_pair}


def _http_date(seconds_ahead: float) -> str:
    from email.utils import formatdate

    return formatdate(time.time() + seconds_ahead, usegmt=True)


RETRY_AFTER = [
    pytest.param(429, {"retry-after": "1"}, 1.0, id="429-seconds"),
    pytest.param(503, {"retry-after": "1"}, 1.0, id="503-seconds"),
    pytest.param(429, {"retry-after-ms": "400"}, 0.4, id="429-retry-after-ms"),
    pytest.param(503, {"retry-after-ms": "400"}, 0.4, id="503-retry-after-ms"),
    # an HTTP-date has whole seconds: 2.5 s ahead is at least 1.5 s once rounded down
    pytest.param(503, {"retry-after": "date"}, 1.0, id="503-http-date"),
]


@pytest.mark.parametrize("provider", sorted(PAIRS))
@pytest.mark.parametrize(("status", "headers", "least_wait"), RETRY_AFTER)
async def test_both_wait_what_retry_after_asks_then_send_once_more(
    server: Recorder,
    sdk: SDK,
    provider: str,
    status: int,
    headers: dict[str, str],
    least_wait: float,
) -> None:
    def fault() -> Fault:
        given = {k: _http_date(2.5) if v == "date" else v for k, v in headers.items()}
        return Fault(status=status, headers=given)

    model, spec = PAIRS[provider](server.url, retry=_retrying(3))
    server.reset(fault())
    theirs = await sdk(max_retries=2, **spec)
    assert theirs["error"] is None, theirs
    sdk_gaps = server.gaps()
    server.reset(fault())
    async with model:
        completion = await model.complete(Request(prompt="hi", max_tokens=16))
    our_gaps = server.gaps()
    assert (
        len(sdk_gaps) == len(our_gaps) == 1
    )  # two requests each: the 429/503, then the answer
    assert sdk_gaps[0] >= least_wait * 0.95
    assert (
        our_gaps[0] >= least_wait
    )  # never earlier than the server asked (jitter on top)
    assert completion.attempts == 2


@pytest.mark.parametrize("provider", sorted(PAIRS))
async def test_both_give_up_after_the_same_attempt_cap(
    server: Recorder, sdk: SDK, provider: str
) -> None:
    faults = [Fault(status=500, headers={"retry-after-ms": "20"}) for _ in range(5)]
    model, spec = PAIRS[provider](server.url, retry=_retrying(3))
    server.reset(*faults)
    theirs = await sdk(max_retries=2, **spec)
    assert theirs["error"] == "InternalServerError", theirs
    sdk_sent = len(server.received)
    server.reset(*faults)
    async with model:
        with pytest.raises(ResponseError) as caught:
            await model.complete(Request(prompt="hi", max_tokens=16))
    assert sdk_sent == len(server.received) == 3
    assert caught.value.context["attempt"] == 3


ONCE = [
    pytest.param(
        "anthropic",
        Fault(status=400),
        "BadRequestError",
        ResponseError,
        id="400-anthropic",
    ),
    pytest.param(
        "openai", Fault(status=400), "BadRequestError", ResponseError, id="400-openai"
    ),
    pytest.param(
        "anthropic",
        Fault(status=404),
        "NotFoundError",
        ResponseError,
        id="404-anthropic",
    ),
    pytest.param(
        "openai", Fault(status=404), "NotFoundError", ResponseError, id="404-openai"
    ),
    # the server says not to retry (OpenAI and Anthropic send `x-should-retry`)
    pytest.param(
        "anthropic",
        Fault(status=503, headers={"x-should-retry": "false"}),
        "ServiceUnavailableError",
        ResponseError,
        id="503-x-should-retry-false-anthropic",
    ),
    pytest.param(
        "openai",
        Fault(status=503, headers={"x-should-retry": "false"}),
        "InternalServerError",
        ResponseError,
        id="503-x-should-retry-false-openai",
    ),
    # a wait longer than a client should sit through (the openai SDK's cap is 120 s; crucible's
    # policy gives up when the wait would pass its 120 s `timeout`). The anthropic SDK waits any
    # Retry-After out, which crucible deliberately does not copy.
    pytest.param(
        "openai",
        Fault(status=429, headers={"retry-after": "3600"}),
        "RateLimitError",
        RateLimitError,
        id="429-retry-after-an-hour-openai",
    ),
]


@pytest.mark.parametrize(("provider", "fault", "sdk_error", "our_error"), ONCE)
async def test_both_send_once_when_a_retry_cannot_help(
    server: Recorder,
    sdk: SDK,
    provider: str,
    fault: Fault,
    sdk_error: str,
    our_error: type[Exception],
) -> None:
    model, spec = PAIRS[provider](server.url)  # crucible's default policy: 4 attempts
    server.reset(fault)
    theirs = await sdk(max_retries=2, **spec)
    assert theirs["error"] == sdk_error, theirs
    assert theirs["elapsed"] < 30
    sdk_sent = len(server.received)
    server.reset(fault)
    started = time.monotonic()
    async with model:
        with pytest.raises(our_error):
            await model.complete(Request(prompt="hi", max_tokens=16))
    assert time.monotonic() - started < 30
    assert sdk_sent == len(server.received) == 1


@pytest.mark.parametrize("provider", sorted(PAIRS))
@pytest.mark.parametrize("retries", [0, 1])
async def test_a_slow_answer_times_out_and_each_attempt_is_one_request(
    server: Recorder, sdk: SDK, provider: str, retries: int
) -> None:
    slow = [Fault(delay=3.0) for _ in range(retries + 1)]
    model, spec = PAIRS[provider](server.url, timeout=0.5, retry=_retrying(retries + 1))
    server.reset(*slow)
    theirs = await sdk(max_retries=retries, timeout=0.5, **spec)
    assert theirs["error"] == "APITimeoutError", theirs
    sdk_sent = len(server.received)
    server.reset(*slow)
    started = time.monotonic()
    async with model:
        with pytest.raises(ProviderTimeoutError):
            await model.complete(Request(prompt="hi", max_tokens=16))
    elapsed = time.monotonic() - started
    assert sdk_sent == len(server.received) == retries + 1
    assert 0.5 * (retries + 1) <= elapsed < 0.5 * (retries + 1) + 2.0
