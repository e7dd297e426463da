"""Prices of current major models, and the cost of a request from its token usage.

Prices are USD per million tokens as each provider published them on its pricing page
([`PRICING_SOURCES`][crucible_core.models.PRICING_SOURCES]), as of
[`PRICING_AS_OF`][crucible_core.models.PRICING_AS_OF]: the standard tier, with prompt-cache
reads and writes at their own rates where the provider bills them apart (OpenAI cached input,
Anthropic cache reads and 5-minute cache writes). They change: check the provider's page before
relying on a number, and pass your own [`Price`][crucible_core.models.Price] to a model
(`price=`) for anything not listed here; it overrides the table.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.models._types import Usage, short_repr

__all__ = ("PRICES", "PRICING_AS_OF", "PRICING_SOURCES", "Price", "cost", "price_for")

PRICING_AS_OF = "2025-10"
"""When the table's prices were last checked against the providers' pages (year-month)."""

PRICING_SOURCES: Mapping[str, str] = {
    "openai": "https://openai.com/api/pricing/",
    "anthropic": "https://www.anthropic.com/pricing#api",
    "gemini": "https://ai.google.dev/gemini-api/docs/pricing",
    "sim": "crucible's simulated profiles (a flat price per request)",
}
"""Where each provider's prices in the table come from."""


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise ValidationError(
            f"`{attribute.name}` must be a finite number, got {value!r}",
            **{attribute.name: value},
        )
    if value < 0:
        raise ValidationError(
            f"`{attribute.name}` must be >= 0, got {value!r}", **{attribute.name: value}
        )


@attrs.define(frozen=True, kw_only=True)
class Price:
    """What a model costs.

    Examples:
        >>> Price(input=0.15, output=0.60).cost(Usage(input_tokens=1_000_000, output_tokens=0))
        0.15
    """

    input: float = attrs.field(default=0.0, validator=_non_negative)
    """USD per million input tokens."""
    output: float = attrs.field(default=0.0, validator=_non_negative)
    """USD per million output tokens."""
    per_request: float = attrs.field(default=0.0, validator=_non_negative)
    """A flat USD amount per request (used by the simulated profiles)."""
    long_context_threshold: int | None = attrs.field(
        default=None, validator=_non_negative
    )
    """Prompts longer than this many tokens are billed at the `*_long` prices (Gemini 2.5 Pro)."""
    input_long: float | None = attrs.field(default=None, validator=_non_negative)
    """USD per million input tokens above `long_context_threshold`."""
    output_long: float | None = attrs.field(default=None, validator=_non_negative)
    """USD per million output tokens above `long_context_threshold`."""
    cache_read: float | None = attrs.field(default=None, validator=_non_negative)
    """USD per million input tokens read from the prompt cache (`None`: the `input` price)."""
    cache_write: float | None = attrs.field(default=None, validator=_non_negative)
    """USD per million input tokens written to the prompt cache (`None`: the `input` price)."""
    source: str | None = attrs.field(default=None, eq=False, repr=False)
    """Where the price comes from (a pricing page), for the table's entries."""
    as_of: str | None = attrs.field(default=None, eq=False, repr=False)
    """When the price was checked, for the table's entries."""

    def __repr__(self) -> str:
        return short_repr(self)

    def cost(self, usage: Usage) -> float:
        """The cost in USD of one request that used `usage`.

        Cached input tokens (`usage.cache_read_tokens`, `usage.cache_write_tokens`, both part of
        `usage.input_tokens`) are billed at `cache_read` / `cache_write` when those are set.
        """
        input_price, output_price = self.input, self.output
        if (
            self.long_context_threshold is not None
            and usage.input_tokens > self.long_context_threshold
        ):
            input_price = (
                self.input_long if self.input_long is not None else input_price
            )
            output_price = (
                self.output_long if self.output_long is not None else output_price
            )
        read = min(usage.cache_read_tokens, usage.input_tokens)
        write = min(usage.cache_write_tokens, usage.input_tokens - read)
        plain = usage.input_tokens - read - write
        read_price = input_price if self.cache_read is None else self.cache_read
        write_price = input_price if self.cache_write is None else self.cache_write
        return (
            plain * input_price
            + read * read_price
            + write * write_price
            + usage.output_tokens * output_price
        ) / 1_000_000 + self.per_request


def _p(provider: str, input: float, output: float, **more: Any) -> Price:
    return Price(
        input=input,
        output=output,
        source=PRICING_SOURCES[provider],
        as_of=PRICING_AS_OF,
        **more,
    )


def _openai(input: float, output: float, cached: float | None = None) -> Price:
    return _p("openai", input, output, cache_read=cached)


def _anthropic(input: float, output: float) -> Price:
    # cache reads at 0.1x the input price, 5-minute cache writes at 1.25x (Anthropic's pricing)
    return _p(
        "anthropic",
        input,
        output,
        cache_read=round(input * 0.1, 6),
        cache_write=round(input * 1.25, 6),
    )


def _gemini(input: float, output: float, **more: Any) -> Price:
    return _p("gemini", input, output, **more)


def _sim(per_request: float) -> Price:
    return Price(
        per_request=per_request, source=PRICING_SOURCES["sim"], as_of=PRICING_AS_OF
    )


