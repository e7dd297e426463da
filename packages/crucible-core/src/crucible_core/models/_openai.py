"""The OpenAI chat-completions wire protocol, against OpenAI or any compatible server."""

from __future__ import annotations

from typing import Any, Literal

from crucible_core.exceptions import ConfigurationError
from crucible_core.models._http import HTTPModel
from crucible_core.models._types import FinishReason, Request, Usage

__all__ = ("OpenAIModel",)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class OpenAIModel(HTTPModel):
    """OpenAI's `POST /chat/completions`, or any server that speaks it (vLLM, Ollama, llama.cpp, OpenRouter).

    Built by `build_model("openai:gpt-4o-mini")` or
    `build_model("openai-compatible:http://127.0.0.1:8000/v1#my-model")`.

    Args:
        model: the model name the server knows.
        provider: `"openai"` (key from `OPENAI_API_KEY`) or `"openai-compatible"` (key only from
            `api_key=` or `api_key_env=`, optional, so your OpenAI key never goes to another host).
        base_url: the API root, ending in `/v1` (default `https://api.openai.com/v1`).
        api_key: the key; otherwise read from the environment.
        api_key_env: the environment variable holding the key.
        max_tokens_field: how `max_tokens` is sent: `"max_completion_tokens"` (OpenAI's current
            name, the default for `"openai"`) or `"max_tokens"` (the default for compatible servers).
        **options: `timeout`, `retry`, `requests_per_second`, `tokens_per_minute`, `price`,
            `headers`, as for every HTTP model.

    Raises:
        ConfigurationError: for `provider="openai"` with no key, or a bad `base_url`.
        MissingDependencyError: without the `crucible-core[http]` extra.
    """

    default_base_url = "https://api.openai.com/v1"
    key_env = ("OPENAI_API_KEY",)

    def __init__(
        self,
        model: str,
        *,
        provider: Literal["openai", "openai-compatible"] = "openai",
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None,
        **options: Any,
    ) -> None:
        if provider not in ("openai", "openai-compatible"):
            raise ConfigurationError(
                f"`provider` must be 'openai' or 'openai-compatible', got {provider!r}",
                provider=provider,
            )
        compatible = provider == "openai-compatible"
        if compatible and not base_url:
            raise ConfigurationError(
                "an OpenAI-compatible model needs `base_url=`, e.g. 'http://127.0.0.1:8000/v1'",
                model=model,
            )
        if max_tokens_field not in (None, "max_tokens", "max_completion_tokens"):
            raise ConfigurationError(
                "`max_tokens_field` must be 'max_tokens' or 'max_completion_tokens', got "
                f"{max_tokens_field!r}",
                max_tokens_field=max_tokens_field,
            )
        self.max_tokens_field: str = max_tokens_field or (
            "max_tokens" if compatible else "max_completion_tokens"
        )
        """The body field that carries `max_tokens`."""
        super().__init__(
            model,
            provider=provider,
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            require_key=not compatible,
            # never send OPENAI_API_KEY to another host unless asked to
            key_env=() if compatible else None,
            **options,
        )

    @property
    def id(self) -> str:
        """`"openai:<model>"` or `"openai-compatible:<base_url>#<model>"`."""
        if self.provider == "openai-compatible":
            return f"openai-compatible:{self.base_url}#{self.model}"
        return f"openai:{self.model}"

    def _url(self, request: Request) -> str:
        return f"{self.base_url}/chat/completions"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _body(self, request: Request) -> dict[str, Any]:
        messages = (
            [{"role": "system", "content": request.system}] if request.system else []
        )
        messages += [
            {"role": m.role, "content": m.content} for m in request.conversation()
        ]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": False,
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _parse(
        self, payload: dict[str, Any]
    ) -> tuple[str, Usage | None, FinishReason, str | None]:
        choice = payload["choices"][0]
        content = choice["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError(
                f"message content is {type(content).__name__}, not a string"
            )
        usage = payload.get("usage")
        parsed_usage = (
            Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            )
            if isinstance(usage, dict)
            else None
        )
        finish = _FINISH.get(str(choice.get("finish_reason")), "other")
        response_id = payload.get("id")
        return (
            content or "",
            parsed_usage,
            finish,
            response_id if isinstance(response_id, str) else None,
        )
