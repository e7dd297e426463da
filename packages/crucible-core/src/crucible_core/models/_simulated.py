"""`SimulatedModel`: the embedded default model, needing no key and no network.

Every outcome is a pure function of `(seed, profile name, request, attempt)`, drawn from a keyed hash,
so a run reproduces exactly whatever the call order or concurrency. Whether an answer is right can
also follow a latent difficulty shared by every model asked the same item (`correlation=`).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from statistics import NormalDist
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias

import attrs

from crucible_core._retry import RetryPolicy, is_testing
from crucible_core.exceptions import (
    ConfigurationError,
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
)
from crucible_core.models._pricing import Price
from crucible_core.models._types import (
    Completion,
    FinishReason,
    Request,
    Usage,
    short_repr,
)

__all__ = (
    "LATENCY_CLASSES",
    "PROFILES",
    "LatencyClass",
    "LatencyDistribution",
    "Profile",
    "SimulatedModel",
    "item_difficulty",
    "wrong_answer",
)

LatencyClass: TypeAlias = Literal["fast", "medium", "slow"]
"""The three latency classes of the simulated profiles."""

_NORMAL = NormalDist()
_Z95 = _NORMAL.inv_cdf(0.95)
_Z99 = _NORMAL.inv_cdf(0.99)


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"`{attribute.name}` must be a positive number, got {value!r}",
            **{attribute.name: value},
        )


def _probability(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
    ):
        raise ValidationError(
            f"`{attribute.name}` must be a probability in [0, 1], got {value!r}",
            **{attribute.name: value},
        )


@attrs.define(frozen=True, kw_only=True)
class LatencyDistribution:
    """A heavy-tailed latency distribution that has exactly the given P50, P95 and P99.

    The quantile function is log-normal in pieces: `log Q(q) = log p50 + s1 * z(q)` up to the 95th
    percentile and `log p95 + s2 * (z(q) - z(0.95))` above it, with `z` the standard normal
    quantile and `s1`, `s2` chosen so that `Q(0.5) = p50`, `Q(0.95) = p95`, `Q(0.99) = p99`. When
    `p99 / p95` is large relative to `p95 / p50` the upper piece is steeper, a heavier tail than one
    log-normal. Draws above the `max_quantile` are clamped to it, so no single latency is absurd.

    Examples:
        >>> d = LatencyDistribution(p50=0.2, p95=0.8, p99=2.0)
        >>> round(d.quantile(0.5), 6), round(d.quantile(0.95), 6), round(d.quantile(0.99), 6)
        (0.2, 0.8, 2.0)
    """

    p50: float = attrs.field(validator=_positive)
    """Median latency in seconds."""
    p95: float = attrs.field(validator=_positive)
    """95th-percentile latency in seconds."""
    p99: float = attrs.field(validator=_positive)
    """99th-percentile latency in seconds."""
    max_quantile: float = attrs.field(default=0.9999, validator=_probability)
    """Draws are clamped at this quantile."""

    def __attrs_post_init__(self) -> None:
        if not self.p50 < self.p95 < self.p99:
            raise ValidationError(
                f"latency quantiles must increase: p50 < p95 < p99, got {self.p50}, {self.p95}, "
                f"{self.p99}",
                p50=self.p50,
                p95=self.p95,
                p99=self.p99,
            )

    def quantile(self, q: float) -> float:
        """The latency in seconds at quantile `q` (in `(0, 1)`; values are clamped)."""
        q = min(max(q, 1e-12), self.max_quantile)
        z = _NORMAL.inv_cdf(q)
        if z <= _Z95:
            return self.p50 * math.exp(math.log(self.p95 / self.p50) / _Z95 * z)
        slope = math.log(self.p99 / self.p95) / (_Z99 - _Z95)
        return self.p95 * math.exp(slope * (z - _Z95))


LATENCY_CLASSES: Mapping[LatencyClass, LatencyDistribution] = {
    "fast": LatencyDistribution(p50=0.2, p95=0.8, p99=2.0),
    "medium": LatencyDistribution(p50=0.5, p95=2.0, p99=5.0),
    "slow": LatencyDistribution(p50=1.0, p95=4.0, p99=8.0),
}
"""Latency classes: P50/P95/P99 of 200/800/2000 ms (fast), 500/2000/5000 ms (medium) and
1000/4000/8000 ms (slow)."""


def _to_latency(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return LATENCY_CLASSES[value]  # type: ignore[index]
        except KeyError:
            raise ValidationError(
                f"unknown latency class {value!r}; use one of {sorted(LATENCY_CLASSES)} or a "
                "`LatencyDistribution(p50=..., p95=..., p99=...)`",
                latency=value,
            ) from None
    return value


@attrs.define(frozen=True, kw_only=True)
class Profile:
    """How a simulated model behaves: accuracy, latency, failure rates and price.

    Examples:
        >>> import attrs
        >>> flaky = attrs.evolve(PROFILES["gpt-4"], name="gpt-4-flaky", rate_limit_rate=0.2)
        >>> flaky.accuracy, flaky.rate_limit_rate
        (0.94, 0.2)
    """

    name: str
    """The profile name; the model id is `"sim:<name>"`."""
    accuracy: float = attrs.field(validator=_probability)
    """Probability of answering correctly a request that carries a reference answer."""
    latency: LatencyDistribution = attrs.field(
        converter=_to_latency,
        validator=attrs.validators.instance_of(LatencyDistribution),
    )
    """Latency of one attempt: a distribution or a latency class name (`"fast"`, ...)."""
    error_rate: float = attrs.field(default=0.01, validator=_probability)
    """Probability that an attempt fails with a 500 [`ResponseError`][crucible_core.ResponseError]."""
    rate_limit_rate: float = attrs.field(default=0.0, validator=_probability)
    """Probability that an attempt is refused with a 429 [`RateLimitError`][crucible_core.RateLimitError]."""
    price_per_query: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    """USD per successful query."""
    retry_after: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    """Seconds a simulated 429 asks the client to wait."""

    def __repr__(self) -> str:
        return short_repr(self)


PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="gpt-4", accuracy=0.94, latency="medium", price_per_query=0.005),
        Profile(name="claude-3", accuracy=0.93, latency="fast", price_per_query=0.003),
        Profile(
            name="gemini-pro", accuracy=0.90, latency="medium", price_per_query=0.001
        ),
        Profile(
            name="llama-3-70b", accuracy=0.87, latency="fast", price_per_query=0.0002
        ),
        Profile(
            name="mixtral-8x7b", accuracy=0.89, latency="medium", price_per_query=0.0008
        ),
    )
}
"""The five built-in profiles, by name."""


_CONFIDENCE_K = 8.0
"""Concentration of the simulated confidences (alpha + beta before the correctness update)."""


class _Draws:
    """Uniform draws in [0, 1) keyed by purpose, from a hash of the seed, model and request."""

    __slots__ = ("_key",)

    def __init__(self, *parts: object) -> None:
        self._key = "\x1f".join(str(p) for p in parts).encode()

    def uniform(self, *purpose: object) -> float:
        data = self._key + b"\x1e" + "\x1f".join(str(p) for p in purpose).encode()
        digest = hashlib.blake2b(data, digest_size=8).digest()
        return (int.from_bytes(digest, "big") >> 11) * 2.0**-53

    def index(self, n: int, *purpose: object) -> int:
        return min(int(self.uniform(*purpose) * n), n - 1)


# --- wrong answers ---------------------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DISTRACTORS = (
    "Paris", "1850", "blue", "Newton", "oxygen", "seven", "Mars", "Shakespeare", "Tokyo",
    "carbon", "Einstein", "triangle", "winter", "Amazon", "copper", "Napoleon", "Jupiter",
    "photosynthesis", "Canada", "twelve",
)  # fmt: skip
_NUMBER = re.compile(r"^(?P<pre>[^\d+-]*)(?P<num>[+-]?\d[\d,]*(\.\d+)?)(?P<post>\D*)$")
_RETURN = re.compile(r"^(\s*)return\s+(?!None\s*$)\S.*$")


def _norm(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


def _wrong_choice(
    reference: str, choices: tuple[str, ...], draws: _Draws
) -> str | None:
    ref = reference.strip()
    is_letter = len(ref) == 1 and ref.upper() in _LETTERS
    options: list[str]
    if choices and ref in choices:
        options = [c for c in choices if c != ref]
    elif is_letter:
        n = max(len(choices), 4, _LETTERS.index(ref.upper()) + 1)
        letters = _LETTERS[:n] if ref.isupper() else _LETTERS[:n].lower()
        options = [c for c in letters if c != ref]
    elif choices:
        options = [c for c in choices if _norm(c) != _norm(ref)]
    else:
        return None
    return options[draws.index(len(options), "wrong", "choice")] if options else None


def _wrong_number(reference: str, draws: _Draws) -> str | None:
    match = _NUMBER.match(reference.strip())
    if match is None:
        return None
    text = match["num"].replace(",", "")
    try:
        value = Decimal(text)
    except (
        InvalidOperation
    ):  # pragma: no cover - the pattern only admits valid decimals
        return None
    exponent = value.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    step = Decimal(1).scaleb(-decimals)
    magnitude = max(abs(value), step)
    candidates = [
        value + step,
        value - step,
        value + 2 * step,
        value * 2 if value != 0 else value + 3 * step,
        value + max((magnitude / 10).quantize(step), step),
        value * 10 if value != 0 else value + 10 * step,
        -value if value != 0 else value - 2 * step,
    ]
    wrong = candidates[draws.index(len(candidates), "wrong", "number")]
    if wrong == value:  # pragma: no cover - every candidate differs from value
        wrong = value + step
    sign = "-" if wrong < 0 else ""
    if "," in match["num"] and decimals == 0:
        formatted = f"{int(abs(wrong)):,}"
    else:
        formatted = f"{abs(wrong):.{decimals}f}"
    if match["num"].startswith("+") and not sign:
        sign = "+"
    return f"{sign}{match['pre']}{formatted}{match['post']}"


def _wrong_code(reference: str, draws: _Draws) -> str:
    lines = reference.splitlines()
    code = [
        i
        for i, line in enumerate(lines)
        if line.strip() and not line.strip().startswith("#")
    ]
    returns = [i for i in code if _RETURN.match(lines[i])]
    kinds = ["stub", "truncate"] + (["return_none"] if returns else [])
    kind = kinds[draws.index(len(kinds), "wrong", "code")]
    if kind == "return_none":
        # "forgot to return the result": every value-returning line returns None instead
        return "\n".join(
            _RETURN.sub(r"\1return None", line) if i in returns else line
            for i, line in enumerate(lines)
        )
    if kind == "truncate" and len(reference.strip()) > 20:
        # cut off mid-expression, like an answer that ran out of tokens
        cut = int(len(reference.rstrip()) * (0.4 + 0.4 * draws.uniform("wrong", "cut")))
        truncated = reference[:cut]
        if "(" not in truncated[-20:]:
            truncated += "("
        return truncated
    # "stub": the function is left unimplemented
    if not code:
        return "raise NotImplementedError"
    first = code[0]
    if lines[first].lstrip().startswith(("def ", "async def ")) and first + 1 < len(
        lines
    ):
        body = next((i for i in code if i > first), None)
        indent = re.match(r"\s*", lines[body]).group(0) if body is not None else "    "  # type: ignore[union-attr]
        insert_at = first + 1
    else:
        indent = re.match(r"\s*", lines[first]).group(0)  # type: ignore[union-attr]
        insert_at = first
    stub = f'{indent}raise NotImplementedError("TODO: implement")'
    return "\n".join([*lines[:insert_at], stub, *lines[insert_at:]])


def _wrong_text(reference: str, draws: _Draws) -> str:
    words = reference.split()
    for k in range(len(_DISTRACTORS)):
        distractor = _DISTRACTORS[
            (draws.index(len(_DISTRACTORS), "wrong", "text") + k) % len(_DISTRACTORS)
        ]
        if len(words) >= 3:
            position = draws.index(len(words), "wrong", "word")
            candidate = " ".join(
                [*words[:position], distractor, *words[position + 1 :]]
            )
        else:
            candidate = distractor
        if _norm(candidate) != _norm(reference):
            return candidate
    return f"not {reference}"  # pragma: no cover - twenty distinct distractors cannot all match


def wrong_answer(request: Request, *, seed: int = 0, salt: str = "") -> str:
    """A plausible wrong answer to `request`, of the kind its `kind` says.

    Another choice letter (or choice text) for `"choice"`, a perturbed number keeping its format
    for `"number"`, broken code that fails its tests for `"code"` (left unimplemented, cut off
    mid-expression, or returning `None`), a wrong word or phrase for `"text"`. Deterministic in
    `(seed, salt, request)`.

    Raises:
        ValidationError: if the request has no `reference`.

    Examples:
        >>> wrong_answer(Request(prompt="Pick", reference="B", kind="choice")) in {"A", "C", "D"}
        True
    """
    if request.reference is None:
        raise ValidationError(
            "a wrong answer needs the right one: give the request a `reference=`",
            request=request,
        )
    draws = _Draws(seed, salt, request.fingerprint())
    reference = request.reference
    if request.kind == "choice":
        found = _wrong_choice(reference, request.choices, draws)
        if found is not None:
            return found
    elif request.kind == "number":
        found = _wrong_number(reference, draws)
        if found is not None:
            return found
    elif request.kind == "code":
        return _wrong_code(reference, draws)
    elif request.choices:
        found = _wrong_choice(reference, request.choices, draws)
        if found is not None:
            return found
    return _wrong_text(reference, draws)


def _free_answer(request: Request, draws: _Draws, name: str) -> str:
    """An answer to a request without a reference: well-formed for its kind, right by no measure."""
    if request.kind == "choice":
        options = request.choices or tuple(_LETTERS[:4])
        return options[draws.index(len(options), "free")]
    if request.kind == "number":
        return str(draws.index(100, "free"))
    if request.kind == "code":
        return (
            'def solution(*args):\n    raise NotImplementedError("simulated model")\n'
        )
    return f"A simulated answer from {name}."


# --- shared item difficulty -----------------------------------------------------------------------


def _item_key(request: Request) -> str:
    """What identifies an item: the question and its answer, not metadata or sampling options."""
    return "\x1f".join(
        [
            request.prompt if request.prompt is not None else "",
            *(f"{m.role}:{m.content}" for m in request.messages),
            request.system or "",
            request.reference or "",
            request.kind,
            *request.choices,
        ]
    )


def item_difficulty(request: Request, *, seed: int = 0) -> float:
    """The latent difficulty of the item `request` asks: a standard normal score, higher is harder.

    It depends only on the item (prompt or messages, system prompt, reference, kind and choices) and
    `seed`, not on the model, the request's `metadata` or its sampling options. So every simulated
    model asked the same item, and every repeat of it, sees the same difficulty; a
    [`SimulatedModel`][crucible_core.models.SimulatedModel] with `correlation > 0` is more often
    wrong on items with a high score.

    Examples:
        >>> a = Request(prompt="2 + 2 = ?", reference="4", kind="number", metadata={"repeat": 0})
        >>> b = Request(prompt="2 + 2 = ?", reference="4", kind="number", metadata={"repeat": 1})
        >>> item_difficulty(a) == item_difficulty(b)
        True
    """
    return _normal_score(_Draws("difficulty", seed, _item_key(request)).uniform())


def _normal_score(u: float) -> float:
    """The standard normal quantile of a uniform draw in [0, 1) (kept off the infinite ends)."""
    return _NORMAL.inv_cdf(min(max(u, 2.0**-53), 1.0 - 2.0**-53))


def _check_correlation(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
    ):
        raise ValidationError(
            "`correlation` must be in [0, 1] (0: errors independent of other models, 1: wrong "
            f"exactly on the hardest items), got {value!r}",
            correlation=value,
        )
    return float(value)


# --- the model -------------------------------------------------------------------------------------


class SimulatedModel:
    """A model that answers from a [`Profile`][crucible_core.models.Profile], deterministically.

    Given a request with a `reference` it answers correctly with the profile's accuracy and
    otherwise gives a plausible wrong answer of the request's `kind`
    ([`wrong_answer`][crucible_core.models.wrong_answer]). Each attempt takes a latency drawn from
    the profile's distribution (slept with `asyncio.sleep`, or only reported with
    `virtual_time=True`) and fails with a 500 or a 429 at the profile's rates; failed attempts are
    retried by `retry` like a real provider's. Usage is estimated from the text (about four
    characters per token) and the cost is the profile's price per query. It emits the same
    `crucible.llm.request.*` events as the HTTP providers.

    The answer depends only on `(seed, profile, request)`, and an attempt's latency and failure on
    `(seed, profile, request, attempt)`; call order and concurrency change nothing. Requests that
    differ only in `metadata` (say a repeat number) are drawn independently.

    Real models are wrong on the same hard items, which independent draws miss (they are the best
    case for voting). With `correlation=rho` the model is right exactly when
    `sqrt(rho) * D + sqrt(1 - rho) * E < Phi^-1(accuracy)`, where `D` is the item's latent
    difficulty ([`item_difficulty`][crucible_core.models.item_difficulty], shared by every model
    asked the item and seeded by `difficulty_seed`) and `E` the model's own standard normal noise
    (a Gaussian copula). The accuracy stays the profile's whatever `rho`; two models with the same
    `rho` and `difficulty_seed` have latent scores correlated by `rho` (by `sqrt(rho1 * rho2)` for
    different values). `rho=0` draws exactly as without it.

    Args:
        profile: a [`Profile`][crucible_core.models.Profile] or the name of a built-in one
            (`"gpt-4"`, `"claude-3"`, `"gemini-pro"`, `"llama-3-70b"`, `"mixtral-8x7b"`).
        seed: seeds every draw.
        virtual_time: report latencies without sleeping them (and without sleeping retry waits).
        retry: the retry policy for failed attempts (`None`: fail on the first error).
        timeout: seconds an attempt may take before it fails with
            [`ProviderTimeoutError`][crucible_core.ProviderTimeoutError] (`None`: no limit).
        correlation: how strongly being right follows the item's shared latent difficulty, in
            [0, 1] (0: independently of other models).
        difficulty_seed: seeds the items' latent difficulties; models share them only when they
            share this seed.

    Examples:
        >>> import asyncio
        >>> model = SimulatedModel("gpt-4", seed=1, virtual_time=True)
        >>> c = asyncio.run(model.complete(Request(prompt="2 + 2?", reference="4", kind="number")))
        >>> c.model, c.provider, c.cost
        ('gpt-4', 'sim', 0.005)
    """

    __slots__ = (
        "_draw_key",
        "_threshold",
        "correlation",
        "difficulty_seed",
        "profile",
        "retry",
        "seed",
        "timeout",
        "virtual_time",
    )

    def __init__(
        self,
        profile: Profile | str,
        *,
        seed: int = 0,
        virtual_time: bool = False,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        timeout: float | None = None,
        correlation: float = 0.0,
        difficulty_seed: int = 0,
    ) -> None:
        if isinstance(profile, str):
            name = profile.removeprefix("sim:")
            if name not in PROFILES:
                raise ConfigurationError(
                    f"unknown simulated profile {profile!r}; use one of {sorted(PROFILES)} or pass "
                    "a `Profile(...)`",
                    profile=profile,
                )
            profile = PROFILES[name]
        if not isinstance(profile, Profile):
            raise ValidationError(
                f"`profile` must be a `Profile` or a profile name, got {type(profile).__name__}",
                profile=profile,
            )
        for name, value in (("seed", seed), ("difficulty_seed", difficulty_seed)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(
                    f"`{name}` must be an integer, got {value!r}", **{name: value}
                )
        timeout_value: object = timeout
        if timeout_value is not None and (
            not isinstance(timeout_value, int | float) or not timeout_value > 0
        ):
            raise ValidationError(
                f"`timeout` must be a positive number or None, got {timeout!r}",
                timeout=timeout,
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                "`retry` must be a `RetryPolicy` (from `crucible_core.retry.retry(...)`) or None",
                retry=retry,
            )
        self.profile: Profile = profile
        """The profile the model follows."""
        self.seed: int = seed
        """The seed of every draw."""
        self.virtual_time: bool = bool(virtual_time)
        """Whether latencies are reported without being slept."""
        self.retry: RetryPolicy | None = retry
        """The retry policy for failed attempts."""
        self.timeout: float | None = timeout
        """Seconds an attempt may take."""
        self.correlation: float = _check_correlation(correlation)
        """How strongly being right follows the items' shared latent difficulty."""
        self.difficulty_seed: int = difficulty_seed
        """The seed of the items' latent difficulties."""
        self._draw_key = (seed, profile.name)
        accuracy = profile.accuracy
        self._threshold = (
            -math.inf
            if accuracy <= 0
            else math.inf
            if accuracy >= 1
            else _NORMAL.inv_cdf(accuracy)
        )

    @property
    def id(self) -> str:
        """`"sim:<profile name>"`."""
        return f"sim:{self.profile.name}"

    @property
    def provider(self) -> str:
        """Always `"sim"`."""
        return "sim"

    @property
    def simulated(self) -> bool:
        """Always `True`: reports mark conditions using it as simulated."""
        return True

    def __repr__(self) -> str:
        options = "".join(
            [
                f", seed={self.seed}" if self.seed else "",
                ", virtual_time=True" if self.virtual_time else "",
                f", timeout={self.timeout}" if self.timeout is not None else "",
                f", correlation={self.correlation}" if self.correlation else "",
                f", difficulty_seed={self.difficulty_seed}"
                if self.difficulty_seed
                else "",
            ]
        )
        return f"SimulatedModel({self.profile.name!r}{options})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release; present for the [`Model`][crucible_core.models.Model] protocol."""

    def _attempt(
        self, draws: _Draws, attempt: int
    ) -> tuple[float, ProviderError | None]:
        """The latency of `attempt` and the error it fails with, if any."""
        profile = self.profile
        latency = profile.latency.quantile(draws.uniform("latency", attempt))
        u = draws.uniform("failure", attempt)
        context = {"provider": "sim", "model": profile.name, "attempt": attempt}
        if u < profile.rate_limit_rate:
            return latency * 0.05, RateLimitError(
                f"simulated 429 from sim:{profile.name} (rate-limit rate "
                f"{profile.rate_limit_rate}); retry after {profile.retry_after} s",
                status=429,
                retry_after=profile.retry_after,
                **context,
            )
        if u < profile.rate_limit_rate + profile.error_rate:
            return latency, ResponseError(
                f"simulated 500 from sim:{profile.name} (error rate {profile.error_rate}); "
                "retry, or lower `error_rate` in the profile",
                status=500,
                **context,
            )
        if self.timeout is not None and latency > self.timeout:
            return self.timeout, ProviderTimeoutError(
                f"sim:{profile.name} did not answer within {self.timeout} s; raise `timeout=`",
                timeout=self.timeout,
                **context,
            )
        return latency, None

    async def _pause(self, seconds: float) -> None:
        if not self.virtual_time and seconds > 0:
            import asyncio

            await asyncio.sleep(seconds)

    def answer(self, request: Request) -> tuple[str, bool | None]:
        """The text this model answers `request` with, and whether it is correct (`None`: no reference).

        Pure: no latency, no failures, no events. [`complete`][crucible_core.models.SimulatedModel.complete]
        returns the same text.
        """
        draws = _Draws(*self._draw_key, request.fingerprint())
        if request.reference is None:
            return _free_answer(request, draws, self.profile.name), None
        if self._right(request, draws.uniform("correct")):
            return request.reference, True
        return wrong_answer(request, seed=self.seed, salt=self.profile.name), False

    def confidence(self, request: Request, *, correct: bool | None) -> float:
        """The model's seeded confidence in its answer to `request`, calibrated to its profile.

        Drawn from Beta(a·k + 1, (1 − a)·k) when the answer is right and Beta(a·k, (1 − a)·k + 1)
        when it is wrong (a the profile's accuracy, k = 8), which makes it calibrated: among the
        answers given confidence c, a share c is right, and the mean confidence is a. Without a
        reference (`correct` is `None`) it is drawn from Beta(a·k, (1 − a)·k).
        """
        a = min(max(self.profile.accuracy, 0.01), 0.99)
        alpha, beta = a * _CONFIDENCE_K, (1.0 - a) * _CONFIDENCE_K
        if correct is True:
            alpha += 1.0
        elif correct is False:
            beta += 1.0
        draws = _Draws(*self._draw_key, request.fingerprint())
        rng = random.Random(int(draws.uniform("confidence") * 2.0**53))
        return rng.betavariate(alpha, beta)

    def _right(self, request: Request, u: float) -> bool:
        """Right or wrong, from the model's own uniform draw `u` (and the item's difficulty)."""
        rho = self.correlation
        if not rho:
            return u < self.profile.accuracy
        own = _normal_score(u)
        shared = item_difficulty(request, seed=self.difficulty_seed)
        score = math.sqrt(rho) * shared + math.sqrt(1.0 - rho) * own
        return score < self._threshold

    async def complete(self, request: Request) -> Completion:
        """Answer `request` as the profile says, sleeping (or, in virtual time, reporting) the latency.

        Raises:
            RateLimitError: a simulated 429 that the retry policy did not (or could no longer) retry.
            ResponseError: likewise for a simulated 500.
            ProviderTimeoutError: an attempt took longer than `timeout`.
        """
        if not isinstance(request, Request):
            raise ValidationError(
                f"`complete` takes a `Request`, got {type(request).__name__}; wrap a prompt as "
                "`Request(prompt=...)`",
                request=request,
            )
        fingerprint = request.fingerprint()
        draws = _Draws(*self._draw_key, fingerprint)
        request_id = f"sim-{fingerprint[:20]}"
        emit_start(self.id, "sim", request_id)
        elapsed = 0.0
        attempt = 1
        started = time.monotonic()
        try:
            while True:
                latency, error = self._attempt(draws, attempt)
                await self._pause(latency)
                elapsed += latency
                if error is None:
                    break
                policy = self.retry
                limit = policy.max_attempts() if policy is not None else 1
                if (
                    policy is None
                    or not policy.retries(error)
                    or (limit is not None and attempt >= limit)
                ):
                    raise error
                wait = policy.wait(
                    attempt, error, jitter=draws.uniform("jitter", attempt)
                )
                if (
                    policy.timeout is not None
                    and not is_testing()
                    and elapsed + wait >= policy.timeout
                ):
                    raise error
                emit_retry(
                    self.id, "sim", request_id, attempt=attempt, wait=wait, error=error
                )
                if not is_testing():
                    await self._pause(wait)
                elapsed += wait
                attempt += 1
        except BaseException as err:
            duration = elapsed if self.virtual_time else time.monotonic() - started
            emit_exception(
                self.id,
                "sim",
                request_id,
                attempt=attempt,
                duration=duration,
                error=err,
            )
            raise
        text, correct = self.answer(request)
        finish_reason: FinishReason = "stop"
        if (
            request.max_tokens is not None
            and estimate_tokens(text) > request.max_tokens
        ):
            text = text[: request.max_tokens * 4]
            finish_reason = "length"
        usage = Usage(
            input_tokens=estimate_input_tokens(request),
            output_tokens=estimate_tokens(text),
        )
        completion = Completion(
            text=text,
            usage=usage,
            latency=elapsed,
            cost=Price(per_request=self.profile.price_per_query).cost(usage),
            model=self.profile.name,
            provider="sim",
            finish_reason=finish_reason,
            raw={"profile": self.profile.name, "seed": self.seed, "attempts": attempt},
            request_id=request_id,
            attempts=attempt,
            confidence=self.confidence(request, correct=correct),
        )
        emit_stop(self.id, completion, request_id)
        return completion
