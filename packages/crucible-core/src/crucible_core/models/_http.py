"""The machinery every HTTP provider shares: keys, sessions, rate limits, retries, errors, events.

aiohttp is imported when an HTTP model is built, never when `crucible_core.models` is imported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs
import orjson

from crucible_core._optional import import_optional
from crucible_core._retry import RetryDetails, RetryPolicy
from crucible_core.exceptions import (
    ConfigurationError,
    NetworkError,
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
)
from crucible_core.models._pricing import Price
from crucible_core.models._pricing import cost as _table_cost
from crucible_core.models._types import Completion, FinishReason, Request, Usage
from crucible_core.ratelimit import TokenBucket

if TYPE_CHECKING:
    import aiohttp

__all__ = ("HTTPModel", "parse_retry_after")

_BODY_EXCERPT = 500


class _Secret:
    """Holds an API key; shows as `'***'` everywhere and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

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
    """The wait a 429 asks for: `retry-after-ms`, `Retry-After`, or Gemini's `RetryInfo.retryDelay`."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        found = parse_retry_after(millis)
        if found is not None:
            return found / 1000
    found = parse_retry_after(headers.get("retry-after"))
    if found is not None:
        return found
    details = (
        payload.get("error", {}).get("details", []) if isinstance(payload, dict) else []
    )
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


class HTTPModel:
    """Base of the HTTP providers: one request in, one [`Completion`][crucible_core.models.Completion] out.

    Subclasses say how to address, encode and decode their wire protocol; this class does the rest:
    the key (never shown in `repr`, errors, events or pickles), one aiohttp session per model
    created in the running loop and closed by `aclose`, rate limits, a per-attempt timeout, retries
    honouring `Retry-After`, mapping every failure to a
    [`ProviderError`][crucible_core.ProviderError] with `provider`, `model`, `status` and
    `attempt`, and the `crucible.llm.request.*` events.
    """

    default_base_url: ClassVar[str] = ""
    key_env: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: str,
        *,
        provider: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        require_key: bool = True,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        price: Price | None = None,
        headers: Mapping[str, str] | None = None,
        key_env: Sequence[str] | None = None,
    ) -> None:
        import_optional("aiohttp", extra="http")
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
        """Seconds one attempt may take, from sending to the full answer (`None`: no limit)."""
        self.retry: RetryPolicy | None = retry
        """The retry policy (`None`: no retries)."""
        self.price: Price | None = price
        """The price used for `cost`; `None` looks the model up in the pricing table."""
        self._headers = dict(headers or {})
        self._key = self._resolve_key(
            api_key,
            api_key_env,
            self.key_env if key_env is None else tuple(key_env),
            require_key=require_key,
        )
        rps = _positive_or_none("requests_per_second", requests_per_second)
        tpm = _positive_or_none("tokens_per_minute", tokens_per_minute)
        self._request_bucket = TokenBucket(rps, max(1.0, rps)) if rps else None
        self._token_bucket = TokenBucket(tpm / 60, tpm) if tpm else None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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

    # --- the wire protocol (subclasses) ---------------------------------------------------------------

    def _url(self, request: Request) -> str:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _body(self, request: Request) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    def _parse(
        self, payload: dict[str, Any]
    ) -> tuple[str, Usage | None, FinishReason, str | None]:
        """Text, usage (None if not reported), finish reason and the provider's response id."""
        raise NotImplementedError  # pragma: no cover - every provider overrides it

    # --- lifecycle ------------------------------------------------------------------------------------

    def _session_in_loop(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._loop = loop
        elif self._loop is not loop:
            raise ConfigurationError(
                f"{self!r} was first used in another event loop; its connections belong to that "
                "loop. Use one model per loop (`async with build_model(...) as model:`) or call "
                "`await model.aclose()` in the old loop first.",
                model=self.model,
                provider=self._provider,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the connections. The model can be used again afterwards (with a new session)."""
        session, self._session, self._loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

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
        """
        if not isinstance(request, Request):
            raise ValidationError(
                f"`complete` takes a `Request`, got {type(request).__name__}; wrap a prompt as "
                "`Request(prompt=...)`",
                request=request,
            )
        request_id = f"req-{uuid.uuid4().hex}"
        emit_start(self.id, self._provider, request_id)
        started = time.monotonic()
        attempt_number = 1
        completion: Completion | None = None

        def on_retry(details: RetryDetails) -> None:
            emit_retry(
                self.id,
                self._provider,
                request_id,
                attempt=details.attempt,
                wait=details.wait,
                error=details.error,
            )

        try:
            if self.retry is None:
                completion = await self._attempt(request, 1)
            else:
                async for attempt in self.retry.context(on_retry=on_retry):
                    with attempt:
                        attempt_number = attempt.num
                        completion = await self._attempt(request, attempt.num)
        except BaseException as err:
            emit_exception(
                self.id,
                self._provider,
                request_id,
                attempt=attempt_number,
                duration=time.monotonic() - started,
                error=err,
            )
            raise
        assert completion is not None  # the loop returned a completion or raised
        completion = attrs.evolve(
            completion,
            latency=time.monotonic() - started,
            attempts=attempt_number,
            request_id=completion.request_id or request_id,
        )
        emit_stop(self.id, completion, request_id)
        return completion

    async def _limit(self, request: Request) -> None:
        if self._request_bucket is not None:
            await self._request_bucket.acquire()
        if self._token_bucket is not None:
            wanted = estimate_input_tokens(request) + (request.max_tokens or 0)
            await self._token_bucket.acquire(
                min(max(wanted, 1), self._token_bucket.capacity)
            )

    async def _attempt(self, request: Request, attempt: int) -> Completion:
        import aiohttp

        session = self._session_in_loop()
        await self._limit(request)
        context: dict[str, Any] = {
            "provider": self._provider,
            "model": self.model,
            "attempt": attempt,
        }
        headers = {"content-type": "application/json", **self._headers}
        if self._key is not None:
            headers.update(self._auth_headers(self._key.reveal()))
        url = self._url(request)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        response: aiohttp.ClientResponse | None = None
        try:
            async with session.post(
                url,
                data=orjson.dumps(self._body(request)),
                headers=headers,
                timeout=timeout,
            ) as response:
                raw = await response.read()
                status = response.status
                response_headers = {k.lower(): v for k, v in response.headers.items()}
        except TimeoutError as err:
            raise ProviderTimeoutError(
                f"{self._provider} model {self.model!r} did not answer within {self.timeout} s "
                f"(attempt {attempt}); raise `timeout=` or check the server at {self.base_url}",
                timeout=self.timeout,
                **context,
            ) from err
        except asyncio.CancelledError:
            if response is not None:
                response.close()  # drop the connection: a half-read response cannot be reused
            raise
        except aiohttp.ClientError as err:
            raise NetworkError(
                f"could not reach {self._provider} at {self.base_url} (attempt {attempt}): "
                f"{type(err).__name__}: {err}; check `base_url` and that the server is running",
                **context,
            ) from err
        return self._read(raw, status, response_headers, context)

    def _read(
        self,
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
        if status == 429:
            retry_after = _retry_after(headers, payload)
            raise RateLimitError(
                f"{where} is rate limited (HTTP 429): {_error_message(payload, raw)}; "
                f"retry after {retry_after if retry_after is not None else 'an unspecified'} s, "
                "or lower `requests_per_second=` / `tokens_per_minute=`",
                status=status,
                retry_after=retry_after,
                **context,
            )
        if status >= 400:
            hint = {
                401: "check the API key",
                403: "check the API key and its permissions",
                404: "check the model name and `base_url`",
            }.get(
                status, "retry later" if status >= 500 else "check the request options"
            )
            raise ResponseError(
                f"{where} answered HTTP {status}: {_error_message(payload, raw)}; {hint}",
                status=status,
                **context,
            )
        if not parsed or not isinstance(payload, dict):
            raise ResponseError(
                f"{where} answered HTTP {status} with a body that is not a JSON object: "
                f"{raw[:200].decode('utf-8', 'replace')!r}; is `base_url` ({self.base_url}) the "
                "right API?",
                status=status,
                **context,
            )
        try:
            text, usage, finish_reason, response_id = self._parse(payload)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise ResponseError(
                f"{where} answered HTTP {status} with JSON of an unexpected shape "
                f"({type(err).__name__}: {err}); is `base_url` ({self.base_url}) the right API?",
                status=status,
                **context,
            ) from err
        if usage is None:
            usage = Usage(output_tokens=estimate_tokens(text))
        price_cost = (
            self.price.cost(usage)
            if self.price is not None
            else _table_cost(self.model, usage)
        )
        return Completion(
            text=text,
            usage=usage,
            cost=price_cost,
            model=self.model,
            provider=self._provider,
            finish_reason=finish_reason,
            raw=payload,
            request_id=response_id,
        )
