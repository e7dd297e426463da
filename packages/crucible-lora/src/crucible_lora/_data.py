"""Training data: examples, their rendering to tokens with a loss mask, and shifted targets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from crucible_lora._tokenizer import Tokenizer
from crucible_lora.exceptions import LoraDataError, TokenizerMismatchError

__all__ = (
    "CHAT_TEMPLATE",
    "Datum",
    "Example",
    "format_example",
    "format_examples",
    "to_examples",
)

CHAT_TEMPLATE = "<|{role}|>\n{content}\n"
"""How one chat turn is rendered; the assistant's reply follows `<|assistant|>\\n`."""


def _check_str(
    instance: object, attribute: attrs.Attribute[str], value: object
) -> None:
    if not isinstance(value, str):
        raise LoraDataError(
            f"`Example.{attribute.name}` must be a string, got {type(value).__name__}",
            field=attribute.name,
        )


@attrs.define(frozen=True, kw_only=True)
class Example:
    """One supervised example: the model reads `prompt` and is trained to write `completion`.

    Examples:
        >>> Example(prompt="2+2=", completion="4").completion
        '4'
    """

    prompt: str = attrs.field(validator=_check_str)
    """What the model is given; its tokens carry no loss."""
    completion: str = attrs.field(validator=_check_str)
    """What the model should produce; only these tokens (and the end token) are trained."""
    id: str | None = None
    """The source item's id, if any (kept for per-item evaluation and pairing)."""
    expected: Any = None
    """The source item's reference answer, if it differs from `completion` (for scoring)."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    """Anything else carried from the source item (e.g. SciFact evidence ids)."""

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[Mapping[str, str] | Any],
        *,
        template: str = CHAT_TEMPLATE,
        id: str | None = None,
    ) -> Example:
        """Build an example from a chat: every turn but the last is prompt, the last is completion.

        Args:
            messages: dicts (or objects) with `role` and `content`; the last must be `assistant`.
            template: how each turn is rendered, with `{role}` and `{content}`.
            id: the example's id.

        Raises:
            LoraDataError: when there are no messages or the last is not the assistant's.
        """
        turns = [
            (m["role"], m["content"]) if isinstance(m, Mapping) else (m.role, m.content)
            for m in messages
        ]
        if not turns or turns[-1][0] != "assistant":
            raise LoraDataError(
                "a chat example needs at least one message and must end with the "
                "assistant's reply (the completion to train on)",
                index=None,
            )
        prompt = "".join(template.format(role=r, content=c) for r, c in turns[:-1])
        prompt += template.split("{content}", 1)[0].format(role="assistant")
        return cls(prompt=prompt, completion=turns[-1][1], id=id)


@attrs.define(frozen=True, kw_only=True)
class Datum:
    """One tokenized example ready for a forward-backward pass.

    `target_tokens[i]` is the token that follows `input_tokens[i]` (the sequence shifted by one),
    and `weights[i]` is 1.0 where that target is a completion token and 0.0 where it is prompt.
    """

    input_tokens: tuple[int, ...]
    """The sequence fed to the model (all tokens but the last)."""
    target_tokens: tuple[int, ...]
    """The next token at each position (all tokens but the first)."""
    weights: tuple[float, ...]
    """The loss mask over `target_tokens`: 1.0 for completion tokens, 0.0 for prompt tokens."""
    prompt_length: int
    """How many tokens (including BOS) the prompt has; `input_tokens[:prompt_length]` is it."""
    id: str | None = None
    """The example's id."""

    @property
    def n_trained(self) -> int:
        """How many target tokens carry loss."""
        return int(sum(self.weights))

    def __len__(self) -> int:
        return len(self.input_tokens)


