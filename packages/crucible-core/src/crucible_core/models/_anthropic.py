"""Anthropic's messages API."""

from __future__ import annotations

from typing import Any

from crucible_core.models._http import HTTPModel, Parsed, StreamError, StreamState
from crucible_core.models._types import FinishReason, Request, Usage

__all__ = ("ANTHROPIC_ALIASES", "ANTHROPIC_VERSION", "AnthropicModel")

ANTHROPIC_VERSION = "2026-10-21"
"""The `anthropic-version` header sent by default: the one the official `anthropic` SDK sends
(2.17). That version's Messages API has no `temperature` or `top_p`; pass
`anthropic_version="2023-06-01"` to use them."""

_LEGACY_VERSION = "2023-06-01"

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
    "pause_turn": "other",
    "model_context_window_exceeded": "length",
}

_ERROR_STATUS = {
    "rate_limit_error": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "timeout_error": 504,
}


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    read = int(usage.get("cache_read_input_tokens") or 0)
    write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + read + write,
        output_tokens=int(usage.get("output_tokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


class _Stream(StreamState):
    """Messages stream events assembled into one message (`message_start` + deltas)."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {"type": "message", "content": []}
        self.usage: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}

    def feed(self, event: str | None, data: Any) -> bool:
        if not isinstance(data, dict):
            raise StreamError(f"a stream event is {type(data).__name__}, not an object")
        kind = data.get("type") or event
        if kind == "error":
            error = data.get("error") or {}
            name = error.get("type") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamError(
                f"{name}: {message}" if name else str(message),
                status=_ERROR_STATUS.get(str(name), 200),
            )
        if kind == "message_start":
            message = dict(data.get("message") or {})
            self.usage.update(message.pop("usage", None) or {})
            message.pop("content", None)
            self.message.update(message)
        elif kind == "content_block_start":
            block = dict(data.get("content_block") or {})
            self.blocks[int(data.get("index") or 0)] = block
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            block = self.blocks.setdefault(
                int(data.get("index") or 0), {"type": "text", "text": ""}
            )
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + str(delta.get("text", ""))
                return bool(delta.get("text"))
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            for key in ("stop_reason", "stop_sequence", "stop_details"):
                if key in delta:
                    self.message[key] = delta[key]
            self.usage.update(
                {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            )
        return False

    def payload(self) -> dict[str, Any]:
        payload = dict(self.message)
        payload["content"] = [self.blocks[i] for i in sorted(self.blocks)]
        if self.usage:
            payload["usage"] = self.usage
        return payload


class AnthropicModel(HTTPModel):
    """Anthropic's `POST /v1/messages` (`x-api-key` and `anthropic-version` headers).

    Built by `build_model("anthropic:claude-3-5-haiku")`. Short names such as `claude-3-5-haiku`
    are sent as their `-latest` alias; full ids (`claude-3-5-haiku-20241022`) are sent as given.
    Answers are streamed by default (`stream=False` turns it off). A JSON schema in
    `Request.response_format` is sent as `output_config.format` (structured outputs); the API
    has no schema-less JSON mode, no `seed`, `n` or log-probabilities, and (with the current
    `anthropic-version`) no `temperature` or `top_p`: asking for them raises
    `ConfigurationError` rather than silently dropping them.

    Args:
        model: the model name or alias.
        base_url: the API root (default `ANTHROPIC_BASE_URL`, then `https://api.anthropic.com`).
        api_key: the key; otherwise `ANTHROPIC_API_KEY` (or the variable named by `api_key_env`).
        api_key_env: the environment variable holding the key.
        default_max_tokens: the same as `max_tokens` (kept for compatibility).
        anthropic_version: the `anthropic-version` header (default
            [`ANTHROPIC_VERSION`][crucible_core.models.ANTHROPIC_VERSION]).
        **options: `timeout`, `retry`, `max_tokens`, `stream`, `max_concurrency`,
            `max_connections`, `requests_per_second`, `burst`, `tokens_per_minute`, `price`,
            `headers`, as for every [`HTTPModel`][crucible_core.models.HTTPModel].

    Raises:
        ConfigurationError: with no key, or a bad `base_url`.
        MissingDependencyError: without the `crucible-core[http]` extra.
    """

    default_base_url = "https://api.anthropic.com"
    key_env = ("ANTHROPIC_API_KEY",)
    base_url_env = ("ANTHROPIC_BASE_URL",)

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        default_max_tokens: int | None = None,
        anthropic_version: str = ANTHROPIC_VERSION,
        **options: Any,
    ) -> None:
        if default_max_tokens is not None:
            options.setdefault("max_tokens", default_max_tokens)
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
        self.anthropic_version: str = anthropic_version
        """The `anthropic-version` header."""

    @property
    def default_max_tokens(self) -> int:
        """`max_tokens` for requests that set none (the same as `max_tokens`)."""
        return self.max_tokens

    def _url(self, request: Request, *, stream: bool) -> str:
        return f"{self.base_url}/v1/messages"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": self.anthropic_version}

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        legacy = self.anthropic_version <= _LEGACY_VERSION
        for option, value in (
            ("temperature", request.temperature),
            ("top_p", request.top_p),
        ):
            if value is not None and not legacy:
                raise self._unsupported(
                    request,
                    option,
                    f"the Messages API of anthropic-version {self.anthropic_version} has no "
                    f"`{option}`; leave it unset, or pass `anthropic_version="
                    f"'{_LEGACY_VERSION}'` to the model to send it",
                )
        if request.seed is not None:
            raise self._unsupported(request, "seed", "leave `seed` unset for Anthropic")
        if request.n != 1:
            raise self._unsupported(request, "n", "send `n` separate requests instead")
        if request.logprobs or request.top_logprobs is not None:
            raise self._unsupported(
                request, "logprobs", "the Messages API returns no log-probabilities"
            )
        if request.response_format == "json":
            raise self._unsupported(
                request,
                "response_format='json'",
                "give a JSON schema as `response_format=` (structured outputs) instead",
            )
        turns = request.conversation()
        system = [request.system] if request.system else []
        system += [m.content for m in turns if m.role == "system"]
        body: dict[str, Any] = {
            "model": self.api_model,
            "max_tokens": self.max_tokens_for(request),
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
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if isinstance(request.response_format, dict):
            body["output_config"] = {
                "format": {"type": "json_schema", "schema": request.response_format}
            }
        if stream:
            body["stream"] = True
        return body

    def _answered(self, payload: dict[str, Any]) -> bool:
        return "content" in payload

    def _stream_state(self) -> StreamState:
        return _Stream()

    def _parse(self, payload: dict[str, Any]) -> Parsed:
        blocks = payload["content"]
        if not isinstance(blocks, list):
            raise TypeError(f"`content` is {type(blocks).__name__}, not a list")
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        detail = payload.get("stop_reason")
        finish = _FINISH.get(str(detail), "other")
        refusal = None
        if finish == "content_filter":
            details = payload.get("stop_details")
            details = details if isinstance(details, dict) else {}
            refusal = str(
                details.get("explanation") or details.get("category") or detail
            )
        response_id = payload.get("id")
        return Parsed(
            texts=[text],
            usage=_usage(payload.get("usage")),
            finish_reason=finish,
            finish_detail=str(detail) if detail is not None else None,
            refusal=refusal,
            response_id=response_id if isinstance(response_id, str) else None,
        )
