"""The OpenAI chat-completions wire protocol, against OpenAI or any compatible server."""

from __future__ import annotations

from typing import Any, Literal

from crucible_core.exceptions import ConfigurationError
from crucible_core.models._http import HTTPModel, Parsed, StreamError, StreamState
from crucible_core.models._types import FinishReason, Request, TokenLogprob, Usage

__all__ = ("OpenAIModel",)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
    "n": "n",
    "logprobs": "logprobs",
    "top_logprobs": "top_logprobs",
}


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cache_read_tokens=int(cached or 0),
    )


def _logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...] | None:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    return tuple(
        TokenLogprob(
            token=str(t["token"]),
            logprob=float(t["logprob"]),
            top=tuple(
                (str(a["token"]), float(a["logprob"]))
                for a in t.get("top_logprobs") or ()
            ),
        )
        for t in content
    )


class _Stream(StreamState):
    """Chat-completion chunks assembled into one chat completion, per choice index."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: Any = None

    def feed(self, event: str | None, data: Any) -> bool:
        if not isinstance(data, dict):
            raise StreamError(f"a stream chunk is {type(data).__name__}, not an object")
        error = data.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else error
            code = error.get("code") if isinstance(error, dict) else None
            status = code if isinstance(code, int) and 400 <= code < 600 else 200
            raise StreamError(str(message), status=status)
        if not self.head:
            self.head = {k: data[k] for k in ("id", "model", "created") if k in data}
        if data.get("usage"):
            self.usage = data["usage"]
        text = False
        for delta_choice in data.get("choices") or ():
            index = int(delta_choice.get("index") or 0)
            choice = self.choices.setdefault(
                index,
                {"index": index, "message": {"role": "assistant", "content": ""},
                 "finish_reason": None},
            )  # fmt: skip
            delta = delta_choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                choice["message"]["content"] += piece
                text = True
            if delta.get("refusal"):
                choice["message"]["refusal"] = (
                    choice["message"].get("refusal") or ""
                ) + delta["refusal"]
                text = True
            if delta_choice.get("finish_reason"):
                choice["finish_reason"] = delta_choice["finish_reason"]
            logprobs = delta_choice.get("logprobs")
            if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                choice.setdefault("logprobs", {"content": []})["content"] += logprobs[
                    "content"
                ]
        return text

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "object": "chat.completion",
            **self.head,
            "choices": [self.choices[i] for i in sorted(self.choices)],
        }
        if self.usage is not None:
            payload["usage"] = self.usage
        return payload


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
        **options: `timeout`, `retry`, `max_tokens`, `stream`, `max_concurrency`,
            `max_connections`, `requests_per_second`, `burst`, `tokens_per_minute`, `price`,
            `headers`, as for every [`HTTPModel`][crucible_core.models.HTTPModel].

    The base URL defaults to `OPENAI_BASE_URL` (for `"openai"`), as in the official SDK. A
    compatible server's key comes from `api_key=`, `api_key_env=` or
    `CRUCIBLE_OPENAI_COMPATIBLE_API_KEY`, and is sent as `Authorization: Bearer ...`; without one,
    no `Authorization` header is sent (`OPENAI_API_KEY` never goes to another host).

    Raises:
        ConfigurationError: for `provider="openai"` with no key, or a bad `base_url`.
        MissingDependencyError: without the `crucible-core[http]` extra.
    """

    default_base_url = "https://api.openai.com/v1"
    key_env = ("OPENAI_API_KEY",)
    base_url_env = ("OPENAI_BASE_URL",)

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
            key_env=("CRUCIBLE_OPENAI_COMPATIBLE_API_KEY",) if compatible else None,
            base_url_env=() if compatible else None,
            **options,
        )

    @property
    def id(self) -> str:
        """`"openai:<model>"` or `"openai-compatible:<base_url>#<model>"`."""
        if self.provider == "openai-compatible":
            return f"openai-compatible:{self.base_url}#{self.model}"
        return f"openai:{self.model}"

    def _url(self, request: Request, *, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        messages = (
            [{"role": "system", "content": request.system}] if request.system else []
        )
        messages += [
            {"role": m.role, "content": m.content} for m in request.conversation()
        ]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self.max_tokens_field: self.max_tokens_for(request),
        }
        body.update(self._sampling(request, _SAMPLING))
        if request.response_format == "json":
            body["response_format"] = {"type": "json_object"}
        elif isinstance(request.response_format, dict):
            schema = request.response_format
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(schema.get("title") or "response"),
                                "schema": schema, "strict": True},
            }  # fmt: skip
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _answered(self, payload: dict[str, Any]) -> bool:
        return "choices" in payload

    def _stream_state(self) -> StreamState:
        return _Stream()

    def _parse(self, payload: dict[str, Any]) -> Parsed:
        choices = sorted(payload["choices"], key=lambda c: int(c.get("index") or 0))
        texts: list[str] = []
        for choice in choices:
            content = choice["message"].get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError(
                    f"message content is {type(content).__name__}, not a string"
                )
            texts.append(content or "")
        first = choices[0]
        detail = first.get("finish_reason")
        finish = _FINISH.get(str(detail), "other")
        refusal = first["message"].get("refusal")
        if refusal:
            finish = "content_filter"
        elif finish == "content_filter":
            refusal = str(detail)
        response_id = payload.get("id")
        return Parsed(
            texts=texts,
            usage=_usage(payload.get("usage")),
            finish_reason=finish,
            finish_detail=str(detail) if detail is not None else None,
            refusal=str(refusal) if refusal else None,
            response_id=response_id if isinstance(response_id, str) else None,
            logprobs=_logprobs(first),
        )
