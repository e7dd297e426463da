"""One generation through an adapter's sampler: prompt text in, completion text out."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from crucible_lora._adapter import LoraAdapter, SamplingParams

__all__ = ("Generation", "cut", "generate")


def cut(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first of the `stop` strings."""
    for s in stop:
        index = text.find(s)
        if index >= 0:
            text = text[:index]
    return text


@attrs.define(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: str
    """`"stop"` (end of sequence or a stop string) or `"length"` (ran to `max_tokens`)."""


async def generate(
    adapter: LoraAdapter, prompt: str, params: SamplingParams
) -> Generation:
    """Sample one continuation of `prompt` (with the tokenizer's BOS first, as training saw)."""
    tokenizer = adapter.tokenizer
    bos = getattr(tokenizer, "bos_token_id", None)
    ids = ([] if bos is None else [int(bos)]) + tokenizer.encode(prompt)
    (tokens,) = await adapter.sample_async(ids, n=1, params=params)
    eos = tokenizer.eos_token_id
    ended = eos is not None and eos in tokens
    if eos is not None and ended:
        tokens = tokens[: tokens.index(eos)]
    decoded = tokenizer.decode(tokens)
    text = cut(decoded, params.stop)
    finish = (
        "stop"
        if ended or text != decoded or len(tokens) < params.max_tokens
        else "length"
    )
    return Generation(text, len(ids), len(tokens), finish)
