"""Check wire JSON against the official SDKs' own types (run by the SDKs' venv, not crucible's).

Reads `{"requests": [{"protocol", "body"}], "responses": [{"protocol", "kind", "data"}]}` on stdin
and prints a JSON list of problems (empty when everything conforms):

- requests: OpenAI's `CompletionCreateParams`, Anthropic's `MessageCreateParams` (top-level keys
  must be the type's own, values must validate), Gemini's `Content` and `GenerationConfig`
  models (camelCase REST names; unknown fields are errors there at every level);
- responses: `ChatCompletion`/`ChatCompletionChunk`, `Message`/`RawMessageStreamEvent`, and
  `GenerateContentResponse`, as each SDK parses what it receives.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pydantic
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from google.genai import types as genai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

_GEMINI_BODY = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "safetySettings",
    "tools",
    "toolConfig",
    "cachedContent",
}


def _typed_dict(kind: Any, body: dict[str, Any]) -> list[str]:
    keys = kind.__required_keys__ | kind.__optional_keys__
    problems = [f"unknown field {k!r}" for k in sorted(set(body) - keys)]
    problems += [
        f"missing field {k!r}" for k in sorted(kind.__required_keys__ - set(body))
    ]
    try:
        pydantic.TypeAdapter(kind).validate_python(body)
    except pydantic.ValidationError as err:
        problems.append(str(err))
    return problems


_PARAMS: dict[str, tuple[Any, Any]] = {
    "openai": (CompletionCreateParamsNonStreaming, CompletionCreateParamsStreaming),
    "anthropic": (MessageCreateParamsNonStreaming, MessageCreateParamsStreaming),
}
"""The request types of each protocol, whole and streamed."""


def _request(protocol: str, body: dict[str, Any]) -> list[str]:
    if protocol in _PARAMS:
        return _typed_dict(_PARAMS[protocol][bool(body.get("stream"))], body)
    problems = [f"unknown field {k!r}" for k in sorted(set(body) - _GEMINI_BODY)]
    try:
        for content in body["contents"]:
            genai.Content.model_validate(content)
        if "systemInstruction" in body:
            genai.Content.model_validate(body["systemInstruction"])
        if "generationConfig" in body:
            genai.GenerationConfig.model_validate(body["generationConfig"])
        for setting in body.get("safetySettings", []):
            genai.SafetySetting.model_validate(setting)
    except (pydantic.ValidationError, KeyError) as err:
        problems.append(str(err))
    return problems


_RESPONSES: dict[tuple[str, str], Any] = {
    ("openai", "whole"): ChatCompletion,
    ("openai", "event"): ChatCompletionChunk,
    ("anthropic", "whole"): Message,
    ("anthropic", "event"): RawMessageStreamEvent,
    ("gemini", "whole"): genai.GenerateContentResponse,
    ("gemini", "event"): genai.GenerateContentResponse,
}


def _response(protocol: str, kind: str, data: Any) -> list[str]:
    try:
        pydantic.TypeAdapter(_RESPONSES[protocol, kind]).validate_python(data)
    except pydantic.ValidationError as err:
        return [str(err)]
    return []


def main() -> None:
    given = json.load(sys.stdin)
    problems = [
        f"request {n} ({item['protocol']}): {problem}"
        for n, item in enumerate(given.get("requests", []))
        for problem in _request(item["protocol"], item["body"])
    ]
    problems += [
        f"response {n} ({item['protocol']} {item['kind']}): {problem}"
        for n, item in enumerate(given.get("responses", []))
        for problem in _response(item["protocol"], item["kind"], item["data"])
    ]
    json.dump(problems, sys.stdout)


if __name__ == "__main__":
    main()
