"""Google Gemini's generateContent API (and `streamGenerateContent?alt=sse`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from crucible_core.models._http import HTTPModel, Parsed, StreamError, StreamState
from crucible_core.models._types import FinishReason, Request, TokenLogprob, Usage

__all__ = ("GeminiModel",)

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "tool_calls",
    "UNEXPECTED_TOOL_CALL": "tool_calls",
    "TOO_MANY_TOOL_CALLS": "tool_calls",
}


_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "stop": "stopSequences",
    "seed": "seed",
    "n": "candidateCount",
    "logprobs": "responseLogprobs",
    "top_logprobs": "logprobs",
}


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=int(usage.get("promptTokenCount") or 0),
        output_tokens=int(usage.get("candidatesTokenCount") or 0)
        + int(usage.get("thoughtsTokenCount") or 0),
        cache_read_tokens=int(usage.get("cachedContentTokenCount") or 0),
    )


def _logprobs(candidate: dict[str, Any]) -> tuple[TokenLogprob, ...] | None:
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict) or not isinstance(
        result.get("chosenCandidates"), list
    ):
        return None
    tops = result.get("topCandidates") or []
    out = []
    for i, chosen in enumerate(result["chosenCandidates"]):
        top = tops[i].get("candidates") or [] if i < len(tops) else []
        out.append(
            TokenLogprob(
                token=str(chosen.get("token", "")),
                logprob=float(chosen["logProbability"]),
                top=tuple(
                    (str(t.get("token", "")), float(t["logProbability"])) for t in top
                ),
            )
        )
    return tuple(out)


class _Stream(StreamState):
    """`GenerateContentResponse` chunks assembled into one response, per candidate index."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}
        self.candidates: dict[int, dict[str, Any]] = {}

    def feed(self, event: str | None, data: Any) -> bool:
        if not isinstance(data, dict):
            raise StreamError(f"a stream chunk is {type(data).__name__}, not an object")
        error = data.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamError(
                str(message),
                status=code if isinstance(code, int) and 400 <= code < 600 else 200,
            )
        self.last.update({k: v for k, v in data.items() if k != "candidates"})
        text = False
        for chunk in data.get("candidates") or ():
            index = int(chunk.get("index") or 0)
            candidate = self.candidates.setdefault(
                index, {"index": index, "content": {"role": "model", "parts": []}}
            )
            for part in (chunk.get("content") or {}).get("parts") or ():
                parts = candidate["content"]["parts"]
                if (
                    "text" in part
                    and parts
                    and "text" in parts[-1]
                    and bool(parts[-1].get("thought")) == bool(part.get("thought"))
                ):
                    parts[-1] = {**parts[-1], "text": parts[-1]["text"] + part["text"]}
                else:
                    parts.append(dict(part))
                text = text or (bool(part.get("text")) and not part.get("thought"))
            for key, value in chunk.items():
                if key == "logprobsResult" and isinstance(value, dict):
                    merged = candidate.setdefault(
                        "logprobsResult", {"chosenCandidates": [], "topCandidates": []}
                    )
                    merged["chosenCandidates"] += value.get("chosenCandidates") or []
                    merged["topCandidates"] += value.get("topCandidates") or []
                elif key not in ("content", "index"):
                    candidate[key] = value
        return text

    def payload(self) -> dict[str, Any]:
        payload = dict(self.last)
        if self.candidates:
            payload["candidates"] = [
                self.candidates[i] for i in sorted(self.candidates)
            ]
        return payload


