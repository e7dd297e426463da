"""Build models from strings: `"sim:gpt-4"`, `"openai:gpt-4o-mini"`, `"openai-compatible:<url>#<model>"`."""

from __future__ import annotations

import difflib
import importlib.util
import re
import threading
from collections.abc import Callable
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

import attrs

from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.models._pricing import PRICES
from crucible_core.models._simulated import PROFILES, SimulatedModel
from crucible_core.models._types import Model

__all__ = (
    "ProviderFactory",
    "ProviderInfo",
    "available_providers",
    "build_model",
    "is_simulated",
    "list_models",
    "parse_model_string",
    "providers",
    "register_provider",
    "split_options",
)

ProviderFactory: TypeAlias = Callable[..., Model]
"""Builds a model: called as `factory(target, **options)`, `target` being the text after `provider:`."""

_NAME = re.compile(r"\A[a-z][a-z0-9_-]*\Z")


@attrs.define(frozen=True, kw_only=True)
class ProviderInfo:
    """A registered provider."""

    name: str
    """The prefix of its model strings, e.g. `"openai"`."""
    factory: ProviderFactory = attrs.field(repr=False)
    """Called as `factory(target, **options)`."""
    description: str = ""
    """One line on what it talks to."""
    models: tuple[str, ...] = ()
    """Known model names, for listings; others may work too."""
    requires: tuple[str, ...] = ()
    """Top-level modules it needs (e.g. `("aiohttp",)`)."""
    extra: str | None = None
    """The `crucible-core` extra that installs them."""

    @property
    def available(self) -> bool:
        """Whether everything in `requires` is installed."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)


def _sim(target: str, **options: Any) -> Model:
    return SimulatedModel(target, **options)


def _openai(target: str, **options: Any) -> Model:
    from crucible_core.models._openai import OpenAIModel

    return OpenAIModel(target, **options)


def _openai_compatible(target: str, **options: Any) -> Model:
    base_url, sep, model = target.rpartition("#")
    if not sep or not base_url or not model:
        raise ConfigurationError(
            f"an OpenAI-compatible model string is 'openai-compatible:<base_url>#<model>', e.g. "
            f"'openai-compatible:http://127.0.0.1:8000/v1#llama-3-8b'; got target {target!r}",
            target=target,
        )
    if "base_url" in options:
        raise ConfigurationError(
            "the base URL is already in the model string; do not also pass `base_url=`",
            target=target,
        )
    from crucible_core.models._openai import OpenAIModel

    return OpenAIModel(
        model, base_url=base_url, provider="openai-compatible", **options
    )


def _anthropic(target: str, **options: Any) -> Model:
    from crucible_core.models._anthropic import AnthropicModel

    return AnthropicModel(target, **options)


def _gemini(target: str, **options: Any) -> Model:
    from crucible_core.models._gemini import GeminiModel

    return GeminiModel(target, **options)


def _priced(prefix: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in PRICES if name.startswith(prefix))


_lock = threading.Lock()
_PROVIDERS: dict[str, ProviderInfo] = {
    info.name: info
    for info in (
        ProviderInfo(
            name="sim",
            factory=_sim,
            description="simulated models: no key, no network (options: seed, virtual_time, ...)",
            models=tuple(PROFILES),
        ),
        ProviderInfo(
            name="openai",
            factory=_openai,
            description="OpenAI chat completions (key: OPENAI_API_KEY)",
            models=_priced(("gpt-", "o1", "o3", "o4")),
            requires=("aiohttp",),
            extra="http",
        ),
        ProviderInfo(
            name="openai-compatible",
            factory=_openai_compatible,
            description="any OpenAI-compatible server: 'openai-compatible:<base_url>#<model>' "
            "(vLLM, Ollama, llama.cpp, OpenRouter; key: api_key= or api_key_env=)",
            requires=("aiohttp",),
            extra="http",
        ),
        ProviderInfo(
            name="anthropic",
            factory=_anthropic,
            description="Anthropic messages API (key: ANTHROPIC_API_KEY)",
            models=_priced(("claude-",)),
            requires=("aiohttp",),
            extra="http",
        ),
        ProviderInfo(
            name="gemini",
            factory=_gemini,
            description="Google Gemini generateContent (key: GEMINI_API_KEY or GOOGLE_API_KEY)",
            models=_priced(("gemini-",)),
            requires=("aiohttp",),
            extra="http",
        ),
    )
}


def register_provider(
    name: str,
    factory: ProviderFactory,
    *,
    description: str = "",
    models: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
    extra: str | None = None,
    replace: bool = False,
) -> ProviderInfo:
    """Make `"<name>:<target>"` model strings build models with `factory(target, **options)`.

    Args:
        name: the prefix, lowercase letters, digits, `-` and `_`.
        factory: builds the model.
        description: one line for listings.
        models: known model names, for listings.
        requires: top-level modules the factory needs.
        extra: the extra that installs them.
        replace: allow replacing an already registered provider.

    Raises:
        ValidationError: for a bad name, or a name already registered without `replace=True`.
    """
    name_value: object = name
    if not isinstance(name_value, str) or not _NAME.match(name_value):
        raise ValidationError(
            f"a provider name is lowercase letters, digits, '-' and '_', starting with a letter; "
            f"got {name!r}",
            name=name,
        )
    if not callable(factory):
        raise ValidationError(f"`factory` must be callable, got {factory!r}", name=name)
    info = ProviderInfo(
        name=name,
        factory=factory,
        description=description,
        models=tuple(models),
        requires=tuple(requires),
        extra=extra,
    )
    with _lock:
        if name in _PROVIDERS and not replace:
            raise ValidationError(
                f"provider {name!r} is already registered; pass `replace=True` to replace it",
                name=name,
            )
        _PROVIDERS[name] = info
    return info


def providers() -> tuple[ProviderInfo, ...]:
    """Every registered provider, whether or not its dependencies are installed."""
    return tuple(_PROVIDERS.values())


def available_providers() -> tuple[str, ...]:
    """The names of the registered providers whose dependencies are installed."""
    return tuple(info.name for info in _PROVIDERS.values() if info.available)


def list_models(provider: str | None = None) -> tuple[str, ...]:
    """Known model strings (`"sim:gpt-4"`, `"openai:gpt-4o-mini"`, ...), of one provider or all.

    Providers also accept models not listed here (any name the provider serves).

    Raises:
        ConfigurationError: if `provider` is not registered.
    """
    if provider is not None:
        _provider(provider, spec=f"{provider}:")
    return tuple(
        f"{info.name}:{model}"
        for info in _PROVIDERS.values()
        if provider is None or info.name == provider
        for model in info.models
    )


def _provider(name: str, *, spec: str) -> ProviderInfo:
    info = _PROVIDERS.get(name)
    if info is None:
        close = difflib.get_close_matches(name, list(_PROVIDERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"unknown model provider {name!r} in {spec!r}.{hint} Registered providers: "
            f"{', '.join(sorted(_PROVIDERS))}; add one with `register_provider`.",
            provider=name,
            spec=spec,
        )
    return info


def parse_model_string(spec: str) -> tuple[str, str]:
    """Split `"provider:target"` into its two parts, checking both.

    Raises:
        ConfigurationError: for anything not shaped `provider:target` or an unknown provider.

    Examples:
        >>> parse_model_string("openai-compatible:http://127.0.0.1:8000/v1#qwen")
        ('openai-compatible', 'http://127.0.0.1:8000/v1#qwen')
    """
    if not isinstance(spec, str):
        raise ConfigurationError(
            f"a model string must be a str such as 'sim:gpt-4', got {type(spec).__name__}",
            spec=spec,
        )
    name, sep, target = spec.strip().partition(":")
    if not sep or not name or not target.strip():
        raise ConfigurationError(
            f"malformed model string {spec!r}: expected 'provider:model', e.g. 'sim:gpt-4', "
            "'openai:gpt-4o-mini', 'anthropic:claude-3-5-haiku', 'gemini:gemini-2.0-flash' or "
            f"'openai-compatible:http://127.0.0.1:8000/v1#my-model'. Providers: "
            f"{', '.join(sorted(_PROVIDERS))}",
            spec=spec,
        )
    _provider(name, spec=spec)
    return name, target.strip()


_STR_OPTIONS = frozenset(
    {"api_key_env", "base_url", "anthropic_version", "api_version", "max_tokens_field"}
)
_INT_OPTIONS = frozenset({"max_tokens", "max_concurrency", "max_connections", "seed"})
_FLOAT_OPTIONS = frozenset(
    {"timeout", "requests_per_second", "burst", "tokens_per_minute"}
)
_BOOL_OPTIONS = frozenset({"stream", "adaptive", "virtual_time"})
_PRICE_OPTIONS = ("price_input", "price_output")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _option_value(spec: str, key: str, text: str) -> Any:
    def bad(kind: str) -> ConfigurationError:
        return ConfigurationError(
            f"option {key}={text!r} in model string {spec!r} must be {kind}",
            spec=spec,
            option=key,
        )

    if key in _STR_OPTIONS:
        return text
    if key in _BOOL_OPTIONS:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad("true or false")
    if key in _INT_OPTIONS:
        try:
            return int(text)
        except ValueError:
            raise bad("an integer") from None
    if key in _FLOAT_OPTIONS or key in _PRICE_OPTIONS:
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    for convert in (int, float):  # an option of another provider: its natural type
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def split_options(spec: str) -> tuple[str, dict[str, Any]]:
    """Split the options off a model string: `"openai-compatible:<url>#<model>?max_tokens=256"`.

    Options follow a `?` after the model name (after the `#` for `openai-compatible:`), as
    `key=value` pairs joined by `&`. Values are converted to the option's type. A key cannot be
    given in a string (it would end up in experiment files and records): name the environment
    variable that holds it with `api_key_env=`.

    Returns:
        The model string without its options, and the options.

    Raises:
        ConfigurationError: for a malformed option, `api_key=`, or a value of the wrong type.

    Examples:
        >>> split_options("openai-compatible:http://127.0.0.1:4000/v1#gpt-4o?api_key_env=LITELLM_KEY&max_tokens=256")
        ('openai-compatible:http://127.0.0.1:4000/v1#gpt-4o', {'api_key_env': 'LITELLM_KEY', 'max_tokens': 256})
    """
    head, sep, tail = spec.rpartition("#")
    model_part = tail if sep else spec
    model, qmark, query = model_part.partition("?")
    if not qmark:
        return spec, {}
    base = f"{head}#{model}" if sep else model
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError as err:
        raise ConfigurationError(
            f"malformed options {query!r} in model string {spec!r}: write them as "
            "'?key=value&key=value'",
            spec=spec,
        ) from err
    options: dict[str, Any] = {}
    for key, text in pairs:
        if key == "api_key":
            raise ConfigurationError(
                f"model string {base!r} carries an API key; keys do not belong in model "
                "strings (they are written to experiment files and records). Put it in an "
                "environment variable and name it: '?api_key_env=MY_KEY'",
                spec=base,
            )
        if key in options:
            raise ConfigurationError(
                f"option {key!r} is given twice in model string {base!r}", spec=base
            )
        options[key] = _option_value(base, key, text)
    if any(k in options for k in _PRICE_OPTIONS):
        from crucible_core.models._pricing import Price

        options["price"] = Price(
            input=options.pop("price_input", 0.0),
            output=options.pop("price_output", 0.0),
        )
    return base, options


def build_model(spec: str, **options: Any) -> Model:
    """Build a model from a model string.

    Args:
        spec: `"sim:gpt-4"`, `"openai:gpt-4o-mini"`, `"anthropic:claude-3-5-haiku"`,
            `"gemini:gemini-2.0-flash"`, `"openai-compatible:<base_url>#<model>"`, or any
            provider added with [`register_provider`][crucible_core.models.register_provider];
            options may follow the model name: `"...#<model>?api_key_env=LITELLM_KEY&max_tokens=256"`
            (see [`split_options`][crucible_core.models.split_options]; `price_input=` and
            `price_output=` give a [`Price`][crucible_core.models.Price]).
        **options: passed to the model's constructor (`seed=`, `virtual_time=` for `sim`;
            `api_key=`, `timeout=`, `retry=`, `requests_per_second=`, ... for HTTP providers).

    Raises:
        ConfigurationError: for a malformed string, an unknown provider, a missing key, or an
            option given both in the string and as an argument.
        MissingDependencyError: if the provider needs an extra that is not installed.

    Examples:
        >>> build_model("sim:claude-3", seed=7)
        SimulatedModel('claude-3', seed=7)
        >>> build_model("sim:claude-3?seed=7")
        SimulatedModel('claude-3', seed=7)
    """
    name, target = parse_model_string(spec)
    target, from_string = split_options(target)
    both = sorted(set(from_string) & set(options))
    if both:
        raise ConfigurationError(
            f"option(s) {', '.join(both)} given both in the model string {spec!r} and as "
            "arguments; give each once",
            spec=spec,
        )
    return _provider(name, spec=spec).factory(target, **from_string, **options)


def is_simulated(target: object) -> bool:
    """Whether `target`'s answers, latencies and costs are simulated rather than measured.

    `target` is a model string (its provider is `sim`), or an object: its `simulated` attribute
    when it has one (models that wrap others, such as ensembles and hedged models, say whether
    any model they call is simulated), else whether its `provider` is `"sim"`. Anything else, a
    plain callable for instance, is taken as real: crucible cannot see what it calls.

    Examples:
        >>> is_simulated("sim:gpt-4"), is_simulated("openai:gpt-4o-mini")
        (True, False)
        >>> is_simulated(build_model("sim:claude-3"))
        True
    """
    if isinstance(target, str):
        provider, sep, _ = target.partition(":")
        return bool(sep) and provider.strip().lower() == "sim"
    flag = getattr(target, "simulated", None)
    if isinstance(flag, bool):
        return flag
    return getattr(target, "provider", None) == "sim"
