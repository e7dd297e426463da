"""The machinery every HTTP provider shares: keys, sessions, limits, timing, retries, errors, events.

aiohttp is imported when an HTTP model is built, never when `crucible_core.models` is imported
(this module itself is imported only then).

What is measured, per attempt (aiohttp trace hooks mark the moments):

```
complete() ─ limiter/bucket wait ─ pool wait ─┬─ connect ─ first byte sent ── ... ── last byte received
              └──────── queue_time ─────────┘ └──── the timeout runs from here ────────────────┘
                                                           └──────────── latency ──────────────┘
```

Waiting for the limiters or for a free connection never counts against `timeout` and never makes
a request be sent again; only a recorded retry does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import attrs
import orjson

from crucible_core._optional import import_optional
from crucible_core._retry import RetryPolicy, sleep
from crucible_core.exceptions import (
    ConfigurationError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ValidationError,
)
from crucible_core.models._common import (
    DEFAULT_RETRY,
    emit_exception,
    emit_retry,
    emit_start,
    emit_stop,
    estimate_input_tokens,
    estimate_tokens,
    redact,
    redact_bytes,
    register_secret,
)
from crucible_core.models._pricing import Price, _lookup
from crucible_core.models._types import (
    Completion,
    FinishReason,
    Request,
    TokenLogprob,
    Usage,
    confidence_from_logprobs,
)
from crucible_core.ratelimit import AdaptiveLimiter, TokenBucket, shared_limiter

if TYPE_CHECKING:
    import aiohttp

__all__ = (
    "DEFAULT_MAX_TOKENS",
    "HTTPModel",
    "Parsed",
    "StreamState",
    "parse_retry_after",
)

_BODY_EXCERPT = 500
DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` sent when neither the request nor the model sets one: every request carries a
bound, so the worst-case cost of a request is known before it is sent."""

_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})


class _Secret:
    """Holds an API key; shows as `'***'` everywhere and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError(
            "API keys are not pickled; build the model again where it is needed"
        )


def parse_retry_after(
    value: str | None, *, now: dt.datetime | None = None
) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date; `None` if unusable.

    Examples:
        >>> parse_retry_after("7")
        7.0
        >>> import datetime as dt
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT",
        ...                   now=dt.datetime(2015, 10, 21, 7, 28, 0, tzinfo=dt.UTC))
        30.0
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _retry_after(headers: Mapping[str, str], payload: Any) -> float | None:
    """The wait an answer asks for: `retry-after-ms`, `Retry-After`, or Gemini's `RetryInfo`."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        found = parse_retry_after(millis)
        if found is not None:
            return found / 1000
    found = parse_retry_after(headers.get("retry-after"))
    if found is not None:
        return found
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details", []) if isinstance(error, dict) else []
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = _DURATION.match(delay) if isinstance(delay, str) else None
        if match:
            return float(match.group(1))
    return None


def _error_message(payload: Any, raw: bytes) -> str:
    """The provider's own error message, from `{"error": {"message": ...}}` or the raw body."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:_BODY_EXCERPT]
        if isinstance(error, str):
            return error[:_BODY_EXCERPT]
    return raw[:_BODY_EXCERPT].decode("utf-8", "replace")


def _positive_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"`{name}` must be a positive number or None, got {value!r}",
            **{name: value},
        )
    return float(value)


def _positive_int_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"`{name}` must be a positive integer or None, got {value!r}",
            **{name: value},
        )
    return value


@attrs.define(kw_only=True)
class Parsed:
    """What a provider's parser reads from one answer (streamed answers are assembled first)."""

    texts: list[str]
    usage: Usage | None = None
    finish_reason: FinishReason = "stop"
    finish_detail: str | None = None
    refusal: str | None = None
    response_id: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


