from __future__ import annotations

from typing import Any

import pytest

from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.models import (
    PROFILES,
    Model,
    SimulatedModel,
    available_providers,
    build_model,
    list_models,
    parse_model_string,
    providers,
    register_provider,
)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_builds_every_simulated_profile(name: str) -> None:
    model = build_model(f"sim:{name}", seed=4, virtual_time=True)
    assert isinstance(model, SimulatedModel)
    assert model.id == f"sim:{name}"
    assert model.seed == 4


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("gpt-4", "malformed model string"),
        ("sim:", "malformed model string"),
        (":gpt-4", "malformed model string"),
        ("openia:gpt-4o", "Did you mean 'openai'"),
        ("nope:x", "Registered providers: .*sim"),
        ("sim:gpt-5", "unknown simulated profile"),
        (
            "openai-compatible:http://127.0.0.1:1/v1",
            "openai-compatible:<base_url>#<model>",
        ),
    ],
)
def test_clear_errors(spec: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        build_model(spec)


def test_non_string_spec() -> None:
    with pytest.raises(ConfigurationError, match="str"):
        build_model(42)  # type: ignore[arg-type]


def test_parse_keeps_urls_whole() -> None:
    assert parse_model_string(
        "openai-compatible:http://127.0.0.1:8000/v1#qwen2:7b"
    ) == (
        "openai-compatible",
        "http://127.0.0.1:8000/v1#qwen2:7b",
    )


def test_listings() -> None:
    names = [p.name for p in providers()]
    assert names[:5] == ["sim", "openai", "openai-compatible", "anthropic", "gemini"]
    assert "sim" in available_providers()
    assert set(list_models("sim")) == {f"sim:{n}" for n in PROFILES}
    assert "openai:gpt-4o-mini" in list_models()
    assert "anthropic:claude-3-5-haiku" in list_models("anthropic")
    assert "gemini:gemini-2.0-flash" in list_models("gemini")
    with pytest.raises(ConfigurationError):
        list_models("nope")


def test_register_provider() -> None:
    built: list[tuple[str, dict[str, Any]]] = []

    def factory(target: str, **options: Any) -> Model:
        built.append((target, options))
        return SimulatedModel("gpt-4", **options)

    info = register_provider("test-echo", factory, description="echo", models=("a",))
    try:
        assert isinstance(build_model("test-echo:whatever", seed=2), SimulatedModel)
        assert built == [("whatever", {"seed": 2})]
        assert "test-echo:a" in list_models()
        assert info.available
        with pytest.raises(ValidationError, match="already registered"):
            register_provider("test-echo", factory)
        register_provider("test-echo", factory, replace=True)
    finally:
        from crucible_core.models import _registry

        _registry._PROVIDERS.pop("test-echo", None)


@pytest.mark.parametrize("name", ["", "Bad", "has space", "1x", "a:b"])
def test_register_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValidationError, match="provider name"):
        register_provider(name, lambda target: SimulatedModel("gpt-4"))