class GeminiModel(HTTPModel):
    """Gemini's `POST /v1beta/models/{model}:generateContent`, the key in the `x-goog-api-key` header.

    Built by `build_model("gemini:gemini-2.0-flash")`. Reasoning ("thinking") tokens are counted
    as output tokens, as Google bills them. Answers are streamed by default
    (`:streamGenerateContent?alt=sse`; `stream=False` turns it off). A prompt blocked for safety
    (no candidates, `promptFeedback.blockReason`) or a candidate stopped for safety is a
    completion with `finish_reason="content_filter"` and the reason in `refusal`.

    Args:
        model: the model name (`gemini-2.0-flash`, `gemini-2.5-pro`, ...).
        base_url: the API root (default `GOOGLE_GEMINI_BASE_URL`, as in the `google-genai` SDK,
            then `https://generativelanguage.googleapis.com`).
        api_key: the key; otherwise `GOOGLE_API_KEY` or `GEMINI_API_KEY` (in the SDK's order of
            precedence), or the variable named by `api_key_env`.
        api_key_env: the environment variable holding the key.
        api_version: the path segment before `models/` (default `v1beta`).
        **options: `timeout`, `retry`, `max_tokens`, `stream`, `max_concurrency`,
            `max_connections`, `requests_per_second`, `burst`, `tokens_per_minute`, `price`,
            `headers`, as for every [`HTTPModel`][crucible_core.models.HTTPModel].

    Raises:
        ConfigurationError: with no key, or a bad `base_url`.
        MissingDependencyError: without the `crucible-core[http]` extra.
    """

    default_base_url = "https://generativelanguage.googleapis.com"
    key_env = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    base_url_env = ("GOOGLE_GEMINI_BASE_URL",)

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

    def _url(self, request: Request, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        name = quote(self.model, safe=".-_")
        return f"{self.base_url}/{self.api_version}/models/{name}:{method}"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
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
            # role "user", as the google-genai SDK sends it (the API accepts it without one too)
            body["systemInstruction"] = {
                "role": "user",
                "parts": [{"text": "\n\n".join(system)}],
            }
        config: dict[str, Any] = {"maxOutputTokens": self.max_tokens_for(request)}
        config.update(self._sampling(request, _SAMPLING))
        if request.response_format != "text":
            config["responseMimeType"] = "application/json"
            if isinstance(request.response_format, dict):
                config["responseJsonSchema"] = request.response_format
        body["generationConfig"] = config
        return body

    def _answered(self, payload: dict[str, Any]) -> bool:
        return "candidates" in payload or "promptFeedback" in payload

    def _stream_state(self) -> StreamState:
        return _Stream()

    def _parse(self, payload: dict[str, Any]) -> Parsed:
        candidates = payload.get("candidates")
        usage = _usage(payload.get("usageMetadata"))
        response_id = payload.get("responseId")
        response_id = response_id if isinstance(response_id, str) else None
        feedback = payload.get("promptFeedback")
        if not candidates and isinstance(feedback, dict):  # the prompt was blocked
            reason = str(feedback.get("blockReason") or "blocked")
            message = feedback.get("blockReasonMessage")
            return Parsed(
                texts=[""],
                usage=usage,
                finish_reason="content_filter",
                finish_detail=reason,
                refusal=f"{reason}: {message}" if message else reason,
                response_id=response_id,
            )
        ordered = sorted(candidates, key=lambda c: int(c.get("index") or 0))  # type: ignore[arg-type]
        if not ordered:
            raise IndexError("no candidates and no promptFeedback")
        texts = []
        for candidate in ordered:
            parts = (candidate.get("content") or {}).get("parts") or []
            texts.append(
                "".join(
                    p["text"] for p in parts if "text" in p and not p.get("thought")
                )
            )
        first = ordered[0]
        detail = first.get("finishReason")
        finish = _FINISH.get(str(detail), "other")
        refusal = None
        if finish == "content_filter":
            message = first.get("finishMessage")
            refusal = f"{detail}: {message}" if message else str(detail)
        return Parsed(
            texts=texts,
            usage=usage,
            finish_reason=finish,
            finish_detail=str(detail) if detail is not None else None,
            refusal=refusal,
            response_id=response_id,
            logprobs=_logprobs(first),
        )
