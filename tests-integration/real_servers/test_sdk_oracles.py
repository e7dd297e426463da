"""The official SDKs as protocol oracles: what crucible sends, and what the servers here answer.

Request bodies are taken from nginx's log (what reached the server), answers from the servers
(LiteLLM's, and nginx's recorded streams); `sdk_check.py`, run by the `openai`, `anthropic` and
`google-genai` SDKs' own venv, validates both against the SDKs' types.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crucible_core import ConfigurationError
from crucible_core.models import HTTPModel, Message, Request

pytestmark = pytest.mark.network

HERE = Path(__file__).parent
PROTOCOLS = ("openai", "anthropic", "gemini")

MakeModel = Callable[..., HTTPModel]


def _requests(tag: str) -> list[Request]:
    """Requests using each option crucible has, one protocol or another."""
    question = f"[{tag}] What is the capital of France?"
    return [
        Request(prompt=question, max_tokens=16),
        Request(
            messages=[
                Message(role="user", content="Hello."),
                Message(role="assistant", content="Hello! How can I help?"),
                Message(role="user", content=question),
            ],
            system="Answer in one sentence.",
            temperature=0.2,
            top_p=0.9,
            stop=("\n\n", "###"),
            max_tokens=16,
        ),
        Request(prompt=question, seed=7, n=2, max_tokens=16),
        Request(prompt=question, logprobs=True, top_logprobs=2, max_tokens=16),
        Request(prompt=question, response_format="json", max_tokens=16),
        Request(
            prompt=question,
            response_format={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            max_tokens=16,
        ),
    ]


def _check(sdk_python: Path, given: dict[str, Any]) -> list[str]:
    out = subprocess.run(
        [str(sdk_python), str(HERE / "sdk_check.py")],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    problems: list[str] = json.loads(out.stdout)
    return problems


def _events(raw: bytes) -> list[Any]:
    """The JSON `data:` of each server-sent event."""
    found = []
    for block in raw.decode().split("\n\n"):
        data = "\n".join(
            line.removeprefix("data:").strip()
            for line in block.splitlines()
            if line.startswith("data:")
        )
        if data and data != "[DONE]":
            found.append(json.loads(data))
    return found


async def test_what_crucible_sends_is_what_the_sdks_would_send(
    ask: Any, nginx: Any, make_model: MakeModel, sdk_python: Path
) -> None:
    # Each request, in each protocol, whole (to LiteLLM) and streamed (to nginx's streams).
    mark = nginx.mark()
    sent = 0
    refused: list[str] = []
    tag, _ = ask()
    for protocol in PROTOCOLS:
        for stream, root in ((False, "ok"), (True, f"sse-{protocol}")):
            async with make_model(
                protocol, f"{nginx.url}/{root}", stream=stream
            ) as model:
                for request in _requests(tag):
                    try:
                        await model.complete(request)
                    except ConfigurationError as err:  # an option this protocol lacks
                        refused.append(f"{protocol}: {err}")
                        continue
                    sent += 1
    entries = [e for e in nginx.entries(mark, at_least=sent) if e.tag == tag]
    assert len(entries) == sent
    assert sent >= 2 * len(_requests(tag)) * 2  # most options exist in most protocols
    requests = [
        {
            "protocol": next(p for p in PROTOCOLS if f"-{p}/" in e.uri)
            if e.uri.startswith("/sse-")
            else (
                "gemini"
                if "v1beta" in e.uri
                else "anthropic"
                if "/v1/messages" in e.uri
                else "openai"
            ),
            "body": e.json(),
        }
        for e in entries
    ]
    assert {r["protocol"] for r in requests} == set(PROTOCOLS)
    problems = _check(sdk_python, {"requests": requests})
    assert not problems, "\n".join(problems)


def _post(url: str) -> bytes:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        body: bytes = answer.read()
        return body


async def test_what_the_servers_answer_parses_in_the_sdks(
    ask: Any, nginx: Any, litellm: Any, make_model: MakeModel, sdk_python: Path
) -> None:
    # LiteLLM's whole answers as crucible received them, and nginx's streams event by event: the
    # fixtures crucible is tested against are what the SDKs themselves accept.
    responses: list[dict[str, Any]] = []
    for protocol in PROTOCOLS:
        _, request = ask()
        async with make_model(protocol, f"{nginx.url}/ok") as model:
            completion = await model.complete(request)
        whole = dict(completion.raw)
        if protocol == "gemini":
            # LiteLLM adds a top-level `text` (the SDK's convenience property, not a field of
            # the API's answer), which google-genai's strict model refuses: LiteLLM's, not ours
            assert whole.pop("text") == litellm.mock_text
        responses.append({"protocol": protocol, "kind": "whole", "data": whole})
        path = {
            "openai": "/v1/chat/completions",
            "anthropic": "/v1/messages",
            "gemini": "/v1beta/models/gemini-mock:streamGenerateContent?alt=sse",
        }[protocol]
        events = _events(
            await asyncio.to_thread(_post, f"{nginx.url}/sse-{protocol}{path}")
        )
        assert len(events) >= 2
        responses += [
            {"protocol": protocol, "kind": "event", "data": e} for e in events
        ]
    for location in ("fixed", "fixed-1s", "slow-body"):
        raw = await asyncio.to_thread(
            _post, f"{nginx.url}/{location}/v1/chat/completions"
        )
        responses.append(
            {"protocol": "openai", "kind": "whole", "data": json.loads(raw)}
        )
    problems = _check(sdk_python, {"responses": responses})
    assert not problems, "\n".join(problems)
