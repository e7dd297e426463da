"""The values every model speaks: `Request`, `Message`, `Usage`, `Completion`, and the `Model` protocol."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import attrs
import orjson

from crucible_core.exceptions import ValidationError

__all__ = (
    "AnswerKind",
    "Completion",
    "confidence_from_logprobs",
    "FinishReason",
    "Message",
    "Model",
    "Request",
    "ResponseFormat",
    "Role",
    "TokenLogprob",
    "Usage",
)

Role: TypeAlias = Literal["system", "user", "assistant"]
"""Who said a message."""

AnswerKind: TypeAlias = Literal["choice", "number", "code", "text"]
"""What kind of answer a request expects: a choice letter, a number, code, or free text."""

FinishReason: TypeAlias = Literal[
    "stop", "length", "content_filter", "tool_calls", "other"
]
"""Why generation ended, normalised across providers (the provider's own value stays in `raw`)."""

ResponseFormat: TypeAlias = Literal["text", "json"] | Mapping[str, Any]
"""`"text"` (the default), `"json"` (any JSON object), or a JSON schema the answer must follow."""

_ROLES = ("system", "user", "assistant")


def short_repr(obj: Any) -> str:
    """`Class(field=value, ...)` showing only the fields that differ from their defaults."""
    shown = []
    for a in attrs.fields(type(obj)):
        if not a.repr:
            continue
        value = getattr(obj, a.name)
        default = a.default.factory() if hasattr(a.default, "factory") else a.default
        if a.default is attrs.NOTHING or value != default:
            shown.append(f"{a.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(shown)})"


_KINDS = ("choice", "number", "code", "text")


@attrs.define(frozen=True, kw_only=True)
class Message:
    """One turn of a conversation.

    Examples:
        >>> Message(role="user", content="What is 2 + 2?")
        Message(role='user', content='What is 2 + 2?')
    """

    role: Role = attrs.field(validator=attrs.validators.in_(_ROLES))
    """`"system"`, `"user"` or `"assistant"`."""
    content: str = attrs.field(validator=attrs.validators.instance_of(str))
    """The text of the turn."""


def _to_messages(value: Any) -> tuple[Message, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping):
        raise ValidationError(
            "`messages` must be a list of {'role': ..., 'content': ...} dicts or `Message`s, "
            f"got {type(value).__name__}; pass a plain string as `prompt=` instead",
            messages=value,
        )
    out: list[Message] = []
    for item in value:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping) and set(item) == {"role", "content"}:
            try:
                out.append(Message(role=item["role"], content=item["content"]))
            except (TypeError, ValueError) as err:
                raise ValidationError(
                    f"bad message {item!r}: `role` must be one of {_ROLES} and `content` a string",
                    item=item,
                ) from err
        else:
            raise ValidationError(
                f"bad message {item!r}: each message is a `Message` or a dict with exactly the keys "
                "'role' and 'content'",
                item=item,
            )
    return tuple(out)


def _to_str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _check_max_tokens(_: Any, __: Any, value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ValidationError(
            f"`max_tokens` must be a positive integer or None, got {value!r}",
            max_tokens=value,
        )


def _check_temperature(_: Any, __: Any, value: Any) -> None:
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValidationError(
            f"`temperature` must be a finite number >= 0 or None, got {value!r}",
            temperature=value,
        )


def _check_optional_int(name: str, *, minimum: int, maximum: int | None = None) -> Any:
    def check(_: Any, __: Any, value: Any) -> None:
        if value is None:
            return
        ok = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= minimum
            and (maximum is None or value <= maximum)
        )
        if not ok:
            bound = f">= {minimum}" + (
                f" and <= {maximum}" if maximum is not None else ""
            )
            raise ValidationError(
                f"`{name}` must be an integer {bound} or None, got {value!r}",
                **{name: value},
            )

    return check


def _check_top_p(_: Any, __: Any, value: Any) -> None:
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
    ):
        raise ValidationError(
            f"`top_p` must be a number in [0, 1] or None, got {value!r}", top_p=value
        )


def _to_response_format(value: Any) -> Any:
    if value in ("text", "json"):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise ValidationError(
        "`response_format` must be 'text', 'json' or a JSON schema (a dict), got "
        f"{value!r}",
        response_format=value,
    )


def _check_kind(_: Any, __: Any, value: str) -> None:
    if value not in _KINDS:
        raise ValidationError(
            f"`kind` must be one of {_KINDS}, got {value!r}", kind=value
        )


