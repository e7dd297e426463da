from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.models import PRICES, Price, Usage, cost, price_for

tokens = st.integers(0, 10_000_000)


def test_cost_arithmetic() -> None:
    assert cost("gpt-4o", Usage(input_tokens=1000, output_tokens=500)) == pytest.approx(
        0.0075
    )
    assert cost(
        "gpt-4o-mini", Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    ) == pytest.approx(0.75)
    assert cost(
        "claude-3-5-haiku", Usage(input_tokens=2000, output_tokens=1000)
    ) == pytest.approx(0.0056)
    assert cost(
        "gemini-2.0-flash", Usage(input_tokens=10_000, output_tokens=0)
    ) == pytest.approx(0.001)
    assert cost("sim:gpt-4", Usage(input_tokens=123, output_tokens=45)) == 0.005


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai:gpt-4.1-nano", "gpt-4.1-nano"),
        ("o3-2025-04-16", "o3"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("anthropic:claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("gemini:gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("openai-compatible:http://127.0.0.1:8000/v1#gpt-4o-mini", "gpt-4o-mini"),
        ("openrouter/openai/gpt-4o", "gpt-4o"),
    ],
)
def test_snapshots_and_model_strings_resolve(name: str, listed: str) -> None:
    assert price_for(name) is PRICES[listed]


@pytest.mark.parametrize(
    "name", ["gpt-4o-audio-preview-x", "llama3:8b", "my-local-model", "gpt-5-turbo"]
)
def test_unknown_models_are_none_never_zero(name: str) -> None:
    assert cost(name, Usage(input_tokens=100, output_tokens=100)) is None
    with pytest.raises(ConfigurationError, match="price="):
        price_for(name)


def test_unknown_model_error_suggests_close_names() -> None:
    with pytest.raises(ConfigurationError, match="gpt-4o-mini") as info:
        price_for("gpt-4o-mni")
    assert info.value.model == "gpt-4o-mni"


def test_long_context_tier() -> None:
    short = cost("gemini-2.5-pro", Usage(input_tokens=200_000, output_tokens=1000))
    long = cost("gemini-2.5-pro", Usage(input_tokens=200_001, output_tokens=1000))
    assert short == pytest.approx(200_000 * 1.25e-6 + 1000 * 10e-6)
    assert long == pytest.approx(200_001 * 2.50e-6 + 1000 * 15e-6)


@given(a=tokens, b=tokens, c=tokens, d=tokens, name=st.sampled_from(sorted(PRICES)))
def test_cost_is_additive_and_non_negative(
    a: int, b: int, c: int, d: int, name: str
) -> None:
    price = PRICES[name]
    if price.long_context_threshold is not None:
        return  # tiered pricing is additive only within a tier
    one = price.cost(Usage(input_tokens=a, output_tokens=b))
    two = price.cost(Usage(input_tokens=c, output_tokens=d))
    both = price.cost(Usage(input_tokens=a + c, output_tokens=b + d))
    assert one >= 0
    assert both + price.per_request == pytest.approx(one + two)


def test_every_major_family_is_priced() -> None:
    for name in ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini",
                 "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4",
                 "claude-3-5-haiku", "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro",
                 "sim:gpt-4", "sim:claude-3", "sim:gemini-pro", "sim:llama-3-70b", "sim:mixtral-8x7b"]:  # fmt: skip
        assert name in PRICES
        assert PRICES[name].input > 0 or PRICES[name].per_request > 0


def test_price_validates_and_has_a_short_repr() -> None:
    with pytest.raises(ValidationError, match="input"):
        Price(input=-1.0)
    with pytest.raises(ValidationError, match="finite"):
        Price(output=float("nan"))
    assert repr(Price(input=1.0, output=2.0)) == "Price(input=1.0, output=2.0)"