class StreamError(Exception):
    """An error event inside a stream: `status` says how to treat it (429, 529 overload, ...)."""

    def __init__(self, message: str, *, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class StreamState:
    """Assembles a streamed answer into the payload the provider sends when not streaming."""

    def feed(self, event: str | None, data: Any) -> bool:
        """Take one server-sent event; return whether it carried generated text."""
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def payload(self) -> dict[str, Any]:
        """The assembled, non-streaming-shaped payload."""
        raise NotImplementedError  # pragma: no cover - every provider overrides it


async def _events(content: Any) -> AsyncIterator[tuple[str | None, bytes]]:
    """Server-sent events (`event:` name, joined `data:` lines) from an aiohttp body."""
    buffer = b""
    event: str | None = None
    data: list[bytes] = []
    async for chunk in content.iter_any():
        buffer += chunk
        *lines, buffer = re.split(rb"\r\n|\r|\n", buffer)
        for line in lines:
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = None, []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
    if buffer and buffer.startswith(b"data:"):
        data.append(buffer[5:].removeprefix(b" "))
    if data:
        yield event, b"\n".join(data)


class _Timing:
    """One attempt's moments, filled by the aiohttp trace hooks."""

    __slots__ = ("armed", "deadline", "pool_wait", "queued", "sent", "timeout")

    def __init__(self, timeout: float | None, deadline: asyncio.Timeout) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.armed = False
        self.queued: float | None = None
        self.pool_wait = 0.0
        self.sent: float | None = None

    def arm(self) -> None:
        """Start the attempt's timeout: a connection is being opened or was taken from the pool."""
        if not self.armed:
            self.armed = True
            if self.timeout is not None:
                self.deadline.reschedule(
                    asyncio.get_running_loop().time() + self.timeout
                )


def _ctx(params: Any) -> _Timing | None:
    ctx = getattr(params, "trace_request_ctx", None)
    return ctx if isinstance(ctx, _Timing) else None


async def _on_queued_start(_: Any, context: Any, __: Any) -> None:
    timing = _ctx(context)
    if timing is not None:
        timing.queued = time.monotonic()


async def _on_queued_end(_: Any, context: Any, __: Any) -> None:
    timing = _ctx(context)
    if timing is not None and timing.queued is not None:
        timing.pool_wait += time.monotonic() - timing.queued
        timing.queued = None


async def _on_connection(_: Any, context: Any, __: Any) -> None:
    timing = _ctx(context)
    if timing is not None:
        timing.arm()


async def _on_headers_sent(_: Any, context: Any, __: Any) -> None:
    timing = _ctx(context)
    if timing is not None:
        timing.arm()


async def _on_chunk_sent(_: Any, context: Any, __: Any) -> None:
    # aiohttp holds the headers back and writes them with the first body chunk: that write is
    # the first byte on the wire
    timing = _ctx(context)
    if timing is not None and timing.sent is None:
        timing.sent = time.monotonic()


_trace_config: Any = None
_handler_class: Any = None


def _timed_handler() -> Any:
    """Aiohttp's response protocol, noting when bytes last arrived from the socket.

    A burst of answers is read by the tasks one after another; the arrival time, not the moment
    a task gets round to reading, is when the last byte was received.
    """
    global _handler_class
    if _handler_class is None:
        from aiohttp.client_proto import ResponseHandler  # type: ignore[import-not-found,unused-ignore]

        class _Handler(ResponseHandler):  # type: ignore[misc,unused-ignore]
            crucible_received = 0.0

            def data_received(self, data: bytes) -> None:
                self.crucible_received = time.monotonic()
                super().data_received(data)

        _handler_class = _Handler
    return _handler_class


def _connector(limit: int) -> aiohttp.TCPConnector:
    import functools

    import aiohttp

    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    factory = getattr(connector, "_factory", None)
    loop = getattr(connector, "_loop", None)
    if isinstance(factory, functools.partial) and loop is not None:
        connector._factory = functools.partial(_timed_handler(), loop=loop)
    return connector


def _received(response: Any, sent: float, finished: float) -> float:
    """When the answer's last byte arrived: the protocol's note, if it is plausible."""
    protocol = getattr(response, "_protocol", None)
    when = getattr(protocol, "crucible_received", None)
    if isinstance(when, float) and sent <= when <= finished:
        return when
    return finished


def _trace() -> aiohttp.TraceConfig:
    global _trace_config
    if _trace_config is None:
        import aiohttp

        config = aiohttp.TraceConfig()
        config.on_connection_queued_start.append(_on_queued_start)
        config.on_connection_queued_end.append(_on_queued_end)
        config.on_connection_create_start.append(_on_connection)
        config.on_connection_reuseconn.append(_on_connection)
        config.on_request_headers_sent.append(_on_headers_sent)
        config.on_request_chunk_sent.append(_on_chunk_sent)
        config.freeze()
        _trace_config = config
    return cast("aiohttp.TraceConfig", _trace_config)


async def _close_with_loop(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    """Closes `session` when its loop finalises async generators (as `asyncio.run` does).

    Started once per session, so a session its owner forgot to close is closed before the loop
    ends instead of warning when collected.
    """
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


_OVERLOAD = frozenset({429, 503, 529})
_MESSAGE_OVERHEAD = 8  # role and separators per message; OpenAI's chat format uses 3-4


def _input_bound(request: Request) -> int:
    """The most input tokens `request` can be: one per UTF-8 byte plus overhead per message."""
    texts = [m.content for m in request.conversation()]
    if request.system:
        texts.append(request.system)
    return sum(len(t.encode("utf-8")) + _MESSAGE_OVERHEAD for t in texts) + (
        _MESSAGE_OVERHEAD
    )


@attrs.define
class _Attempts:
    number: int = 1
    queue_time: float = 0.0


class _FromSettings:
    """The default of an option read from the project settings (`[tool.crucible.providers]`)."""

    def __repr__(self) -> str:
        return "FROM_SETTINGS"


FROM_SETTINGS = _FromSettings()


def _provider_defaults(
    timeout: float | _FromSettings | None,
    retry: RetryPolicy | _FromSettings | None,
    max_tokens: int | None,
) -> tuple[float | None, RetryPolicy | None, int | None]:
    """Options not given, from the settings: code > environment > project file > built-in."""
    if not (
        isinstance(timeout, _FromSettings)
        or isinstance(retry, _FromSettings)
        or max_tokens is None
    ):
        return timeout, retry, max_tokens
    from crucible_core.settings import load_settings

    settings = load_settings()
    if isinstance(timeout, _FromSettings):
        timeout = float(settings["providers.timeout"])
    if isinstance(retry, _FromSettings):
        retries = int(settings["providers.max_retries"])
        retry = (
            DEFAULT_RETRY
            if retries + 1 == DEFAULT_RETRY.attempts
            else attrs.evolve(DEFAULT_RETRY, attempts=retries + 1)
        )
    if max_tokens is None:
        max_tokens = int(settings["providers.max_tokens"])
    return timeout, retry, max_tokens


class HTTPModel:
    """Base of the HTTP providers: one request in, one [`Completion`][crucible_core.models.Completion] out.

    Subclasses say how to address, encode and decode their wire protocol; this class does the rest:
    the key (never shown in `repr`, errors, events, raw payloads or pickles, even when a server
    echoes it), one aiohttp session per event loop (created when first needed, closed by `aclose`
    or at the end of the `asyncio.run` that opened it), a connection pool as large as the
    concurrency limit, an adaptive (AIMD) concurrency limit shared by every model on the same
    endpoint, token buckets, a per-attempt timeout that starts when the connection is ready,
    streaming, retries honouring `Retry-After`, mapping every failure to a
    [`ProviderError`][crucible_core.ProviderError] with `provider`, `model`, `status` and
    `attempt`, and the `crucible.llm.request.*` events.

    Args:
        model: the model name the provider knows.
        provider: the provider name.
        base_url: the API root (default: the provider's environment variable, then its public URL).
        api_key: the key (otherwise read from the environment).
        api_key_env: the environment variable holding the key.
        require_key: whether a missing key is an error.
        timeout: seconds one attempt may take, from opening or taking a connection to the last
            byte received; time queued before that is not counted (`None`: no limit; default:
            the `providers.timeout` setting, 60 s built in; see `crucible_core.settings`).
        retry: the retry policy (`None`: one attempt; default: `DEFAULT_RETRY` with the
            `providers.max_retries` setting's retries, 3 built in); inside
            [`retries_disabled()`][crucible_core.retry.retries_disabled] it makes one attempt.
        requests_per_second: a token bucket on requests; never more than this many in any
            one-second window unless `burst` allows more.
        burst: the request bucket's capacity, i.e. the largest initial burst (default 1).
        tokens_per_minute: a token bucket on estimated tokens (input plus `max_tokens`).
        max_concurrency: the most requests in flight (the AIMD limiter's ceiling; default 1000).
        adaptive: `False` keeps the limit at `max_concurrency` instead of adapting it.
        limiter: an [`AdaptiveLimiter`][crucible_core.ratelimit.AdaptiveLimiter] to share
            explicitly (default: the one shared by provider and base URL).
        max_connections: the connection pool size (default: `max_concurrency`, so no request ever
            waits for a connection behind the limiter).
        max_tokens: the `max_tokens` sent when a request sets none (default: the
            `providers.max_tokens` setting, 4096 built in).
        stream: stream the answer (server-sent events) to measure time to first token.
        price: the price for `cost` (default: the pricing table entry, `None` if unknown).
        headers: extra HTTP headers.
        key_env: the environment variables searched for the key.
    """

    default_base_url: ClassVar[str] = ""
    key_env: ClassVar[tuple[str, ...]] = ()
    base_url_env: ClassVar[tuple[str, ...]] = ()
    supports_stream: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        provider: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        require_key: bool = True,
        timeout: float | _FromSettings | None = FROM_SETTINGS,
        retry: RetryPolicy | _FromSettings | None = FROM_SETTINGS,
        requests_per_second: float | None = None,
        burst: float | None = None,
        tokens_per_minute: float | None = None,
        max_concurrency: int | None = None,
        adaptive: bool = True,
        limiter: AdaptiveLimiter | None = None,
        max_connections: int | None = None,
        max_tokens: int | None = None,
        stream: bool = True,
        price: Price | None = None,
        headers: Mapping[str, str] | None = None,
        key_env: Sequence[str] | None = None,
        base_url_env: Sequence[str] | None = None,
    ) -> None:
        import_optional("aiohttp", extra="http")
        timeout, retry, max_tokens = _provider_defaults(timeout, retry, max_tokens)
        model_value: object = model
        if not isinstance(model_value, str) or not model_value.strip():
            raise ConfigurationError(
                f"a model name is needed, got {model!r}", model=model
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                "`retry` must be a `RetryPolicy` (from `crucible_core.retry.retry(...)`) or None",
                retry=retry,
            )
        if price is not None and not isinstance(price, Price):
            raise ValidationError("`price` must be a `Price` or None", price=price)
        if limiter is not None and not isinstance(limiter, AdaptiveLimiter):
            raise ValidationError(
                "`limiter` must be an `AdaptiveLimiter` or None", limiter=limiter
            )
        if base_url is None:
            for name in self.base_url_env if base_url_env is None else base_url_env:
                base_url = os.environ.get(name, "").strip() or None
                if base_url:
                    break
        url = (base_url or self.default_base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"`base_url` must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got "
                f"{base_url!r}",
                base_url=base_url,
            )
        self.model: str = model.strip()
        """The model name sent to the provider."""
        self.base_url: str = url
        """The API root requests go to."""
        self._provider = provider
        self.timeout: float | None = _positive_or_none("timeout", timeout)
        """Seconds one attempt may take once its connection is ready (`None`: no limit)."""
        self.retry: RetryPolicy | None = retry
        """The retry policy (`None`: no retries). A caller that retries itself can read it, or
        wrap calls in [`retries_disabled()`][crucible_core.retry.retries_disabled]."""
        self.price: Price | None = price
        """The price given with `price=`; `None` looks the model up in the pricing table."""
        default_max = _positive_int_or_none("max_tokens", max_tokens)
        self.max_tokens: int = default_max or DEFAULT_MAX_TOKENS
        """The `max_tokens` sent with requests that set none."""
        if not isinstance(stream, bool):
            raise ValidationError(
                f"`stream` must be a bool, got {stream!r}", stream=stream
            )
        self.stream: bool = stream and self.supports_stream
        """Whether answers are streamed (and `time_to_first_token` measured)."""
        self._headers = dict(headers or {})
        for name, value in self._headers.items():
            if name.lower() in _AUTH_HEADERS:
                register_secret(value)
                register_secret(value.partition(" ")[2])
        self._key = self._resolve_key(
            api_key,
            api_key_env,
            self.key_env if key_env is None else tuple(key_env),
            require_key=require_key,
        )
        rps = _positive_or_none("requests_per_second", requests_per_second)
        capacity = _positive_or_none("burst", burst)
        tpm = _positive_or_none("tokens_per_minute", tokens_per_minute)
        self._request_bucket = TokenBucket(rps, capacity or 1.0) if rps else None
        self._token_bucket = TokenBucket(tpm / 60, tpm) if tpm else None
        ceiling = _positive_int_or_none("max_concurrency", max_concurrency)
        if limiter is None:
            if adaptive:
                key = f"{provider} {url}" + (f" max={ceiling}" if ceiling else "")
                limiter = shared_limiter(key, max_limit=ceiling)
            else:
                limiter = AdaptiveLimiter(ceiling or 1000, adaptive=False)
        self.limiter: AdaptiveLimiter = limiter
        """The concurrency limiter (shared by every model on the same provider and base URL)."""
        self.max_connections: int = (
            _positive_int_or_none("max_connections", max_connections)
            or limiter.max_limit
        )
        """The connection pool size of each session."""
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, Any]
        ] = weakref.WeakKeyDictionary()

    def _resolve_key(
        self,
        api_key: str | None,
        api_key_env: str | None,
        key_env: Sequence[str],
        *,
        require_key: bool,
    ) -> _Secret | None:
        if api_key is not None:
            key_value: object = api_key
            if not isinstance(key_value, str) or not key_value.strip():
                raise ConfigurationError("`api_key` must be a non-empty string")
            return _Secret(api_key.strip())
        names: Sequence[str] = (api_key_env,) if api_key_env else key_env
        for name in names:
            value = os.environ.get(name, "").strip()
            if value:
                return _Secret(value)
        if require_key and names:
            raise ConfigurationError(
                f"no API key for {self._provider}: set {' or '.join(names)} in the environment, "
                "or pass `api_key=`",
                provider=self._provider,
                env=tuple(names),
            )
        if (
            require_key and api_key_env is None and not names
        ):  # pragma: no cover - subclasses set key_env
            raise ConfigurationError(f"pass `api_key=` for {self._provider}")
        return None

    # --- identity -----------------------------------------------------------------------------------

    @property
    def provider(self) -> str:
        """The provider name, e.g. `"openai"`."""
        return self._provider

    @property
    def id(self) -> str:
        """The model string that builds this model again."""
        return f"{self._provider}:{self.model}"

    def __repr__(self) -> str:
        shown = f"{type(self).__name__}({self.model!r}"
        if self.base_url != self.default_base_url:
            shown += f", base_url={self.base_url!r}"
        return shown + ")"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{type(self).__name__} holds an API key and a connection and is not pickled; "
            "pass the model string and build it where it is needed"
        )

    # --- prices -------------------------------------------------------------------------------------

    def price_info(self) -> Price | None:
        """The price `cost` uses: `price=` if given, else the pricing table's, else `None`."""
        return self.price if self.price is not None else _lookup(self.model)

    def max_tokens_for(self, request: Request) -> int:
        """The `max_tokens` sent with `request`: its own, or the model's default."""
        return request.max_tokens or self.max_tokens

    def worst_case_cost(self, request: Request) -> float | None:
        """The most `request` can cost (`None` when the price is unknown).

        An upper bound, not an estimate: its input counted as one token per UTF-8 byte (no
        byte-level tokenizer makes a token of less than a byte) plus the chat format's overhead
        per message, and `max_tokens` output for each of its `n` alternatives, at full
        (uncached) prices: what a budget reserves before sending.
        """
        price = self.price_info()
        if price is None:
            return None
        usage = Usage(
            input_tokens=_input_bound(request),
            output_tokens=self.max_tokens_for(request) * request.n,
        )
        return price.cost(usage)

    # --- the wire protocol (subclasses) ---------------------------------------------------------------

    def _url(self, request: Request, *, stream: bool) -> str:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _parse(self, payload: dict[str, Any]) -> Parsed:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _stream_state(self) -> StreamState:
        raise NotImplementedError  # pragma: no cover - every streaming provider overrides it

    def _answered(self, payload: dict[str, Any]) -> bool:
        """Whether a 200 payload is an answer (rather than `{"error": ...}`)."""
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _sampling(self, request: Request, names: Mapping[str, str]) -> dict[str, Any]:
        """The sampling options `request` sets, under the wire names given in `names`."""
        if request.top_logprobs is not None and not request.logprobs:
            raise self._unsupported(
                request, "top_logprobs", "it needs `logprobs=True` as well"
            )
        values: dict[str, Any] = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": list(request.stop) or None,
            "seed": request.seed,
            "n": request.n if request.n != 1 else None,
            "logprobs": True if request.logprobs else None,
            "top_logprobs": request.top_logprobs,
        }
        return {names[k]: v for k, v in values.items() if v is not None}

    def _unsupported(
        self, request: Request, option: str, hint: str
    ) -> ConfigurationError:
        return ConfigurationError(
            f"{self._provider} model {self.model!r} does not support `{option}`; {hint}",
            provider=self._provider,
            model=self.model,
            option=option,
        )

    # --- lifecycle ------------------------------------------------------------------------------------

    async def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None and not entry[0].closed:
            return entry[0]
        session = aiohttp.ClientSession(
            connector=_connector(self.max_connections),
            trace_configs=[_trace()],
            timeout=aiohttp.ClientTimeout(total=None),
        )
        guard = _close_with_loop(session)
        await guard.__anext__()
        self._sessions[loop] = (session, guard)
        return session

    async def aclose(self) -> None:
        """Close this loop's connections. The model stays usable (it opens a new session)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is a coroutine
            return
        entry = self._sessions.pop(loop, None)
        if entry is not None:
            session, guard = entry
            if not session.closed:
                await session.close()
            await guard.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- one request ----------------------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        """Send `request`, retrying transient failures, and return the completion.

        Raises:
            RateLimitError: 429 after the last attempt (`retry_after` from the response).
            ProviderTimeoutError: no full answer within `timeout` seconds.
            NetworkError: the connection failed or broke.
            ResponseError: an error status, or a body that is not the expected JSON.
            ConfigurationError: a request option the provider does not support.
        """
        if not isinstance(request, Request):
            raise ValidationError(
                f"`complete` takes a `Request`, got {type(request).__name__}; wrap a prompt as "
                "`Request(prompt=...)`",
                request=request,
            )
        body_stream = self.stream
        body = orjson.dumps(self._body(request, stream=body_stream))
        url = self._url(request, stream=body_stream)
        request_id = f"req-{uuid.uuid4().hex}"
        emit_start(self.id, self._provider, request_id)
        started = time.monotonic()
        state = _Attempts()
        completion: Completion | None = None

        policy = self.retry
        try:
            while True:
                try:
                    completion = await self._attempt(request, url, body, state)
                    break
                except Exception as err:
                    wait = (
                        None
                        if policy is None
                        else policy.next_wait(
                            state.number, err, elapsed=time.monotonic() - started
                        )
                    )
                    if wait is None:
                        raise
                    emit_retry(
                        self.id,
                        self._provider,
                        request_id,
                        attempt=state.number,
                        wait=wait,
                        error=err,
                    )
                    await sleep(wait)
                    state.number += 1
        except BaseException as err:
            if isinstance(err, ProviderError):
                err.context.setdefault("queue_time", state.queue_time)
                err.queue_time = state.queue_time  # type: ignore[attr-defined]
            emit_exception(
                self.id,
                self._provider,
                request_id,
                attempt=state.number,
                duration=time.monotonic() - started,
                error=err,
            )
            raise
        assert completion is not None  # the loop returned a completion or raised
        completion = attrs.evolve(
            completion,
            attempts=state.number,
            queue_time=state.queue_time,
            request_id=completion.request_id or request_id,
        )
        emit_stop(self.id, completion, request_id, wire=True)
        return completion

    async def _limit(self, request: Request) -> None:
        if self._request_bucket is not None:
            await self._request_bucket.acquire()
        if self._token_bucket is not None:
            wanted = estimate_input_tokens(request) + self.max_tokens_for(request)
            await self._token_bucket.acquire(
                min(max(wanted, 1), self._token_bucket.capacity)
            )

    def _headers_for(self, *, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json", **self._headers}
        if stream:
            headers.setdefault("accept", "text/event-stream")
        if self._key is not None:
            headers.update(self._auth_headers(self._key.reveal()))
        return headers

    async def _attempt(
        self, request: Request, url: str, body: bytes, state: _Attempts
    ) -> Completion:
        import aiohttp

        session = await self._session()
        attempt = state.number
        context: dict[str, Any] = {
            "provider": self._provider,
            "model": self.model,
            "attempt": attempt,
        }
        queued = time.monotonic()
        async with self.limiter.slot() as slot:
            await self._limit(request)
            waited = time.monotonic() - queued
            response: aiohttp.ClientResponse | None = None
            timing: _Timing | None = None
            ttft: float | None = None
            try:
                async with asyncio.timeout(None) as deadline:
                    timing = _Timing(self.timeout, deadline)
                    async with session.post(
                        url,
                        data=body,
                        headers=self._headers_for(stream=self.stream),
                        trace_request_ctx=timing,
                    ) as response:
                        status = response.status
                        response_headers = {
                            k.lower(): v for k, v in response.headers.items()
                        }
                        streamed = (
                            self.stream
                            and status == 200
                            and response.content_type == "text/event-stream"
                        )
                        if streamed:
                            payload, first = await self._read_stream(response, context)
                            raw = b""
                            if first is not None and timing.sent is not None:
                                ttft = first - timing.sent
                        else:
                            raw = redact_bytes(await response.read())
                    finished = time.monotonic()
            except TimeoutError as err:
                slot.overloaded()
                raise ProviderTimeoutError(
                    f"{self._provider} model {self.model!r} did not answer within "
                    f"{self.timeout} s (attempt {attempt}); raise `timeout=` or check the "
                    f"server at {self.base_url}",
                    timeout=self.timeout,
                    **context,
                ) from err
            except asyncio.CancelledError:
                if response is not None:
                    response.close()  # drop the connection: a half-read answer cannot be reused
                raise
            except aiohttp.ClientError as err:
                raise NetworkError(
                    f"could not reach {self._provider} at {self.base_url} (attempt {attempt}): "
                    f"{type(err).__name__}: {redact(str(err))}; check `base_url` and that the "
                    "server is running",
                    **context,
                ) from err
            except StreamError as err:
                if err.status in _OVERLOAD:
                    slot.overloaded()
                raise self._stream_error(err, context) from None
            finally:
                state.queue_time += waited + (
                    timing.pool_wait if timing is not None else 0.0
                )
            sent = timing.sent if timing.sent is not None else queued + waited
            if not streamed:
                finished = _received(response, sent, finished)
            latency = max(0.0, finished - sent)
            try:
                if streamed:
                    completion = self._complete(request, payload, 200, context)
                else:
                    completion = self._read(
                        request, raw, status, response_headers, context
                    )
            except ProviderError as err:
                if getattr(err, "status", None) in _OVERLOAD:
                    slot.overloaded()
                else:
                    slot.neutral()
                raise
        return attrs.evolve(completion, latency=latency, time_to_first_token=ttft)

    async def _read_stream(
        self, response: aiohttp.ClientResponse, context: dict[str, Any]
    ) -> tuple[dict[str, Any], float | None]:
        state = self._stream_state()
        first: float | None = None
        async for event, data in _events(response.content):
            if data.strip() == b"[DONE]":
                break
            try:
                parsed = orjson.loads(redact_bytes(data))
            except orjson.JSONDecodeError as err:
                raise ResponseError(
                    f"{self._provider} model {self.model!r} streamed an event that is not JSON: "
                    f"{redact(data[:200].decode('utf-8', 'replace'))!r}",
                    status=200,
                    **context,
                ) from err
            if state.feed(event, parsed) and first is None:
                first = time.monotonic()
        return state.payload(), first

    def _stream_error(self, err: StreamError, context: dict[str, Any]) -> ProviderError:
        where = f"{self._provider} model {self.model!r}"
        message = redact(err.message)[:_BODY_EXCERPT]
        if err.status == 429:
            return RateLimitError(
                f"{where} is rate limited (in the stream): {message}",
                status=429,
                retry_after=None,
                **context,
            )
        return ResponseError(
            f"{where} sent an error in the stream: {message}",
            status=err.status,
            **context,
        )

    def _read(
        self,
        request: Request,
        raw: bytes,
        status: int,
        headers: Mapping[str, str],
        context: dict[str, Any],
    ) -> Completion:
        try:
            payload: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
            parsed = False
        else:
            parsed = True
        where = f"{self._provider} model {self.model!r}"
        if status >= 400:
            retry_after = _retry_after(headers, payload)
            told = headers.get("x-should-retry", "").strip().lower()
            if told in ("true", "false"):
                context = {**context, "should_retry": told == "true"}
            message = redact(_error_message(payload, raw))
            wait = (
                f"retry after {retry_after} s"
                if retry_after is not None
                else "no Retry-After given"
            )
            if status == 429:
                raise RateLimitError(
                    f"{where} is rate limited (HTTP 429): {message}; {wait}, or lower "
                    "`requests_per_second=` / `tokens_per_minute=` / `max_concurrency=`",
                    status=status,
                    retry_after=retry_after,
                    **context,
                )
            hint = {
                401: "check the API key",
                403: "check the API key and its permissions",
                404: "check the model name and `base_url`",
            }.get(
                status,
                f"retry later ({wait})"
                if status >= 500
                else "check the request options",
            )
            raise ResponseError(
                f"{where} answered HTTP {status}: {message}; {hint}",
                status=status,
                retry_after=retry_after,
                **context,
            )
        if not parsed or not isinstance(payload, dict):
            raise ResponseError(
                f"{where} answered HTTP {status} with a body that is not a JSON object: "
                f"{redact(raw[:200].decode('utf-8', 'replace'))!r}; is `base_url` "
                f"({self.base_url}) the right API?",
                status=status,
                **context,
            )
        return self._complete(request, payload, status, context)

    def _complete(
        self,
        request: Request,
        payload: dict[str, Any],
        status: int,
        context: dict[str, Any],
    ) -> Completion:
        where = f"{self._provider} model {self.model!r}"
        if payload.get("error") and not self._answered(payload):
            raise ResponseError(
                f"{where} answered HTTP {status} with an error: "
                f"{redact(_error_message(payload, b''))}",
                status=status,
                **context,
            )
        try:
            result = self._parse(payload)
            if not result.texts or not all(isinstance(t, str) for t in result.texts):
                raise TypeError("no generated text")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise ResponseError(
                f"{where} answered HTTP {status} with JSON of an unexpected shape "
                f"({type(err).__name__}: {redact(str(err))}); is `base_url` ({self.base_url}) "
                "the right API?",
                status=status,
                **context,
            ) from err
        usage = result.usage
        if usage is None:
            usage = Usage(
                input_tokens=estimate_input_tokens(request),
                output_tokens=sum(estimate_tokens(t) for t in result.texts),
                estimated=True,
            )
        price = self.price_info()
        return Completion(
            text=result.texts[0],
            usage=usage,
            cost=None if price is None else price.cost(usage),
            model=self.model,
            provider=self._provider,
            finish_reason=result.finish_reason,
            raw=payload,
            request_id=result.response_id,
            texts=tuple(result.texts) if len(result.texts) > 1 else (),
            logprobs=result.logprobs,
            refusal=result.refusal,
            finish_detail=result.finish_detail,
            confidence=confidence_from_logprobs(result.logprobs)
            if request.logprobs
            else None,
        )