@attrs.define(frozen=True, kw_only=True)
class Request:
    """What to ask a model: a prompt (or a conversation) and generation options.

    Give exactly one of `prompt` and `messages`. `reference`, `kind` and `choices` describe the
    expected answer; real providers ignore them, and a
    [`SimulatedModel`][crucible_core.models.SimulatedModel] uses them to answer right or plausibly
    wrong.

    Examples:
        >>> Request(prompt="2 + 2 = ?", reference="4", kind="number")
        Request(prompt='2 + 2 = ?', reference='4', kind='number')

    Raises:
        ValidationError: if both or neither of `prompt` and `messages` are given, or an option is
            out of range.
    """

    prompt: str | None = None
    """A single user message."""
    messages: tuple[Message, ...] = attrs.field(default=(), converter=_to_messages)
    """A conversation; dicts `{"role": ..., "content": ...}` are converted to `Message`s."""
    system: str | None = None
    """The system prompt, if any."""
    max_tokens: int | None = attrs.field(default=None, validator=_check_max_tokens)
    """The most tokens to generate (`None`: the provider's default)."""
    temperature: float | None = attrs.field(default=None, validator=_check_temperature)
    """Sampling temperature (`None`: the provider's default)."""
    stop: tuple[str, ...] = attrs.field(default=(), converter=_to_str_tuple)
    """Stop sequences."""
    reference: str | None = None
    """The expected answer, when known (a choice letter, a number, code, a phrase)."""
    kind: AnswerKind = attrs.field(default="text", validator=_check_kind)
    """What kind of answer is expected."""
    choices: tuple[str, ...] = attrs.field(default=(), converter=_to_str_tuple)
    """For `kind="choice"`: the options (labels such as `"A"`, or their texts)."""
    metadata: dict[str, Any] = attrs.field(factory=dict, hash=False)
    """Free-form data (item id, repeat number) that travels with the request."""
    top_p: float | None = attrs.field(default=None, validator=_check_top_p)
    """Nucleus sampling mass (`None`: the provider's default)."""
    seed: int | None = attrs.field(
        default=None, validator=_check_optional_int("seed", minimum=-(2**63))
    )
    """A sampling seed, for providers that accept one (OpenAI, Gemini)."""
    n: int = attrs.field(default=1, validator=_check_optional_int("n", minimum=1))
    """How many alternative completions to generate (OpenAI `n`, Gemini `candidateCount`);
    all of them are in [`Completion.texts`][crucible_core.models.Completion.texts]."""
    logprobs: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )
    """Ask for the log-probability of each generated token (OpenAI, Gemini)."""
    top_logprobs: int | None = attrs.field(
        default=None,
        validator=_check_optional_int("top_logprobs", minimum=0, maximum=20),
    )
    """With `logprobs`, also return this many most likely alternatives per position."""
    response_format: ResponseFormat = attrs.field(
        default="text", converter=_to_response_format, hash=False
    )
    """`"json"` for JSON mode, or a JSON schema (dict) for structured output, where the provider
    supports it; `"text"` (the default) asks for nothing special."""

    def __attrs_post_init__(self) -> None:
        if (self.prompt is None) == (not self.messages):
            raise ValidationError(
                "give exactly one of `prompt=` (a string) and `messages=` (a list of messages)",
                prompt=self.prompt,
                messages=self.messages,
            )
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise ValidationError(
                f"`prompt` must be a string, got {type(self.prompt).__name__}",
                prompt=self.prompt,
            )

    def __repr__(self) -> str:
        return short_repr(self)

    def conversation(self) -> tuple[Message, ...]:
        """The turns to send, without the system prompt: `prompt` as one user message, or `messages`."""
        if self.prompt is not None:
            return (Message(role="user", content=self.prompt),)
        return self.messages

    def fingerprint(self) -> str:
        """A stable hex digest of everything in the request, used to derive simulated outcomes."""
        payload: dict[str, Any] = {
            "prompt": self.prompt,
            "messages": [[m.role, m.content] for m in self.messages],
            "system": self.system,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": list(self.stop),
            "reference": self.reference,
            "kind": self.kind,
            "choices": list(self.choices),
            "metadata": self.metadata,
        }
        # options added later enter the digest only when set, so earlier digests stay the same
        extra = {
            "top_p": self.top_p,
            "seed": self.seed,
            "n": None if self.n == 1 else self.n,
            "logprobs": self.logprobs or None,
            "top_logprobs": self.top_logprobs,
            "response_format": None
            if self.response_format == "text"
            else self.response_format,
        }
        payload.update({k: v for k, v in extra.items() if v is not None})
        try:
            data = orjson.dumps(
                payload,
                option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                default=repr,
            )
        except (
            TypeError
        ):  # integers beyond 64 bits, lone surrogates: the slower, total encoder
            data = json.dumps(payload, sort_keys=True, default=repr).encode()
        return hashlib.blake2b(data, digest_size=16).hexdigest()


