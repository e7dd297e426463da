"""Anthropic's messages API."""

from __future__ import annotations

from typing import Any

from crucible_core.models._http import HTTPModel
from crucible_core.models._types import FinishReason, Request, Usage

__all__ = ("ANTHROPIC_ALIASES", "AnthropicModel")

ANTHROPIC_ALIASES: dict[str, str] = {
    "claude-3-haiku": "claude-3-haiku-20240307",
    "claude-3-opus": "claude-3-opus-latest",
    "claude-3-5-haiku": "claude-3-5-haiku-latest",
    "claude-3-5-sonnet": "claude-3-5-sonnet-latest",
    "claude-3-7-sonnet": "claude-3-7-sonnet-latest",
    "claude-sonnet-4": "claude-sonnet-4-0",
    "claude-opus-4": "claude-opus-4-0",
}
"""Short names accepted in model strings, and the API alias each is sent as."""

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicModel(HTTPModel):
    """Anthropic's `POST /v1/messages` (`x-api-key` and `anthropic-version` headers).

    Built by `build_model("anthropic:claude-3-5-haiku")`. Short names such as `claude-3-5-haiku`
    are sent as their `-latest` alias; full ids (`claude-3-5-haiku-20241022`) are sent as given.

    Args:
        model: the model name or alias.
        base_url: the API root (default `https://api.anthropic.com`).
        api_key: the key; otherwise `ANTHROPIC_API_KEY` (or the variable named by `api_key_env`).
        api_key_env: the environment variable holding the key.
        default_max_tokens: sent when the request has no `max_tokens` (the API requires one).
        anthropic_version: the `anthropic-version` header.
        **options: `timeout`, `retry`, `requests_per_second`, `tokens_per_minute`, `price`,
            `headers`, as for every HTTP model.

    Raises:
        ConfigurationError: with no key, or a bad `base_url`.
        MissingDependencyError: without the `crucible-core[http]` extra.
    """

    default_base_url = "https://api.anthropic.com"
    key_env = ("ANTHROPIC_API_KEY",)

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        default_max_tokens: int = 1024,
        anthropic_version: str = "2023-06-01",
        **options: Any,
    ) -> None:
        super().__init__(
            model,
            provider="anthropic",
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            **options,
        )
        self.api_model: str = ANTHROPIC_ALIASES.get(self.model, self.model)
        """The model id sent to the API."""
        self.default_max_tokens: int = default_max_tokens
        """`max_tokens` for requests that set none."""
        self.anthropic_version: str = anthropic_version
        """The `anthropic-version` header."""

    def _url(self, request: Request) -> str:
        return f"{self.base_url}/v1/messages"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": self.anthropic_version}

    def _body(self, request: Request) -> dict[str, Any]:
        turns = request.conversation()
        system = [request.system] if request.system else []
        system += [m.content for m in turns if m.role == "system"]
        body: dict[str, Any] = {
            "model": self.api_model,
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in turns
                if m.role != "system"
            ],
        }
        if system:
            body["system"] = "\n\n".join(system)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        return body

    def _parse(
        self, payload: dict[str, Any]
    ) -> tuple[str, Usage | None, FinishReason, str | None]:
        blocks = payload["content"]
        if not isinstance(blocks, list):
            raise TypeError(f"`content` is {type(blocks).__name__}, not a list")
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        usage = payload.get("usage")
        parsed_usage = (
            Usage(
                input_tokens=int(usage.get("input_tokens") or 0)
                + int(usage.get("cache_creation_input_tokens") or 0)
                + int(usage.get("cache_read_input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
            )
            if isinstance(usage, dict)
            else None
        )
        finish = _FINISH.get(str(payload.get("stop_reason")), "other")
        response_id = payload.get("id")
        return (
            text,
            parsed_usage,
            finish,
            response_id if isinstance(response_id, str) else None,
        )
