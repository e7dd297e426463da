"""Batching reshuffles per epoch with a seed and never drops data unless asked; schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crucible_lora as cl


@given(n=st.integers(1, 60), size=st.integers(1, 16), seed=st.integers(0, 99))
def test_every_item_exactly_once_per_epoch(n: int, size: int, seed: int) -> None:
    data = list(range(n))
    for epoch in range(3):
        out = cl.batches(data, batch_size=size, seed=seed, epoch=epoch)
        flat = [x for b in out for x in b]
        assert sorted(flat) == data
        assert len(out) == cl.steps_per_epoch(n, batch_size=size)
        assert all(len(b) == size for b in out[:-1])


def test_same_seed_same_batches_and_epochs_differ() -> None:
    data = list(range(40))
    a = cl.batches(data, batch_size=8, seed=1, epoch=0)
    assert a == cl.batches(data, batch_size=8, seed=1, epoch=0)
    assert a != cl.batches(data, batch_size=8, seed=1, epoch=1)
    assert a != cl.batches(data, batch_size=8, seed=2, epoch=0)
    assert cl.batches(data, batch_size=8, seed=1, epoch=0, shuffle=False)[0] == list(
        range(8)
    )


def test_drop_last_only_when_asked() -> None:
    data = list(range(10))
    assert sum(map(len, cl.batches(data, batch_size=4, seed=0, epoch=0))) == 10
    kept = cl.batches(data, batch_size=4, seed=0, epoch=0, drop_last=True)
    assert [len(b) for b in kept] == [4, 4]
    with pytest.raises(cl.LoraDataError, match="leaves no batch"):
        cl.batches(data, batch_size=20, seed=0, epoch=0, drop_last=True)


def test_bad_batching_input() -> None:
    with pytest.raises(cl.LoraConfigError, match="batch_size"):
        cl.batches([1], batch_size=0, seed=0, epoch=0)
    with pytest.raises(cl.LoraDataError, match="empty"):
        cl.batches([], batch_size=2, seed=0, epoch=0)
    with pytest.raises(cl.LoraDataError, match="empty batch"):
        cl.pad_batch([], pad_id=0)


def test_pad_batch_masks_padding() -> None:
    tok = cl.ByteTokenizer()
    short, long = cl.format_examples(
        [
            cl.Example(prompt="a", completion="b"),
            cl.Example(prompt="abc", completion="de"),
        ],
        tok,
    )
    batch = cl.pad_batch([short, long], pad_id=tok.pad_token_id)
    assert batch.input_ids.shape == (2, len(long))
    assert batch.weights[0, len(short) :].sum() == 0
    assert batch.attention_mask[0].sum() == len(short)
    assert batch.n_tokens == len(short) + len(long)
    assert batch.n_trained == short.n_trained + long.n_trained
    assert list(batch.target_ids[1]) == list(long.target_tokens)


def test_schedules() -> None:
    lr = [
        cl.learning_rate_at(s, base=1.0, total_steps=4, schedule="linear")
        for s in range(4)
    ]
    assert lr == [1.0, 0.75, 0.5, 0.25]
    cos = [
        cl.learning_rate_at(s, base=1.0, total_steps=4, schedule="cosine")
        for s in range(4)
    ]
    assert cos[0] == 1.0 and cos[2] == pytest.approx(0.5)
    assert cos[1] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert all(
        cl.learning_rate_at(s, base=0.1, total_steps=5, schedule="constant") == 0.1
        for s in range(5)
    )
    warm = [
        cl.learning_rate_at(
            s, base=1.0, total_steps=6, schedule="linear", warmup_steps=2
        )
        for s in range(6)
    ]
    assert warm[:3] == [0.5, 1.0, 1.0]
    assert np.all(np.diff(warm[2:]) < 0)


def test_bad_schedule_input() -> None:
    with pytest.raises(cl.LoraConfigError, match="unknown lr_schedule"):
        cl.learning_rate_at(0, base=1.0, total_steps=2, schedule="step")  # type: ignore[arg-type]
    with pytest.raises(cl.LoraConfigError, match="outside"):
        cl.learning_rate_at(2, base=1.0, total_steps=2)
    with pytest.raises(cl.LoraConfigError, match="positive"):
        cl.learning_rate_at(0, base=0.0, total_steps=2)