@attrs.define(frozen=True, kw_only=True)
class Usage:
    """Tokens consumed by one request.

    Examples:
        >>> Usage(input_tokens=12, output_tokens=3).total_tokens
        15
    """

    input_tokens: int = 0
    """Prompt tokens (including the system prompt)."""
    output_tokens: int = 0
    """Generated tokens (including any reasoning tokens the provider bills as output)."""
    cache_read_tokens: int = 0
    """Of `input_tokens`, those read from the provider's prompt cache (Anthropic
    `cache_read_input_tokens`, OpenAI `cached_tokens`, Gemini `cachedContentTokenCount`)."""
    cache_write_tokens: int = 0
    """Of `input_tokens`, those written to the prompt cache (Anthropic
    `cache_creation_input_tokens`)."""
    estimated: bool = False
    """`True` when the provider reported no usage and the counts are estimates (about four
    characters per token)."""

    @property
    def total_tokens(self) -> int:
        """`input_tokens + output_tokens`."""
        return self.input_tokens + self.output_tokens


def _to_pairs(value: Any) -> tuple[tuple[str, float], ...]:
    return tuple((str(token), float(logprob)) for token, logprob in value)


@attrs.define(frozen=True, kw_only=True)
class TokenLogprob:
    """The log-probability of one generated token, and of the likeliest alternatives."""

    token: str
    """The token as text."""
    logprob: float
    """Its natural-log probability."""
    top: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=_to_pairs)
    """`(token, logprob)` of the most likely tokens at this position, likeliest first."""


@attrs.define(frozen=True, kw_only=True)
class Completion:
    """A model's answer to one [`Request`][crucible_core.models.Request]."""

    text: str
    """The generated text."""
    usage: Usage = attrs.field(factory=Usage)
    """Tokens consumed."""
    latency: float = 0.0
    """Seconds from the first byte of the request sent to the last byte of the answer received, of
    the attempt that answered (simulated seconds for a simulated model). Time queued inside crucible
    (rate limiter, connection pool) is in `queue_time`, not here."""
    cost: float | None = None
    """Cost in USD, or `None` when the model has no known price (never a silent 0)."""
    model: str = ""
    """The model name, as requested (e.g. `"gpt-4o-mini"`)."""
    provider: str = ""
    """The provider (e.g. `"openai"`, `"sim"`)."""
    finish_reason: FinishReason = "stop"
    """Why generation ended, normalised."""
    raw: dict[str, Any] = attrs.field(factory=dict, hash=False, repr=False)
    """The provider's response payload, as parsed JSON."""
    request_id: str | None = None
    """The provider's id for this response, or the client's request id."""
    attempts: int = 1
    """How many attempts it took (1 when the first attempt succeeded)."""
    queue_time: float = 0.0
    """Seconds spent waiting inside crucible before sending, over all attempts: for the rate
    limiter, the concurrency limiter and a free connection."""
    time_to_first_token: float | None = None
    """With streaming, seconds from the first byte sent to the first generated text received;
    `None` when the answer was not streamed."""
    texts: tuple[str, ...] = attrs.field(default=(), converter=_to_str_tuple)
    """Every generated alternative when `Request.n > 1` (`texts[0] == text`); empty otherwise."""
    logprobs: tuple[TokenLogprob, ...] | None = None
    """Per-token log-probabilities of `text`, when requested and returned."""
    refusal: str | None = None
    """Why the provider refused or filtered the answer (its refusal message or block reason);
    `finish_reason` is then `"content_filter"`."""
    finish_detail: str | None = None
    """The provider's own finish reason (`"end_turn"`, `"SAFETY"`, ...), before normalising."""
    confidence: float | None = None
    """The model's confidence that `text` is right, in [0, 1], when it has one: seeded and
    calibrated by profile for simulated models; for HTTP models the geometric-mean token
    probability of `text` when the request asked for `logprobs` (see `confidence_from_logprobs`)."""


def confidence_from_logprobs(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """The geometric-mean token probability `exp(mean logprob)` of a text, or `None` without tokens.

    Examples:
        >>> round(confidence_from_logprobs([TokenLogprob(token="4", logprob=-0.1)]), 4)
        0.9048
    """
    if not logprobs:
        return None
    values = [t.logprob for t in logprobs]
    if not all(math.isfinite(v) and v <= 0 for v in values):
        return None
    return math.exp(math.fsum(values) / len(values))


@runtime_checkable
class Model(Protocol):
    """What every model offers: an id, a provider, `complete` and `aclose`.

    Models that hold connections are async context managers; use `async with` or call `aclose()`.
    """

    @property
    def id(self) -> str:
        """The model string that builds this model again, e.g. `"openai:gpt-4o-mini"`."""
        ...

    @property
    def provider(self) -> str:
        """The provider name, e.g. `"openai"`, `"sim"`."""
        ...

    async def complete(self, request: Request) -> Completion:
        """Send `request` and return the completion; raise a `ProviderError` if it fails for good."""
        ...

    async def aclose(self) -> None:
        """Release connections; the model cannot be used afterwards."""
        ...
