"""Tokenizers: the protocol the data formatter needs, a byte tokenizer, and a wrapper for HF ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = ("ByteTokenizer", "Tokenizer", "as_tokenizer")


@runtime_checkable
class Tokenizer(Protocol):
    """What crucible-lora needs from a tokenizer.

    `encode` must not add special tokens: the formatter places BOS/EOS itself.
    """

    @property
    def vocab_size(self) -> int:
        """Number of distinct token ids (every id is in `range(vocab_size)`)."""
        ...

    @property
    def eos_token_id(self) -> int | None:
        """The id that ends a completion, or `None` if the tokenizer has none."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with no special tokens added."""
        ...

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of `tokens`, skipping special tokens."""
        ...


@attrs.define(frozen=True)
class ByteTokenizer:
    """A dependency-free tokenizer: one id per UTF-8 byte, plus BOS, EOS and PAD.

    Useful for tiny local models and for tests; every text round-trips exactly.

    Examples:
        >>> tok = ByteTokenizer()
        >>> tok.decode(tok.encode("héllo"))
        'héllo'
    """

    @property
    def vocab_size(self) -> int:
        """259: the 256 byte values, then BOS (256), EOS (257) and PAD (258)."""
        return 259

    @property
    def bos_token_id(self) -> int:
        """The id placed before a prompt."""
        return 256

    @property
    def eos_token_id(self) -> int:
        """The id that ends a completion."""
        return 257

    @property
    def pad_token_id(self) -> int:
        """The id used to pad batches."""
        return 258

    def encode(self, text: str) -> list[int]:
        """The UTF-8 bytes of `text` as ids."""
        return list(text.encode("utf-8"))

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of the byte ids in `tokens`; special ids are skipped, bad UTF-8 replaced."""
        return bytes(t for t in tokens if 0 <= t < 256).decode(
            "utf-8", errors="replace"
        )


class _HFTokenizer:
    """A Hugging Face tokenizer seen through the `Tokenizer` protocol (no special tokens added)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def vocab_size(self) -> int:
        return len(self.inner)

    @property
    def eos_token_id(self) -> int | None:
        value = self.inner.eos_token_id
        return None if value is None else int(value)

    @property
    def bos_token_id(self) -> int | None:
        value = getattr(self.inner, "bos_token_id", None)
        return None if value is None else int(value)

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.inner.encode(text, add_special_tokens=False)]

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.inner.decode(list(tokens), skip_special_tokens=True))


def as_tokenizer(tokenizer: Any) -> Tokenizer:
    """`tokenizer` as a [`Tokenizer`][crucible_lora.Tokenizer]; Hugging Face tokenizers are wrapped.

    Raises:
        LoraConfigError: when `tokenizer` is neither.
    """
    if hasattr(tokenizer, "convert_tokens_to_ids"):  # a transformers tokenizer
        return _HFTokenizer(tokenizer)
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    from crucible_lora.exceptions import LoraConfigError

    raise LoraConfigError(
        f"{type(tokenizer).__name__!r} is not a tokenizer: pass a `transformers` tokenizer or an "
        "object with `encode`, `decode`, `vocab_size` and `eos_token_id` "
        "(for example `crucible_lora.ByteTokenizer()`)",
        field="tokenizer",
        value=type(tokenizer).__name__,
    )