def format_example(
    example: Example,
    tokenizer: Tokenizer,
    *,
    max_length: int | None = None,
    truncate: bool = False,
    bos: bool = True,
    index: int | None = None,
) -> Datum:
    """Render `example` to tokens with a loss mask over the completion and shifted targets.

    The full sequence is `[BOS] + prompt + completion + [EOS]`; the datum's inputs are all but its
    last token and its targets all but its first, so position `i` predicts token `i + 1`.

    Args:
        example: the example.
        tokenizer: a [`Tokenizer`][crucible_lora.Tokenizer].
        max_length: the longest input allowed, in tokens (`None`: no limit).
        truncate: when too long, drop prompt tokens from the left instead of raising.
        bos: put the tokenizer's BOS token first, if it has one.
        index: the example's position in its dataset, for error messages.

    Raises:
        LoraDataError: when the completion is empty or the example is longer than `max_length`
            (and `truncate` is off, or the completion alone is too long).
        TokenizerMismatchError: when the tokenizer returns ids outside `range(vocab_size)`.
    """
    if not example.completion:
        raise LoraDataError(
            f"example {index if index is not None else example.id!r} has an empty completion; "
            "there is nothing to train on: drop it or give it a completion",
            index=index,
        )
    bos_id = getattr(tokenizer, "bos_token_id", None) if bos else None
    head = [] if bos_id is None else [int(bos_id)]
    prompt = head + tokenizer.encode(example.prompt)
    completion = tokenizer.encode(example.completion)
    eos = tokenizer.eos_token_id
    if eos is not None:
        completion.append(int(eos))
    vocab = tokenizer.vocab_size
    bad = [t for t in (*prompt, *completion) if not 0 <= t < vocab]
    if bad:
        raise TokenizerMismatchError(
            f"the tokenizer returned id {max(bad)} but says its vocabulary has {vocab} ids; "
            "use the tokenizer that belongs to the model",
            vocab_size=vocab,
            max_token_id=max(bad),
        )
    if max_length is not None and len(prompt) + len(completion) - 1 > max_length:
        keep = max_length + 1 - len(completion)
        if not truncate or keep < 1:
            raise LoraDataError(
                f"example {index if index is not None else example.id!r} has "
                f"{len(prompt) + len(completion) - 1} tokens, more than max_length={max_length}; "
                "raise `max_length`, shorten it, or pass `truncate=True` to drop prompt tokens "
                "from the left",
                index=index,
                length=len(prompt) + len(completion) - 1,
                max_length=max_length,
            )
        prompt = prompt[len(prompt) - keep :]
    tokens = prompt + completion
    mask = [0.0] * len(prompt) + [1.0] * len(completion)
    return Datum(
        input_tokens=tuple(tokens[:-1]),
        target_tokens=tuple(tokens[1:]),
        weights=tuple(mask[1:]),
        prompt_length=len(prompt),
        id=example.id,
    )


def format_examples(
    examples: Iterable[Example],
    tokenizer: Tokenizer,
    *,
    max_length: int | None = None,
    truncate: bool = False,
    bos: bool = True,
) -> list[Datum]:
    """[`format_example`][crucible_lora.format_example] over a dataset.

    Raises:
        LoraDataError: when there are no examples, or one cannot be formatted (its index is named).
    """
    out = [
        format_example(
            ex, tokenizer, max_length=max_length, truncate=truncate, bos=bos, index=i
        )
        for i, ex in enumerate(examples)
    ]
    if not out:
        raise LoraDataError(
            "the dataset is empty: give at least one example to train or evaluate on",
            index=None,
        )
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def to_examples(
    data: Iterable[Any],
    *,
    prompt: Callable[[Any], str] | None = None,
    completion: Callable[[Any], str] | None = None,
) -> list[Example]:
    """Turn a dataset into [`Example`][crucible_lora.Example]s.

    Accepts `Example`s, mappings with `prompt`/`completion` or `messages`, and items with `input`
    and `expected` (such as crucible-datasets' `Item`). Non-string inputs and answers are rendered as
    sorted JSON unless `prompt`/`completion` say how.

    Args:
        data: the examples or items.
        prompt: renders an item's prompt (default: its `input`).
        completion: renders an item's completion (default: its `expected`).

    Raises:
        LoraDataError: when `data` is empty or an entry has none of the shapes above.
    """
    out: list[Example] = []
    for i, entry in enumerate(data):
        if isinstance(entry, Example) and prompt is None and completion is None:
            out.append(entry)
        elif isinstance(entry, Mapping) and "messages" in entry:
            out.append(Example.from_messages(entry["messages"], id=entry.get("id")))
        elif isinstance(entry, Mapping) and "prompt" in entry and "completion" in entry:
            out.append(
                Example(
                    prompt=prompt(entry) if prompt else entry["prompt"],
                    completion=completion(entry) if completion else entry["completion"],
                    id=entry.get("id"),
                    metadata=dict(entry.get("metadata", {})),
                )
            )
        elif hasattr(entry, "input") and hasattr(entry, "expected"):
            out.append(
                Example(
                    prompt=prompt(entry) if prompt else _text(entry.input),
                    completion=completion(entry)
                    if completion
                    else _text(entry.expected),
                    id=None if getattr(entry, "id", None) is None else str(entry.id),
                    expected=entry.expected,
                    metadata=dict(getattr(entry, "metadata", None) or {}),
                )
            )
        else:
            raise LoraDataError(
                f"entry {i} is a {type(entry).__name__}, which is not an example: give "
                "`Example`s, dicts with `prompt` and `completion` (or `messages`), or items "
                "with `input` and `expected`",
                index=i,
            )
    if not out:
        raise LoraDataError(
            "the dataset is empty: give at least one example to train or evaluate on",
            index=None,
        )
    return out