PRICES: Mapping[str, Price] = {
    # OpenAI (cached input at its own rate)
    "gpt-4o": _openai(2.50, 10.00, 1.25),
    "gpt-4o-mini": _openai(0.15, 0.60, 0.075),
    "gpt-4.1": _openai(2.00, 8.00, 0.50),
    "gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _openai(0.10, 0.40, 0.025),
    "o1": _openai(15.00, 60.00, 7.50),
    "o3": _openai(2.00, 8.00, 0.50),
    "o3-mini": _openai(1.10, 4.40, 0.55),
    "o4-mini": _openai(1.10, 4.40, 0.275),
    "gpt-4-turbo": _openai(10.00, 30.00),
    "gpt-3.5-turbo": _openai(0.50, 1.50),
    # Anthropic (cache reads and writes at their own rates)
    "claude-3-haiku": _p("anthropic", 0.25, 1.25, cache_read=0.03, cache_write=0.30),
    "claude-3-opus": _anthropic(15.00, 75.00),
    "claude-3-5-haiku": _anthropic(0.80, 4.00),
    "claude-3-5-sonnet": _anthropic(3.00, 15.00),
    "claude-3-7-sonnet": _anthropic(3.00, 15.00),
    "claude-sonnet-4": _anthropic(3.00, 15.00),
    "claude-opus-4": _anthropic(15.00, 75.00),
    "claude-opus-4-1": _anthropic(15.00, 75.00),
    "claude-sonnet-4-5": _anthropic(3.00, 15.00),
    "claude-haiku-4-5": _anthropic(1.00, 5.00),
    # Google (cached content is billed at the input price here: an upper bound)
    "gemini-1.5-flash": _gemini(0.075, 0.30),
    "gemini-1.5-pro": _gemini(1.25, 5.00),
    "gemini-2.0-flash": _gemini(0.10, 0.40),
    "gemini-2.0-flash-lite": _gemini(0.075, 0.30),
    "gemini-2.5-flash": _gemini(0.30, 2.50),
    "gemini-2.5-flash-lite": _gemini(0.10, 0.40),
    "gemini-2.5-pro": _gemini(
        1.25, 10.00, long_context_threshold=200_000, input_long=2.50, output_long=15.00
    ),
    # Simulated profiles: a flat price per query
    "sim:gpt-4": _sim(0.005),
    "sim:claude-3": _sim(0.003),
    "sim:gemini-pro": _sim(0.001),
    "sim:llama-3-70b": _sim(0.0002),
    "sim:mixtral-8x7b": _sim(0.0008),
}
"""The pricing table: model name → [`Price`][crucible_core.models.Price]. Simulated profiles are
keyed `"sim:<profile>"`."""

# Dated snapshots and aliases of a listed model: gpt-4o-2024-08-06, claude-3-5-haiku-20241022,
# claude-3-5-haiku-latest, claude-sonnet-4-0, gemini-2.0-flash-001, gemini-2.5-pro-preview-05-06.
_SUFFIX = re.compile(
    r"-(latest|\d{8}|\d{4}|\d{4}-\d{2}-\d{2}|\d{3}|0|(preview|exp)(-[0-9-]+)?)(-v\d+(:\d+)?)?$"
)
_PROVIDERS = ("openai", "anthropic", "gemini", "google")


def _normalise(model: str) -> str:
    name = model.strip()
    if name.startswith("sim:"):
        return name
    if "#" in name:  # "openai-compatible:<url>#<model>", or the target alone
        name = name.rsplit("#", 1)[1].split("?", 1)[0]
    else:
        provider, sep, rest = name.partition(":")
        if sep and provider in _PROVIDERS:
            name = rest
    name = name.removeprefix("models/")  # Gemini's resource names
    name = name.rsplit("/", 1)[-1]  # OpenRouter-style "openai/gpt-4o"
    return name.lower()


def _lookup(model: str) -> Price | None:
    name = _normalise(model)
    if name in PRICES:
        return PRICES[name]
    while True:
        stripped = _SUFFIX.sub("", name)
        if stripped == name:
            return None
        name = stripped
        if name in PRICES:
            return PRICES[name]


def price_for(model: str) -> Price:
    """The price of `model`: a name (`"gpt-4o-mini"`), a dated snapshot, or a model string.

    Args:
        model: `"gpt-4o-mini"`, `"gpt-4o-2024-08-06"`, `"anthropic:claude-3-5-haiku-latest"`,
            `"sim:gpt-4"`, ...

    Raises:
        ConfigurationError: if the model is not in [`PRICES`][crucible_core.models.PRICES]; the
            message lists the closest names.

    Examples:
        >>> price_for("openai:gpt-4o-mini-2024-07-18")
        Price(input=0.15, output=0.6)
    """
    found = _lookup(model)
    if found is None:
        close = difflib.get_close_matches(
            _normalise(model), list(PRICES), n=5, cutoff=0.5
        )
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigurationError(
            f"no price is known for model {model!r}{hint} Pass `price=Price(input=..., "
            "output=...)` (USD per million tokens) to the model to price it.",
            model=model,
        )
    return found


def cost(model: str, usage: Usage) -> float | None:
    """The USD cost of a request to `model` that used `usage`, or `None` if its price is unknown.

    Unknown models give `None`, never a silent 0, so totals can tell "free" from "not priced".

    Examples:
        >>> cost("gpt-4o", Usage(input_tokens=1000, output_tokens=500))
        0.0075
        >>> cost("my-local-model", Usage(input_tokens=10)) is None
        True
    """
    found = _lookup(model)
    return None if found is None else found.cost(usage)
