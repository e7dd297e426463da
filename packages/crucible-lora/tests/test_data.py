"""Data formatting: loss masks, shifted-by-one targets, chat rendering, bad input."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crucible_lora as cl

TOK = cl.ByteTokenizer()


def test_targets_are_inputs_shifted_by_one_and_only_completion_is_trained() -> None:
    d = cl.format_example(cl.Example(prompt="ab", completion="xy"), TOK)
    # full sequence: BOS a b x y EOS
    full = [TOK.bos_token_id, ord("a"), ord("b"), ord("x"), ord("y"), TOK.eos_token_id]
    assert d.input_tokens == tuple(full[:-1])
    assert d.target_tokens == tuple(full[1:])
    # targets a, b are prompt (no loss); x, y, EOS are completion (loss)
    assert d.weights == (0.0, 0.0, 1.0, 1.0, 1.0)
    assert d.prompt_length == 3
    assert d.n_trained == 3


@given(prompt=st.text(max_size=20), completion=st.text(min_size=1, max_size=20))
def test_alignment_holds_for_any_text(prompt: str, completion: str) -> None:
    d = cl.format_example(cl.Example(prompt=prompt, completion=completion), TOK)
    assert d.input_tokens[1:] == d.target_tokens[:-1]
    trained = [t for t, w in zip(d.target_tokens, d.weights, strict=True) if w]
    assert TOK.decode(trained) == completion
    assert trained[-1] == TOK.eos_token_id
    assert len(d.input_tokens) == len(d.target_tokens) == len(d.weights)


def test_chat_example_trains_only_the_last_assistant_turn() -> None:
    ex = cl.Example.from_messages(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
        ]
    )
    assert ex.prompt == "<|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\n"
    assert ex.completion == "hello"


def test_chat_must_end_with_assistant() -> None:
    with pytest.raises(cl.LoraDataError, match="assistant"):
        cl.Example.from_messages([{"role": "user", "content": "hi"}])


def test_truncation_drops_prompt_from_the_left() -> None:
    ex = cl.Example(prompt="abcdef", completion="z")
    with pytest.raises(cl.LoraDataError, match="max_length=4") as info:
        cl.format_example(ex, TOK, max_length=4, index=7)
    assert info.value.index == 7
    d = cl.format_example(ex, TOK, max_length=4, truncate=True)
    assert len(d.input_tokens) == 4
    assert TOK.decode(d.input_tokens) == "defz"  # BOS and "abc" dropped
    assert d.weights == (0.0, 0.0, 1.0, 1.0)


def test_completion_longer_than_max_length_cannot_be_truncated() -> None:
    with pytest.raises(cl.LoraDataError, match="max_length"):
        cl.format_example(
            cl.Example(prompt="a", completion="abcdef"),
            TOK,
            max_length=3,
            truncate=True,
        )


def test_empty_completion_and_empty_dataset_are_errors() -> None:
    with pytest.raises(cl.LoraDataError, match="empty completion"):
        cl.format_example(cl.Example(prompt="a", completion=""), TOK)
    with pytest.raises(cl.LoraDataError, match="empty"):
        cl.format_examples([], TOK)
    with pytest.raises(cl.LoraDataError, match="empty"):
        cl.to_examples([])


def test_mismatched_tokenizer_is_named() -> None:
    @attrs.define
    class Wide:
        vocab_size: int = 10
        eos_token_id: int | None = None

        def encode(self, text: str) -> list[int]:
            return [ord(c) for c in text]

        def decode(self, tokens: Any) -> str:
            return ""

    with pytest.raises(cl.TokenizerMismatchError, match="vocabulary has 10") as info:
        cl.format_example(cl.Example(prompt="a", completion="b"), Wide())
    assert info.value.max_token_id == ord("b")
    assert isinstance(info.value, ValueError)


def test_non_string_fields_are_rejected() -> None:
    with pytest.raises(cl.LoraDataError, match="must be a string"):
        cl.Example(prompt=3, completion="x")  # type: ignore[arg-type]


def test_to_examples_accepts_dicts_chats_and_items() -> None:
    @attrs.define
    class Item:
        id: str
        input: Any
        expected: Any
        metadata: dict[str, Any]

    out = cl.to_examples(
        [
            {"prompt": "p", "completion": "c", "id": "d1"},
            {
                "messages": [
                    {"role": "user", "content": "u"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            Item(
                id="i1", input={"claim": "x"}, expected="SUPPORT", metadata={"doc": 1}
            ),
            cl.Example(prompt="e", completion="f"),
        ]
    )
    assert [e.completion for e in out] == ["c", "a", "SUPPORT", "f"]
    assert out[2].prompt == '{"claim":"x"}'
    assert out[2].id == "i1" and out[2].metadata == {"doc": 1}
    rendered = cl.to_examples(
        [Item(id="i", input={"claim": "x"}, expected="S", metadata={})],
        prompt=lambda it: f"Claim: {it.input['claim']}\nLabel:",
    )
    assert rendered[0].prompt == "Claim: x\nLabel:"


def test_to_examples_rejects_unknown_shapes() -> None:
    with pytest.raises(cl.LoraDataError, match="entry 1") as info:
        cl.to_examples([{"prompt": "a", "completion": "b"}, 42])
    assert info.value.index == 1


def test_as_tokenizer_rejects_non_tokenizers() -> None:
    with pytest.raises(cl.LoraConfigError, match="not a tokenizer"):
        cl.as_tokenizer(object())
    assert cl.as_tokenizer(TOK) is TOK
