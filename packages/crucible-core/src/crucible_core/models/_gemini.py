"""Google Gemini's generateContent API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from crucible_core.models._http import HTTPModel
from crucible_core.models._types import FinishReason, Request, Usage

__all__ = ("GeminiModel",)

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


class GeminiModel(HTTPModel):
    """Gemini's `POST /v1beta/models/{model}:generateContent`, the key in the `x-goog-api-key` header.

    Built by `build_model("gemini:gemini-2.0-flash")`. Reasoning ("thinking") tokens are counted
    as output tokens, as Google bills them.

    Args:
        model: the model name (`gemini-2.0-flash`, `gemini-2.5-pro`, ...).
        base_url: the API root (default `https://generativelanguage.googleapis.com`).
        api_key: the key; otherwise `GEMINI_API_KEY` or `GOOGLE_API_KEY` (or `api_key_env`).
        api_key_env: the environment variable holding the key.
        api_version: the path segment before `models/` (default `v1beta`).
        **options: `timeout`, `retry`, `requests_per_second`, `tokens_per_minute`, `price`,
            `headers`, as for every HTTP model.

    Raises:
        ConfigurationError: with no key, or a bad `base_url`.
        MissingDependencyError: without the `crucible-core[http]` extra.
    """

    default_base_url = "https://generativelanguage.googleapis.com"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        api_version: str = "v1beta",
        **options: Any,
    ) -> None:
        super().__init__(
            model,
            provider="gemini",
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            **options,
        )
        self.model = self.model.removeprefix("models/")
        self.api_version: str = api_version
        """The API version in the path."""

    def _url(self, request: Request) -> str:
        return f"{self.base_url}/{self.api_version}/models/{quote(self.model, safe='.-_')}:generateContent"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def _body(self, request: Request) -> dict[str, Any]:
        turns = request.conversation()
        system = [request.system] if request.system else []
        system += [m.content for m in turns if m.role == "system"]
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [{"text": m.content}],
                }
                for m in turns
                if m.role != "system"
            ]
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        config: dict[str, Any] = {}
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if config:
            body["generationConfig"] = config
        return body

    def _parse(
        self, payload: dict[str, Any]
    ) -> tuple[str, Usage | None, FinishReason, str | None]:
        candidates = payload.get("candidates")
        usage = payload.get("usageMetadata")
        parsed_usage = (
            Usage(
                input_tokens=int(usage.get("promptTokenCount") or 0),
                output_tokens=int(usage.get("candidatesTokenCount") or 0)
                + int(usage.get("thoughtsTokenCount") or 0),
            )
            if isinstance(usage, dict)
            else None
        )
        response_id = payload.get("responseId")
        response_id = response_id if isinstance(response_id, str) else None
        if candidates is None and isinstance(payload.get("promptFeedback"), dict):
            return (
                "",
                parsed_usage,
                "content_filter",
                response_id,
            )  # the prompt was blocked
        candidate = candidates[0]  # type: ignore[index]
        parts = candidate.get("content", {}).get("parts", [])
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        finish = _FINISH.get(str(candidate.get("finishReason")), "other")
        return text, parsed_usage, finish, response_id
